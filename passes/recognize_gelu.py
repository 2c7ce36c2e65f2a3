"""recognize-gelu: the decomposed GELU forms exporters write become one graph.gelu.

    erf form:   0.5 * x * (1 + erf(x / sqrt(2)))                     -> gelu(x)
    tanh form:  0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))  -> gelu(x) {approximate = "tanh"}

The 0.5 may multiply x, the product, or (1 + ...); x / sqrt(2) may be written
x * (1/sqrt(2)); x^3 may be Pow(x, 3) or x * x * x. Constants match to 1e-3 relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import build, close, other_operand, producer, sole_user, src_of, weights_of, with_scalar
from graphopt.weights import WeightStore


def _half_of(v: SSAValue, weights: WeightStore | None) -> SSAValue | None:
    """x for a value computed as x * 0.5 or x / 2."""
    op = producer(v)
    m = with_scalar(op, "Mul", weights)
    if m and close(m[1], 0.5):
        return m[0]
    d = with_scalar(op, "Div", weights)
    return d[0] if d and close(d[1], 2.0) else None


def _outer(x: SSAValue, one_plus: GraphOp, weights: WeightStore | None) -> tuple[GraphOp, list[GraphOp]] | None:
    """Match 0.5 * x * (1 + t), given the op computing (1 + t); returns (last op, ops)."""
    u = sole_user(one_plus.results[0], "Mul")
    if u is None:
        return None
    other = other_operand(u, one_plus.results[0])
    if other == x:  # (x * (1+t)) * 0.5
        v = sole_user(u.results[0])
        if v is not None and _half_of(v.results[0], weights) == u.results[0]:
            return v, [u, v]
        return None
    if _half_of(other, weights) == x:  # (0.5 x) * (1+t)
        return u, [u]
    h = with_scalar(u, "Mul", weights)  # ((1+t) * 0.5) * x
    if h and close(h[1], 0.5):
        v = sole_user(u.results[0], "Mul")
        if v is not None and other_operand(v, u.results[0]) == x:
            return v, [u, v]
    return None


def _cube_of(v: SSAValue, weights: WeightStore | None) -> SSAValue | None:
    p = with_scalar(producer(v), "Pow", weights)
    if p and close(p[1], 3.0):
        return p[0]
    m = producer(v, "Mul")
    if m is None:
        return None
    for a, b in (m.operands, m.operands[::-1]):
        sq = producer(b, "Mul")
        if sq is not None and sq.operands[0] == sq.operands[1] == a:
            return a
    return None


@dataclass
class GeluErf(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Erf":
            return
        arg = producer(op.operands[0])
        div, mul = with_scalar(arg, "Div", self.weights), with_scalar(arg, "Mul", self.weights)
        if div and close(div[1], math.sqrt(2)):
            x = div[0]
        elif mul and close(mul[1], 1 / math.sqrt(2)):
            x = mul[0]
        else:
            return
        _replace(x, op, "none", self.weights, rewriter)


@dataclass
class GeluTanh(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Tanh":
            return
        scaled = with_scalar(producer(op.operands[0]), "Mul", self.weights)
        if not scaled or not close(scaled[1], math.sqrt(2 / math.pi)):
            return
        inner = producer(scaled[0], "Add")
        if inner is None:
            return
        for x, k in (inner.operands, inner.operands[::-1]):
            term = with_scalar(producer(k), "Mul", self.weights)
            if term and close(term[1], 0.044715) and _cube_of(term[0], self.weights) == x:
                _replace(x, op, "tanh", self.weights, rewriter)
                return


def _replace(x: SSAValue, fn: GraphOp, approximate: str, weights: WeightStore | None, rewriter: PatternRewriter) -> None:
    one_plus = sole_user(fn.results[0], "Add")
    plus = with_scalar(one_plus, "Add", weights)
    if one_plus is None or not plus or plus[0] != fn.results[0] or not close(plus[1], 1.0):
        return
    matched = _outer(x, one_plus, weights)
    if matched is None:
        return
    last, ops = matched
    gelu = build("Gelu", [x], {"approximate": approximate} if approximate != "none" else {}, src_of(fn, one_plus, *ops))
    rewriter.replace(last, gelu)


@dataclass(frozen=True)
class RecognizeGelu(ModulePass):
    """Rewrite the erf and tanh decompositions of GELU into graph.gelu."""

    name = "recognize-gelu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from xdsl.pattern_rewriter import GreedyRewritePatternApplier

        w = weights_of(ctx)
        PatternRewriteWalker(GreedyRewritePatternApplier([GeluErf(w), GeluTanh(w)])).rewrite_module(op)
