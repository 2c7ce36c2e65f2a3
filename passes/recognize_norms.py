"""Shared matching for the normalization recognizers (layer norm, RMS norm)."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter

from graphopt import dtypes
from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import constant_value, make_constant, producer, sole_user, with_scalar
from graphopt.weights import WeightStore


def trailing_axes(mean: GraphOp, weights: WeightStore | None) -> int | None:
    """The first axis of a keepdims ReduceMean over the trailing axes [k, ..., rank-1]."""
    if mean.ONNX_TYPE != "ReduceMean" or mean.onnx_attrs().get("keepdims", 1) != 1 or len(mean.operands) < 2:
        return None
    axes = constant_value(mean.operands[1], weights)
    t = mean.operands[0].type
    if axes is None or not isinstance(t, TensorType) or axes.size == 0:
        return None
    rank = len(t.get_shape())
    norm = sorted(int(a) % rank for a in axes.reshape(-1))
    return norm[0] if norm == list(range(norm[0], rank)) else None


def square_of(v: SSAValue, weights: WeightStore | None) -> SSAValue | None:
    """x for x * x or Pow(x, 2)."""
    p = with_scalar(producer(v), "Pow", weights)
    if p and p[1] == 2.0:
        return p[0]
    m = producer(v, "Mul")
    return m.operands[0] if m is not None and m.operands[0] == m.operands[1] else None


def inv_std(mean_sq: GraphOp, weights: WeightStore | None) -> tuple[float, GraphOp, list[GraphOp]] | None:
    """From mean(sq) follow Add(eps) -> Sqrt; returns (eps, sqrt op, ops)."""
    add = sole_user(mean_sq.results[0], "Add")
    eps = with_scalar(add, "Add", weights)
    if add is None or not eps or eps[0] != mean_sq.results[0]:
        return None
    sqrt = sole_user(add.results[0], "Sqrt")
    if sqrt is None:
        return None
    return eps[1], sqrt, [add, sqrt]


def divided_by(x: SSAValue, sqrt: GraphOp) -> tuple[GraphOp, list[GraphOp]] | None:
    """The op computing x / sqrt(...), as Div(x, s) or Mul(x, Reciprocal(s)), with the
    ops between sqrt and it."""
    s = sqrt.results[0]
    div = sole_user(s, "Div")
    if div is not None and div.operands[0] == x and div.operands[1] == s:
        return div, []
    rec = sole_user(s, "Reciprocal")
    mul = sole_user(rec.results[0], "Mul") if rec is not None else None
    if rec is not None and mul is not None and x in mul.operands:
        return mul, [rec]
    return None


def affine(
    y: GraphOp, normalized_shape: list[int], weights: WeightStore | None, with_bias: bool = True
) -> tuple[GraphOp, SSAValue | None, SSAValue | None]:
    """Follow an optional Mul(gamma) then (if ``with_bias``) Add(beta) whose constants span
    the normalized axes; returns (last op, gamma, beta)."""

    def fits(v: SSAValue) -> bool:
        t = v.type
        if not isinstance(t, TensorType) or constant_value(v, weights) is None:
            return False
        shape = list(t.get_shape())
        return shape == normalized_shape[len(normalized_shape) - len(shape):] and len(shape) <= len(normalized_shape)

    last, gamma, beta = y, None, None
    mul = sole_user(last.results[0], "Mul")
    if mul is not None:
        g = mul.operands[1] if mul.operands[0] == last.results[0] else mul.operands[0]
        if fits(g) and mul.results[0].type == last.results[0].type:
            last, gamma = mul, g
    add = sole_user(last.results[0], "Add")
    if add is not None and gamma is not None and with_bias:
        b = add.operands[1] if add.operands[0] == last.results[0] else add.operands[0]
        if fits(b) and add.results[0].type == last.results[0].type:
            last, beta = add, b
    return last, gamma, beta


def erase_dead(ops: list[GraphOp], rewriter: PatternRewriter) -> None:
    """Erase the matched ops that the replacement left without users, last first, so the
    walker does not match the leftover chain again."""
    for op in reversed(ops):
        if op.parent is not None and not any(r.uses for r in op.results):
            rewriter.erase(op)


def scale_or_ones(
    scale: SSAValue | None, x: SSAValue, shape: list[int], src: list[str], weights: WeightStore | None
) -> tuple[SSAValue, list[Operation]]:
    """The norm's scale input: the matched one, or a constant of ones (new ops to insert)."""
    if scale is not None:
        return scale, []
    t = x.type
    assert isinstance(t, TensorType)
    ones = make_constant(np.ones(shape, dtypes.from_ir(t.element_type).numpy), src, weights, "norm.ones")
    return ones.results[0], [ones]
