"""recognize-swiglu: the gated FFN activation becomes one graph.swiglu.

    Mul(Mul(a, Sigmoid(a)), b)     (SiLU(a) * b)       -> SwiGLU(a, b)
    Mul(Swish(a), b)               (Swish with alpha)   -> SwiGLU(a, b) {alpha}

a and b must have the same type (SwiGLU does not broadcast).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import build, other_operand, producer, src_of


def _silu_input(v: SSAValue) -> tuple[SSAValue, float, list[GraphOp]] | None:
    """v = a * sigmoid(a) or Swish(a) -> (a, alpha, ops)."""
    swish = producer(v, "Swish")
    if swish is not None:
        return swish.operands[0], swish.onnx_attrs().get("alpha", 1.0), [swish]
    mul = producer(v, "Mul")
    if mul is None:
        return None
    for a in mul.operands:
        sig = producer(other_operand(mul, a), "Sigmoid")
        if sig is not None and sig.operands[0] == a:
            return a, 1.0, [mul, sig]
    return None


class SwiGLU(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Mul" or op.ONNX_DOMAIN:
            return
        for gate in op.operands:
            found = _silu_input(gate)
            b = other_operand(op, gate)
            if found is None or not gate.has_one_use():
                continue
            a, alpha, ops = found
            if a.type != b.type or op.results[0].type != a.type:
                continue
            attrs = {"alpha": alpha} if alpha != 1.0 else {}
            rewriter.replace(op, build("SwiGLU", [a, b], attrs, src_of(*ops, op)))
            return


@dataclass(frozen=True)
class RecognizeSwiGLU(ModulePass):
    """Rewrite SiLU(a) * b into graph.swiglu."""

    name = "recognize-swiglu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(SwiGLU()).rewrite_module(op)
