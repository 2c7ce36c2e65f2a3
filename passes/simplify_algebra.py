"""simplify-algebra: algebraic identities, one pattern each.

    x * 1 -> x       x + 0 -> x       x - 0 -> x       x / 1 -> x       x ** 1 -> x
    neg(neg(x)) -> x                  not(not(x)) -> x

Only where the result has exactly x's type: ``x * ones(4, 8)`` broadcasts a smaller x
to a larger shape, which the rewrite would lose. x * 0 is not folded (NaN * 0 is NaN).

A sum over the axis a stack made (torch.stack, exported as Unsqueeze and Concat) is the sum
of what was stacked, weighted or not:

    ReduceSum(Concat(Unsqueeze(a_i, k)..., axis=k), axes=[k])      -> a_1 + ... + a_n
    ReduceSum(Concat(Unsqueeze(a_i, k)...) * w, axes=[k])           -> a_1 * w_1 + ... + a_n * w_n
                                                    (w_i = Squeeze(Slice(w, i, axis k), k))

and the same where the stack is a Reshape splitting an axis of x into (n, m): its a_i are
the n Slices of x along that axis.

Selective-kernel and split-attention networks (SKNet, ResNeSt) weigh their branches so;
the stacked tensor has one axis more than the feature maps, which no blocked layout holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import NewOps, axes_of, discard, producer, scalar_value, src_of, weights_of
from graphopt.weights import WeightStore

# op type -> (neutral element, operand positions it may stand in)
_NEUTRAL: dict[str, tuple[float, tuple[int, ...]]] = {
    "Mul": (1.0, (0, 1)),
    "Add": (0.0, (0, 1)),
    "Sub": (0.0, (1,)),
    "Div": (1.0, (1,)),
    "Pow": (1.0, (1,)),
}
# Exact involutions only: 1/(1/x) can differ from x in the last bit.
_INVOLUTIONS = frozenset({"Neg", "Not", "BitwiseNot"})


@dataclass
class Neutral(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in _NEUTRAL or op.ONNX_DOMAIN:
            return
        neutral, positions = _NEUTRAL[op.ONNX_TYPE]
        for pos in positions:
            other: SSAValue = op.operands[1 - pos]
            if other.type == op.results[0].type and scalar_value(op.operands[pos], self.weights) == neutral:
                rewriter.replace(op, [], [other])
                return


class Involution(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in _INVOLUTIONS:
            return
        inner = producer(op.operands[0], op.ONNX_TYPE)
        if inner is not None:
            rewriter.replace(op, [], [inner.operands[0]])


@dataclass
class SumOfStack(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "ReduceSum" or op.ONNX_DOMAIN or len(op.results) != 1:
            return
        x = op.operands[0]
        rank = len(_shape(x))
        axes = axes_of(op, self.weights)
        if not axes or len(axes) != 1 or not rank:
            return
        k = int(axes[0]) % rank
        mul = producer(x, "Mul")
        if mul is None:
            candidates = [(x, None)]
        elif len(list(x.uses)) == 1:  # the weighted stack feeds this sum alone
            candidates = [(mul.operands[i], mul.operands[1 - i]) for i in (0, 1)]
        else:
            return
        for stack, w in candidates:
            new = NewOps(src_of(op), self.weights)
            parts = _stacked(new, stack, k)
            if parts is None or (w is not None and not _weights_fit(w, rank, k, len(parts))):
                discard(*new.ops)
                continue
            terms = [a if w is None else new.op("Mul", [a, _pick(new, w, k, i, len(parts))]) for i, a in enumerate(parts)]
            y = new.op("Sum", terms) if len(terms) > 2 else new.op("Add", terms) if len(terms) == 2 else terms[0]
            if op.onnx_attrs().get("keepdims", 1):
                y = new.op("Unsqueeze", [y, new.ints([k], "stack.axis")])
            if y.type != op.results[0].type:
                discard(*new.ops)
                continue
            rewriter.replace(op, new.ops, [y])
            return


def _shape(v: SSAValue) -> tuple[int, ...]:
    return tuple(v.type.get_shape()) if isinstance(v.type, TensorType) else ()


def _stacked(new: NewOps, stack: SSAValue, k: int) -> list[SSAValue] | None:
    """The a_i stacked along axis k: of Concat(Unsqueeze(a_i, [k])..., axis=k), or the n
    slices of x along k when the stack is Reshape(x) splitting x's axis k into (n, m)
    (ResNeSt's radix groups of channels; the Slices are built in ``new``); else None."""
    reshape = producer(stack, "Reshape")
    if reshape is not None:
        xs, ys = _shape(reshape.operands[0]), _shape(stack)
        if len(ys) != len(xs) + 1 or ys[:k] != xs[:k] or ys[k + 2:] != xs[k + 1:] or ys[k] * ys[k + 1] != xs[k] \
                or ys[k] < 2:
            return None
        m = ys[k + 1]
        return [new.op("Slice", [reshape.operands[0], new.ints([i * m], "stack.start"), new.ints([(i + 1) * m], "stack.end"),
                                 new.ints([k], "stack.axis")]) for i in range(ys[k])]
    concat = producer(stack, "Concat")
    if concat is None or len(concat.operands) < 2:
        return None
    rank = len(_shape(concat.results[0]))
    if int(concat.onnx_attrs().get("axis", 0)) % max(rank, 1) != k:
        return None
    parts = []
    for v in concat.operands:
        u = producer(v, "Unsqueeze")
        if u is None or _shape(v)[k] != 1 or len(_shape(u.operands[0])) != rank - 1:
            return None
        parts.append(u.operands[0])
    return parts


def _weights_fit(w: SSAValue, rank: int, k: int, n: int) -> bool:
    """w broadcasts against the stack at its rank, with n or 1 entries along k."""
    s = _shape(w)
    return isinstance(w.type, TensorType) and len(s) == rank and s[k] in (1, n)


def _pick(new: NewOps, w: SSAValue, k: int, i: int, n: int) -> SSAValue:
    """w_i: entry i of w along k (the only one when w has one there), axis k dropped."""
    if _shape(w)[k] == n:
        w = new.op("Slice", [w, new.ints([i], "stack.start"), new.ints([i + 1], "stack.end"), new.ints([k], "stack.axis")])
    return new.op("Squeeze", [w, new.ints([k], "stack.axis")])


@dataclass(frozen=True)
class SimplifyAlgebra(ModulePass):
    """Algebraic identities: x*1, x+0, x-0, x/1, x**1, double negation, sums over a stack."""

    name = "simplify-algebra"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from xdsl.pattern_rewriter import GreedyRewritePatternApplier

        patterns = GreedyRewritePatternApplier([Neutral(weights_of(ctx)), Involution(), SumOfStack(weights_of(ctx))])
        PatternRewriteWalker(patterns).rewrite_module(op)
