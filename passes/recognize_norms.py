"""The pieces the normalization recognizers (layer norm, RMS norm) share, as patterns."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import GraphOp
from graphopt.patterns import Const, Match, Matcher, OneOf, Op, Tensor
from graphopt.rewrite import build, constant_value, make_constant
from graphopt.weights import WeightStore


def trailing_axes(mean: GraphOp, weights: WeightStore | None) -> int | None:
    """The first axis of a ReduceMean over the trailing axes [k, ..., rank-1]."""
    axes = constant_value(mean.operands[1], weights)
    t = mean.operands[0].type
    if axes is None or not isinstance(t, TensorType) or axes.size == 0:
        return None
    rank = len(t.get_shape())
    norm = sorted(int(a) % rank for a in axes.reshape(-1))
    return norm[0] if norm == list(range(norm[0], rank)) else None


def mean(v: Matcher, name: str, one_use: bool = False) -> Op:
    """A keepdims ReduceMean of v over trailing axes."""
    return Op("ReduceMean", v, Tensor(), name=name, attrs={"keepdims": 1}, one_use=one_use,
              where=lambda m: trailing_axes(m.op(name), m.weights) is not None)


def square(v: Matcher) -> Matcher:
    return OneOf(Op("Pow", v, Const(2.0, rel=0.0)), Op("Mul", v, v))


def normalized(x: Matcher, mean_square: Matcher, one_use: bool) -> Matcher:
    """x / sqrt(mean_square + eps), or x * Reciprocal(sqrt(...))."""
    sqrt = Op("Sqrt", Op("Add", mean_square, Const(name="eps"), one_use=True), one_use=True)
    return OneOf(Op("Div", x, sqrt, one_use=one_use),
                 Op("Mul", x, Op("Reciprocal", sqrt, one_use=True), one_use=one_use))


def affine(x: Matcher, mean_square: Matcher, with_bias: bool) -> Matcher:
    """The normalized value, times a constant gamma, plus (if ``with_bias``) a constant beta."""
    def scaled(one_use: bool) -> Op:
        return Op("Mul", normalized(x, mean_square, one_use=True), Tensor("gamma"), one_use=one_use)

    forms = [scaled(False), normalized(x, mean_square, one_use=False)]
    return OneOf(Op("Add", scaled(True), Tensor("beta")), *forms) if with_bias else OneOf(*forms)


def build_norm(onnx_type: str, m: Match, x: SSAValue, axis: int) -> list[Operation] | None:
    """``onnx_type``(x, gamma or ones[, beta]) {axis, epsilon}, if gamma and beta span the
    normalized axes (broadcasting from their end)."""
    t = x.type
    assert isinstance(t, TensorType)
    norm_shape = list(t.get_shape()[axis:])
    gamma, beta = m.get("gamma"), m.get("beta")
    for v in (gamma, beta):
        shape = list(v.type.get_shape()) if v is not None and isinstance(v.type, TensorType) else None
        if v is not None and (shape is None or len(shape) > len(norm_shape) or shape != norm_shape[len(norm_shape) - len(shape):]):
            return None
    made: list[Operation] = []
    if gamma is None:
        ones = np.ones(norm_shape, dtypes.from_ir(t.element_type).numpy)
        made.append(make_constant(ones, m.src, m.weights, "norm.ones"))
        gamma = made[-1].results[0]
    operands = [x, gamma] + ([beta] if beta is not None else [])
    return [*made, build(onnx_type, operands, {"axis": axis, "epsilon": m.const("eps")}, m.src)]
