"""fold-matmul-add: MatMul followed by the Add of a bias becomes one matmul-with-bias.

    %m = "graph.matmul"(%x, %w)
    %y = "graph.add"(%m, %b)          (%b broadcasting along the last axis only)
  becomes
    %y = "graph.matmul_bias"(%x, %w, %b)

so the bias is the matmul's epilogue on every target. Needs the MatMul's result to have
no other user, and the Add's result the MatMul's shape (a bias that broadcasts the product
to a larger shape is no epilogue).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import build, discard, producer, src_of


def _bias_like(t: object) -> bool:
    """Broadcasts along the last axis only: [N] or [1, ..., 1, N]."""
    return isinstance(t, TensorType) and all(d == 1 for d in t.get_shape()[:-1])


class MatMulAdd(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Add" or op.ONNX_DOMAIN:
            return
        for pos in (0, 1):
            mm = producer(op.operands[pos], "MatMul")
            bias = op.operands[1 - pos]
            if mm is None or not mm.results[0].has_one_use() or not _bias_like(bias.type):
                continue
            if op.results[0].type != mm.results[0].type:
                continue  # the Add broadcasts the product up (a 1-D x 1-D scalar plus [N]): not an epilogue
            new = build("graphopt::MatMulBias", [*mm.operands, bias], {}, src_of(mm, op))
            if new.results[0].type != op.results[0].type:
                discard(new)
                continue
            rewriter.replace(op, new)
            rewriter.erase(mm)
            return


@dataclass(frozen=True)
class FoldMatMulAdd(ModulePass):
    """Fold MatMul + Add(bias) into graph.matmul_bias."""

    name = "fold-matmul-add"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(MatMulAdd()).rewrite_module(op)
