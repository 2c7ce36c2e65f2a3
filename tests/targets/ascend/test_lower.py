"""ascend-lower: what each op becomes, the R9 verifier, and the lowered IR's text form."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import f16

import graphopt
from graphopt.errors import GraphoptError
from graphopt.ir import make_context, parse_module, print_module
from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.dialect import BufferOp, CopyOp, ForOp, KernelOp, MmadOp, VecOp, ViewOp, space_of
from graphopt.targets.ascend.lower import check_lowered
from tests.targets.ascend.kernels_for_emit import vector_module


def _kernels(model: str, chip: str = "ascend910b") -> list[KernelOp]:
    c = graphopt.compile(f"examples/models/{model}.onnx", target=f"ascend-sim:{chip}")
    return [op for op in c.module.walk() if isinstance(op, KernelOp)]


def test_mlp_is_cube_kernels_with_epilogues() -> None:
    ks = _kernels("mlp")
    assert [k.kind.data for k in ks] == ["cube"] * 3
    body = list(ks[0].walk())
    assert any(isinstance(o, MmadOp) for o in body)
    assert {o.pipe.data for o in body if isinstance(o, CopyOp)} >= {"MTE2", "MTE1", "FIX", "MTE3"}
    assert [o.op.data for o in body if isinstance(o, VecOp)] == ["Add", "Relu"]


def test_coupled_chip_drains_l0c_through_ub() -> None:
    ks = _kernels("mlp", "ascend310p")
    pipes = {o.pipe.data for k in ks for o in k.walk() if isinstance(o, CopyOp)}
    assert "FIX" not in pipes and "V" in pipes  # 310P has no FixPipe: L0C->UB on the vector pipe


def test_llama_attention_is_flash_and_reshapes_are_views() -> None:
    c = graphopt.compile("examples/models/llama_layer.onnx", target="ascend-sim")
    ks = [op for op in c.module.walk() if isinstance(op, KernelOp)]
    attn = [k for k in ks if "attention" in k.sym_name.data]
    assert attn and any(o.op.data == "attn.online_softmax" for o in attn[0].walk() if isinstance(o, VecOp))
    assert any(isinstance(op, ViewOp) for op in c.module.walk())
    assert not c.report["aicpu"]


def test_moe_router_topk_runs_on_the_vector_unit() -> None:
    c = graphopt.compile("examples/models/moe.onnx", target="ascend-sim")
    assert c.report["aicpu"] == []
    assert [k["kind"] for k in c.report["kernels"] if "top_k" in k["name"]] == ["vector"]


def test_aicpu_keeps_what_the_ai_core_cannot_run_and_says_why() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 4, 4])
    d = helper.make_tensor_value_info("d", TensorProto.FLOAT, [8])
    g = helper.make_graph([helper.make_node("Det", ["x"], ["d"], name="det")], "g", [x], [d])
    c = graphopt.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), target="ascend-sim")
    assert any("graph.det" in a["ops"] for a in c.report["aicpu"])
    assert any("AI CPU" in r["reason"] for r in c.report["remarks"] if r.get("pass") == "ascend-lower")


def test_vector_tiles_fit_ub_and_are_aligned() -> None:
    chip = load_chip("ascend910b")
    for k in _kernels("bert_legacy"):
        if k.kind.data != "vector":
            continue
        ub = sum(o.footprint() for o in k.walk() if isinstance(o, BufferOp))
        assert ub <= chip.buffers["ub"]


def test_verifier_names_the_overflowing_kernel() -> None:
    module = vector_module()
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    first = kernel.body.block.first_op
    assert first is not None
    kernel.body.block.insert_op_before(BufferOp("UB", [200000], f16, 2), first)
    with pytest.raises(GraphoptError, match="k0_exp_relu: its UB buffers need"):
        check_lowered(module, load_chip("ascend910b"))


def test_verifier_takes_unaligned_ub_tiles_and_rejects_unaligned_l1_tiles() -> None:
    """A UB tile of any size is a DataCopyPad into a slot rounded up to a block (a pooled
    plane of 111 x 111 halves); the cube's L1 tiles must be whole blocks."""
    module = vector_module()
    loop = next(op for op in module.walk() if isinstance(op, ForOp))
    copy = next(op for op in loop.walk() if isinstance(op, CopyOp))
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    for space, size, ok in (("UB", 21, True), ("UB", 5, True), ("L1", 21, False)):
        buf = BufferOp(space, [size], f16, 2)  # 42 bytes: more than a block, not a multiple of it
        kernel.body.block.insert_op_before(buf, kernel.body.block.first_op)  # type: ignore[arg-type]
        copy.operands[1] = buf.result
        if ok:
            check_lowered(module, load_chip("ascend910b"))
        else:
            with pytest.raises(GraphoptError, match="not 32-byte aligned"):
                check_lowered(module, load_chip("ascend910b"))


def test_ub_slots_are_counted_rounded_up_to_a_block() -> None:
    module = vector_module()
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    chip = load_chip("ascend910b")
    used = sum(-(-o.footprint() // 32) * 32 for o in kernel.walk() if isinstance(o, BufferOp) and space_of(o.result.type) == "UB")
    first = kernel.body.block.first_op
    assert first is not None
    # 96 bytes left: two slots of 34 bytes fit unrounded (68), not rounded to blocks (128)
    kernel.body.block.insert_op_before(BufferOp("UB", [(chip.buffers["ub"] - used - 96) // 2], f16, 1), first)
    kernel.body.block.insert_op_before(BufferOp("UB", [17], f16, 2), first)
    with pytest.raises(GraphoptError, match="its UB buffers need"):
        check_lowered(module, chip)


def test_lowered_ir_round_trips() -> None:
    c = graphopt.compile("examples/models/resnet.onnx", target="ascend-sim")
    text = print_module(c.module)
    again = parse_module(make_context(), text)
    assert print_module(again) == text
