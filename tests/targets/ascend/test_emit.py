"""The AscendC-style emitter: each kernel's source has the TPipe/TQue structure a reader of
AscendC expects, matching the kernel's ops, and tiling.json has its numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.emit import emit_kernel, emit_kernels, kernels_of
from tests.targets.ascend.kernels_for_emit import cube_module, vector_module


def _body(src: str, method: str) -> str:
    match = re.search(rf"void {method}\([^)]*\)\n    {{\n(.*?)\n    }}", src, re.S)
    assert match, f"no method {method}"
    return match.group(1)


def test_vector_kernel_has_the_tque_paradigm() -> None:
    module = vector_module()
    module.verify()
    src = emit_kernel(kernels_of(module)[0], load_chip("ascend910b"))
    assert "constexpr int32_t BUFFER_NUM = 2;" in src and "constexpr int32_t TILE_ROWS = 1024;" in src
    assert "pipe.InitBuffer(inQueueX0, BUFFER_NUM, X0_TILE * sizeof(half));" in src
    assert "TQue<TPosition::VECIN, BUFFER_NUM> inQueueX0;" in src and "TQue<TPosition::VECOUT, BUFFER_NUM> outQueueY0;" in src
    copy_in, compute, copy_out = (_body(src, m) for m in ("CopyIn", "Compute", "CopyOut"))
    assert copy_in.split("\n")[0].strip().startswith("LocalTensor<half> x0Local = inQueueX0.AllocTensor<half>();")
    assert "DataCopy(x0Local, x0Gm[i0 * 1024], X0_TILE);" in copy_in and "inQueueX0.EnQue(x0Local);" in copy_in
    assert "inQueueX0.DeQue<half>()" in compute and "Exp(y0Local, x0Local, Y0_TILE);" in compute
    assert "Relu(y0Local, y0Local, Y0_TILE);" in compute and "outQueueY0.EnQue(y0Local);" in compute
    assert "inQueueX0.FreeTensor(x0Local);" in compute
    assert "outQueueY0.DeQue<half>()" in copy_out and "DataCopy(y0Gm[i0 * 1024], y0Local, Y0_TILE);" in copy_out
    # The tile loop is spread over the launched cores.
    assert "for (int32_t i0 = GetBlockIdx(); i0 < TRIP0; i0 += GetBlockNum())" in src
    assert 'extern "C" __global__ __aicore__ void k0_exp_relu(GM_ADDR x0, GM_ADDR y0, GM_ADDR workspace, GM_ADDR tiling)' in src
    assert "KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);" in src
    assert src.count("{") == src.count("}")


@pytest.mark.parametrize("chip", ["ascend910b", "ascend310p"])
def test_cube_kernel_uses_loaddata_and_mmad(chip: str) -> None:
    src = emit_kernel(kernels_of(cube_module())[0], load_chip(chip))
    for const in ("BASE_M = 128", "BASE_N = 128", "BASE_K = 64"):
        assert f"constexpr int32_t {const};" in src
    # A is ND in GM: MTE2 converts it to NZ on the way into L1; the NZ weight is copied as is.
    assert "DataCopy(a1Local, x0Gm[i1 * 64], nd2nzParams);" in src
    assert "DataCopy(b1Local, x1Gm[i1 * 16384], B1_TILE);  // MTE2: FRACTAL_NZ tile" in src
    compute = _body(src, "Compute")
    assert "LoadData(a2Local, a1Local, loadData2DParams);" in compute and "LoadData(b2Local, b1Local" in compute
    assert "Mmad(co1Local, a2Local, b2Local, mmadParams);" in compute
    assert "co1Local = outQueueCO1.AllocTensor<float>();" in compute and "outQueueCO1.EnQue(co1Local);" in compute
    assert "Fixpipe(y0Gm[i0 * 32768], co1Local, fixpipeParams);" in _body(src, "CopyOut")
    assert ("KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);" in src) is load_chip(chip).split
    assert src.count("{") == src.count("}")


def test_emit_kernels_writes_sources_and_tiling(tmp_path: Path) -> None:
    chip = load_chip("ascend910b")
    written = emit_kernels(cube_module(), chip, tmp_path)
    assert [p.name for p in written] == ["k1_matmul.cpp"] and (tmp_path / "kernels" / "k1_matmul.cpp").is_file()
    tiling = json.loads((tmp_path / "tiling.json").read_text())
    info = tiling["kernels"]["k1_matmul"]
    assert info["kind"] == "cube" and info["block_dim"] == 4
    assert info["tiling"] == {"base_m": 128, "base_n": 128, "base_k": 64, "step_k": 1}
    # Double-buffered fp16 L0A/L0B tiles, one fp32 accumulator, two double-buffered L1 panels.
    assert info["buffers"] == {"L0A": 2 * 128 * 64 * 2, "L0B": 2 * 64 * 128 * 2, "L0C": 128 * 128 * 4, "L1": 2 * 2 * 128 * 64 * 2}
    for space, used in info["buffers"].items():
        assert used <= chip.buffers[space.lower()]


def test_attention_kernel_emits_shifted_block_indices() -> None:
    # The two-block lead names blocks j + 2 and 2p + e (ascend.index_add); the emitted source
    # must compute them, and the S chunks must land in their block of the workspace (`into`).
    import graphopt
    from tests.targets.ascend.test_attention_pipeline import _model

    c = graphopt.compile(_model(4096, 2, 128, False), "ascend-sim")
    src = emit_kernel(kernels_of(c.executable.module)[0], c.executable.chip)
    assert re.search(r"int32_t (j\d+_\d+) = i\d+ \* 2 \+ \d+;", src)
    assert re.search(r"int32_t j\d+_\d+ = j\d+_\d+ \+ 2;", src)
    assert re.search(r"Fixpipe\(\w+Local\[i\d+ \* 128\], co1Local, fixpipeParams\);", src)
    # Offsets name the stage method's own index variables (no placeholder `i`), and the
    # softmax fetches its row chunk of the S workspace.
    assert not re.search(r"\[i \* ", src)
    assert re.search(r"DataCopy\(\w+Local, wsLocal\[j\d+_\d+ \* \d+\], \w+\);  // MTE2: a block of GM -> UB", src)


def test_several_parallel_loops_split_the_block_index() -> None:
    """A batched matmul spreads the batch, M tiles and N tiles over the cores: each parallel
    loop starts at its own coordinate of GetBlockIdx() (the first loop varying fastest, as
    the timing model and the simulator count cores), not at GetBlockIdx() itself."""
    from onnx import TensorProto, helper

    import graphopt

    vi = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT16, [32, 128, 128]) for n in "aby"}
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g", [vi["a"], vi["b"]], [vi["y"]])
    c = graphopt.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "ascend-sim", validate=False)
    (kernel,) = kernels_of(c.module)
    t = c.report["kernels"][0]["tiling"]
    cores = [n for n in (t["grid_b"], t["grid_m"], t["grid_n"]) if n > 1]
    assert len(cores) >= 2
    src = emit_kernel(kernel, load_chip("ascend910b"))
    assert f"= GetBlockIdx() % {cores[0]};" in src and f"= GetBlockIdx() / {cores[0]} % {cores[1]};" in src
    assert "GetBlockNum()" not in src
