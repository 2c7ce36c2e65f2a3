"""canonicalize: every local simplification of graph ops, applied together until none
applies, then dead code removed.

The patterns are the ones the cleanup passes apply one family at a time (so a pipeline
can also run them separately): identity removal (remove-identity), algebraic identities
(simplify-algebra), transpose and reshape chains (simplify-transpose-reshape), Shape/Size
of static tensors and small constant folds (fold-shapes).

    %y = "graph.identity"(%x)    %z = "graph.mul"(%y, %one)    -> uses of %z become %x
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker
from xdsl.transforms.dead_code_elimination import region_dce

from graphopt.passes.fold_constants import FoldOp
from graphopt.passes.fold_shapes import SHAPE_SIZED, ShapeOfStatic
from graphopt.passes.remove_identity import RemoveIdentity
from graphopt.passes.simplify_algebra import Involution, Neutral
from graphopt.passes.simplify_transpose_reshape import MovementChainToTranspose, ReshapeOfReshape, TransposeOfTranspose
from graphopt.rewrite import weights_of


@dataclass(frozen=True)
class Canonicalize(ModulePass):
    """Apply every local simplification (identities, algebra, movement chains, shape folds), then DCE."""

    name = "canonicalize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        weights = weights_of(ctx)
        patterns = GreedyRewritePatternApplier(
            [
                RemoveIdentity(weights),
                Neutral(weights),
                Involution(),
                TransposeOfTranspose(),
                ReshapeOfReshape(),
                MovementChainToTranspose(),
                ShapeOfStatic(),
                FoldOp(weights, SHAPE_SIZED),
            ]
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
        for region in op.regions:
            region_dce(region)
