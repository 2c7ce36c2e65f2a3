"""recognize-attention: scaled dot-product attention becomes one graph.attention.

1. The core (all 4-D, [batch, heads, seq, dim]):
       s = MatMul(q, kT) [* c | / c] [+ mask]     p = Softmax(s, axis=-1)     y = MatMul(p, v)
   p may pass through Where(IsNaN(p), 0, p) first (fully masked rows give zeros, as in
   ONNX's Attention).
   becomes  y = Attention(q, Transpose(kT), v, mask) {scale = c or 1/c}
   A scalar multiplier on q or on kT (exporters split sqrt(scale) over both) joins the scale.
2. The multi-head plumbing around it: when q, k and v are each
   Transpose(Reshape(x, [B, S, H, D]), [0, 2, 1, 3]) and y goes through
   Transpose([0, 2, 1, 3]) and Reshape([B, S, H*D]), the whole becomes the 3-D form
       Attention(xq, xk, xv, mask) {q_num_heads = H, kv_num_heads = Hkv}
   whose input and output are [B, S, H*D].

The mask is kept as the additive (or boolean) attn_mask input; its shape broadcasts as
ONNX's Attention requires.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)

from graphopt.dialects.graph import GraphOp
from graphopt.passes.simplify_transpose_reshape import MovementChainToTranspose, TransposeOfTranspose
from graphopt.rewrite import (
    build,
    discard,
    other_operand,
    producer,
    scalar_value,
    sole_user,
    src_of,
    weights_of,
    with_scalar,
)
from graphopt.weights import WeightStore

_HEADS_PERM = [0, 2, 1, 3]


def _rank(v: SSAValue) -> int:
    return len(v.type.get_shape()) if isinstance(v.type, TensorType) else -1


def _peel_scale(v: SSAValue, weights: WeightStore | None) -> tuple[SSAValue, float, list[GraphOp]]:
    """v = x * c (c a scalar constant) -> (x, c, [mul]); else (v, 1, [])."""
    op = producer(v, "Mul")
    m = with_scalar(op, "Mul", weights)
    if op is not None and m and op.results[0].has_one_use():
        return m[0], m[1], [op]
    return v, 1.0, []


@dataclass
class AttentionCore(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Softmax" or _rank(op.operands[0]) != 4:
            return
        if op.onnx_attrs().get("axis", -1) not in (-1, 3):
            return
        probs, guard = _nan_guarded(op.results[0], self.weights)
        out = sole_user(probs, "MatMul")
        if out is None or out.operands[0] != probs:
            return
        scores, mask, ops = op.operands[0], None, [op, out, *guard]
        add = producer(scores, "Add")
        if add is not None:
            for cand in add.operands:
                if _scaled_qk(cand, self.weights) is not None:
                    scores, mask = cand, other_operand(add, cand)
                    ops.append(add)
                    break
        found = _scaled_qk(scores, self.weights)
        if found is None:
            return
        qk, scale, scale_ops = found
        if mask is not None and not _mask_fits(mask, qk.results[0]):
            return
        q, cq, q_ops = _peel_scale(qk.operands[0], self.weights)
        kt, ck, k_ops = _peel_scale(qk.operands[1], self.weights)
        if any(_rank(v) != 4 for v in (q, kt, out.operands[1])):
            return  # a MatMul broadcasting a lower-rank operand (V of rank 2): not Attention's [B, H, S, D]
        ops += [qk, *scale_ops, *q_ops, *k_ops]
        k = build("Transpose", [kt], {"perm": [0, 1, 3, 2]}, src_of(qk))
        operands = [q, k.results[0], out.operands[1]] + ([mask] if mask is not None else [])
        attn = build("Attention", operands, {"scale": scale * cq * ck}, src_of(*ops))
        if attn.results[0].type != out.results[0].type:
            discard(attn, k)
            return
        rewriter.replace(out, [k, attn], [attn.results[0]])


def _mask_fits(mask: SSAValue, scores: SSAValue) -> bool:
    """Attention's attn_mask must end in [q_seq or 1, kv_seq]: a shorter last axis would
    be padded (as masked), not broadcast."""
    if not isinstance(mask.type, TensorType) or not isinstance(scores.type, TensorType):
        return False
    m, s = mask.type.get_shape(), scores.type.get_shape()
    return 2 <= len(m) <= len(s) and m[-1] == s[-1] and m[-2] in (1, s[-2])


def _nan_guarded(p: SSAValue, weights: WeightStore | None) -> tuple[SSAValue, list[GraphOp]]:
    """Follow Where(IsNaN(p), 0, p), which exporters add so that a fully masked row gives
    zeros instead of NaN (as ONNX's Attention specifies); returns (value, ops)."""
    isnan = next((u.operation for u in p.uses if isinstance(u.operation, GraphOp) and u.operation.ONNX_TYPE == "IsNaN"), None)
    if isnan is None:
        return p, []
    where = sole_user(isnan.results[0], "Where")
    if where is None or where.operands[2] != p or scalar_value(where.operands[1], weights) != 0.0:
        return p, []
    if {u.operation for u in p.uses} != {isnan, where}:
        return p, []
    return where.results[0], [isnan, where]


def _scaled_qk(v: SSAValue, weights: WeightStore | None) -> tuple[GraphOp, float, list[GraphOp]] | None:
    """v = MatMul(q, kT) [* c | / c] -> (matmul, scale, [scale op])."""
    op = producer(v)
    mul, div = with_scalar(op, "Mul", weights), with_scalar(op, "Div", weights)
    scale, inner, ops = 1.0, v, []
    if op is not None and (mul or div):
        inner, c = mul or div  # type: ignore[misc]
        scale, ops = (c if mul else 1.0 / c), [op]
    qk = producer(inner, "MatMul")
    if qk is None or _rank(qk.operands[0]) != 4 or _rank(qk.operands[1]) != 4:
        return None
    return qk, scale, ops


def _split_heads(v: SSAValue) -> tuple[SSAValue, int] | None:
    """v = Transpose(Reshape(x [B,S,H*D] -> [B,S,H,D]), [0,2,1,3]) -> (x, H)."""
    t = producer(v, "Transpose")
    if t is None or t.onnx_attrs().get("perm") != _HEADS_PERM:
        return None
    r = producer(t.operands[0], "Reshape")
    if r is None or _rank(r.operands[0]) != 3:
        return None
    heads = r.results[0].type.get_shape()[2]  # type: ignore[union-attr]
    return r.operands[0], heads


@dataclass
class AttentionHeads(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Attention" or _rank(op.operands[0]) != 4:
            return
        if len(op.results) != 1 or len(op.operands) > 4:
            return
        split = [_split_heads(v) for v in op.operands[:3]]
        t = sole_user(op.results[0], "Transpose")
        r = sole_user(t.results[0], "Reshape") if t is not None and t.onnx_attrs().get("perm") == _HEADS_PERM else None
        if any(s is None for s in split) or r is None or _rank(r.results[0]) != 3:
            return
        (xq, hq), (xk, hk), (xv, _) = split  # type: ignore[misc]
        attrs = {**op.onnx_attrs(), "q_num_heads": hq, "kv_num_heads": hk}
        operands = [xq, xk, xv, *op.operands[3:]]
        attn = build("Attention", operands, attrs, src_of(op, t, r))  # type: ignore[arg-type]
        if attn.results[0].type != r.results[0].type:
            discard(attn)
            return
        rewriter.replace(r, attn)


@dataclass(frozen=True)
class RecognizeAttention(ModulePass):
    """Rewrite MatMul-scale-mask-Softmax-MatMul (and its multi-head plumbing) into graph.attention."""

    name = "recognize-attention"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        core = GreedyRewritePatternApplier(
            [AttentionCore(weights_of(ctx)), TransposeOfTranspose(), MovementChainToTranspose()]
        )
        PatternRewriteWalker(core).rewrite_module(op)
        PatternRewriteWalker(AttentionHeads()).rewrite_module(op)
