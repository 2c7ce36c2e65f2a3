"""recognize-rmsnorm: x / sqrt(mean(x^2) + eps) * w becomes one RMSNormalization.

    ms = ReduceMean(x^2, axes)   y = x / Sqrt(ms + eps)   [* w]
  becomes
    y = RMSNormalization(x, w) {axis = axes[0], epsilon = eps}

The division may be x * Reciprocal(Sqrt(...)) (how exporters write rsqrt); x^2 may be
Pow(x, 2) or x * x; a missing w becomes ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
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
from graphopt.rewrite import build, producer, src_of, weights_of
from graphopt.weights import WeightStore


@dataclass
class RMSNorm(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "ReduceMean":
            return
        axis = trailing_axes(op, self.weights)
        x = square_of(op.operands[0], self.weights)
        if axis is None or x is None:
            return
        sub = producer(x, "Sub")
        if sub is not None and producer(sub.operands[1], "ReduceMean") is not None:
            return  # x - mean(x): that is a layer norm's variance, not an RMS norm
        found = inv_std(op, self.weights)
        if found is None:
            return
        eps, sqrt, ops = found
        found_div = divided_by(x, sqrt)
        if found_div is None:
            return
        y, between = found_div
        ops += between
        t = x.type
        assert isinstance(t, TensorType)
        norm_shape = list(t.get_shape()[axis:])
        last, w, _ = affine(y, norm_shape, self.weights, with_bias=False)
        src = src_of(producer(op.operands[0]) or op, op, *ops, y, last)  # the square, mean, eps, sqrt, 1/x, *
        w, new_ops = scale_or_ones(w, x, norm_shape, src, self.weights)
        rms = build("RMSNormalization", [x, w], {"axis": axis, "epsilon": eps}, src)
        square = producer(op.operands[0])
        chain = [o for o in (square, op, *ops, y, last) if o is not None]
        rewriter.replace(last, [*new_ops, rms], [rms.results[0]])
        erase_dead([o for o in dict.fromkeys(chain) if o is not last], rewriter)


@dataclass(frozen=True)
class RecognizeRMSNorm(ModulePass):
    """Rewrite x / sqrt(mean(x^2) + eps) * w into graph.rms_normalization."""

    name = "recognize-rmsnorm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(RMSNorm(weights_of(ctx))).rewrite_module(op)
