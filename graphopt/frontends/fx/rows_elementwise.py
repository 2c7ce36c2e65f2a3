"""``FX_TO_GRAPH`` rows for elementwise aten ops: binary arithmetic, comparisons, bitwise
and logical ops, unary math, clamp, where, remainder."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from xdsl.ir import SSAValue

from graphopt.frontends.fx.lowering import TORCH_TO_NUMPY, Lowering, Row, aten, np_dtype, row, spec


def _result_dtype(L: Lowering, a: Any, b: Any) -> np.dtype:
    """torch's type promotion of two operands (tensors by their IR dtype and rank, or Python scalars)."""

    def stand_in(x: Any) -> Any:
        if isinstance(x, SSAValue):
            shape, dt = spec(x)
            return torch.empty((0,) if shape else (), dtype=_torch_dtype(dt.numpy))
        return x

    return np_dtype(torch.result_type(stand_in(a), stand_in(b)))


_NUMPY_TO_TORCH = {v: k for k, v in TORCH_TO_NUMPY.items()}


def _torch_dtype(dt: np.dtype) -> torch.dtype:
    return _NUMPY_TO_TORCH[np.dtype(dt)]


def _binary(onnx_type: str) -> Row:
    def lower(L: Lowering, a: Any, b: Any, *, alpha: Any = 1) -> SSAValue:
        dt = L.out_dtype()
        if alpha != 1:
            b = L.op("Mul", [L.tensor(b, dt), L.const(np.asarray(alpha, dtype=dt))]) if isinstance(b, SSAValue) else b * alpha
        return L.op(onnx_type, [L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])

    return lower


for _name, _onnx in (("add", "Add"), ("sub", "Sub"), ("mul", "Mul")):
    row(getattr(aten, _name).Tensor, getattr(aten, _name).Scalar)(_binary(_onnx))
row(aten.maximum.default)(_binary("Max"))


@row(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(L: Lowering, a: Any, b: Any, *, alpha: Any = 1) -> SSAValue:
    """b - alpha * a."""
    dt = L.out_dtype()
    a = L.tensor(a, dt)
    if alpha != 1:
        a = L.op("Mul", [a, L.const(np.asarray(alpha, dt))])
    return L.op("Sub", [L.tensor(b, dt), a], specs=[L.out_spec()])

row(aten.minimum.default)(_binary("Min"))


@row(aten.div.Tensor, aten.div.Scalar, aten.true_divide.Tensor)
def _div(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()  # true division: integer operands divide as floats
    return L.op("Div", [L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])


@row(aten.div.Tensor_mode, aten.div.Scalar_mode)
def _div_mode(L: Lowering, a: Any, b: Any, *, rounding_mode: str | None = None) -> SSAValue:
    dt = L.out_dtype()
    if rounding_mode is None:
        return _div(L, a, b)
    if np.issubdtype(dt, np.integer):
        fa, fb = L.tensor(a, np.dtype(np.float64)), L.tensor(b, np.dtype(np.float64))
    else:
        fa, fb = L.tensor(a, dt), L.tensor(b, dt)
    q = L.op("Div", [fa, fb])
    q = L.op("Floor" if rounding_mode == "floor" else "Ceil", [q]) if rounding_mode == "floor" else _trunc(L, q)
    return L.cast(q, dt)


def _trunc(L: Lowering, x: SSAValue) -> SSAValue:
    neg = L.op("Less", [x, L.const(np.asarray(0, spec(x)[1].numpy))])
    return L.op("Where", [neg, L.op("Ceil", [x]), L.op("Floor", [x])])


@row(aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor, aten.pow.Scalar)
def _pow(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    if not isinstance(b, SSAValue) and b == 2:  # x*x: exact, as torch computes it
        x = L.tensor(a, dt)
        return L.op("Mul", [x, x], specs=[L.out_spec()])
    return L.op("Pow", [L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])


def _compare(onnx_type: str, negate: bool = False) -> Row:
    def lower(L: Lowering, a: Any, b: Any) -> SSAValue:
        dt = _result_dtype(L, a, b)
        r = L.op(onnx_type, [L.tensor(a, dt), L.tensor(b, dt)])
        return L.op("Not", [r]) if negate else r

    return lower


for _name, _onnx, _neg in (("eq", "Equal", False), ("ne", "Equal", True), ("lt", "Less", False),
                           ("le", "LessOrEqual", False), ("gt", "Greater", False), ("ge", "GreaterOrEqual", False)):
    row(getattr(aten, _name).Tensor, getattr(aten, _name).Scalar)(_compare(_onnx, _neg))


def _bitwise(logical: str, bitwise: str) -> Row:
    def lower(L: Lowering, a: Any, b: Any) -> SSAValue:
        dt = L.out_dtype()
        return L.op(logical if dt == np.bool_ else bitwise, [L.tensor(a, dt), L.tensor(b, dt)])

    return lower


for _name, _l, _b in (("bitwise_and", "And", "BitwiseAnd"), ("bitwise_or", "Or", "BitwiseOr"), ("bitwise_xor", "Xor", "BitwiseXor")):
    row(getattr(aten, _name).Tensor, getattr(aten, _name).Scalar)(_bitwise(_l, _b))
for _name, _l in (("logical_and", "And"), ("logical_or", "Or"), ("logical_xor", "Xor")):
    row(getattr(aten, _name).default)(lambda L, a, b, _l=_l: L.op(_l, [L.tensor(a, np.dtype(np.bool_)), L.tensor(b, np.dtype(np.bool_))]))


@row(aten.bitwise_not.default)
def _bitwise_not(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("Not" if L.out_dtype() == np.bool_ else "BitwiseNot", [x])


row(aten.logical_not.default)(lambda L, x: L.op("Not", [L.cast(x, np.dtype(np.bool_))]))


def _unary(onnx_type: str) -> Row:
    def lower(L: Lowering, x: SSAValue) -> SSAValue:
        return L.op(onnx_type, [L.cast(x, L.out_dtype())], specs=[L.out_spec()])

    return lower


for _name, _onnx in (("neg", "Neg"), ("exp", "Exp"), ("log", "Log"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid"),
                     ("sqrt", "Sqrt"), ("erf", "Erf"), ("sin", "Sin"), ("cos", "Cos"), ("relu", "Relu"), ("abs", "Abs"),
                     ("reciprocal", "Reciprocal"), ("floor", "Floor"), ("ceil", "Ceil"), ("sign", "Sign"),
                     ("round", "Round"), ("tan", "Tan"), ("atan", "Atan"), ("asin", "Asin"), ("acos", "Acos"),
                     ("sinh", "Sinh"), ("cosh", "Cosh")):
    row(getattr(aten, _name).default)(_unary(_onnx))
row(aten.isnan.default)(lambda L, x: L.op("IsNaN", [x]))
row(aten.isinf.default)(lambda L, x: L.op("IsInf", [x]))


@row(aten.rsqrt.default)
def _rsqrt(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("Reciprocal", [L.op("Sqrt", [L.cast(x, L.out_dtype())])])


@row(aten.log1p.default)
def _log1p(L: Lowering, x: SSAValue) -> SSAValue:
    x = L.cast(x, L.out_dtype())
    return L.op("Log", [L.op("Add", [x, L.const(np.asarray(1, L.out_dtype()))])])


@row(aten.expm1.default)
def _expm1(L: Lowering, x: SSAValue) -> SSAValue:
    x = L.cast(x, L.out_dtype())
    return L.op("Sub", [L.op("Exp", [x]), L.const(np.asarray(1, L.out_dtype()))])


@row(aten.trunc.default)
def _trunc_row(L: Lowering, x: SSAValue) -> SSAValue:
    return _trunc(L, x)


@row(aten.gelu.default)
def _gelu(L: Lowering, x: SSAValue, approximate: str = "none") -> SSAValue:
    return L.op("Gelu", [x], {"approximate": approximate}, specs=[L.out_spec()])


@row(aten.silu.default)
def _silu(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("Mul", [x, L.op("Sigmoid", [x])])


@row(aten.leaky_relu.default)
def _leaky_relu(L: Lowering, x: SSAValue, negative_slope: float = 0.01) -> SSAValue:
    return L.op("LeakyRelu", [x], {"alpha": float(negative_slope)})


@row(aten.clamp.default, aten.clamp.Tensor, aten.hardtanh.default)
def _clamp(L: Lowering, x: SSAValue, lo: Any = None, hi: Any = None) -> SSAValue:
    dt = L.out_dtype()
    x = L.cast(x, dt)
    if lo is not None:
        x = L.op("Max", [x, L.tensor(lo, dt)])
    if hi is not None:
        x = L.op("Min", [x, L.tensor(hi, dt)])
    return x


row(aten.clamp_min.default)(lambda L, x, lo: _clamp(L, x, lo, None))
row(aten.clamp_max.default)(lambda L, x, hi: _clamp(L, x, None, hi))


@row(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def _where(L: Lowering, cond: SSAValue, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    return L.op("Where", [L.cast(cond, np.dtype(np.bool_)), L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])


@row(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def _masked_fill(L: Lowering, x: SSAValue, mask: SSAValue, value: Any) -> SSAValue:
    return _where(L, mask, value, x)


@row(aten.remainder.Tensor, aten.remainder.Scalar)
def _remainder(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    a, b = L.tensor(a, dt), L.tensor(b, dt)
    if np.issubdtype(dt, np.integer):
        return L.op("Mod", [a, b])  # fmod=0: the sign of the divisor, as Python's %
    return L.op("Sub", [a, L.op("Mul", [L.op("Floor", [L.op("Div", [a, b])]), b])])


@row(aten.fmod.Tensor, aten.fmod.Scalar)
def _fmod(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    return L.op("Mod", [L.tensor(a, dt), L.tensor(b, dt)], {"fmod": 1})
