"""Timing of lowered kernels: the roofline through the whole lowered path, agreement with the
calibrated matmul program, causal skipping, the report's timing section."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import graphopt
from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.matmul_kernel import simulate_matmul
from graphopt.targets.ascend.tiling import choose_tiling


def _matmul_model(m: int, n: int, k: int, epilogue: bool) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.zeros((k, n), np.float16), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm" if epilogue else "y"])]
    if epilogue:
        nodes.append(helper.make_node("Relu", ["mm"], ["y"]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [m, n])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@settings(max_examples=8, deadline=None)
@given(
    chip_name=st.sampled_from(["ascend910b", "ascend310p"]),
    m=st.integers(1, 1024),
    n=st.integers(1, 1024),
    k=st.integers(1, 1024),
    epilogue=st.booleans(),
    tiling=st.sampled_from(["model", "naive"]),
)
def test_lowered_kernels_never_beat_the_roofline(chip_name: str, m: int, n: int, k: int, epilogue: bool, tiling: str) -> None:
    compiled = graphopt.compile(_matmul_model(m, n, k, epilogue), f"ascend-sim:{chip_name}", target_options={"tiling": tiling})
    chip = load_chip(chip_name)
    timing = compiled.report["timing"]
    seconds = timing["total_us"] * 1e-6
    assert seconds >= 2.0 * m * n * k / chip.peak_flops("fp16")
    assert seconds >= (m * k + k * n + m * n) * 2 / (chip.hbm_gbps * 1e9)
    assert 0.0 <= timing["mfu"] <= 1.0
    for kern in timing["kernels"]:
        assert kern["bound"] in {"cube", "vector", "MTE", "launch", "scalar"}
        assert all(0.0 <= v <= 100.0 + 1e-6 for v in kern["busy_pct"].values())


@pytest.mark.parametrize("size", [1536, 3072])
def test_ir_walk_agrees_with_the_calibrated_matmul_program(size: int) -> None:
    chip = load_chip("ascend910b")
    compiled = graphopt.compile(_matmul_model(size, size, size, False), "ascend-sim")
    walked = compiled.report["timing"]["kernels"][0]["time_us"]
    direct = simulate_matmul(chip, choose_tiling(chip, size, size, size)).time_us
    assert walked == pytest.approx(direct, rel=0.05)


def _attention_model(seq: int, causal: int) -> onnx.ModelProto:
    shape = [1, 4, seq, 64]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, shape) for n in "qkv"]
    g = helper.make_graph([helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=causal)], "a", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])


def test_causal_attention_skips_masked_blocks() -> None:
    # 2048: several 512-wide kv blocks per q tile, so whole blocks lie above the diagonal.
    full = graphopt.compile(_attention_model(2048, 0), "ascend-sim").report["timing"]
    causal = graphopt.compile(_attention_model(2048, 1), "ascend-sim").report["timing"]
    assert causal["flops"] == pytest.approx(full["flops"] / 2)
    cube = next(k for k in causal["kernels"] if k["kind"] == "cube")
    cube_full = next(k for k in full["kernels"] if k["kind"] == "cube")
    assert cube["bytes"]["L0C"] < 0.7 * cube_full["bytes"]["L0C"]


def test_aicpu_kernels_are_costed() -> None:
    # Det: CANN's MatrixDeterminant is an AI CPU kernel, and so is graphopt's.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 4, 4])
    g = helper.make_graph([helper.make_node("Det", ["x"], ["d"])], "t", [x],
                          [helper.make_tensor_value_info("d", TensorProto.FLOAT, [8])])
    timing = graphopt.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "ascend-sim").report["timing"]
    aicpu = [k for k in timing["kernels"] if k["kind"] == "aicpu"]
    assert aicpu and aicpu[0]["time_us"] > 0


def test_causal_attention_simulates_each_distinct_core() -> None:
    # Cores with the same number of work items skip different kv blocks when causal: the
    # cores simulated must include the one with the most blocks left, and count every core once.
    from graphopt.targets.ascend.dialect import KernelOp
    from graphopt.targets.ascend.kernel_facts import parallel_loops
    from graphopt.targets.ascend.kernel_timing import _Walk, kernel_program

    c = graphopt.compile(_causal_heads(4096, 2), "ascend-sim")  # 64 items: 24 cores take 2 or 3
    kernel = next(op for op in c.module.walk() if isinstance(op, KernelOp))
    chip = load_chip("ascend910b")
    (loop,) = parallel_loops(kernel)
    per_core = []
    for core in range(kernel.block_dim.value.data):
        out: list = []
        _Walk(chip, kernel, {loop: core}, 0, {}, out).run()
        per_core.append(sum(1 for i in out if i.pipe == "M"))
    prog = kernel_program(chip, kernel)
    simulated = {}
    for i in prog.instrs:
        if i.pipe == "M":
            simulated[i.core] = simulated.get(i.core, 0) + 1
    assert len(set(per_core)) > 1 and max(simulated.values()) == max(per_core)
    assert sum(n * prog.replicas[core] for core, n in simulated.items()) == sum(per_core)


def _causal_heads(seq: int, heads: int) -> onnx.ModelProto:
    shape = [1, heads, seq, 64]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, shape) for n in "qkv"]
    g = helper.make_graph([helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)], "a", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])


def test_timing_does_not_depend_on_the_hash_seed() -> None:
    # The same model gives the same report in every process (a set of tuples holding strings
    # once ordered a matmul epilogue's loads by PYTHONHASHSEED).
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    model = Path(__file__).parents[3] / "examples" / "models" / "bert_dynamo.onnx"
    code = ("import graphopt, json, sys; t = graphopt.compile(sys.argv[1], 'ascend-sim').report['timing']; "
            "print(json.dumps([(k['name'], k['cycles']) for k in t['kernels']]))")
    runs = [subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert json.loads(runs[0]) == json.loads(runs[1])
