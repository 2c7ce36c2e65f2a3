"""A graphopt pass plugin: recognize x * sigmoid(x) as SiLU (ONNX Swish, alpha = 1).

Load it from the command line:

    graphopt compile model.onnx --load-pass-plugin examples/silu_pass.py -p "recognize-silu,dce,fuse"

or from Python (see examples/custom_pass.py). The whole plugin is one rewrite pattern:
graphopt wraps a RewritePattern that has a ``name`` into a pass of that name.
"""

from __future__ import annotations

from xdsl.ir import Operation
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import build, other_operand, producer, src_of


class RecognizeSiLU(RewritePattern):
    """Rewrite x * sigmoid(x) into graph.swish (SiLU), which the fuser treats as elementwise."""

    name = "recognize-silu"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        # Match Mul(x, Sigmoid(x)) with the operands in either order.
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Mul" or op.ONNX_DOMAIN:
            return
        for x in op.operands:
            sig = producer(other_operand(op, x), "Sigmoid")
            if sig is None or sig.operands[0] != x or op.results[0].type != x.type:
                continue
            # build() infers the new op's result type from its shape rule; src_of()
            # carries the provenance of both ops it replaces.
            rewriter.replace(op, build("Swish", [x], {}, src_of(sig, op)))
            return
