"""Elementwise rules: unary math, broadcasting binary ops, activations and casts."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
from numpy.polynomial import chebyshev as _cheb

from graphopt.semantics import rule

# Narrow float types that numpy either lacks loops for (ml_dtypes) or evaluates with
# float16 rounding at every step; rules compute them in float32 and round once at the end.
_NARROW_FLOATS = frozenset(
    np.dtype(t)
    for t in (
        np.float16,
        ml_dtypes.bfloat16,
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e5m2fnuz,
        ml_dtypes.float8_e8m0fnu,
        ml_dtypes.float4_e2m1fn,
    )
)


def _wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype in _NARROW_FLOATS else x


def _out(value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` as an array of ``dtype``; ufuncs on 0-d arrays return numpy scalars."""
    return np.asarray(value).astype(dtype, copy=False)


def _is_int(dtype: np.dtype) -> bool:
    return dtype.kind in "iu"


# ---------------------------------------------------------------------------- erf
# erf has no numpy ufunc. It is evaluated from two Chebyshev interpolants fitted once at
# import against math.erf/erfc (float64 results within ~5e-15 relative). That is about twice
# as fast as np.frompyfunc(math.erf) on 1M floats (and as fast on small arrays), and also
# gives an erfc that is accurate in the tail, which Gelu needs:
#   |x| < 3:  erf(x)  = x * P(x^2)
#   |x| >= 3: erfc(|x|) = exp(-x^2) / |x| * Q(1 / x^2)

_ERF_SPLIT = 3.0


def _erfc_scaled(x: float) -> float:
    """erfc(x) * x * exp(x^2), for x >= 3."""
    if x < 20.0:
        return math.erfc(x) * x * math.exp(x * x)
    # Continued fraction; math.erfc underflows past ~26, and this converges fast here.
    f = x
    for k in range(60, 0, -1):
        f = x + (k / 2) / f
    return x / (f * math.sqrt(math.pi))


def _fit_small(t: np.ndarray) -> np.ndarray:
    return np.array([math.erf(math.sqrt(v)) / math.sqrt(v) for v in t])


def _fit_large(u: np.ndarray) -> np.ndarray:
    return np.array([_erfc_scaled(1.0 / math.sqrt(v)) for v in u])


_ERF_P = _cheb.Chebyshev.interpolate(_fit_small, 20, domain=[0.0, _ERF_SPLIT**2])
_ERFC_Q = _cheb.Chebyshev.interpolate(_fit_large, 14, domain=[0.0, 1.0 / _ERF_SPLIT**2])


def _erf_erfc(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """erf(x) and erfc(x) in float64, each accurate relative to itself."""
    x = np.asarray(x, dtype=np.float64)
    erf = np.empty_like(x)
    erfc = np.empty_like(x)
    a = np.abs(x)
    small = a < _ERF_SPLIT
    xs = x[small]
    erf[small] = xs * _ERF_P(xs * xs)
    erfc[small] = 1.0 - erf[small]
    large = ~small & ~np.isnan(x)
    al = a[large]
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        tail = np.exp(-al * al) / al * _ERFC_Q(1.0 / (al * al))
    tail = np.where(np.isinf(al), 0.0, tail)
    positive = x[large] > 0
    erf[large] = np.where(positive, 1.0 - tail, tail - 1.0)
    erfc[large] = np.where(positive, tail, 2.0 - tail)
    nan = np.isnan(x)
    erf[nan] = np.nan
    erfc[nan] = np.nan
    return erf, erfc


def _erf(x: np.ndarray) -> np.ndarray:
    return _erf_erfc(x)[0]


def _erfc(x: np.ndarray) -> np.ndarray:
    return _erf_erfc(x)[1]


# ---------------------------------------------------------------------- unary math

_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Neg": np.negative,
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Reciprocal": np.reciprocal,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.rint,  # half to even, as ONNX asks
    "Sign": np.sign,
    "Sin": np.sin,
    "Cos": np.cos,
    "Tan": np.tan,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Sinh": np.sinh,
    "Cosh": np.cosh,
    "Tanh": np.tanh,
    "Asinh": np.arcsinh,
    "Acosh": np.arccosh,
    "Atanh": np.arctanh,
    "Erf": _erf,
    "Not": np.logical_not,
    "BitwiseNot": np.invert,
}


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _out(fn(_wide(x)), x.dtype)

    apply.__name__ = fn.__name__
    return apply


for _op, _fn in _UNARY.items():
    rule(_op)(_unary(_fn))


@rule("Abs")
def abs_(x: np.ndarray) -> np.ndarray:
    return _out(np.abs(x), x.dtype)


@rule("IsNaN")
def isnan(x: np.ndarray) -> np.ndarray:
    return _out(np.isnan(_wide(x)), np.bool_)


@rule("IsInf")
def isinf(x: np.ndarray, *, detect_negative: int = 1, detect_positive: int = 1) -> np.ndarray:
    x = _wide(x)
    found = np.zeros(x.shape, dtype=np.bool_)
    if detect_positive:
        found |= np.isposinf(x)
    if detect_negative:
        found |= np.isneginf(x)
    return found


# --------------------------------------------------------------------------- binary


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _out(fn(_wide(a), _wide(b)), a.dtype)

    apply.__name__ = fn.__name__
    return apply


def _compare(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _out(fn(_wide(a), _wide(b)), np.bool_)

    apply.__name__ = fn.__name__
    return apply


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not (_is_int(a.dtype) and _is_int(b.dtype)):
        return np.true_divide(a, b)
    # C semantics: truncate toward zero, where numpy floors.
    q = np.floor_divide(a, b)
    inexact = np.remainder(a, b) != 0
    return np.where(inexact & ((a < 0) != (b < 0)), q + 1, q)


for _op, _fn in {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _int_div,
    "BitwiseAnd": np.bitwise_and,
    "BitwiseOr": np.bitwise_or,
    "BitwiseXor": np.bitwise_xor,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Xor": np.logical_xor,
}.items():
    rule(_op)(_binary(_fn))

for _op, _fn in {
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
    "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal,
}.items():
    rule(_op)(_compare(_fn))


@rule("Pow")
def pow_(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Result has the base's dtype whatever the exponent's type."""
    with np.errstate(all="ignore"):
        if _is_int(x.dtype) and _is_int(y.dtype):
            whole = np.power(x.astype(np.int64), np.maximum(y, 0).astype(np.int64))
            # Negative integer exponents: only |base| == 1 gives a non-zero integer.
            frac = np.trunc(np.power(x.astype(np.float64), y.astype(np.float64)))
            return _out(np.where(y < 0, frac.astype(np.int64), whole), x.dtype)
        if _is_int(x.dtype):
            return _out(np.trunc(np.power(x.astype(np.float64), y.astype(np.float64))), x.dtype)
        xw = _wide(x)
        yw = _wide(y)
        work = np.result_type(xw, yw) if yw.dtype.kind == "f" else xw.dtype
        return _out(np.power(xw.astype(work), yw.astype(work)), x.dtype)


@rule("Mod")
def mod(a: np.ndarray, b: np.ndarray, *, fmod: int = 0) -> np.ndarray:
    """fmod=0: sign of the divisor (Python %); fmod=1: sign of the dividend (C fmod)."""
    with np.errstate(all="ignore"):
        fn = np.fmod if fmod else np.mod
        return _out(fn(_wide(a), _wide(b)), a.dtype)


@rule("BitShift")
def bitshift(x: np.ndarray, y: np.ndarray, *, direction: str = "") -> np.ndarray:
    if direction == "LEFT":
        return _out(np.left_shift(x, y.astype(x.dtype)), x.dtype)
    if direction == "RIGHT":
        return _out(np.right_shift(x, y.astype(x.dtype)), x.dtype)
    raise ValueError(f"BitShift direction must be LEFT or RIGHT, not {direction!r}")


def _variadic(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(*xs: np.ndarray | None) -> np.ndarray:
        arrays = [x for x in xs if x is not None]
        acc = _wide(arrays[0])
        for x in arrays[1:]:
            acc = fn(acc, _wide(x))
        return _out(acc, arrays[0].dtype)

    apply.__name__ = fn.__name__
    return apply


rule("Max")(_variadic(np.maximum))
rule("Min")(_variadic(np.minimum))
rule("Sum")(_variadic(np.add))


@rule("Mean")
def mean(*xs: np.ndarray | None) -> np.ndarray:
    arrays = [_wide(x) for x in xs if x is not None]
    total = arrays[0]
    for x in arrays[1:]:
        total = total + x
    return _out(total / len(arrays), next(x for x in xs if x is not None).dtype)


@rule("Where")
def where(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _out(np.where(condition, x, y), x.dtype)


@rule("PRelu")
def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    xw = _wide(x)
    return _out(np.where(xw < 0, xw * _wide(slope), xw), x.dtype)


@rule("Clip")
def clip(
    x: np.ndarray,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    *,
    min: float | None = None,
    max: float | None = None,
) -> np.ndarray:
    """Bounds come as inputs (opset >= 11) or attributes (older); min > max gives max."""
    lo_v = lo if lo is not None else min
    hi_v = hi if hi is not None else max
    y = _wide(x)
    if lo_v is not None:
        y = np.maximum(y, _bound(lo_v, x.dtype, y.dtype))
    if hi_v is not None:
        y = np.minimum(y, _bound(hi_v, x.dtype, y.dtype))
    return _out(y, x.dtype)


def _bound(value: Any, dtype: np.dtype, work: np.dtype) -> np.ndarray:
    v = np.asarray(value)
    if _is_int(dtype) and v.dtype.kind == "f":
        # The opset-6 defaults are +-FLT_MAX, which would wrap in an integer type.
        info = np.iinfo(dtype)
        v = np.clip(v, info.min, info.max)
    return v.astype(work)


# ---------------------------------------------------------------------- activations


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.zeros((), x.dtype), x)


def _activation(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Evaluate ``fn`` with narrow floats widened and the result in the input dtype."""

    def apply(x: np.ndarray, **attrs: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _out(fn(_wide(x), **attrs), x.dtype)

    apply.__name__ = fn.__name__
    apply.__doc__ = fn.__doc__
    return apply


@rule("Relu")
@_activation
def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.zeros((), x.dtype))


@rule("LeakyRelu")
@_activation
def leaky_relu(x: np.ndarray, *, alpha: float = 0.01) -> np.ndarray:
    return np.where(x < 0, alpha * x, x)


@rule("Elu")
@_activation
def elu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    return np.where(x < 0, alpha * np.expm1(x), x)


@rule("Selu")
@_activation
def selu(
    x: np.ndarray,
    *,
    alpha: float = 1.67326319217681884765625,
    gamma: float = 1.05070102214813232421875,
) -> np.ndarray:
    return gamma * np.where(x > 0, x, alpha * np.expm1(x))


@rule("Celu")
@_activation
def celu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    return np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(x / alpha))


@rule("Sigmoid")
@_activation
def sigmoid(x: np.ndarray) -> np.ndarray:
    return _sigmoid(x)


@rule("HardSigmoid")
@_activation
def hard_sigmoid(x: np.ndarray, *, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    return np.clip(alpha * x + beta, 0, 1)


@rule("HardSwish")
@_activation
def hard_swish(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x / 6 + 0.5, 0, 1)


@rule("Softplus")
@_activation
def softplus(x: np.ndarray) -> np.ndarray:
    return _softplus(x)


@rule("Softsign")
@_activation
def softsign(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.abs(x))


@rule("ThresholdedRelu")
@_activation
def thresholded_relu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > alpha, x, 0)


@rule("Gelu")
@_activation
def gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    # erfc keeps the far negative tail accurate, where 1 + erf(x) cancels to zero.
    xd = x.astype(np.float64)
    return (0.5 * xd * _erfc(-xd / math.sqrt(2))).astype(x.dtype)


@rule("Mish")
@_activation
def mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(_softplus(x))


@rule("Swish")
@_activation
def swish(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    return x * _sigmoid(alpha * x)


@rule("SwiGLU")
def swiglu(a: np.ndarray, b: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    with np.errstate(all="ignore"):
        aw = _wide(a)
        return _out(aw * _sigmoid(alpha * aw) * _wide(b), a.dtype)


@rule("ai.onnx.ml::Binarizer")
def binarizer(x: np.ndarray, *, threshold: float = 0.0) -> np.ndarray:
    return _out(_wide(x) > threshold, x.dtype)


@rule("Shrink")
def shrink(x: np.ndarray, *, bias: float = 0.0, lambd: float = 0.5) -> np.ndarray:
    xw = _wide(x).astype(np.float64) if _is_int(x.dtype) else _wide(x)
    y = np.where(xw < -lambd, xw + bias, np.where(xw > lambd, xw - bias, 0))
    return _out(y, x.dtype)


# -------------------------------------------------------------------------- strings


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _strings(x: np.ndarray) -> np.ndarray:
    flat = [_text(v) for v in x.reshape(-1)]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(x.shape)


@rule("StringConcat")
def string_concat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray(np.add(_strings(x), _strings(y)), dtype=object)


@rule("RegexFullMatch")
def regex_full_match(x: np.ndarray, *, pattern: str = "") -> np.ndarray:
    """Python's re stands in for RE2; they agree on the common syntax."""
    compiled = re.compile(pattern)
    found = [compiled.fullmatch(_text(v)) is not None for v in x.reshape(-1)]
    return np.array(found, dtype=np.bool_).reshape(x.shape)


# ---------------------------------------------------------------------------- casts

_ONNX_DTYPES: dict[int, np.dtype] = {
    k: np.dtype(v)
    for k, v in {
        1: np.float32,
        2: np.uint8,
        3: np.int8,
        4: np.uint16,
        5: np.int16,
        6: np.int32,
        7: np.int64,
        8: np.object_,
        9: np.bool_,
        10: np.float16,
        11: np.float64,
        12: np.uint32,
        13: np.uint64,
        14: np.complex64,
        15: np.complex128,
        16: ml_dtypes.bfloat16,
        17: ml_dtypes.float8_e4m3fn,
        18: ml_dtypes.float8_e4m3fnuz,
        19: ml_dtypes.float8_e5m2,
        20: ml_dtypes.float8_e5m2fnuz,
        21: ml_dtypes.uint4,
        22: ml_dtypes.int4,
        23: ml_dtypes.float4_e2m1fn,
        24: ml_dtypes.float8_e8m0fnu,
        25: ml_dtypes.uint2,
        26: ml_dtypes.int2,
        27: ml_dtypes.float6_e2m3fn,
        28: ml_dtypes.float6_e3m2fn,
    }.items()
}

_FLOAT8 = frozenset(
    np.dtype(t)
    for t in (
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e5m2fnuz,
    )
)
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)
_STRING = np.dtype(np.object_)


def _to_string(x: np.ndarray) -> np.ndarray:
    def text(v: Any) -> str:
        if isinstance(v, float | np.floating):
            if math.isnan(v):
                return "NaN"
            if math.isinf(v):
                return "INF" if v > 0 else "-INF"
            return str(v)  # shortest repr that round-trips, in the value's own precision
        if isinstance(v, bool | np.bool_):
            return str(int(v))
        return str(v)

    flat = [text(v) for v in _native(x).reshape(-1)]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(x.shape)


def _from_string(x: np.ndarray, to: np.dtype, saturate: int, round_mode: str) -> np.ndarray:
    def number(v: Any) -> float | int:
        s = _text(v).strip()
        if _is_int(to):
            try:
                return int(s)
            except ValueError:
                return int(float(s))
        return float(s)  # accepts INF, +INF, -INF, NaN in any case, and 1e-5 forms

    flat = [number(s) for s in x.reshape(-1)]
    work = np.uint64 if to == np.uint64 else np.int64 if _is_int(to) else np.float64
    return _cast_numeric(np.array(flat, dtype=work).reshape(x.shape), to, saturate, round_mode)


def _to_e8m0(x: np.ndarray, saturate: int, round_mode: str) -> np.ndarray:
    """Power-of-two scale from the float32 exponent; the sign is ignored (unspecified)."""
    bits = x.astype(np.float32).view(np.uint32)
    exponent = ((bits >> 23) & 0xFF).astype(np.int32)
    mantissa = bits & 0x7FFFFF
    if round_mode == "up":
        exponent += mantissa != 0
    elif round_mode == "nearest":
        exponent += (mantissa > 0x400000) | ((mantissa == 0x400000) & (exponent > 0))
    elif round_mode != "down":
        raise ValueError(f"unknown round_mode {round_mode!r}")
    special = ((bits >> 23) & 0xFF) == 0xFF
    infinite = special & (mantissa == 0)
    if saturate:
        exponent = np.minimum(exponent, 0xFE)
        exponent = np.where(infinite, 0xFE, exponent)
    exponent = np.where(special & ~(infinite & bool(saturate)), 0xFF, exponent)
    return np.minimum(exponent, 0xFF).astype(np.uint8).view(_E8M0).reshape(x.shape)


_ML_INTS = frozenset(
    np.dtype(t) for t in (ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2, ml_dtypes.uint2)
)


def _native(x: np.ndarray) -> np.ndarray:
    """ml_dtypes values as a numpy type that holds them exactly; ml_dtypes lacks many
    direct casts (int4 -> uint2, float6 -> int4 ...)."""
    if x.dtype in _ML_INTS:
        return x.astype(np.int64)
    if x.dtype.kind == "V":
        return x.astype(np.float32)
    return x


def _cast_numeric(x: np.ndarray, to: np.dtype, saturate: int, round_mode: str) -> np.ndarray:
    src = _native(x)
    if to == np.bool_:
        return src != 0
    if to == _E8M0:
        return _to_e8m0(src, saturate, round_mode)
    if to.kind == "V" and src.dtype.kind not in "iuf":
        src = src.astype(np.float64 if src.dtype.kind == "c" else np.uint8)
    if to in _FLOAT8 and saturate:
        # Saturation: out-of-range values and infinities go to the largest finite value.
        big = float(ml_dtypes.finfo(to).max)
        src = np.clip(src if src.dtype.kind == "f" else src.astype(np.float64), -big, big)
    return src.astype(to)


def _cast(x: np.ndarray, to: np.dtype, saturate: int, round_mode: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        if to == _STRING:
            return _to_string(x) if x.dtype != _STRING else x.copy()
        if x.dtype == _STRING or x.dtype.kind in "US":
            return _from_string(x, to, saturate, round_mode)
        return _out(_cast_numeric(x, to, saturate, round_mode), to)


@rule("Cast")
def cast(x: np.ndarray, *, to: int = 1, saturate: int = 1, round_mode: str = "up") -> np.ndarray:
    return _cast(x, _ONNX_DTYPES[to], saturate, round_mode)


@rule("CastLike")
def cast_like(
    x: np.ndarray, target_type: np.ndarray, *, saturate: int = 1, round_mode: str = "up"
) -> np.ndarray:
    to = _STRING if target_type.dtype.kind in "OUS" else target_type.dtype
    return _cast(x, to, saturate, round_mode)


@rule("BitCast")
def bitcast(x: np.ndarray, *, to: int = 1) -> np.ndarray:
    """Same bit width by contract; sub-byte types sit one per byte, in the low bits."""
    return np.array(x, order="C").view(_ONNX_DTYPES[to])
