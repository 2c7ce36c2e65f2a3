"""Quantisation rules: QuantizeLinear, DequantizeLinear and the integer and QLinear products."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.conv import conv_integer
from graphopt.semantics.nn_common import channel, compute_dtype, is_ml, np_dtype


def _qparam(p: np.ndarray, shape: Sequence[int], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point shaped to broadcast against a tensor of ``shape``."""
    rank = len(shape)
    axis = axis % rank if rank else 0
    if p.ndim == 0 or (p.ndim == 1 and p.size == 1 and not block_size):
        return p.reshape(())
    if block_size:
        return np.repeat(p, block_size, axis=axis)[(slice(None),) * axis + (slice(0, shape[axis]),)]
    return p.reshape([-1 if i == axis else 1 for i in range(rank)])


def _is_float_q(dtype: np.dtype) -> bool:
    """True for the float8/float4 quantised types (ml_dtypes floats)."""
    return is_ml(dtype) and np.dtype(dtype).name.startswith("float")


def _saturate_cast(v: np.ndarray, dtype: np.dtype, saturate: bool = True) -> np.ndarray:
    """Cast ``v`` (already rounded if integral) to ``dtype``, clamping out-of-range values."""
    dtype = np.dtype(dtype)
    if _is_float_q(dtype):
        import ml_dtypes

        if saturate or "float4" in dtype.name:
            hi = float(ml_dtypes.finfo(dtype).max)
            v = np.where(np.isnan(v), v, np.clip(v, -hi, hi))
        return v.astype(dtype)
    if is_ml(dtype):
        import ml_dtypes

        info = ml_dtypes.iinfo(dtype)
    else:
        info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def _float_view(x: np.ndarray) -> np.ndarray:
    """Quantised or integer data as float32 (int32 via float64 to stay exact)."""
    return x.astype(np.float64 if x.dtype.itemsize >= 4 and x.dtype.kind in "iu" else np.float32)


@rule("QuantizeLinear")
def quantize_linear(
    x: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
    precision: int = 0,
    saturate: int = 1,
) -> np.ndarray:
    if y_zero_point is not None:
        out = y_zero_point.dtype
    else:
        out = np_dtype(output_dtype) if output_dtype else np.dtype(np.uint8)
    prec = np_dtype(precision) if precision else y_scale.dtype
    prec = compute_dtype(prec)
    scale = _qparam(y_scale, x.shape, axis, block_size).astype(prec)
    v = x.astype(prec) / scale
    if not _is_float_q(out):
        v = np.rint(v.astype(np.float64))
    if y_zero_point is not None:
        v = v + _qparam(_float_view(y_zero_point), x.shape, axis, block_size)
    return _saturate_cast(np.asarray(v, dtype=np.float64 if not _is_float_q(out) else np.float32), out, bool(saturate))


@rule("DequantizeLinear")
def dequantize_linear(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
) -> np.ndarray:
    out = np_dtype(output_dtype) if output_dtype else x_scale.dtype
    v = _float_view(x)
    if x_zero_point is not None:
        v = v - _qparam(_float_view(x_zero_point), x.shape, axis, block_size)
    ct = compute_dtype(out)
    scale = _qparam(x_scale, x.shape, axis, block_size).astype(ct)
    return (v.astype(ct) * scale).astype(out)


@rule("DynamicQuantizeLinear")
def dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = min(0.0, float(x.min())) if x.size else 0.0
    hi = max(0.0, float(x.max())) if x.size else 0.0
    scale = np.float32((hi - lo) / 255.0)
    zp = np.clip(np.rint(-lo / scale), 0, 255) if scale else 0.0
    y = np.clip(np.rint(x / scale) + zp, 0, 255) if scale else np.full(x.shape, zp)
    return y.astype(np.uint8), np.array(scale, dtype=np.float32), np.array(zp, dtype=np.uint8)


def _shift(v: np.ndarray, zp: np.ndarray | None, row_axis: bool) -> np.ndarray:
    """``v - zp`` in int32, ``zp`` being per-tensor, per row (A) or per column (B)."""
    v = v.astype(np.int32)
    if zp is None:
        return v
    z = zp.astype(np.int32)
    if z.ndim == 1 and z.size > 1 and row_axis:
        z = z.reshape(-1, 1)
    return v - z


@rule("MatMulInteger")
def matmul_integer(
    a: np.ndarray, b: np.ndarray, a_zero_point: np.ndarray | None = None, b_zero_point: np.ndarray | None = None
) -> np.ndarray:
    return np.asarray(np.matmul(_shift(a, a_zero_point, True), _shift(b, b_zero_point, False))).astype(np.int32)


def _requantize(acc: np.ndarray, scale: np.ndarray, y_scale: np.ndarray, y_zero_point: np.ndarray) -> np.ndarray:
    v = np.rint(acc.astype(np.float64) * scale / y_scale.astype(np.float64))
    return _saturate_cast(v + _float_view(y_zero_point), y_zero_point.dtype)


@rule("QLinearMatMul")
def qlinear_matmul(
    a: np.ndarray,
    a_scale: np.ndarray,
    a_zero_point: np.ndarray,
    b: np.ndarray,
    b_scale: np.ndarray,
    b_zero_point: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray,
) -> np.ndarray:
    if _is_float_q(a.dtype) or _is_float_q(y_zero_point.dtype):
        fa = (_float_view(a) - _float_view(a_zero_point)) * a_scale
        fb = (_float_view(b) - _float_view(b_zero_point)) * b_scale
        return quantize_linear(np.matmul(fa, fb), y_scale, y_zero_point)
    acc = np.matmul(_shift(a, a_zero_point, True).astype(np.int64), _shift(b, b_zero_point, False).astype(np.int64))
    scale = a_scale.astype(np.float64).reshape(-1, 1) if a_scale.size > 1 else a_scale.astype(np.float64)
    scale = scale * (b_scale.astype(np.float64) if b_scale.size > 1 else b_scale.astype(np.float64).reshape(()))
    return _requantize(np.asarray(acc), scale, y_scale, y_zero_point)


@rule("QLinearConv")
def qlinear_conv(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray,
    w: np.ndarray,
    w_scale: np.ndarray,
    w_zero_point: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray,
    b: np.ndarray | None = None,
    **attrs,
) -> np.ndarray:
    acc = conv_integer(x, w, x_zero_point, w_zero_point, **attrs).astype(np.int64)
    if b is not None:
        acc = acc + channel(b.astype(np.int64), acc.ndim)
    ws = w_scale.astype(np.float64)
    scale = x_scale.astype(np.float64).reshape(()) * (channel(ws, acc.ndim) if ws.size > 1 else ws.reshape(()))
    return _requantize(acc, scale, y_scale, y_zero_point)
