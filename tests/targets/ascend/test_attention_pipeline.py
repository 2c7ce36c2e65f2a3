"""The software-pipelined flash-attention kernel (lower_attention.build_attention): it computes
what the cpu target computes, tile by tile and op by op, causal or not, on shapes with
partial edge tiles; its steady state overlaps the cube with the vector units."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphopt
from graphopt.targets.ascend.dialect import IndexAddOp, KernelOp


def _model(seq: int, heads: int, d: int, causal: bool) -> onnx.ModelProto:
    shape = [1, heads, seq, d]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, shape) for n in "qkv"]
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=int(causal))
    g = helper.make_graph([node], "attention", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT16, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])


@pytest.mark.parametrize("chip", ["ascend910b", "ascend310p"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("seq", "d"), [(100, 64), (300, 64), (640, 128)])
def test_pipelined_attention_matches_cpu(seq: int, d: int, causal: bool, chip: str) -> None:
    m = _model(seq, 2, d, causal)
    c = graphopt.compile(m, f"ascend-sim:{chip}")
    kernel = next(op for op in c.module.walk() if isinstance(op, KernelOp))
    tk = -(-seq // int(c.report["kernels"][0]["tiling"]["kv_tile"]))
    # Skewed steady state: index_adds of the kv loops (those of the parallel loop's flat work
    # index give the item's (head, q tile) and the next item).
    skew = [op for op in kernel.walk() if isinstance(op, IndexAddOp) and op.index.owner.parent_op().cores.value.data == 1
            and (op.by.value.data, op.factor) != (0, 1)]
    assert bool(skew) == (tk > 1)
    rng = np.random.default_rng(seq + d)
    feeds = {n: rng.standard_normal((1, 2, seq, d)).astype(np.float16) for n in "qkv"}
    ref = graphopt.compile(m, "cpu").run(feeds)["y"].astype(np.float32)
    for mode in ("tile", "whole"):
        c.executable.mode = mode  # type: ignore[attr-defined]
        y = c.run(feeds)["y"].astype(np.float32)
        np.testing.assert_allclose(y, ref, rtol=4e-3, atol=4e-3, err_msg=f"{mode} mode")


def test_pipelined_attention_keeps_the_cube_busy() -> None:
    # The unpipelined kernel (128 x 32 blocks, one dependent chain per block) kept the cube
    # ~4 % busy at long sequences; the pipelined one keeps it several times busier.
    kern = graphopt.compile(_model(4096, 2, 128, False), "ascend-sim").report["timing"]["kernels"][0]
    assert kern["busy_pct"]["M"] > 20.0


def test_two_block_lead_structure() -> None:
    # Steady state unrolled by two (blocks 2p and 2p + 1, each starting block j + 2), with
    # even/odd P workspaces and alpha buffers as the history the lead needs.
    c = graphopt.compile(_model(2048, 1, 128, False), "ascend-sim")
    kernel = next(op for op in c.module.walk() if isinstance(op, KernelOp))
    adds = [op for op in kernel.walk() if isinstance(op, IndexAddOp)]
    assert {(op.factor, op.by.value.data) for op in adds} >= {(2, 0), (2, 1), (1, 2)}
    softmaxes = [op for op in kernel.walk() if getattr(op, "op", None) is not None and getattr(op.op, "data", "") == "attn.online_softmax"]
    assert len({op.outs[1] for op in softmaxes}) == 2  # alpha_j in buffer j mod 2
    scales = [op for op in kernel.walk() if getattr(op, "op", None) is not None and getattr(op.op, "data", "") == "attn.scale_q"]
    # The softmax scale is folded into Q once per q tile: for a core's first work item on
    # entry, for each next item ahead of it (both guarded, so each item is scaled once).
    assert len(scales) == 2 and all(op.parent_op().below is not None for op in scales)


def test_double_buffered_copies_are_charged_a_whole_tile() -> None:
    # A buffer's memref type is one copy; the timing model must charge each transfer of a
    # ping-pong (2-copy) buffer its whole tile, not the tile over the number of copies.
    from graphopt.targets.ascend.chip import load_chip
    from graphopt.targets.ascend.kernel_timing import kernel_program

    c = graphopt.compile(_model(512, 1, 128, False), "ascend-sim")
    kernel = next(op for op in c.module.walk() if isinstance(op, KernelOp))
    t = c.report["kernels"][0]["tiling"]
    bm, ck = int(t["q_tile"]), int(t["kv_chunk"])
    prog = kernel_program(load_chip("ascend910b"), kernel)
    fix = [i for i in prog.instrs if i.pipe == "FIX" and i.src == "L0C"]
    assert fix and all(i.nbytes == bm * ck * 4 for i in fix)  # an fp32 L0C chunk, 2 copies


def test_flat_work_items_and_guards() -> None:
    # One flat parallel loop over (head, q tile) work items: index_add div/mod give an item's
    # coordinates; the next item's (w + cores) and a core's first item are guarded loops.
    from xdsl.dialects.builtin import IndexType
    from xdsl.ir import Block

    from graphopt.targets.ascend.dialect import ForOp

    w = Block(arg_types=[IndexType()]).args[0]
    assert IndexAddOp(w, 0, div=8).apply(21) == 2 and IndexAddOp(w, 0, mod=8).apply(21) == 5
    assert IndexAddOp(w, 24, div=8, mod=4).apply(21) == 1
    c = graphopt.compile(_model(640, 2, 128, False), "ascend-sim")
    kernel = next(op for op in c.module.walk() if isinstance(op, KernelOp))
    loops = [op for op in kernel.walk() if isinstance(op, ForOp)]
    par = [op for op in loops if op.cores.value.data > 1]
    assert len(par) == 1 and par[0].cores.value.data == kernel.block_dim.value.data
    guarded = [op for op in loops if op.below is not None]
    assert {op.below.value.data for op in guarded} == {par[0].cores.value.data, par[0].trip.value.data}


def test_row_chunked_softmax_matches_whole_rows() -> None:
    # The AIVs take a block's scores rc rows at a time: chunk by chunk, the running max, sum,
    # alpha and P must be what one pass over all the rows gives.
    from graphopt.targets.ascend.vector import attn_online_softmax

    rng = np.random.default_rng(0)
    s0, s1 = (rng.standard_normal((8, 16)).astype(np.float32) * 4 for _ in range(2))
    s1[2] = -np.inf  # a fully masked row keeps its state
    whole = attn_online_softmax(s0, None, None, None, 0, 0)
    whole = attn_online_softmax(s1, whole[0], whole[3], whole[1], 1, 0)
    m, l, alpha = np.zeros((8, 1), np.float32), np.zeros((8, 1), np.float32), np.zeros((8, 1), np.float32)
    for kv, s in enumerate((s0, s1)):
        ps = []
        for r in range(4):
            m, alpha, p, l = attn_online_softmax(s[2 * r:2 * r + 2], m, l, alpha, kv, r)
            ps.append(p)
    for got, want in zip((m, alpha, np.concatenate(ps), l), whole):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_chunked_writes_fill_one_buffer_slot() -> None:
    # Chunks written `into` one tile of a 2-copy buffer share its slot: the next tile goes to
    # the other copy, so it need not wait for the reader of this one (double buffering).
    from xdsl.dialects.builtin import TensorType, f32
    from xdsl.ir import Block

    from graphopt.targets.ascend.builder import KernelBuilder
    from graphopt.targets.ascend.chip import load_chip
    from graphopt.targets.ascend.dialect import CopyOp
    from graphopt.targets.ascend.kernel_timing import kernel_program

    arg = Block(arg_types=[TensorType(f32, [128, 64])]).args[0]
    kb = KernelBuilder("k0_chunks", "vector", [arg], [TensorType(f32, [128, 64])])
    part, tile = kb.buffer("UB", [32, 64], np.float32, 1), kb.buffer("UB", [64, 64], np.float32, 2)
    with kb.loop(2) as t:
        with kb.loop(2) as c:
            kb.add(CopyOp(part, tile, "V", [c], [0], [32], into=True))
        kb.copy(tile, kb.out(0), "MTE3", [t], [0], [64])
    prog = kernel_program(load_chip("ascend910b"), kb.finish(1, {}))
    reads = {i for i, ins in enumerate(prog.instrs) if ins.pipe == "MTE3"}
    writes = [ins for ins in prog.instrs if ins.pipe == "V"]
    assert len(writes) == 4 and not any(set(w.deps) & reads for w in writes)


def test_long_sequence_attention_keeps_fixpipe_busy() -> None:
    # Attention alone, S = 8192, 32 heads of 128, non-causal. The kernel is FixPipe-bound
    # (five 64 KB stores per kv block at L0C->GM's measured 1180-cycle fixed cost), at 45.7 %
    # of the 910B's fp16 peak; pto-isa's measured kernel reaches 33 % at S = 8K and 47.6 % at
    # 32K on one head. Before the measured per-path DMA costs the model said 55.7 % (the
    # figure an earlier issue asked for, >= 50 %); a kernel change that loses its pipelining
    # drops well below 45 %.
    c = graphopt.compile(_model(8192, 32, 128, False), "ascend-sim")
    t = c.report["kernels"][0]["tiling"]
    assert (t["q_tile"], t["kv_tile"]) == (128, 512)
    assert c.report["timing"]["mfu"] >= 0.45
    assert c.report["timing"]["kernels"][0]["busy_pct"]["FIX"] >= 90


@pytest.mark.parametrize("chip", ["ascend910b", "ascend310p"])
@pytest.mark.parametrize(("seq", "d"), [(300, 64), (1100, 128)])
def test_masked_attention_matches_cpu(seq: int, d: int, chip: str) -> None:
    # An additive mask tile per row chunk; 300 x 64 on the 310P has three kv blocks, where the
    # merged drain/fill must not start the next item's QK(1) before its softmax has read S(0).
    # More work items (head, q tile) than cores, so cores run a next item.
    shape = [1, 9 if seq == 300 else 3, seq, d]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, shape) for n in "qkv"]
    ins.append(helper.make_tensor_value_info("m", TensorProto.FLOAT16, [1, 1, seq, seq]))
    node = helper.make_node("Attention", ["q", "k", "v", "m"], ["y"])
    g = helper.make_graph([node], "a", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT16, shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])
    rng = np.random.default_rng(seq)
    feeds = {n: rng.standard_normal(shape).astype(np.float16) for n in "qkv"}
    feeds["m"] = np.where(rng.random((1, 1, seq, seq)) < 0.3, -10000, rng.standard_normal((1, 1, seq, seq))).astype(np.float16)
    ref = graphopt.compile(m, "cpu").run(feeds)["y"].astype(np.float32)
    c = graphopt.compile(m, f"ascend-sim:{chip}")
    c.executable.mode = "tile"  # type: ignore[attr-defined]
    np.testing.assert_allclose(c.run(feeds)["y"].astype(np.float32), ref, rtol=4e-3, atol=4e-3)
