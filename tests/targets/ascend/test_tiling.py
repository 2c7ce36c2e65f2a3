"""Every tiling the target produces fits the chip's buffers (hypothesis over random shapes)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.tiling import MatmulTiling, candidate_tilings, check_tiling, choose_tiling

CHIPS = ["ascend910b", "ascend310p"]
dims = st.integers(min_value=1, max_value=3000)


def _assert_fits(chip_name: str, t: MatmulTiling) -> None:
    chip = load_chip(chip_name)
    check_tiling(chip, t)
    for buf, need in t.footprint().items():
        if buf != "ub" or chip.path("L0C", "GM") is None:
            assert need <= chip.buffers[buf], (buf, t.describe())
    assert t.base_m % chip.fractal_m == 0 and t.base_n % chip.fractal_n == 0 and t.base_k % chip.k0[t.dtype] == 0
    assert t.block_dim <= chip.cube_cores
    # Double buffering: two base tiles in each of L0A and L0B.
    assert t.l0_buffers == 2 and t.l1_buffers == 2


@settings(max_examples=40, deadline=None)
@given(chip=st.sampled_from(CHIPS), m=dims, n=dims, k=dims, dtype=st.sampled_from(["fp16", "int8", "fp32"]))
def test_candidates_fit(chip: str, m: int, n: int, k: int, dtype: str) -> None:
    cands = candidate_tilings(load_chip(chip), m, n, k, dtype)
    assert cands
    for t in cands:
        _assert_fits(chip, t)


@settings(max_examples=25, deadline=None)
@given(chip=st.sampled_from(CHIPS), m=dims, n=dims, k=dims, strategy=st.sampled_from(["model", "naive"]))
def test_chosen_tiling_fits(chip: str, m: int, n: int, k: int, strategy: str) -> None:
    t = choose_tiling(load_chip(chip), m, n, k, strategy=strategy)
    _assert_fits(chip, t)
    assert (t.m, t.n, t.k) == (m, n, k)


def test_oversized_tiling_rejected() -> None:
    chip = load_chip("ascend910b")
    # 256 x 256 fp32 accumulators = 256 KB: twice the 910B's L0C.
    with pytest.raises(GraphoptError, match="l0c needs 262144 bytes"):
        check_tiling(chip, MatmulTiling(1024, 1024, 1024, 4, 4, 256, 256, 64, 4))
    with pytest.raises(GraphoptError, match="multiples of the fractal"):
        check_tiling(chip, MatmulTiling(1024, 1024, 1024, 4, 4, 120, 256, 64, 4))
    # The same tile fits the 310P's 256 KB L0C.
    check_tiling(load_chip("ascend310p"), MatmulTiling(1024, 1024, 1024, 2, 4, 256, 256, 64, 2, out_dtype="fp16"))


def test_model_beats_naive() -> None:
    from graphopt.targets.ascend.matmul_kernel import simulate_matmul

    chip = load_chip("ascend910b")
    model = simulate_matmul(chip, choose_tiling(chip, 2048, 2048, 2048))
    naive = simulate_matmul(chip, choose_tiling(chip, 2048, 2048, 2048, strategy="naive"))
    assert model.cycles < naive.cycles
