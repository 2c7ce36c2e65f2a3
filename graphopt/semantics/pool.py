"""Pooling rules: max, average, Lp and global pooling, MaxUnpool."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.nn_common import pad_spatial, pool_geometry, windows


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _pool_setup(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode):
    d = x.ndim - 2
    strides = list(strides or [1] * d)
    dilations = list(dilations or [1] * d)
    out, begin, end = pool_geometry(x.shape[2:], kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    return d, strides, dilations, out, begin, end


_FOLD_MAX = 64  # kernel positions up to which a window op is folded position by position


def _window_fold(win: np.ndarray, d: int, ufunc: np.ufunc, dtype: np.dtype) -> np.ndarray:
    """``ufunc`` over the last ``d`` (kernel) axes of a windows view, one kernel position at a
    time: k passes over the output instead of a reduction over a strided view, which numpy
    runs element by element. Large kernels (a pool over most of a plane) reduce at once."""
    if math.prod(win.shape[-d:]) > _FOLD_MAX:
        return ufunc.reduce(win.astype(dtype, copy=False), axis=tuple(range(-d, 0)))
    positions = list(np.ndindex(*win.shape[-d:]))
    y = np.array(win[(..., *positions[0])], dtype=dtype)
    for pos in positions[1:]:
        ufunc(y, win[(..., *pos)], out=y)
    return y


@rule("MaxPool")
def max_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: Sequence[int] | None = None,
    kernel_shape: Sequence[int] = (),
    pads: Sequence[int] | None = None,
    storage_order: int = 0,
    strides: Sequence[int] | None = None,
    _num_outputs: int = 2,
) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Indices only when the graph asks for them (``_num_outputs``): most pools have none."""
    d, strides, dilations, out, begin, end = _pool_setup(
        x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode
    )
    xp = pad_spatial(x, begin, end, _lowest(x.dtype))
    win = windows(xp, out, kernel_shape, strides, dilations)
    if _num_outputs < 2:  # np.maximum propagates NaN, as argmax picks it
        return _window_fold(win, d, np.maximum, x.dtype)
    flat = win.reshape(win.shape[: 2 + d] + (-1,))
    arg = np.argmax(flat, axis=-1)
    y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    # Indices address the unpadded input, flattened (row- or column-major) with N and C.
    spatial = x.shape[2:]
    k_pos = np.unravel_index(arg, tuple(kernel_shape))
    coords = []
    for i in range(d):
        o = np.arange(out[i]).reshape((-1,) + (1,) * (d - 1 - i))
        coords.append(o * strides[i] + k_pos[i] * dilations[i] - begin[i])
    order = "F" if storage_order else "C"
    sp_index = np.ravel_multi_index(tuple(coords), spatial, order=order, mode="clip")
    nc = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[0], x.shape[1], *([1] * d))
    idx = nc * math.prod(spatial) + sp_index
    return y, idx.astype(np.int64)


@rule("AveragePool")
def average_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    count_include_pad: int = 0,
    dilations: Sequence[int] | None = None,
    kernel_shape: Sequence[int] = (),
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    d, strides, dilations, out, begin, end = _pool_setup(
        x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode
    )
    # Sums of a small window's values: float32 holds them to a few ulp (as onnxruntime's
    # kernel sums); larger windows, integers, bfloat16 and float8 go through float64.
    small = math.prod(kernel_shape) <= _FOLD_MAX
    acc = np.dtype(np.float32) if x.dtype in (np.float16, np.float32) and small else np.dtype(np.float64)
    xp = pad_spatial(x.astype(acc, copy=False), begin, end, 0)
    total = _window_fold(windows(xp, out, kernel_shape, strides, dilations), d, np.add, acc)
    ones = np.ones(x.shape[2:], dtype=acc)
    if count_include_pad:
        # Declared padding counts; the overhang of a ceil_mode window does not.
        declared_end = declared_end_pads(pads, auto_pad, end)
        ones = pad_spatial(ones, begin, declared_end, 1)
        ones = pad_spatial(ones, [0] * d, [e - de for e, de in zip(end, declared_end)], 0)
    else:
        ones = pad_spatial(ones, begin, end, 0)
    count = windows(ones, out, kernel_shape, strides, dilations).sum(axis=tuple(range(-d, 0)))
    return (total / count).astype(x.dtype)


def declared_end_pads(pads: Sequence[int] | None, auto_pad: str, end: Sequence[int]) -> list[int]:
    """The end pads a pool declares (auto_pad's, or ``pads``' second half), capped at what the
    sweep reads (``end``, from pool_geometry): count_include_pad counts these, and not the
    overhang of a ceil_mode window past them."""
    d = len(end)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        declared = list(end)
    else:
        declared = list(pads[d:]) if pads else [0] * d
    return [min(e, p) for e, p in zip(end, declared)]


@rule("LpPool")
def lp_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: Sequence[int] | None = None,
    kernel_shape: Sequence[int] = (),
    p: int = 2,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    d, strides, dilations, out, begin, end = _pool_setup(
        x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode
    )
    xp = pad_spatial(np.abs(x).astype(np.float64) ** p, begin, end, 0)
    s = windows(xp, out, kernel_shape, strides, dilations).sum(axis=tuple(range(-d, 0)))
    return (s ** (1.0 / p)).astype(x.dtype)


@rule("GlobalAveragePool")
def global_average_pool(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype)


@rule("GlobalMaxPool")
def global_max_pool(x: np.ndarray) -> np.ndarray:
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


@rule("GlobalLpPool")
def global_lp_pool(x: np.ndarray, *, p: int = 2) -> np.ndarray:
    s = (np.abs(x).astype(np.float64) ** p).sum(axis=tuple(range(2, x.ndim)), keepdims=True)
    return (s ** (1.0 / p)).astype(x.dtype)


@rule("MaxUnpool")
def max_unpool(
    x: np.ndarray,
    indices: np.ndarray,
    output_shape: np.ndarray | None = None,
    *,
    kernel_shape: Sequence[int] = (),
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    d = x.ndim - 2
    strides = list(strides or [1] * d)
    pads = list(pads or [0] * (2 * d))
    pooled = x.shape[:2] + tuple(
        (x.shape[2 + i] - 1) * strides[i] + kernel_shape[i] - pads[i] - pads[i + d] for i in range(d)
    )
    shape = tuple(int(v) for v in output_shape) if output_shape is not None else pooled
    # Indices address the unpooled shape MaxPool saw; re-address them in the requested one.
    flat = np.ravel_multi_index(np.unravel_index(indices.reshape(-1), pooled), shape)
    y = np.zeros(math.prod(shape), dtype=x.dtype)
    y[flat] = x.reshape(-1)
    return y.reshape(shape)
