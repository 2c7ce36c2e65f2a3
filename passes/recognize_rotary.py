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

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from graphopt.dialects.graph import ConstantOp
from graphopt.patterns import Match, Op, Pattern, PatternPass, Tensor, Var
from graphopt.rewrite import build, constant_value, make_constant


def _shape(v: SSAValue) -> list[int] | None:
    if not isinstance(v.type, TensorType):
        return None
    shape = list(v.type.get_shape())
    return shape if all(d >= 0 for d in shape) else None


def _half(name: str) -> Op:
    """Slice(x, start, end, axes=[last], steps=[1]) of x (bound as "x"), read by one op; the
    indices of x's last axis it keeps are checked by ``_halves``."""
    return Op("Slice", Var("x"), Tensor(), Tensor(), name=name, rest=f"{name}_axes_steps", one_use=True)


def _kept(m: Match, name: str) -> range | None:
    """The indices of x's last axis a matched Slice keeps."""
    op, shape = m.op(name), _shape(m["x"])
    vals = [constant_value(o, m.weights) for o in op.operands[1:]]
    if shape is None or any(c is None or c.size != 1 for c in vals):
        return None
    ints = [int(c.reshape(-1)[0]) for c in vals]  # type: ignore[union-attr]
    start, end = ints[0], ints[1]
    axis = ints[2] if len(ints) > 2 else 0
    step = ints[3] if len(ints) > 3 else 1
    rank = len(shape)
    if step != 1 or not -rank <= axis < rank or axis % rank != rank - 1:
        return None
    # ONNX clamps start/end (negative ones counting from the end) as Python slicing does for step 1.
    return range(shape[-1])[start:end]


def _halves(m: Match) -> bool:
    """The Concat joins -x[..., D/2:] and x[..., :D/2] along the last axis."""
    shape, cat = _shape(m["x"]), m.op("cat")
    if shape is None or shape[-1] % 2 or cat.onnx_attrs().get("axis") % len(shape) != len(shape) - 1:
        return False
    d = shape[-1]
    return _kept(m, "second") == range(d // 2, d) and _kept(m, "first") == range(0, d // 2)


# x * cos + Concat(Neg(x[..., D/2:]), x[..., :D/2]) * sin, each product read only by the Add
rotated = Op("Concat", Op("Neg", _half("second"), one_use=True), _half("first"), name="cat", one_use=True, where=_halves)
ROTARY_PATTERN = Op("Add", Op("Mul", Var("x"), Tensor("cos"), one_use=True), Op("Mul", rotated, Tensor("sin"), one_use=True))


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


def _caches(m: Match, cos_c: np.ndarray, sin_c: np.ndarray, key: tuple) -> tuple[list[Operation], list[SSAValue]]:
    """The cos and sin cache constants, made once per (tables, layout, shape): Q and K share them."""
    root = m.ops[0]
    prev = m.memo.get(key)
    if prev is not None and prev[1].parent_block() is root.parent_block() and prev[1].is_before_in_block(root):
        return [], [prev[0].results[0], prev[1].results[0]]
    made = (make_constant(cos_c, m.src, m.weights, "rotary.cos"), make_constant(sin_c, m.src, m.weights, "rotary.sin"))
    m.memo[key] = made
    return list(made), [made[0].results[0], made[1].results[0]]


def _rotary(m: Match) -> list[Operation] | None:
    x, shape, src = m["x"], _shape(m["x"]), m.src
    if shape is None or len(shape) not in (3, 4):
        return None
    cos, sin = m.array("cos"), m.array("sin")
    attempts: list[tuple[int, int | None, str]] = [(2, 1, "bhsd"), (1, 2, "bshd")] if len(shape) == 4 else [(1, None, "bsd")]
    for seq_axis, head_axis, layout in attempts:
        cos_c, sin_c = _cache(cos, shape, seq_axis, head_axis), _cache(sin, shape, seq_axis, head_axis)
        if cos_c is None or sin_c is None:
            continue
        new, caches = _caches(m, cos_c, sin_c, (m["cos"], m["sin"], layout, tuple(shape)))
        if layout != "bshd":
            return [*new, build("RotaryEmbedding", [x, *caches], {"num_heads": 1} if layout == "bsd" else {}, src)]
        b, s, heads = shape[0], shape[1], shape[2]
        flat_shape = ConstantOp(np.asarray([b, s, heads * shape[3]], np.int64), src)
        flat = build("Reshape", [x, flat_shape.results[0]], {}, src)
        rope = build("RotaryEmbedding", [flat.results[0], *caches], {"num_heads": heads}, src)
        back_shape = ConstantOp(np.asarray(shape, np.int64), src)
        return [*new, flat_shape, flat, rope, back_shape, build("Reshape", [rope.results[0], back_shape.results[0]], {}, src)]
    return None


class RecognizeRotary(PatternPass):
    """Rewrite the rotate-half rotary embedding into graph.rotary_embedding."""

    name = "recognize-rotary"
    phases = ((Pattern("rotate-half", ROTARY_PATTERN, _rotary),),)
