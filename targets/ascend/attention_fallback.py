"""ascend-attention-fallback: an Attention the flash-attention kernel cannot hold, run as
the ops it stands for.

The flash kernel (``lower_attention.py``) keeps whole rows of Q, K and V (the head
dimension D) in L0 and L1. DaViT's channel attention attends over channels, so its "head
dimension" is the token count (3136 at 224 x 224): recognize-attention finds the pattern,
and no blocking of the kernel fits L1. CANN's fused attention kernels limit the head
dimension too, and such a graph runs as batched matmuls and a softmax. So does this one:

    y = Attention(q, k, v, mask) {scale, is_causal}
  becomes
    s = MatMul(q, Transpose(k)) * scale  [+ mask | Where(mask, s, -inf)]  [+ causal -inf]
    p = Softmax(s); p = Where(IsNaN(p), 0, p)      (a row with every key masked gives zeros)
    y = MatMul(p, v)

with the 3-D form's heads split and merged by Reshape and Transpose, and grouped-query
K and V expanded to the query heads. Only Attentions ``attention_spec`` accepts (the forms
the flash kernel runs) and whose smallest blocking does not fit; a remark names each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NoneType
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from graphopt.dialects.graph import GraphOp, provenance
from graphopt.rewrite import NewOps, remarks_of, weights_of
from graphopt.targets.ascend.chip import Chip, pass_target
from graphopt.targets.ascend.group import np_dtype, shape
from graphopt.targets.ascend.lower import attention_spec
from graphopt.targets.ascend.lower_attention import attention_fits
from graphopt.targets.ascend.vector import Numerics
from graphopt.weights import WeightStore


@dataclass
class _Unfuse(RewritePattern):
    chip: Chip
    num: Numerics
    weights: WeightStore | None
    remarks: list[dict[str, Any]]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: GraphOp, rewriter: PatternRewriter) -> None:
        if op.ONNX_TYPE != "Attention" or op.ONNX_DOMAIN:
            return
        spec, _ = attention_spec(op)
        if spec is None or attention_fits(self.chip, self.num, spec):
            return
        new = NewOps(provenance(op), self.weights)
        y = _unfused(new, op, spec.scale, spec.causal)
        self.remarks.append({"pass": "ascend-attention-fallback", "ops": provenance(op),
                             "reason": f"head dimension {spec.d}: the flash-attention kernel's smallest block does not"
                                       " fit L1, so it runs as matmuls and a softmax"})
        rewriter.insert_op(new.ops, InsertPoint.before(op))
        op.results[0].replace_all_uses_with(y)  # attention_spec: the other results are unused
        rewriter.erase_op(op, safe_erase=False)


def _unfused(new: NewOps, op: GraphOp, scale: float, causal: bool) -> SSAValue:
    q, k, v = op.operands[:3]
    mask = op.operands[3] if len(op.operands) > 3 and not isinstance(op.operands[3].type, NoneType) else None
    a = op.onnx_attrs()
    dt = np_dtype(q)
    three_d = len(shape(q)) == 3
    if three_d:
        b, sq, _ = shape(q)
        hq, hkv = int(a["q_num_heads"]), int(a["kv_num_heads"])
        q, k, v = (_split_heads(new, x, h) for x, h in ((q, hq), (k, hkv), (v, hkv)))
    b, hq, sq, _ = shape(q)
    hkv, skv = shape(k)[1], shape(k)[2]
    if hq != hkv:  # grouped-query: each K and V head serves hq / hkv query heads
        k, v = (_expand_heads(new, x, hq // hkv) for x in (k, v))
    s = new.op("MatMul", [q, new.op("Transpose", [k], {"perm": [0, 1, 3, 2]})])
    s = new.op("Mul", [s, new.const(np.array(scale, dt), "attention.scale")])
    if mask is not None and np_dtype(mask) == np.bool_:
        s = new.op("Where", [mask, s, new.const(np.array(-np.inf, dt), "attention.masked")])
    elif mask is not None:
        s = new.op("Add", [s, mask])
    if causal:  # ONNX: query i sees keys 0..i (no past keys here)
        blocked = np.triu(np.ones((sq, skv), bool), 1)
        s = new.op("Add", [s, new.const(np.where(blocked, -np.inf, 0).astype(dt), "attention.causal")])
    p = new.op("Softmax", [s], {"axis": -1})
    p = new.op("Where", [new.op("IsNaN", [p]), new.const(np.array(0, dt), "attention.zero"), p])
    y = new.op("MatMul", [p, v])
    if three_d:
        y = new.op("Transpose", [y], {"perm": [0, 2, 1, 3]})
        y = new.op("Reshape", [y, new.ints([b, sq, -1], "attention.merge")])
    return y


def _split_heads(new: NewOps, x: SSAValue, heads: int) -> SSAValue:
    """[B, S, H * D] -> [B, H, S, D]."""
    b, s, hd = shape(x)
    split = new.op("Reshape", [x, new.ints([b, s, heads, hd // heads], "attention.heads")])
    return new.op("Transpose", [split], {"perm": [0, 2, 1, 3]})


def _expand_heads(new: NewOps, x: SSAValue, group: int) -> SSAValue:
    """[B, Hkv, S, D] -> [B, Hkv * group, S, D], each head repeated ``group`` times in place."""
    b, h, s, d = shape(x)
    one = new.op("Reshape", [x, new.ints([b, h, 1, s, d], "attention.kv")])
    wide = new.op("Expand", [one, new.ints([b, h, group, s, d], "attention.group")])
    return new.op("Reshape", [wide, new.ints([b, h * group, s, d], "attention.query_heads")])


@dataclass(frozen=True)
class AttentionFallbackPass(ModulePass):
    """Attention the flash kernel cannot hold, as matmuls and a softmax (see the module doc)."""

    name = "ascend-attention-fallback"
    chip: str = ""
    precision: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, precision = pass_target(ctx, self.chip, self.precision)
        walker = PatternRewriteWalker(_Unfuse(chip, Numerics.of(precision), weights_of(ctx), remarks_of(ctx)))
        walker.rewrite_module(op)

