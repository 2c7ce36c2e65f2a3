"""recognize-rotary: the rotate-half rotary embedding becomes one graph.rotary_embedding.

    x1 = Slice(x, [0:D/2] on the last axis)     x2 = Slice(x, [D/2:D] on the last axis)
    y  = x * cos + Concat(Neg(x2), x1, axis=-1) * sin      (Mul/Add operands either way)

becomes RotaryEmbedding(x, cos_cache, sin_cache) when it computes exactly that op: cos and
sin are constants that vary only along the sequence axis and the last axis (they broadcast
over the batch's heads), and their two halves along the last axis are equal (then the
first halves are the op's caches, [B, S, D/2]). The layouts of x:

    [B, H, S, D]  the op's 4-D form, directly;
    [B, S, H, D]  Reshape to [B, S, H*D], the 3-D form {num_heads = H}, and back;
    [B, S, D]     the 3-D form {num_heads = 1}.

An interpretation is taken only if the tables fit it, so each one computes the same values.

Anything else is declined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import ConstantOp, GraphOp
from graphopt.rewrite import build, constant_value, discard, make_constant, other_operand, producer, src_of, weights_of
from graphopt.weights import WeightStore


def _shape(v: SSAValue) -> list[int] | None:
    if not isinstance(v.type, TensorType):
        return None
    shape = list(v.type.get_shape())
    return shape if all(d >= 0 for d in shape) else None


def _half_slice(v: SSAValue, weights: WeightStore | None) -> tuple[SSAValue, range] | None:
    """v = Slice(x, start, end, axes=[last], steps=[1]) -> (x, the indices of x's last axis kept)."""
    op = producer(v, "Slice")
    if op is None or op.ONNX_DOMAIN or not v.has_one_use() or len(op.operands) < 3:
        return None
    x = op.operands[0]
    shape = _shape(x)
    if shape is None:
        return None
    rank = len(shape)
    vals = [constant_value(o, weights) for o in op.operands[1:]]
    if any(c is None or c.size != 1 for c in vals):
        return None
    start, end = int(vals[0].reshape(-1)[0]), int(vals[1].reshape(-1)[0])  # type: ignore[union-attr]
    axis = int(vals[2].reshape(-1)[0]) if len(vals) > 2 else 0  # type: ignore[union-attr]
    step = int(vals[3].reshape(-1)[0]) if len(vals) > 3 else 1  # type: ignore[union-attr]
    if step != 1 or axis % rank != rank - 1 or not -rank <= axis < rank:
        return None
    # ONNX clamps start/end (negative ones counting from the end) as Python slicing does for step 1.
    return x, range(shape[-1])[start:end]


def _rotate_half(v: SSAValue, weights: WeightStore | None) -> tuple[SSAValue, list[GraphOp]] | None:
    """v = Concat(Neg(x[..., D/2:]), x[..., :D/2], axis=-1) -> (x, ops)."""
    cat = producer(v, "Concat")
    if cat is None or cat.ONNX_DOMAIN or len(cat.operands) != 2 or not v.has_one_use():
        return None
    neg = producer(cat.operands[0], "Neg")
    if neg is None or neg.ONNX_DOMAIN or not neg.results[0].has_one_use():
        return None
    second, first = _half_slice(neg.operands[0], weights), _half_slice(cat.operands[1], weights)
    if second is None or first is None or second[0] != first[0]:
        return None
    x = first[0]
    shape = _shape(x)
    assert shape is not None
    d = shape[-1]
    if cat.onnx_attrs().get("axis") % len(shape) != len(shape) - 1 or d % 2:
        return None
    if first[1] != range(0, d // 2) or second[1] != range(d // 2, d):
        return None
    slices = [producer(neg.operands[0]), producer(cat.operands[1])]
    return x, [cat, neg, *(s for s in slices if s is not None)]


def _cache(table: np.ndarray, shape: list[int], seq_axis: int, head_axis: int | None) -> np.ndarray | None:
    """The [B, S, D/2] cache of a cos/sin table broadcasting against x (of ``shape``), if it
    varies along neither the heads axis nor between the two halves of the last axis."""
    rank = len(shape)
    if table.ndim > rank:
        return None
    t = table.reshape((1,) * (rank - table.ndim) + table.shape)
    if any(t.shape[i] not in (1, shape[i]) for i in range(rank)):
        return None
    if head_axis is not None and t.shape[head_axis] != 1:
        return None
    if head_axis is not None:
        t = np.take(t, 0, axis=head_axis)  # [B, S, D]
    b, s, d = shape[0], shape[seq_axis], shape[-1]
    full = np.broadcast_to(t, (b, s, d))
    h = d // 2
    if not np.array_equal(full[..., :h], full[..., h:]):
        return None
    return np.ascontiguousarray(full[..., :h])


@dataclass
class RotateHalf(RewritePattern):
    weights: WeightStore | None
    # (cos, sin, layout, x's shape) -> the cache ops made for them: Q and K share them.
    made: dict[tuple[SSAValue, SSAValue, str, tuple[int, ...]], tuple[Operation, Operation]] = field(
        default_factory=dict
    )

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Add" or op.ONNX_DOMAIN or len(op.operands) != 2:
            return
        for rot_term in op.operands:
            found = self._match(op, rot_term)
            if found is not None:
                self._rewrite(op, rewriter, *found)
                return

    def _match(self, add: GraphOp, rot_term: SSAValue):
        x_term = other_operand(add, rot_term)
        mul_r, mul_x = producer(rot_term, "Mul"), producer(x_term, "Mul")
        if mul_r is None or mul_x is None or mul_r is mul_x or mul_r.ONNX_DOMAIN or mul_x.ONNX_DOMAIN:
            return None
        if not rot_term.has_one_use() or not x_term.has_one_use():
            return None
        for rot in mul_r.operands:
            found = _rotate_half(rot, self.weights)
            if found is None:
                continue
            x, rot_ops = found
            if x not in mul_x.operands:
                continue
            sin_v, cos_v = other_operand(mul_r, rot), other_operand(mul_x, x)
            if x.type != add.results[0].type or x.type != rot.type:
                return None
            return x, cos_v, sin_v, [mul_x, *rot_ops, mul_r, add]
        return None

    def _rewrite(
        self, add: GraphOp, rewriter: PatternRewriter, x: SSAValue, cos_v: SSAValue, sin_v: SSAValue, ops: list[GraphOp]
    ) -> None:
        shape = _shape(x)
        cos, sin = constant_value(cos_v, self.weights), constant_value(sin_v, self.weights)
        if shape is None or cos is None or sin is None or len(shape) not in (3, 4) or shape[-1] % 2:
            return
        src = src_of(*ops)
        attempts: list[tuple[int, int | None, str]] = (
            [(2, 1, "bhsd"), (1, 2, "bshd")] if len(shape) == 4 else [(1, None, "bsd")]
        )
        for seq_axis, head_axis, layout in attempts:
            cos_c, sin_c = _cache(cos, shape, seq_axis, head_axis), _cache(sin, shape, seq_axis, head_axis)
            if cos_c is None or sin_c is None:
                continue
            key = (cos_v, sin_v, layout, tuple(shape))
            prev = self.made.get(key)
            if prev is not None and prev[1].parent_block() is add.parent_block() and prev[1].is_before_in_block(add):
                cache_ops: list[Operation] = []
                c_op, s_op = prev
            else:
                c_op = make_constant(cos_c, src, self.weights, "rotary.cos")
                s_op = make_constant(sin_c, src, self.weights, "rotary.sin")
                cache_ops = [c_op, s_op]
                self.made[key] = (c_op, s_op)
            caches = [c_op.results[0], s_op.results[0]]
            new: list[Operation]
            if layout != "bshd":
                attrs = {"num_heads": 1} if layout == "bsd" else {}
                new = [*cache_ops, build("RotaryEmbedding", [x, *caches], attrs, src)]
            else:
                b, s, heads = shape[0], shape[1], shape[2]
                flat_shape = ConstantOp(np.asarray([b, s, heads * shape[3]], np.int64), src)
                flat = build("Reshape", [x, flat_shape.results[0]], {}, src)
                rope = build("RotaryEmbedding", [flat.results[0], *caches], {"num_heads": heads}, src)
                back_shape = ConstantOp(np.asarray(shape, np.int64), src)
                back = build("Reshape", [rope.results[0], back_shape.results[0]], {}, src)
                new = [*cache_ops, flat_shape, flat, rope, back_shape, back]
            if new[-1].results[0].type != add.results[0].type:
                discard(*reversed(new))  # users first
                return
            rewriter.replace(add, new, [new[-1].results[0]])
            return


@dataclass(frozen=True)
class RecognizeRotary(ModulePass):
    """Rewrite the rotate-half rotary embedding into graph.rotary_embedding."""

    name = "recognize-rotary"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(RotateHalf(weights_of(ctx))).rewrite_module(op)
