"""simplify-algebra: algebraic identities, one pattern each.

    x * 1 -> x       x + 0 -> x       x - 0 -> x       x / 1 -> x       x ** 1 -> x
    neg(neg(x)) -> x                  not(not(x)) -> x

Only where the result has exactly x's type: ``x * ones(4, 8)`` broadcasts a smaller x
to a larger shape, which the rewrite would lose. x * 0 is not folded (NaN * 0 is NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import producer, scalar_value, weights_of
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


@dataclass(frozen=True)
class SimplifyAlgebra(ModulePass):
    """Algebraic identities: x*1, x+0, x-0, x/1, x**1, double negation and the like."""

    name = "simplify-algebra"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from xdsl.pattern_rewriter import GreedyRewritePatternApplier

        patterns = GreedyRewritePatternApplier([Neutral(weights_of(ctx)), Involution()])
        PatternRewriteWalker(patterns).rewrite_module(op)
