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


def test_columns_outer_when_b_outgrows_l2() -> None:
    """A wide B (256 MB, more than L2) re-read once per strip of tile rows costs HBM time;
    with columns outer each strip re-reads the small A instead, and the tiler sees it."""
    from dataclasses import replace

    from graphopt.targets.ascend.matmul_kernel import simulate_matmul

    chip = load_chip("ascend910b")
    t = choose_tiling(chip, 2048, 16384, 8192)
    assert t.order == "cols"
    assert simulate_matmul(chip, t).cycles < simulate_matmul(chip, replace(t, order="rows")).cycles
    # operands that fit L2 together are not tried in both orders
    assert {c.order for c in candidate_tilings(chip, 1024, 1024, 1024)} == {"rows"}


@pytest.mark.parametrize("order", ["rows", "cols"])
def test_either_loop_order_computes_the_matmul(order: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's C-tile loops in either order run every tile once: the functional
    simulator's result matches numpy."""
    from dataclasses import replace

    import numpy as np
    from onnx import TensorProto, helper

    import graphopt
    from graphopt.targets.ascend import lower_cube

    chosen = lower_cube.choose_tiling
    monkeypatch.setattr(lower_cube, "choose_tiling", lambda *a, **k: replace(chosen(*a, **k), order=order))
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [200, 96])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [96, 300])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [200, 300])
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g", [a, b], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    c = graphopt.compile(model, "ascend-sim", target_options={"precision": "must_keep_origin_dtype"}, validate=False)
    assert c.module is not None
    assert f'order = "{order}"' in str(c.module)
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((200, 96), np.float32), rng.standard_normal((96, 300), np.float32)
    got = c.run({"a": xa, "b": xb})["y"]
    np.testing.assert_allclose(got, xa @ xb, rtol=1e-4, atol=1e-4)


def test_a_batch_spreads_over_the_cores_a_grid_leaves() -> None:
    """32 matmuls of one 128 x 128 tile each: the grid alone would use one or two cores;
    the batch takes the rest (grid_b groups), and the kernel is that much faster."""
    from dataclasses import replace

    from graphopt.targets.ascend.matmul_kernel import simulate_matmul

    chip = load_chip("ascend910b")
    t = choose_tiling(chip, 128, 128, 128, batch=32)
    assert t.grid_b > 1 and t.block_dim <= chip.cube_cores and t.flops() == 32 * 2 * 128**3
    serial = replace(t, grid_b=1)
    assert simulate_matmul(chip, t).cycles < simulate_matmul(chip, serial).cycles / 2  # launch included
    with pytest.raises(GraphoptError, match="more cores than tiles"):
        check_tiling(chip, replace(t, batch=8, grid_b=12))


def test_batched_matmul_over_core_groups_computes_every_batch() -> None:
    import numpy as np
    from onnx import TensorProto, helper

    import graphopt

    shapes = {"a": [5, 200, 96], "b": [5, 96, 300], "y": [5, 200, 300]}
    vi = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()}
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g", [vi["a"], vi["b"]], [vi["y"]])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    c = graphopt.compile(model, "ascend-sim", target_options={"precision": "must_keep_origin_dtype"}, validate=False)
    assert c.report["kernels"][0]["tiling"]["grid_b"] > 1
    rng = np.random.default_rng(1)
    xa, xb = rng.standard_normal(shapes["a"], np.float32), rng.standard_normal(shapes["b"], np.float32)
    np.testing.assert_allclose(c.run({"a": xa, "b": xb})["y"], xa @ xb, rtol=1e-4, atol=1e-4)
