"""Tensor rules: constants, shapes, layout, gather/scatter, padding and resizing."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import ml_dtypes
import numpy as np

from graphopt.semantics import rule

# ONNX TensorProto.DataType codes, for attributes that name a dtype (EyeLike, Range).
_ONNX_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int8),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int16),
    6: np.dtype(np.int32),
    7: np.dtype(np.int64),
    8: np.dtype(object),
    9: np.dtype(np.bool_),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    12: np.dtype(np.uint32),
    13: np.dtype(np.uint64),
    16: np.dtype(ml_dtypes.bfloat16),
}


def _ints(x: np.ndarray | Sequence[int] | None) -> list[int] | None:
    if x is None:
        return None
    return [int(v) for v in np.asarray(x).reshape(-1)]


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _norm_index(idx: np.ndarray, dim: int) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    return np.where(idx < 0, idx + dim, idx)


# --- constants and shape queries -----------------------------------------------------


@rule("Constant")
def constant(
    value: np.ndarray | None = None,
    value_float: float | None = None,
    value_floats: list[float] | None = None,
    value_int: int | None = None,
    value_ints: list[int] | None = None,
    value_string: str | None = None,
    value_strings: list[str] | None = None,
    sparse_value: tuple[np.ndarray, object] | None = None,
) -> np.ndarray:
    if value is not None:
        return np.array(value)
    if value_float is not None:
        return np.array(value_float, dtype=np.float32)
    if value_floats is not None:
        return np.array(value_floats, dtype=np.float32)
    if value_int is not None:
        return np.array(value_int, dtype=np.int64)
    if value_ints is not None:
        return np.array(value_ints, dtype=np.int64)
    if value_string is not None:
        return np.array(value_string, dtype=object)
    if value_strings is not None:
        return np.array(value_strings, dtype=object)
    if sparse_value is not None:
        return _dense(*sparse_value)
    raise ValueError("Constant has no value attribute")


def _dense(values: np.ndarray, sparse: object) -> np.ndarray:
    """A SparseTensorProto's dense value: zeros of ``dims`` with ``values`` at ``indices``,
    given as [NNZ] linear positions or [NNZ, rank] coordinates (ONNX's two forms)."""
    from onnx import numpy_helper

    dims = tuple(int(d) for d in sparse.dims)  # type: ignore[attr-defined]
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)  # type: ignore[attr-defined]
    values = np.asarray(values).reshape(-1)
    out = np.zeros(dims, dtype=values.dtype)
    size = out.size
    if indices.ndim == 2 and indices.shape[1] == len(dims) and len(dims) != 1:
        flat = np.ravel_multi_index(tuple(indices.T), dims) if indices.size else np.zeros(0, np.int64)
    elif indices.ndim == 1 or (indices.ndim == 2 and indices.shape[1] == 1):
        flat = indices.reshape(-1)
    else:
        raise ValueError(f"sparse_value indices of shape {list(indices.shape)} fit neither ONNX form for dims {list(dims)}")
    if len(flat) != len(values) or (flat.size and (flat.min() < 0 or flat.max() >= size)):
        raise ValueError(f"sparse_value: {len(values)} values at {len(flat)} indices within {size} elements do not match")
    out.reshape(-1)[flat] = values
    return out


@rule("Identity")
def identity(x: np.ndarray | list[np.ndarray]) -> np.ndarray | tuple[list[np.ndarray]]:
    # A sequence is a list; wrap it so it is not mistaken for several outputs.
    return (x,) if isinstance(x, list) else x


@rule("Shape")
def shape_(x: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
    # Python slicing clamps exactly as ONNX's start/end do.
    return np.array(x.shape[start:end], dtype=np.int64)


@rule("Size")
def size(x: np.ndarray) -> np.ndarray:
    return np.array(x.size, dtype=np.int64)


# --- reshaping -----------------------------------------------------------------------


@rule("Reshape")
def reshape(
    data: np.ndarray,
    shape_in: np.ndarray | None = None,
    shape: list[int] | None = None,
    allowzero: int = 0,
) -> np.ndarray:
    # Reshape-1 carried the target shape as an attribute.
    target = _ints(shape_in if shape_in is not None else shape)
    if target is None:
        raise ValueError("Reshape needs a shape")
    if not allowzero:
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return np.reshape(data, target)


@rule("Flatten")
def flatten(x: np.ndarray, axis: int = 1) -> np.ndarray:
    axis = axis + x.ndim if axis < 0 else axis
    outer = math.prod(x.shape[:axis])
    return x.reshape(outer, math.prod(x.shape[axis:]))


@rule("Transpose")
def transpose(x: np.ndarray, perm: list[int] | None = None) -> np.ndarray:
    return np.transpose(x, perm)


@rule("Squeeze")
def squeeze(
    data: np.ndarray, axes_in: np.ndarray | None = None, axes: list[int] | None = None
) -> np.ndarray:
    ax = _ints(axes_in if axes_in is not None else axes)
    if ax is None:
        return np.squeeze(data)
    return np.squeeze(data, axis=tuple(_axis(a, data.ndim) for a in ax))


@rule("Unsqueeze")
def unsqueeze(
    data: np.ndarray, axes_in: np.ndarray | None = None, axes: list[int] | None = None
) -> np.ndarray:
    ax = _ints(axes_in if axes_in is not None else axes)
    if ax is None:
        raise ValueError("Unsqueeze needs axes")
    rank = data.ndim + len(ax)
    return np.expand_dims(data, tuple(sorted(_axis(a, rank) for a in ax)))


@rule("Concat")
def concat(*inputs: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.concatenate(inputs, axis=axis)


@rule("Split")
def split(
    x: np.ndarray,
    split_in: np.ndarray | None = None,
    axis: int = 0,
    split: list[int] | None = None,
    num_outputs: int | None = None,
    _num_outputs: int | None = None,
) -> tuple[np.ndarray, ...]:
    """Split ``x``; ``_num_outputs`` (how many outputs the node has) is passed by the
    caller, because old opsets split into equal parts without saying how many."""
    axis = _axis(axis, x.ndim)
    dim = x.shape[axis]
    sizes = _ints(split_in if split_in is not None and split_in.size else split)
    if sizes is None:
        if num_outputs is not None:
            chunk = -(-dim // num_outputs)
            sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(num_outputs)]
        elif _num_outputs is not None:
            if dim % _num_outputs:
                raise ValueError(f"cannot split {dim} into {_num_outputs} equal parts")
            sizes = [dim // _num_outputs] * _num_outputs
        else:
            raise ValueError("Split without split or num_outputs needs _num_outputs")
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@rule("Slice")
def slice_(
    data: np.ndarray,
    starts_in: np.ndarray | None = None,
    ends_in: np.ndarray | None = None,
    axes_in: np.ndarray | None = None,
    steps_in: np.ndarray | None = None,
    starts: list[int] | None = None,
    ends: list[int] | None = None,
    axes: list[int] | None = None,
) -> np.ndarray:
    # Slice-1 had starts/ends/axes attributes; Slice-10 made them (and steps) inputs.
    st = _ints(starts_in if starts_in is not None else starts) or []
    en = _ints(ends_in if ends_in is not None else ends) or []
    ax = _ints(axes_in if axes_in is not None else axes)
    sp = _ints(steps_in)
    ax = list(range(len(st))) if ax is None else [_axis(a, data.ndim) for a in ax]
    sp = [1] * len(st) if sp is None else sp
    index = [slice(None)] * data.ndim
    for a, s, e, k in zip(ax, st, en, sp, strict=True):
        s, e = slice_bounds(s, e, k, data.shape[a])
        index[a] = slice(s, e if e >= 0 else None, k)  # end -1: through the first element
    return data[tuple(index)].copy()


def slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """One axis of an ONNX Slice: (start, end) after ONNX's clamping, which is not Python's
    for a negative step (a start before the first element is clamped to it, where Python
    would make the slice empty; an end of -1 then means through the first element). The
    slice has max(0, ceil((end - start) / step)) elements. The shape rule shares this."""
    if step == 0:
        raise ValueError("Slice step cannot be 0")
    start, end = (start + dim if start < 0 else start), (end + dim if end < 0 else end)
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


# --- gather and scatter --------------------------------------------------------------


@rule("Gather")
def gather(data: np.ndarray, indices: np.ndarray, axis: int = 0) -> np.ndarray:
    axis = _axis(axis, data.ndim)
    return np.take(data, _norm_index(indices, data.shape[axis]), axis=axis)


@rule("GatherElements")
def gather_elements(data: np.ndarray, indices: np.ndarray, axis: int = 0) -> np.ndarray:
    axis = _axis(axis, data.ndim)
    return np.take_along_axis(data, _norm_index(indices, data.shape[axis]), axis=axis)


@rule("GatherND")
def gather_nd(data: np.ndarray, indices: np.ndarray, batch_dims: int = 0) -> np.ndarray:
    b = batch_dims
    k = indices.shape[-1]
    batch_shape = data.shape[:b]
    n_batch = math.prod(batch_shape)
    d = data.reshape((n_batch, *data.shape[b:]))
    idx = indices.reshape((n_batch, *indices.shape[b:]))
    batch = np.arange(n_batch).reshape((n_batch,) + (1,) * (idx.ndim - 2))
    coords = tuple(_norm_index(idx[..., j], d.shape[1 + j]) for j in range(k))
    out = d[(batch, *coords)]
    return out.reshape(batch_shape + indices.shape[b:-1] + data.shape[b + k :])


_SCATTER_UFUNCS: dict[str, np.ufunc] = {
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


def _scatter(
    out: np.ndarray, index: tuple[np.ndarray, ...], updates: np.ndarray, reduction: str
) -> None:
    if reduction == "none":
        out[index] = updates
    elif reduction in _SCATTER_UFUNCS:
        _SCATTER_UFUNCS[reduction].at(out, index, updates)
    else:
        raise ValueError(f"unknown scatter reduction {reduction!r}")


@rule("ScatterElements", "Scatter")
def scatter_elements(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    axis: int = 0,
    reduction: str = "none",
) -> np.ndarray:
    axis = _axis(axis, data.ndim)
    index = list(np.indices(indices.shape, sparse=True))
    index[axis] = _norm_index(indices, data.shape[axis])
    out = data.copy()
    _scatter(out, tuple(index), updates, reduction)
    return out


@rule("ScatterND")
def scatter_nd(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, reduction: str = "none"
) -> np.ndarray:
    k = indices.shape[-1]
    index = tuple(_norm_index(indices[..., j], data.shape[j]) for j in range(k))
    out = data.copy()
    _scatter(out, index, updates, reduction)
    return out


@rule("TensorScatter")
def tensor_scatter(
    past_cache: np.ndarray,
    update: np.ndarray,
    write_indices: np.ndarray | None = None,
    axis: int = -2,
    mode: str = "linear",
) -> np.ndarray:
    """Write ``update`` into each batch row of the cache at that row's write index
    (wrapping around the axis in circular mode)."""
    axis = _axis(axis, past_cache.ndim)
    if axis == 0:
        raise ValueError("TensorScatter axis cannot be the batch axis")
    batch, length, n = past_cache.shape[0], past_cache.shape[axis], update.shape[axis]
    starts = [0] * batch if write_indices is None else _ints(write_indices) or []
    out = past_cache.copy()
    for b, start in enumerate(starts):
        pos = start + np.arange(n)
        if mode == "circular":
            pos %= length
        # out[b] is a view, so writing through moveaxis updates out.
        np.moveaxis(out[b], axis - 1, 0)[pos] = np.moveaxis(update[b], axis - 1, 0)
    return out


@rule("ai.onnx.ml::ArrayFeatureExtractor")
def array_feature_extractor(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    idx = _norm_index(indices.reshape(-1), x.shape[-1])
    # Like onnxruntime, a 1-D input gives a one-row matrix.
    lead = x.shape[:-1] if x.ndim > 1 else (1,)
    return np.take(x, idx, axis=-1).reshape(*lead, idx.size)


@rule("Compress")
def compress(x: np.ndarray, condition: np.ndarray, axis: int | None = None) -> np.ndarray:
    cond = np.asarray(condition, dtype=bool).reshape(-1)
    if axis is None:
        return np.compress(cond, x.reshape(-1))
    return np.compress(cond, x, axis=_axis(axis, x.ndim))


@rule("NonZero")
def non_zero(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0:
        # A scalar has no coordinates: one column, of zero rows, if it is nonzero.
        return np.zeros((0, int(bool(x))), dtype=np.int64)
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


# --- broadcasting, tiling, padding ---------------------------------------------------


@rule("Expand")
def expand(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    out_shape = np.broadcast_shapes(x.shape, tuple(_ints(shape) or ()))
    return np.broadcast_to(x, out_shape).copy()


@rule("Tile")
def tile(x: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    return np.tile(x, _ints(repeats))


@rule("Pad")
def pad(
    data: np.ndarray,
    pads_in: np.ndarray | None = None,
    constant_value: np.ndarray | None = None,
    axes_in: np.ndarray | None = None,
    mode: str = "constant",
    pads: list[int] | None = None,
    paddings: list[int] | None = None,
    value: float = 0.0,
) -> np.ndarray:
    # Pad-1/2 had pads (or paddings) and value as attributes; Pad-11 made them inputs.
    p = _ints(pads_in if pads_in is not None else pads if pads is not None else paddings)
    if p is None:
        raise ValueError("Pad needs pads")
    axes = _ints(axes_in)
    axes = list(range(data.ndim)) if axes is None else [_axis(a, data.ndim) for a in axes]
    n = len(axes)
    before, after = [0] * data.ndim, [0] * data.ndim
    for i, a in enumerate(axes):
        before[a], after[a] = p[i], p[n + i]
    # Negative pads crop; numpy's pad only grows, so crop first.
    crop = tuple(
        slice(-min(b, 0), dim + min(e, 0)) for dim, b, e in zip(data.shape, before, after)
    )
    data = data[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in zip(before, after)]
    if mode == "constant":
        has_fill = constant_value is not None and constant_value.size
        fill = np.asarray(constant_value.reshape(-1)[0] if has_fill else value)
        return np.pad(data, width, mode="constant", constant_values=fill.astype(data.dtype))
    if mode not in ("reflect", "edge", "wrap"):
        raise ValueError(f"unknown Pad mode {mode!r}")
    return np.pad(data, width, mode=mode)


@rule("CenterCropPad")
def center_crop_pad(
    x: np.ndarray, shape: np.ndarray, axes: list[int] | None = None
) -> np.ndarray:
    target = _ints(shape) or []
    axes = list(range(x.ndim)) if axes is None else [_axis(a, x.ndim) for a in axes]
    out_shape = list(x.shape)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    for a, t in zip(axes, target, strict=True):
        dim = x.shape[a]
        out_shape[a] = t
        # The extra element of an odd difference is cropped/padded at the end.
        if t < dim:
            off = (dim - t) // 2
            src[a] = slice(off, off + t)
        elif t > dim:
            off = (t - dim) // 2
            dst[a] = slice(off, off + dim)
    out = np.zeros(out_shape, dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


# --- generators ----------------------------------------------------------------------


@rule("ConstantOfShape")
def constant_of_shape(shape: np.ndarray, value: np.ndarray | None = None) -> np.ndarray:
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return np.full(tuple(_ints(shape) or ()), fill[0], dtype=fill.dtype)


@rule("Range")
def range_(
    start: np.ndarray, limit: np.ndarray, delta: np.ndarray, stash_type: int = 1
) -> np.ndarray:
    dtype = np.asarray(start).dtype
    if dtype.kind in "iu":
        s, l, d = int(start), int(limit), int(delta)
        n = max(-((s - l) // d), 0)
        return (s + np.arange(n, dtype=np.int64) * d).astype(dtype)
    s, l, d = float(start), float(limit), float(delta)
    n = max(math.ceil((l - s) / d), 0)
    # stash_type only picks the accumulation precision of 16-bit float ranges.
    low = dtype in (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
    work = _ONNX_DTYPES[stash_type] if low else np.dtype(np.float64)
    s_w, d_w = work.type(dtype.type(s)), work.type(d)
    return (s_w + np.arange(n, dtype=work) * d_w).astype(dtype)


@rule("EyeLike")
def eye_like(x: np.ndarray, dtype: int | None = None, k: int = 0) -> np.ndarray:
    out_dtype = x.dtype if dtype is None else _ONNX_DTYPES[dtype]
    return np.eye(x.shape[0], x.shape[1], k=k, dtype=out_dtype)


@rule("Trilu")
def trilu(x: np.ndarray, k: np.ndarray | None = None, upper: int = 1) -> np.ndarray:
    diag = 0 if k is None else int(k)
    return np.triu(x, diag) if upper else np.tril(x, diag)


@rule("OneHot")
def one_hot(
    indices: np.ndarray, depth: np.ndarray, values: np.ndarray, axis: int = -1
) -> np.ndarray:
    n = int(np.asarray(depth).reshape(-1)[0])
    axis = _axis(axis, indices.ndim + 1)
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    classes = np.arange(n).reshape((n,) + (1,) * (indices.ndim - axis))
    hot = np.expand_dims(idx, axis) == classes
    off, on = values.reshape(-1)[:2]
    return np.where(hot, on, off).astype(values.dtype)


# --- layout --------------------------------------------------------------------------


@rule("DepthToSpace")
def depth_to_space(x: np.ndarray, blocksize: int = 1, mode: str = "DCR") -> np.ndarray:
    b, c, h, w = x.shape
    s = blocksize
    if mode == "DCR":
        t = x.reshape(b, s, s, c // (s * s), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(b, c // (s * s), s, s, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(b, c // (s * s), h * s, w * s)


@rule("SpaceToDepth")
def space_to_depth(x: np.ndarray, blocksize: int = 1, mode: str = "DCR") -> np.ndarray:
    b, c, h, w = x.shape
    s = blocksize
    t = x.reshape(b, c, h // s, s, w // s, s)
    # DCR puts the block offset before the channel in the output depth, CRD after.
    t = t.transpose(0, 3, 5, 1, 2, 4) if mode == "DCR" else t.transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(b, c * s * s, h // s, w // s)


@rule("ReverseSequence")
def reverse_sequence(
    x: np.ndarray, sequence_lens: np.ndarray, batch_axis: int = 1, time_axis: int = 0
) -> np.ndarray:
    out = x.copy()
    for b, n in enumerate(_ints(sequence_lens) or []):
        index = [slice(None)] * x.ndim
        index[batch_axis] = b
        index[time_axis] = slice(0, n)
        # Indexing the batch away shifts the time axis down if it came after it.
        flip_axis = time_axis - (time_axis > batch_axis)
        out[tuple(index)] = np.flip(x[tuple(index)], axis=flip_axis)
    return out


@rule("Unique")
def unique(
    x: np.ndarray, axis: int | None = None, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    flat = x.reshape(-1) if axis is None else x
    ax = 0 if axis is None else _axis(axis, x.ndim)
    y, first, inverse, counts = np.unique(
        flat, return_index=True, return_inverse=True, return_counts=True, axis=ax
    )
    if not sorted:
        # Order the unique values by first occurrence instead of by value.
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y, first, counts = np.take(y, order, axis=ax), first[order], counts[order]
        inverse = rank[inverse.reshape(-1)]
    return (
        y,
        first.astype(np.int64),
        inverse.reshape(-1).astype(np.int64),
        counts.astype(np.int64),
    )


# --- Resize ----------------------------------------------------------------------------


def _source_coords(
    mode: str, n_in: int, n_out: int, scale: float, roi: tuple[float, float]
) -> np.ndarray:
    """Input coordinate of each output index along one axis."""
    i = np.arange(n_out, dtype=np.float64)
    # The "resized length" of the formulas is scale * n_in, not the rounded n_out.
    length = scale * n_in
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        # Keeps the centre fixed when the integer output size differs from scale * n_in.
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (i + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if length > 1 else np.full(n_out, -0.5)
    if mode == "align_corners":
        return i * (n_in - 1) / (length - 1) if length != 1 else np.zeros(n_out)
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    if mode == "tf_crop_and_resize":
        lo, hi = roi
        if length != 1:
            return lo * (n_in - 1) + i * (hi - lo) * (n_in - 1) / (length - 1)
        return np.full(n_out, 0.5 * (lo + hi) * (n_in - 1))
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def _nearest_taps(x: np.ndarray, n_in: int, nearest_mode: str) -> np.ndarray:
    """The input index each output position copies, shape (n_out, 1)."""
    lo = np.floor(x)
    frac = x - lo
    if nearest_mode == "round_prefer_floor":
        up = frac > 0.5
    elif nearest_mode == "round_prefer_ceil":
        up = frac >= 0.5
    elif nearest_mode == "floor":
        up = np.zeros_like(frac, dtype=bool)
    elif nearest_mode == "ceil":
        up = frac > 0
    else:
        raise ValueError(f"unknown nearest_mode {nearest_mode!r}")
    return np.clip(lo + up, 0, n_in - 1).astype(np.int64)[:, None]


def _cubic_kernel(a: float) -> Callable[[np.ndarray], np.ndarray]:
    def k(t: np.ndarray) -> np.ndarray:
        t = np.abs(t)
        near = ((a + 2) * t - (a + 3)) * t * t + 1
        far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return np.where(t <= 1, near, np.where(t < 2, far, 0.0))

    return k


def _linear_kernel(t: np.ndarray) -> np.ndarray:
    return np.clip(1 - np.abs(t), 0, 1)


def _filter_taps(
    x: np.ndarray,
    n_in: int,
    kernel: Callable[[np.ndarray], np.ndarray],
    support: float,
    stretch: float,
    exclude_outside: bool,
    normalize: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Input indices and weights, each (n_out, taps), of a filter centred on ``x``.

    ``stretch`` (< 1 when antialiasing a downscale) widens the kernel. Taps beyond the
    input read the edge value, unless ``exclude_outside`` drops them.
    """
    reach = math.ceil(support / stretch)
    taps = np.floor(x)[:, None] + np.arange(-reach, reach + 2)[None, :]
    w = kernel(stretch * (taps - x[:, None]))
    if exclude_outside:
        w = np.where((taps < 0) | (taps > n_in - 1), 0.0, w)
    if normalize or exclude_outside:
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(taps, 0, n_in - 1).astype(np.int64), w


def _resize_axis(
    data: np.ndarray,
    axis: int,
    n_out: int,
    scale: float,
    roi: tuple[float, float],
    opts: dict[str, Any],
) -> np.ndarray:
    n_in = data.shape[axis]
    mode = opts["mode"]
    x = _source_coords(opts["coord_mode"], n_in, n_out, scale, roi)
    stretch = min(scale, 1.0) if opts["antialias"] else 1.0
    if mode == "nearest":
        nearest_mode = opts["nearest_mode"]
        if nearest_mode == "simple":
            # Resize-10/Upsample as onnxruntime runs them: ceil to shrink, else floor.
            nearest_mode = "ceil" if scale < 1 else "floor"
        out = np.take(data, _nearest_taps(x, n_in, nearest_mode)[:, 0], axis=axis)
    else:
        if mode == "linear":
            kernel, support = _linear_kernel, 1.0
        elif mode == "cubic":
            kernel, support = _cubic_kernel(opts["cubic_coeff_a"]), 2.0
        else:
            raise ValueError(f"unknown Resize mode {mode!r}")
        taps, w = _filter_taps(
            x, n_in, kernel, support, stretch, opts["exclude_outside"], opts["antialias"]
        )
        gathered = np.take(data, taps, axis=axis)  # axis becomes (n_out, taps)
        w = w.reshape(w.shape + (1,) * (data.ndim - axis - 1))
        out = (gathered * w).sum(axis=axis + 1)
    if opts["coord_mode"] == "tf_crop_and_resize":
        outside = (x < 0) | (x > n_in - 1)
        mask = outside.reshape((n_out,) + (1,) * (data.ndim - axis - 1))
        out = np.where(mask, opts["extrapolation_value"], out)
    return out


def _resize_plan(
    shape: tuple[int, ...],
    axes: list[int],
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    policy: str,
) -> tuple[list[float], list[int]]:
    """Per-axis (scale, output size) of the resized axes."""
    dims = [shape[a] for a in axes]
    if sizes is not None and sizes.size:
        out = _ints(sizes) or []
        ratios = [o / d for o, d in zip(out, dims)]
        if policy == "stretch":
            return ratios, out
        common = min(ratios) if policy == "not_larger" else max(ratios)
        if policy not in ("not_larger", "not_smaller"):
            raise ValueError(f"unknown keep_aspect_ratio_policy {policy!r}")
        return [common] * len(axes), [int(common * d + 0.5) for d in dims]
    if scales is None or not scales.size:
        raise ValueError("Resize needs scales or sizes")
    sc = [float(s) for s in scales.reshape(-1)]
    return sc, [int(math.floor(s * d)) for s, d in zip(sc, dims)]


def _resize(
    x: np.ndarray,
    roi: np.ndarray | None,
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    axes: list[int] | None = None,
    policy: str = "stretch",
    **opts: Any,
) -> np.ndarray:
    """Resize ``x`` one axis at a time; ``opts`` are the per-axis sampling options."""
    opts = {**_RESIZE_DEFAULTS, **opts}
    ax = list(range(x.ndim)) if axes is None else [_axis(a, x.ndim) for a in axes]
    scale, n_out = _resize_plan(x.shape, ax, scales, sizes, policy)
    rois = [(0.0, 1.0)] * len(ax)
    if roi is not None and roi.size:
        r = [float(v) for v in roi.reshape(-1)]
        # roi holds all starts, then all ends, of the resized axes.
        rois = [(r[i], r[i + len(ax)]) for i in range(len(ax))]
    # Nearest copies values, so it keeps the dtype; filters accumulate in float64.
    out = x if opts["mode"] == "nearest" else x.astype(np.float64)
    for a, s, n, rr in zip(ax, scale, n_out, rois):
        if s == 1.0 and n == x.shape[a] and rr == (0.0, 1.0):
            continue
        out = _resize_axis(out, a, n, s, rr, opts)
    if x.dtype.kind in "iu" and out.dtype != x.dtype:
        info = np.iinfo(x.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(x.dtype)


_RESIZE_DEFAULTS: dict[str, Any] = {
    "mode": "nearest",
    "coord_mode": "half_pixel",
    "nearest_mode": "round_prefer_floor",
    "cubic_coeff_a": -0.75,
    "exclude_outside": False,
    "antialias": False,
    "extrapolation_value": 0.0,
}


@rule("Resize")
def resize(
    x: np.ndarray,
    *inputs: np.ndarray | None,
    antialias: int = 0,
    axes: list[int] | None = None,
    coordinate_transformation_mode: str | None = None,
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch",
    mode: str = "nearest",
    nearest_mode: str | None = None,
) -> np.ndarray:
    if coordinate_transformation_mode is None:
        # Resize-10: inputs (X, scales), Upsample's asymmetric floor sampling.
        scales = inputs[0] if inputs else None
        return _resize(
            x, None, scales, None, mode=mode, coord_mode="asymmetric",
            nearest_mode=nearest_mode or "simple",
        )  # fmt: skip
    roi, scales, sizes = (list(inputs) + [None] * 3)[:3]
    return _resize(
        x, roi, scales, sizes, axes, keep_aspect_ratio_policy,
        mode=mode,
        coord_mode=coordinate_transformation_mode,
        nearest_mode=nearest_mode or "round_prefer_floor",
        cubic_coeff_a=cubic_coeff_a,
        exclude_outside=bool(exclude_outside),
        antialias=bool(antialias),
        extrapolation_value=extrapolation_value,
    )  # fmt: skip


@rule("Upsample")
def upsample(
    x: np.ndarray,
    scales_in: np.ndarray | None = None,
    mode: str = "nearest",
    scales: list[float] | None = None,
    height_scale: float | None = None,
    width_scale: float | None = None,
) -> np.ndarray:
    # Upsample-1 had height/width scales, Upsample-7 a scales attribute, -9 an input.
    if scales_in is not None:
        sc = np.asarray(scales_in, dtype=np.float64)
    elif scales is not None:
        sc = np.asarray(scales, dtype=np.float64)
    else:
        sc = np.array([1.0] * (x.ndim - 2) + [height_scale or 1.0, width_scale or 1.0])
    mode = "linear" if mode == "bilinear" else mode
    return _resize(
        x, None, sc, None, mode=mode, coord_mode="asymmetric", nearest_mode="simple"
    )


@rule("Col2Im")
def col2im(
    x: np.ndarray,
    image_shape: np.ndarray,
    block_shape: np.ndarray,
    dilations: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    image, block = _ints(image_shape) or [], _ints(block_shape) or []
    k = len(image)
    dil = dilations or [1] * k
    pad_ = pads or [0] * (2 * k)
    stride = strides or [1] * k
    padded = [image[i] + pad_[i] + pad_[i + k] for i in range(k)]
    blocks = [(padded[i] - dil[i] * (block[i] - 1) - 1) // stride[i] + 1 for i in range(k)]
    n, c = x.shape[0], x.shape[1] // math.prod(block)
    cols = x.reshape(n, c, *block, *blocks)
    out = np.zeros((n, c, *padded), dtype=x.dtype)
    for offset in np.ndindex(*block):
        # Every block position scatters its column values onto a strided grid.
        window = tuple(
            slice(o * d, o * d + s * (m - 1) + 1, s)
            for o, d, s, m in zip(offset, dil, stride, blocks)
        )
        out[(..., *window)] += cols[(slice(None), slice(None), *offset)]
    crop = tuple(slice(pad_[i], pad_[i] + image[i]) for i in range(k))
    return out[(..., *crop)]
