"""fold-shapes: collapse the shape computations exporters write, now that shapes are static.

    %s = "graph.shape"(%x) : (tensor<2x16x64xf32>) -> tensor<3xi64>
    %d = "graph.gather"(%s, %c1) <{axis = 0 : i64}> : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  becomes
    %d = "graph.constant"() <{value = dense<16> : tensor<i64>}> : () -> tensor<i64>

Shape and Size of statically shaped tensors become constants; then every op of the
Shape/Gather/Unsqueeze/Concat/Range/Expand/Where/... chain whose inputs are constants and
whose result is small is evaluated (with the semantic rules, like fold-constants).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)

from graphopt.dialects.graph import ConstantOp, GraphOp
from graphopt.dialects.types import shape_of  # unknown dims as -1
from graphopt.passes.fold_constants import FoldOp
from graphopt.rewrite import src_of, weights_of

SHAPE_SIZED = 256  # shape tensors are tiny; anything bigger is data, not a shape


class ShapeOfStatic(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in ("Shape", "Size"):
            return
        t = op.operands[0].type
        if not isinstance(t, TensorType) or -1 in shape_of(t):
            return
        shape = np.asarray(t.get_shape(), dtype=np.int64)
        if op.ONNX_TYPE == "Size":
            value = np.asarray(int(np.prod(shape)), dtype=np.int64)
        else:
            attrs = op.onnx_attrs()
            start, end = attrs.get("start", 0), attrs.get("end", len(shape))
            value = shape[slice(start, end)]
        rewriter.replace(op, ConstantOp(value, src_of(op)))


@dataclass(frozen=True)
class FoldShapes(ModulePass):
    """Fold Shape/Size of static tensors and the small shape arithmetic built on them."""

    name = "fold-shapes"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier([ShapeOfStatic(), FoldOp(weights_of(ctx), SHAPE_SIZED)])
        PatternRewriteWalker(patterns).rewrite_module(op)
