"""The cpu target's own kernels agree with the reference rules they replace."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.semantics import get_rule
from graphopt.targets.cpu.kernels import KERNELS

X32 = np.concatenate([np.linspace(-12, 12, 4001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_erf_matches_rule(dtype: type) -> None:
    x = X32.astype(dtype)
    got, want = KERNELS["graph.erf"](x), get_rule("Erf")(x)
    assert got.dtype == want.dtype == x.dtype
    np.testing.assert_allclose(got, want, rtol=2e-7 if dtype != np.float16 else 1e-3, atol=1e-37)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gelu_matches_rule(approximate: str, dtype: type) -> None:
    x = X32.astype(dtype)
    got, want = KERNELS["graph.gelu"](x, approximate=approximate), get_rule("Gelu")(x, approximate=approximate)
    assert got.dtype == want.dtype == x.dtype
    # float64: the rule's erf is a Chebyshev fit good to ~1e-10 relative near its seams.
    rtol = {np.float32: 2e-6, np.float64: 1e-9, np.float16: 1e-3}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=1e-30)
