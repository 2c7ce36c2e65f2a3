"""Convolution rules: Conv, ConvInteger, ConvTranspose."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.nn_common import is_ml, pad_spatial, pool_geometry, windows


def _accumulator(dtype: np.dtype) -> np.dtype:
    """Where sums of products of ``dtype`` accumulate: half precisions widen to float32
    (numpy's float16 matmul has no BLAS kernel and rounds every partial sum)."""
    return np.dtype(np.float32) if dtype == np.float16 or is_ml(dtype) else np.dtype(dtype)


def _conv_core(
    x: np.ndarray,
    w: np.ndarray,
    *,
    auto_pad: str,
    dilations: Sequence[int] | None,
    group: int,
    kernel_shape: Sequence[int] | None,
    pads: Sequence[int] | None,
    strides: Sequence[int] | None,
    acc: np.dtype,
) -> np.ndarray:
    d = x.ndim - 2
    kernel = list(w.shape[2:])
    strides = list(strides or [1] * d)
    dilations = list(dilations or [1] * d)
    out, begin, end = pool_geometry(x.shape[2:], kernel, strides, dilations, pads, auto_pad)
    xp = pad_spatial(x.astype(acc, copy=False), begin, end, 0)
    n, c = x.shape[:2]
    m = w.shape[0]
    g = group
    cols = windows(xp, out, kernel, strides, dilations)  # (N, C, *out, *k)
    k_axes = tuple(range(2 + d, 2 + 2 * d))
    o_axes = tuple(range(2, 2 + d))
    cols = cols.reshape((n, g, c // g) + cols.shape[2:])
    cols = cols.transpose((0, 1, 2) + tuple(a + 1 for a in k_axes) + tuple(a + 1 for a in o_axes))
    cols = cols.reshape(n, g, (c // g) * math.prod(kernel), math.prod(out))  # im2col copy
    wm = w.astype(acc, copy=False).reshape(g, m // g, -1)
    y = np.matmul(wm, cols)  # (N, G, M/G, prod(out))
    return y.reshape((n, m) + tuple(out))


@rule("Conv")
def conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: Sequence[int] | None = None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    y = _conv_core(
        x, w, auto_pad=auto_pad, dilations=dilations, group=group, kernel_shape=kernel_shape,
        pads=pads, strides=strides, acc=_accumulator(x.dtype),
    )
    if b is not None:
        y = y + b.astype(y.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))
    return y.astype(x.dtype, copy=False)


@rule("ConvInteger")
def conv_integer(
    x: np.ndarray,
    w: np.ndarray,
    x_zero_point: np.ndarray | None = None,
    w_zero_point: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: Sequence[int] | None = None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    xi = x.astype(np.int32)
    wi = w.astype(np.int32)
    if x_zero_point is not None:
        xi = xi - x_zero_point.astype(np.int32)
    if w_zero_point is not None:
        wz = w_zero_point.astype(np.int32)
        wi = wi - (wz.reshape((-1,) + (1,) * (w.ndim - 1)) if wz.size > 1 else wz.reshape(()))
    # Padding must read as the zero point, i.e. zero after the shift above.
    y = _conv_core(
        xi, wi, auto_pad=auto_pad, dilations=dilations, group=group, kernel_shape=kernel_shape,
        pads=pads, strides=strides, acc=np.dtype(np.int32),
    )
    return y.astype(np.int32, copy=False)


@rule("ConvTranspose")
def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: Sequence[int] | None = None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
    output_padding: Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    d = x.ndim - 2
    n, c = x.shape[:2]
    kernel = list(w.shape[2:])
    strides = list(strides or [1] * d)
    dilations = list(dilations or [1] * d)
    output_padding = list(output_padding or [0] * d)
    spatial = x.shape[2:]
    g = group
    mg = w.shape[1]
    full = [strides[i] * (spatial[i] - 1) + (kernel[i] - 1) * dilations[i] + 1 for i in range(d)]
    if output_shape:
        target = list(output_shape)[-d:]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [spatial[i] * strides[i] for i in range(d)]
    else:
        target = None
    if target is not None:
        begin = []
        for i in range(d):
            total = full[i] + output_padding[i] - target[i]
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    else:
        p = list(pads or [0] * (2 * d))
        begin = p[:d]
        target = [full[i] + output_padding[i] - p[i] - p[i + d] for i in range(d)]

    # (N, G, Cg, I) x (G, Cg, Mg, K) -> (N, G, Mg, K, I): every input pixel's contribution.
    acc = _accumulator(x.dtype)
    xg = x.astype(acc, copy=False).reshape((n, g, c // g, -1))
    wg = w.astype(acc, copy=False).reshape((g, c // g, mg, -1))
    contrib = np.matmul(wg.transpose(0, 2, 3, 1).reshape(g, -1, c // g), xg)
    contrib = contrib.reshape((n, g * mg) + tuple(kernel) + tuple(spatial))
    y = np.zeros((n, g * mg) + tuple(full), dtype=acc)
    # col2im: one strided add per kernel offset, not per output pixel.
    for k in np.ndindex(*kernel):
        sl = tuple(
            slice(k[i] * dilations[i], k[i] * dilations[i] + strides[i] * (spatial[i] - 1) + 1, strides[i])
            for i in range(d)
        )
        y[(slice(None), slice(None)) + sl] += contrib[(slice(None), slice(None)) + k]
    end = [target[i] - (full[i] - begin[i]) for i in range(d)]
    y = pad_spatial(y, [-b_ for b_ in begin], end, 0)
    if b is not None:
        y = y + b.astype(acc).reshape((1, -1) + (1,) * d)
    return y.astype(x.dtype, copy=False)
