"""decompose-einsum: a two-operand Einsum becomes transposes, reshapes and one MatMul.

    einsum("bind,bjnd->bnij", q, k)
      -> transpose(q, [0, 2, 1, 3])  [b, n, i, d]
         transpose(k, [0, 2, 3, 1])  [b, n, d, j]
         matmul                      [b, n, i, j]      (batch b n, rows i, contract d, columns j)

Each index is a batch index (in both operands and the result), contracted (in both, not in
the result), or free (in one operand and the result). The operands are transposed to
[batch..., free..., contracted...] and [batch..., contracted..., free...], their free and
contracted runs merged by reshapes, multiplied, and the result split and transposed into the
equation's order; reshapes and transposes that change nothing are not emitted. This is how
CANN runs Einsum (as BatchMatMul), and it puts the contraction where matmul passes, fusion
and the cube see it (transformers' Funnel writes its attention so).

Left alone: one or more than two operands, an ellipsis, an index repeated within an operand
(a trace or diagonal), an index summed out of a single operand, sizes that differ (Einsum
broadcasts only under an ellipsis) or a shape not known at compile time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import ConstantOp, GraphOp
from graphopt.dialects.types import shape_of
from graphopt.rewrite import build, src_of


@dataclass(frozen=True)
class Plan:
    """The equation's indices sorted into their roles, and each index's size."""

    a: str
    b: str
    out: str
    batch: str
    left: str  # free indices of the first operand
    right: str  # free indices of the second
    contract: str
    size: dict[str, int]


def plan(equation: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> Plan | None:
    """The decomposition of ``equation`` over operands of these shapes, or None."""
    eq = equation.replace(" ", "")
    if "." in eq:
        return None
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2:
        return None
    a, b = terms
    if not arrow:  # implicit output: the indices seen once, in alphabetical order
        out = "".join(sorted(i for i in set(a + b) if (a + b).count(i) == 1))
    if any(len(set(t)) != len(t) for t in (a, b, out)) or len(a) != len(a_shape) or len(b) != len(b_shape):
        return None
    if set(out) - set(a + b) or (set(a) ^ set(b)) - set(out):  # an index summed out of one operand
        return None
    size: dict[str, int] = {}
    for term, shape in ((a, a_shape), (b, b_shape)):
        for i, d in zip(term, shape):
            if d < 0 or size.setdefault(i, d) != d:
                return None
    batch = "".join(i for i in out if i in a and i in b)
    return Plan(a, b, out, batch, "".join(i for i in a if i not in b), "".join(i for i in b if i not in a),
                "".join(i for i in a if i in b and i not in out), size)


class DecomposeEinsum(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Einsum" or op.ONNX_DOMAIN or len(op.operands) != 2:
            return
        x, y = op.operands
        if not all(isinstance(v.type, TensorType) for v in (x, y, op.results[0])):
            return
        p = plan(str(op.onnx_attrs().get("equation", "")), shape_of(x.type), shape_of(y.type))  # type: ignore[arg-type]
        if p is None:
            return
        src = src_of(op)
        new: list[Operation] = []

        def transpose(v: SSAValue, term: str, order: str) -> SSAValue:
            perm = [term.index(i) for i in order]
            if perm == sorted(perm):
                return v
            new.append(t := build("Transpose", [v], {"perm": perm}, src))
            return t.results[0]

        def reshape(v: SSAValue, dims: list[int]) -> SSAValue:
            if list(shape_of(v.type)) == dims:  # type: ignore[arg-type]
                return v
            new.append(c := ConstantOp(np.asarray(dims, np.int64), src))
            new.append(r := build("Reshape", [v, c.result], {}, src))
            return r.results[0]

        def dims(indices: str) -> list[int]:
            return [p.size[i] for i in indices]

        batch = dims(p.batch)
        m, k, n = (math.prod(dims(s)) for s in (p.left, p.contract, p.right))
        lhs = reshape(transpose(x, p.a, p.batch + p.left + p.contract), [*batch, m, k])
        rhs = reshape(transpose(y, p.b, p.batch + p.contract + p.right), [*batch, k, n])
        new.append(mm := build("MatMul", [lhs, rhs], {}, src))
        z = reshape(mm.results[0], dims(p.batch + p.left + p.right))
        z = transpose(z, p.batch + p.left + p.right, p.out)
        if z.type != op.results[0].type:  # the op's declared type disagrees: leave it
            return
        rewriter.replace(op, new, [z])


@dataclass(frozen=True)
class DecomposeEinsumPass(ModulePass):
    """Rewrite two-operand Einsums as transposes, reshapes and one MatMul."""

    name = "decompose-einsum"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(DecomposeEinsum()).rewrite_module(op)
