"""Storage formats: numpy converters round-trip, pad with zeros, and put each element where
the format's definition says (reference/ascend.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import TensorType, f16, f32, i64

from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.formats import (
    c0_for,
    format_of,
    from_format,
    same_storage,
    storage_bytes,
    storage_shape,
    to_format,
    with_format,
)

dim = st.integers(min_value=1, max_value=20)


@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(dim, dim, dim, dim), c0=st.sampled_from([8, 16, 32]), fmt=st.sampled_from(["NC1HWC0", "FRACTAL_Z", "FRACTAL_NZ", "ND"]))
def test_round_trip_4d(shape: tuple[int, ...], c0: int, fmt: str) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    stored = to_format(x, fmt, c0)
    assert stored.shape == storage_shape(shape, fmt, c0)
    np.testing.assert_array_equal(from_format(stored, fmt, shape, c0), x)
    # Padding is zeros: the stored sum of squares equals the origin's.
    assert np.isclose(float((stored.astype(np.float64) ** 2).sum()), float((x.astype(np.float64) ** 2).sum()))


@settings(max_examples=20, deadline=None)
@given(batch=st.lists(dim, max_size=2), m=dim, n=dim)
def test_round_trip_nz_any_rank(batch: list[int], m: int, n: int) -> None:
    x = np.arange(np.prod([*batch, m, n])).reshape(*batch, m, n).astype(np.float16)
    np.testing.assert_array_equal(from_format(to_format(x, "FRACTAL_NZ", 16), "FRACTAL_NZ", x.shape, 16), x)


def test_element_placement() -> None:
    x = np.arange(2 * 5 * 3 * 4).reshape(2, 5, 3, 4)
    # NC1HWC0: x[n, c, h, w] at [n, c // C0, h, w, c % C0]
    assert to_format(x, "NC1HWC0", 4)[1, 1, 2, 3, 0] == x[1, 4, 2, 3]
    # FRACTAL_Z of weights [O, C, H, W]: [(c1 * H + h) * W + w, o // 16, o % 16, c % C0]
    w = np.arange(20 * 5 * 3 * 2).reshape(20, 5, 3, 2)
    assert to_format(w, "FRACTAL_Z", 4)[(1 * 3 + 2) * 2 + 1, 1, 3, 0] == w[19, 4, 2, 1]
    # FRACTAL_NZ of [M, N]: [n // N0, m // M0, m % M0, n % N0]
    a = np.arange(20 * 36).reshape(20, 36)
    assert to_format(a, "FRACTAL_NZ", 16)[2, 1, 3, 1] == a[19, 33]


def test_padding_is_zero_and_counted() -> None:
    x = np.ones((1, 3, 2, 2), np.float32)
    stored = to_format(x, "NC1HWC0", 16)
    assert stored.shape == (1, 1, 2, 2, 16) and stored[..., 3:].sum() == 0
    assert storage_bytes((1, 3, 2, 2), "NC1HWC0", 16, 2) == 1 * 16 * 4 * 2  # C = 3 pads to 16: 5.3x


@pytest.mark.parametrize(("shape", "fmt", "same"), [
    ((2, 32, 1, 1), "NC1HWC0", True),    # H*W = 1 and C0 | C: offset n*C + c either way
    ((2, 24, 1, 1), "NC1HWC0", False),   # padded channels
    ((1, 32, 2, 1), "NC1HWC0", False),
    ((64, 16), "FRACTAL_NZ", True),      # one column of fractals
    ((64, 32), "FRACTAL_NZ", False),
])
def test_same_storage_matches_the_bytes(shape: tuple[int, ...], fmt: str, same: bool) -> None:
    assert same_storage(shape, "ND", fmt, 16) is same
    x = np.arange(np.prod(shape)).reshape(shape)
    stored = to_format(x, fmt, 16)
    assert (stored.size == x.size and np.array_equal(stored.reshape(-1), x.reshape(-1))) is same


def test_types_and_c0() -> None:
    chip = load_chip("ascend910b")
    t = TensorType(f32, [1, 3, 8, 8])
    assert format_of(t) == "ND" and format_of(with_format(t, "NC1HWC0")) == "NC1HWC0"
    assert with_format(with_format(t, "NC1HWC0"), "ND") == t
    assert c0_for(f32, chip.k0, "force_fp16") == 16  # stored as fp16: 16 x 2 B = 32 B
    assert c0_for(f32, chip.k0, "must_keep_origin_dtype") == 8
    assert c0_for(f16, chip.k0) == 16 and c0_for(i64, chip.k0) is None
    with pytest.raises(ValueError, match="unknown storage format"):
        with_format(t, "NHWC")
    with pytest.raises(ValueError, match="rank 4"):
        to_format(np.zeros((3, 3)), "NC1HWC0", 16)
