"""recognize-layernorm: the decomposed layer norm older exporters write becomes one op.

    m = ReduceMean(x, axes)   d = x - m   v = ReduceMean(d^2, axes)
    y = d / Sqrt(v + eps)  [* gamma]  [+ beta]
  becomes
    y = LayerNormalization(x, gamma, beta) {axis = axes[0], epsilon = eps}

axes must be the trailing axes; d^2 may be Pow(d, 2) or d * d; the division may be a
multiplication by Reciprocal. A missing gamma becomes ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.passes.recognize_norms import (
    affine,
    divided_by,
    erase_dead,
    inv_std,
    scale_or_ones,
    square_of,
    trailing_axes,
)
from graphopt.rewrite import build, producer, src_of, users, weights_of
from graphopt.weights import WeightStore


@dataclass
class LayerNorm(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "ReduceMean":
            return
        axis = trailing_axes(op, self.weights)
        x = op.operands[0]
        if axis is None:
            return
        for sub in users(op.results[0], "Sub"):
            if sub.operands[0] != x or sub.operands[1] != op.results[0]:
                continue
            d = sub.results[0]
            for var in (u for u in self._variances(d) if trailing_axes(u, self.weights) == axis):
                found = inv_std(var, self.weights)
                if found is None:
                    continue
                eps, sqrt, ops = found
                found_div = divided_by(d, sqrt)
                if found_div is None:
                    continue
                y, between = found_div
                square = producer(var.operands[0])
                matched = [sub, *([square] if square is not None else []), var, *ops, *between, y]
                self._rewrite(op, x, axis, eps, matched, y, rewriter)
                return

    def _variances(self, d: SSAValue) -> Iterator[GraphOp]:
        """ReduceMean ops reading d * d or Pow(d, 2)."""
        for use in d.uses:
            sq = use.operation
            if isinstance(sq, GraphOp) and square_of(sq.results[0], self.weights) == d:
                yield from users(sq.results[0], "ReduceMean")

    def _rewrite(
        self, mean: GraphOp, x: SSAValue, axis: int, eps: float, ops: list[GraphOp], y: GraphOp, rewriter: PatternRewriter
    ) -> None:
        t = x.type
        assert isinstance(t, TensorType)
        norm_shape = list(t.get_shape()[axis:])
        last, gamma, beta = affine(y, norm_shape, self.weights)
        src = src_of(mean, *ops, last)
        gamma, new_ops = scale_or_ones(gamma, x, norm_shape, src, self.weights)
        operands = [x, gamma] + ([beta] if beta is not None else [])
        ln = build("LayerNormalization", operands, {"axis": axis, "epsilon": eps}, src)
        chain = [mean, *ops, *(o for o in (y, last) if o not in ops)]
        rewriter.replace(last, [*new_ops, ln], [ln.results[0]])
        erase_dead([o for o in chain if o is not last], rewriter)


@dataclass(frozen=True)
class RecognizeLayerNorm(ModulePass):
    """Rewrite decomposed layer normalization into graph.layer_normalization."""

    name = "recognize-layernorm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(LayerNorm(weights_of(ctx))).rewrite_module(op)
