"""Neural-network rules: matrix products, convolution, pooling, normalisation, quantisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from graphopt import dtypes
from graphopt.semantics import rule

# --------------------------------------------------------------------------- helpers


def _np_dtype(onnx_type: int) -> np.dtype:
    return dtypes.from_onnx(onnx_type).numpy


def _scalar(a: np.ndarray):
    """The one value of a scalar-like input (ONNX models often pass shape [1])."""
    return np.asarray(a).reshape(-1)[0].item()


def _pool_geometry(
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int] | None,
    dilations: Sequence[int] | None,
    pads: Sequence[int] | None,
    auto_pad: str,
    ceil_mode: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """Output sizes and (begin, end) pads for a window sweep over ``spatial``.

    The end pads returned are what the sweep actually reads, so they include the extra
    cells a ceil_mode window hangs over the edge; callers that must tell the two apart
    compare against ``pads``.
    """
    d = len(spatial)
    strides = list(strides or [1] * d)
    dilations = list(dilations or [1] * d)
    pads = list(pads or [0] * (2 * d))
    out, begin, end = [], [], []
    for i in range(d):
        n, s, ek = spatial[i], strides[i], (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-n // s)
            total = max(0, (o - 1) * s + ek - n)
            small = total // 2
            pb = small if auto_pad == "SAME_UPPER" else total - small
            pe = total - pb
        elif auto_pad == "VALID":
            pb = pe = 0
            o = (n - ek) // s + 1
        else:
            pb, pe = pads[i], pads[i + d]
            span = n + pb + pe - ek
            if ceil_mode:
                o = -(-span // s) + 1
                # The last window must start inside the input or its left padding.
                if (o - 1) * s >= n + pb:
                    o -= 1
            else:
                o = span // s + 1
        out.append(max(o, 0))
        begin.append(pb)
        end.append(max(pe, (o - 1) * s + ek - n - pb))
    return out, begin, end


def _pad_spatial(x: np.ndarray, begin: Sequence[int], end: Sequence[int], value) -> np.ndarray:
    lead = [(0, 0)] * (x.ndim - len(begin))
    width = lead + [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if any(w != (0, 0) for w in width):
        x = np.pad(x, width, constant_values=value)
    # Negative pads crop.
    crop = tuple(slice(None) for _ in lead) + tuple(
        slice(-min(b, 0), x.shape[len(lead) + i] + min(e, 0)) for i, (b, e) in enumerate(zip(begin, end))
    )
    return x[crop]


def _windows(
    xp: np.ndarray, out: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> np.ndarray:
    """A read-only view ``(*lead, *out, *kernel)`` of the windows of padded ``xp``."""
    xp = np.ascontiguousarray(xp)
    d = len(kernel)
    lead = xp.ndim - d
    st = xp.strides
    shape = xp.shape[:lead] + tuple(out) + tuple(kernel)
    strides_ = (
        st[:lead]
        + tuple(st[lead + i] * strides[i] for i in range(d))
        + tuple(st[lead + i] * dilations[i] for i in range(d))
    )
    return np.lib.stride_tricks.as_strided(xp, shape, strides_, writeable=False)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """numpy's own dtype to compute in: ml_dtypes types (bfloat16, float8) go via float32."""
    return np.dtype(np.float32) if _is_ml(dtype) else dtype


def _is_ml(dtype: np.dtype) -> bool:
    # Not dtype.kind: ml_dtypes reports float8_e5m2 as "f" but the others as "V".
    return np.dtype(dtype).type.__module__.startswith("ml_dtypes")


def _accumulator(dtype: np.dtype) -> np.dtype:
    """Where sums of products of ``dtype`` accumulate: half precisions widen to float32
    (numpy's float16 matmul has no BLAS kernel and rounds every partial sum)."""
    return np.dtype(np.float32) if dtype == np.float16 or _is_ml(dtype) else np.dtype(dtype)


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


# --------------------------------------------------------------------------- matrix products


@rule("MatMul")
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dt = np.result_type(a, b)
    ct = _compute_dtype(dt)
    return np.asarray(np.matmul(a.astype(ct, copy=False), b.astype(ct, copy=False))).astype(dt, copy=False)


@rule("Gemm")
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
    **_,
) -> np.ndarray:
    dt = a.dtype
    ct = _compute_dtype(dt)
    a = (a.T if transA else a).astype(ct, copy=False)
    b = (b.T if transB else b).astype(ct, copy=False)
    y = a @ b
    if alpha != 1.0:
        y = alpha * y
    if c is not None and beta != 0.0:
        c = c.astype(ct, copy=False)
        y = y + (beta * c if beta != 1.0 else c)
    return np.asarray(y).astype(dt, copy=False)


@rule("Einsum")
def einsum(*inputs: np.ndarray, equation: str = "") -> np.ndarray:
    eq = equation.replace(" ", "")
    dt = np.result_type(*inputs)
    ct = _compute_dtype(dt)
    return np.asarray(np.einsum(eq, *(i.astype(ct, copy=False) for i in inputs))).astype(dt, copy=False)


# --------------------------------------------------------------------------- convolution


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
    out, begin, end = _pool_geometry(x.shape[2:], kernel, strides, dilations, pads, auto_pad)
    xp = _pad_spatial(x.astype(acc, copy=False), begin, end, 0)
    n, c = x.shape[:2]
    m = w.shape[0]
    g = group
    cols = _windows(xp, out, kernel, strides, dilations)  # (N, C, *out, *k)
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
    y = _pad_spatial(y, [-b_ for b_ in begin], end, 0)
    if b is not None:
        y = y + b.astype(acc).reshape((1, -1) + (1,) * d)
    return y.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- pooling


def _pool_setup(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode):
    d = x.ndim - 2
    strides = list(strides or [1] * d)
    dilations = list(dilations or [1] * d)
    out, begin, end = _pool_geometry(x.shape[2:], kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    return d, strides, dilations, out, begin, end


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
) -> tuple[np.ndarray, np.ndarray]:
    d, strides, dilations, out, begin, end = _pool_setup(
        x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode
    )
    xp = _pad_spatial(x, begin, end, _lowest(x.dtype))
    win = _windows(xp, out, kernel_shape, strides, dilations)
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
    acc = np.float64 if x.dtype != np.float64 else x.dtype
    xp = _pad_spatial(x.astype(acc), begin, end, 0)
    total = _windows(xp, out, kernel_shape, strides, dilations).sum(axis=tuple(range(-d, 0)))
    ones = np.ones(x.shape[2:], dtype=acc)
    if count_include_pad:
        # Declared padding counts; the overhang of a ceil_mode window does not.
        declared_end = [min(e, p) for e, p in zip(end, _declared_end(pads, d, auto_pad, end))]
        ones = _pad_spatial(ones, begin, declared_end, 1)
        ones = _pad_spatial(ones, [0] * d, [e - de for e, de in zip(end, declared_end)], 0)
    else:
        ones = _pad_spatial(ones, begin, end, 0)
    count = _windows(ones, out, kernel_shape, strides, dilations).sum(axis=tuple(range(-d, 0)))
    return (total / count).astype(x.dtype)


def _declared_end(pads, d, auto_pad, end):
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return list(end)
    return list(pads[d:]) if pads else [0] * d


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
    xp = _pad_spatial(np.abs(x).astype(np.float64) ** p, begin, end, 0)
    s = _windows(xp, out, kernel_shape, strides, dilations).sum(axis=tuple(range(-d, 0)))
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


# --------------------------------------------------------------------------- normalisation


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast against an (N, C, ...) tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


@rule("BatchNormalization")
def batch_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray,
    input_mean: np.ndarray,
    input_var: np.ndarray,
    *,
    epsilon: float = 1e-5,
    momentum: float = 0.9,
    training_mode: int = 0,
    **_,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    nd = x.ndim
    if not training_mode:
        y = (x - _channel(input_mean, nd)) / np.sqrt(_channel(input_var, nd) + epsilon)
        return (y * _channel(scale, nd) + _channel(b, nd)).astype(x.dtype)
    axes = (0,) + tuple(range(2, nd))
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    y = (x - _channel(mean, nd)) / np.sqrt(_channel(var, nd) + epsilon)
    y = (y * _channel(scale, nd) + _channel(b, nd)).astype(x.dtype)
    running_mean = (input_mean * momentum + mean * (1 - momentum)).astype(input_mean.dtype)
    running_var = (input_var * momentum + var * (1 - momentum)).astype(input_var.dtype)
    return y, running_mean, running_var


@rule("InstanceNormalization")
def instance_normalization(
    x: np.ndarray, scale: np.ndarray, b: np.ndarray, *, epsilon: float = 1e-5
) -> np.ndarray:
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + epsilon)
    return (y * _channel(scale, x.ndim) + _channel(b, x.ndim)).astype(x.dtype)


def _stash(x: np.ndarray, stash_type: int) -> np.ndarray:
    return x.astype(_np_dtype(stash_type) if stash_type else np.float32)


@rule("LayerNormalization")
def layer_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray | None = None,
    *,
    axis: int = -1,
    epsilon: float = 1e-5,
    stash_type: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis = axis % x.ndim
    axes = tuple(range(axis, x.ndim))
    xs = _stash(x, stash_type)
    mean = xs.mean(axis=axes, keepdims=True)
    var = ((xs - mean) ** 2).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + epsilon)
    y = ((xs - mean) * inv_std).astype(x.dtype) * scale
    if b is not None:
        y = y + b
    return y.astype(x.dtype), mean, inv_std


@rule("GroupNormalization")
def group_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    *,
    epsilon: float = 1e-5,
    num_groups: int = 1,
    stash_type: int = 1,
) -> np.ndarray:
    n, c = x.shape[:2]
    xs = _stash(x, stash_type).reshape((n, num_groups, -1))
    mean = xs.mean(axis=-1, keepdims=True)
    var = xs.var(axis=-1, keepdims=True)
    y = ((xs - mean) / np.sqrt(var + epsilon)).reshape(x.shape).astype(x.dtype)
    if scale.size == num_groups and num_groups != c:
        # Opset 18 gave one scale and bias per group.
        scale = np.repeat(scale, c // num_groups)
        bias = np.repeat(bias, c // num_groups)
    return (y * _channel(scale, x.ndim) + _channel(bias, x.ndim)).astype(x.dtype)


@rule("RMSNormalization")
def rms_normalization(
    x: np.ndarray, scale: np.ndarray, *, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1
) -> np.ndarray:
    axes = tuple(range(axis % x.ndim, x.ndim))
    xs = _stash(x, stash_type)
    rms = np.sqrt((xs * xs).mean(axis=axes, keepdims=True) + epsilon)
    return ((xs / rms).astype(x.dtype) * scale).astype(x.dtype)


@rule("MeanVarianceNormalization")
def mean_variance_normalization(x: np.ndarray, *, axes: Sequence[int] = (0, 2, 3)) -> np.ndarray:
    ax = tuple(axes)
    mean = x.mean(axis=ax, keepdims=True)
    std = np.sqrt((x * x).mean(axis=ax, keepdims=True) - mean * mean)
    return ((x - mean) / (std + 1e-9)).astype(x.dtype)


@rule("LRN")
def lrn(
    x: np.ndarray, *, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0, size: int = 1
) -> np.ndarray:
    before, after = (size - 1) // 2, -(-(size - 1) // 2)
    sq = _pad_spatial(x.astype(np.float64) ** 2, [before] + [0] * (x.ndim - 2), [after] + [0] * (x.ndim - 2), 0)
    c = x.shape[1]
    square_sum = sum(sq[:, i : i + c] for i in range(size))
    return (x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)


@rule("Dropout")
def dropout(
    x: np.ndarray,
    ratio: np.ndarray | None = None,
    training_mode: np.ndarray | None = None,
    *,
    seed: int | None = None,
    is_test: int = 1,
    **_,
) -> tuple[np.ndarray, np.ndarray]:
    if training_mode is not None and bool(_scalar(training_mode)):
        if ratio is not None and float(_scalar(ratio)) == 0.0:
            return x.copy(), np.ones(x.shape, dtype=bool)
        # Nothing to reproduce: the mask is random.
        from graphopt.refused import TRAINING_DROPOUT

        raise ValueError(TRAINING_DROPOUT)
    return x.copy(), np.ones(x.shape, dtype=bool)


# --------------------------------------------------------------------------- quantisation


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
    return _is_ml(dtype) and np.dtype(dtype).name.startswith("float")


def _saturate_cast(v: np.ndarray, dtype: np.dtype, saturate: bool = True) -> np.ndarray:
    """Cast ``v`` (already rounded if integral) to ``dtype``, clamping out-of-range values."""
    dtype = np.dtype(dtype)
    if _is_float_q(dtype):
        import ml_dtypes

        if saturate or "float4" in dtype.name:
            hi = float(ml_dtypes.finfo(dtype).max)
            v = np.where(np.isnan(v), v, np.clip(v, -hi, hi))
        return v.astype(dtype)
    if _is_ml(dtype):
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
        out = _np_dtype(output_dtype) if output_dtype else np.dtype(np.uint8)
    prec = _np_dtype(precision) if precision else y_scale.dtype
    prec = _compute_dtype(prec)
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
    out = _np_dtype(output_dtype) if output_dtype else x_scale.dtype
    v = _float_view(x)
    if x_zero_point is not None:
        v = v - _qparam(_float_view(x_zero_point), x.shape, axis, block_size)
    ct = _compute_dtype(out)
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
        acc = acc + _channel(b.astype(np.int64), acc.ndim)
    ws = w_scale.astype(np.float64)
    scale = x_scale.astype(np.float64).reshape(()) * (_channel(ws, acc.ndim) if ws.size > 1 else ws.reshape(()))
    return _requantize(acc, scale, y_scale, y_zero_point)


# --------------------------------------------------------------------------- detection


def _bilinear_samples(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of img (C, H, W) at each (ys[i], xs[j]): the four weighted corners
    as (4, C, len(ys), len(xs)), zero outside the [-1, size] border."""
    _, h, w = img.shape

    def axis(v: np.ndarray, size: int):
        outside = (v < -1) | (v > size)
        v = np.maximum(v, 0)
        lo = np.minimum(v.astype(np.int64), size - 1)
        hi = np.minimum(lo + 1, size - 1)
        frac = np.where(lo >= size - 1, 0.0, v - lo)
        return lo, hi, 1 - frac, frac, outside

    y0, y1, hy, ly, oy = axis(ys, h)
    x0, x1, hx, lx, ox = axis(xs, w)
    keep = ~(oy[:, None] | ox[None, :])
    corners = []
    for yi, wy in ((y0, hy), (y1, ly)):
        for xi, wx in ((x0, hx), (x1, lx)):
            corners.append(img[:, yi[:, None], xi[None, :]] * (wy[:, None] * wx[None, :] * keep))
    return np.stack(corners)


@rule("RoiAlign")
def roi_align(
    x: np.ndarray,
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    coordinate_transformation_mode: str = "half_pixel",
    mode: str = "avg",
    output_height: int = 1,
    output_width: int = 1,
    sampling_ratio: int = 0,
    spatial_scale: float = 1.0,
) -> np.ndarray:
    half = coordinate_transformation_mode == "half_pixel"
    out = np.zeros((rois.shape[0], x.shape[1], output_height, output_width), dtype=np.float64)
    for r, (roi, b) in enumerate(zip(rois.astype(np.float64), batch_indices)):
        x1, y1, x2, y2 = roi * spatial_scale - (0.5 if half else 0.0)
        roi_w, roi_h = x2 - x1, y2 - y1
        if not half:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / output_height, roi_w / output_width
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / output_height))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / output_width))
        ys = y1 + (np.arange(output_height)[:, None] * bin_h + (np.arange(gh) + 0.5) * bin_h / gh).ravel()
        xs = x1 + (np.arange(output_width)[:, None] * bin_w + (np.arange(gw) + 0.5) * bin_w / gw).ravel()
        s = _bilinear_samples(x[int(b)].astype(np.float64), ys, xs)  # (4, C, oh*gh, ow*gw)
        s = s.reshape(4, x.shape[1], output_height, gh, output_width, gw)
        if mode == "max":
            # As onnxruntime: the max over samples of the largest weighted corner.
            out[r] = s.max(axis=(0, 3, 5))
        else:
            out[r] = s.sum(axis=(0, 3, 5)) / max(gh * gw, 1)
    return out.astype(x.dtype)


@rule("NonMaxSuppression")
def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    max_output_boxes_per_class: np.ndarray | None = None,
    iou_threshold: np.ndarray | None = None,
    score_threshold: np.ndarray | None = None,
    *,
    center_point_box: int = 0,
) -> np.ndarray:
    limit = int(_scalar(max_output_boxes_per_class)) if max_output_boxes_per_class is not None else 0
    iou_max = float(_scalar(iou_threshold)) if iou_threshold is not None else 0.0
    b = boxes.astype(np.float64)
    if center_point_box:
        xc, yc, w, h = np.moveaxis(b, -1, 0)
        y_lo, x_lo, y_hi, x_hi = yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
    else:
        y1, x1, y2, x2 = np.moveaxis(b, -1, 0)
        # Corners may come in either order.
        y_lo, y_hi, x_lo, x_hi = np.minimum(y1, y2), np.maximum(y1, y2), np.minimum(x1, x2), np.maximum(x1, x2)
    area = (y_hi - y_lo) * (x_hi - x_lo)
    selected: list[tuple[int, int, int]] = []
    for n in range(scores.shape[0]):
        # Pairwise IoU of this batch's boxes, computed once for all classes.
        ih = np.clip(np.minimum(y_hi[n][:, None], y_hi[n]) - np.maximum(y_lo[n][:, None], y_lo[n]), 0, None)
        iw = np.clip(np.minimum(x_hi[n][:, None], x_hi[n]) - np.maximum(x_lo[n][:, None], x_lo[n]), 0, None)
        inter = ih * iw
        union = area[n][:, None] + area[n][None, :] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        for c in range(scores.shape[1]):
            sc = scores[n, c]
            order = np.argsort(-sc, kind="stable")
            if score_threshold is not None:
                order = order[sc[order] > float(_scalar(score_threshold))]
            kept: list[int] = []
            for i in order:
                if len(kept) >= limit:
                    break
                if not kept or iou[i, kept].max() <= iou_max:
                    kept.append(int(i))
            selected.extend((n, c, i) for i in kept)
    return np.array(selected, dtype=np.int64).reshape(-1, 3)
