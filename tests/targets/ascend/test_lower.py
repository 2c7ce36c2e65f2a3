"""ascend-lower: what each op becomes, the R9 verifier, and the lowered IR's text form."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import f16

import graphopt
from graphopt.errors import GraphoptError
from graphopt.ir import make_context, parse_module, print_module
from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.dialect import BufferOp, CopyOp, ForOp, KernelOp, MmadOp, VecOp, ViewOp
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


def test_aicpu_keeps_topk_and_says_why() -> None:
    c = graphopt.compile("examples/models/moe.onnx", target="ascend-sim")
    assert any("graph.top_k" in a["ops"] for a in c.report["aicpu"])
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


def test_verifier_rejects_unaligned_tiles() -> None:
    module = vector_module()
    loop = next(op for op in module.walk() if isinstance(op, ForOp))
    copy = next(op for op in loop.walk() if isinstance(op, CopyOp))
    buf = BufferOp("UB", [21], f16, 2)  # 42 bytes: more than a block, not a multiple of it
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    kernel.body.block.insert_op_before(buf, kernel.body.block.first_op)  # type: ignore[arg-type]
    copy.operands[1] = buf.result
    with pytest.raises(GraphoptError, match="not 32-byte aligned"):
        check_lowered(module, load_chip("ascend910b"))
    small = BufferOp("UB", [5], f16, 2)  # under one block: a padded copy (DataCopyPad), allowed
    kernel.body.block.insert_op_before(small, kernel.body.block.first_op)  # type: ignore[arg-type]
    copy.operands[1] = small.result
    kernel.body.block.erase_op(buf)
    check_lowered(module, load_chip("ascend910b"))


def test_lowered_ir_round_trips() -> None:
    c = graphopt.compile("examples/models/resnet.onnx", target="ascend-sim")
    text = print_module(c.module)
    again = parse_module(make_context(), text)
    assert print_module(again) == text
