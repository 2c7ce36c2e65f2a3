"""``FX_TO_GRAPH`` rows for tensor ops that move or create data: views, copies, permutes,
slicing, cat/split, padding, creation (compile-time constants), indexing and scatter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from xdsl.ir import SSAValue

from graphopt.frontends.fx.lowering import Lowering, UnsupportedOp, aten, axis, rank, row, spec

# -- movement -------------------------------------------------------------------------------


@row(aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.squeeze.dim, aten.squeeze.dims,
     aten.squeeze.default, aten.unsqueeze.default, aten.flatten.using_ints, aten.view_copy.default)
def _view(L: Lowering, x: SSAValue, *args: Any) -> SSAValue:
    # Every view's result shape is known: one Reshape to it covers them all.
    return L.reshape(x, L.out_spec()[0])


@row(aten.alias.default, aten.clone.default, aten.detach.default, aten.lift_fresh_copy.default, aten.contiguous.default)
def _same(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    return x  # values are immutable in the IR: a copy is the value itself


@row(aten._to_copy.default, aten.to.dtype, aten.type_as.default, torch.ops.prims.convert_element_type.default)
def _to_copy(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    return L.cast(x, L.out_dtype())


@row(aten.copy.default)
def _copy(L: Lowering, dst: SSAValue, src: SSAValue, non_blocking: bool = False) -> SSAValue:
    v = L.cast(src, L.out_dtype())
    return v if spec(v)[0] == spec(dst)[0] else L.op("Expand", [v, L.ints(spec(dst)[0])])


@row(aten.permute.default)
def _permute(L: Lowering, x: SSAValue, dims: Sequence[int]) -> SSAValue:
    return L.op("Transpose", [x], {"perm": [axis(int(d), rank(x)) for d in dims]}, specs=[L.out_spec()])


@row(aten.t.default, aten.transpose.int)
def _transpose(L: Lowering, x: SSAValue, d0: int = 0, d1: int = 1) -> SSAValue:
    r = rank(x)
    if r < 2:
        return x
    perm = list(range(r))
    a, b = axis(d0, r), axis(d1, r)
    perm[a], perm[b] = perm[b], perm[a]
    return L.op("Transpose", [x], {"perm": perm})


@row(aten.expand.default, aten.expand_copy.default, aten.broadcast_to.default)
def _expand(L: Lowering, x: SSAValue, size: Any, *, implicit: bool = False) -> SSAValue:
    shape = L.out_spec()[0]
    return x if spec(x)[0] == shape else L.op("Expand", [x, L.ints(shape)], specs=[L.out_spec()])


@row(aten.repeat.default)
def _repeat(L: Lowering, x: SSAValue, repeats: Sequence[int]) -> SSAValue:
    """torch's repeat tiles the input, first viewed with leading unit axes up to len(repeats)."""
    r = len(repeats)
    if rank(x) < r:
        x = L.reshape(x, (1,) * (r - rank(x)) + tuple(spec(x)[0]))
    return L.op("Tile", [x, L.ints([int(k) for k in repeats])], specs=[L.out_spec()])


def _strided_index(L: Lowering, x: SSAValue, size: Sequence[int], stride: Sequence[int],
                   storage_offset: int | None) -> tuple[np.ndarray, int]:
    """The flat positions in ``x`` of an as_strided view of it, and ``x``'s element count.
    as_strided addresses its input's storage, which is the input flattened when the input
    is laid out contiguously from offset 0 (its meta value says how eager lays it out); any
    other layout, or a position outside the input, is refused."""
    assert L.node is not None
    base = L.val(L.node.args[0])
    if not (base.is_contiguous() and base.storage_offset() == 0):
        raise UnsupportedOp(f"{L.where()}: as_strided of a tensor that is not contiguous from offset 0 "
                            f"(strides {tuple(base.stride())}) is not supported")
    n = int(np.prod(spec(x)[0], dtype=np.int64))
    index = np.full([int(s) for s in size], int(storage_offset or 0), dtype=np.int64)
    for k, (s, st) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[k] = int(s)
        index = index + np.arange(int(s), dtype=np.int64).reshape(shape) * int(st)
    if index.size and (index.min() < 0 or index.max() >= n):
        raise UnsupportedOp(f"{L.where()}: as_strided reaches outside its input's {n} elements")
    return index, n


def _in_order(index: np.ndarray, n: int) -> bool:
    return index.size == n and bool(np.array_equal(index.reshape(-1), np.arange(n)))


@row(aten.as_strided.default, aten.as_strided_copy.default)
def _as_strided(L: Lowering, x: SSAValue, size: Sequence[int], stride: Sequence[int],
                storage_offset: int | None = None) -> SSAValue:
    """A gather of compile-time flat positions (a Reshape when they are in order)."""
    index, n = _strided_index(L, x, size, stride, storage_offset)
    if _in_order(index, n):
        return L.reshape(x, L.out_spec()[0])
    return L.op("Gather", [L.reshape(x, [n]), L.const(index)], {"axis": 0}, specs=[L.out_spec()])


@row(aten.as_strided_scatter.default)
def _as_strided_scatter(L: Lowering, x: SSAValue, src: SSAValue, size: Sequence[int], stride: Sequence[int],
                        storage_offset: int | None = None) -> SSAValue:
    """``x`` with an as_strided view of it replaced by ``src`` (as_strided's backward): a
    scatter to compile-time flat positions, which must not repeat."""
    index, n = _strided_index(L, x, size, stride, storage_offset)
    if _in_order(index, n):
        return L.reshape(src, spec(x)[0])
    if len(np.unique(index)) != index.size:
        raise UnsupportedOp(f"{L.where()}: as_strided_scatter into overlapping positions is not supported")
    flat = L.op("ScatterElements", [L.reshape(x, [n]), L.const(index.reshape(-1)), L.reshape(src, [index.size])],
                {"axis": 0})
    return L.reshape(flat, spec(x)[0])


@row(aten.slice.Tensor, aten.slice_copy.Tensor)
def _slice(L: Lowering, x: SSAValue, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> SSAValue:
    r = rank(x)
    d = axis(dim, r)
    size = spec(x)[0][d]
    lo, hi = _bounds(start, end, size)
    if lo == 0 and hi == size and step == 1:
        return x
    return L.op("Slice", [x, L.ints([lo]), L.ints([hi]), L.ints([d]), L.ints([step])], specs=[L.out_spec()])


def _bounds(start: Any, end: Any, size: int) -> tuple[int, int]:
    lo = 0 if start is None else int(start)
    hi = size if end is None else int(end)
    lo = min(max(lo + size if lo < 0 else lo, 0), size)
    hi = min(max(hi + size if hi < 0 else hi, 0), size)
    return lo, max(hi, lo)


@row(aten.select.int)
def _select(L: Lowering, x: SSAValue, dim: int, index: int) -> SSAValue:
    return L.op("Gather", [x, L.const(np.asarray(index, np.int64))], {"axis": int(dim)}, specs=[L.out_spec()])


@row(aten.cat.default)
def _cat(L: Lowering, tensors: Sequence[SSAValue], dim: int = 0) -> SSAValue:
    dt = L.out_dtype()
    # torch lets a 1-D empty tensor join any concatenation; ONNX does not.
    parts = [L.cast(t, dt) for t in tensors if not (rank(t) == 1 and spec(t)[0][0] == 0 and len(L.out_spec()[0]) != 1)]
    if len(parts) == 1:
        return parts[0]
    r = len(L.out_spec()[0])
    return L.op("Concat", parts, {"axis": axis(int(dim), r)}, specs=[L.out_spec()])


@row(aten.split_with_sizes.default, aten.split.Tensor, aten.split_with_sizes_copy.default, aten.split_copy.Tensor)
def _split(L: Lowering, x: SSAValue, sizes: Any, dim: int = 0) -> tuple[Any, ...]:
    outs = L.val()
    lens = [int(o.shape[axis(dim, rank(x))]) for o in outs]
    if len(lens) == 1:
        return (x,)
    return L.op("Split", [x, L.ints(lens)], {"axis": axis(int(dim), rank(x))}, n_results=len(lens))


@row(aten.unbind.int)
def _unbind(L: Lowering, x: SSAValue, dim: int = 0) -> tuple[Any, ...]:
    d = axis(dim, rank(x))
    n = spec(x)[0][d]
    parts = L.op("Split", [x, L.ints([1] * n)], {"axis": d}, n_results=n) if n > 1 else (x,)
    return tuple(L.reshape(p, tuple(L.val()[k].shape)) for k, p in enumerate(parts))


@row(aten.constant_pad_nd.default)
def _pad(L: Lowering, x: SSAValue, pad: Sequence[int], value: Any = 0) -> SSAValue:
    r = rank(x)
    begins, ends = [0] * r, [0] * r
    for k in range(len(pad) // 2):  # torch pads the last axis first
        begins[r - 1 - k], ends[r - 1 - k] = int(pad[2 * k]), int(pad[2 * k + 1])
    if any(p < 0 for p in begins + ends):  # a negative pad crops (RWKV's time shift pads 1 ahead, crops 1 behind)
        shape = spec(x)[0]
        cut = [k for k in range(r) if begins[k] < 0 or ends[k] < 0]
        starts = [max(0, -begins[k]) for k in cut]
        stops = [shape[k] - max(0, -ends[k]) for k in cut]
        x = L.op("Slice", [x, L.ints(starts), L.ints(stops), L.ints(cut)])
        begins, ends = [max(0, b) for b in begins], [max(0, e) for e in ends]
        if not any(begins + ends):
            return x
    return L.op("Pad", [x, L.ints(begins + ends), L.const(np.asarray(value, spec(x)[1].numpy))], {"mode": "constant"})


@row(aten.flip.default)
def _flip(L: Lowering, x: SSAValue, dims: Sequence[int]) -> SSAValue:
    r = rank(x)
    ax = [axis(int(d), r) for d in dims]
    big = np.iinfo(np.int64).max
    return L.op("Slice", [x, L.ints([-1] * len(ax)), L.ints([-big] * len(ax)), L.ints(ax), L.ints([-1] * len(ax))])


# -- creation (compile-time constants: shapes are static here) ------------------------------


@row(aten.arange.start_step, aten.arange.start, aten.arange.default)
def _arange(L: Lowering, *args: Any, **kwargs: Any) -> SSAValue:
    dt = L.out_dtype()
    n = L.out_spec()[0][0]
    start, step = (0, 1) if len(args) == 1 else (args[0], args[2] if len(args) > 2 else kwargs.get("step", 1))
    return L.const((start + np.arange(n, dtype=np.float64) * step).astype(dt))


@row(aten.full.default, aten.full_like.default, aten.zeros.default, aten.ones.default, aten.zeros_like.default,
     aten.ones_like.default, aten.empty.memory_format, aten.empty_like.default, aten.new_zeros.default,
     aten.new_ones.default, aten.new_full.default, aten.new_empty.default, aten.empty_strided.default,
     aten.scalar_tensor.default)
def _full(L: Lowering, *args: Any, **kwargs: Any) -> SSAValue:
    target = L.node.target if L.node is not None else None
    value: Any = 0
    if target in (aten.full.default, aten.full_like.default):
        value = args[1]
    elif target == aten.new_full.default:
        value = args[2]
    elif target in (aten.ones.default, aten.ones_like.default, aten.new_ones.default):
        value = 1
    elif target == aten.scalar_tensor.default:
        value = args[0]
    shape, dt = L.out_spec()
    return L.filled(value, shape, dt.numpy)


# -- indexing -----------------------------------------------------------------------------


@row(aten.embedding.default)
def _embedding(L: Lowering, w: SSAValue, idx: SSAValue, *args: Any) -> SSAValue:
    return L.op("Gather", [w, idx], {"axis": 0}, specs=[L.out_spec()])


@row(aten.index_select.default)
def _index_select(L: Lowering, x: SSAValue, dim: int, idx: SSAValue) -> SSAValue:
    return L.op("Gather", [x, idx], {"axis": axis(dim, rank(x))}, specs=[L.out_spec()])


@row(aten.gather.default)
def _gather(L: Lowering, x: SSAValue, dim: int, idx: SSAValue, *, sparse_grad: bool = False) -> SSAValue:
    return L.op("GatherElements", [x, idx], {"axis": axis(dim, rank(x))}, specs=[L.out_spec()])


def _advanced(L: Lowering, x: SSAValue, indices: Sequence[Any]) -> tuple[int, SSAValue, SSAValue]:
    """x[..., i0, i1, ...] with adjacent index tensors starting at axis k: the indexed axes
    flattened into one, and one linear index (negative indices wrapped). Returns (k, x
    with those axes flattened, the linear index)."""
    placed = [k for k, i in enumerate(indices) if i is not None]
    if not placed or placed != list(range(placed[0], placed[-1] + 1)):
        raise UnsupportedOp(f"{L.where()}: indexing with non-adjacent index tensors is not supported")
    for i in indices:
        if i is not None and spec(i)[1].numpy == np.bool_:
            raise UnsupportedOp(f"{L.where()}: indexing with a boolean mask has a data-dependent shape")
    k = placed[0]
    shape = spec(x)[0]
    sizes = [shape[k + j] for j in range(len(placed))]
    if len(placed) == 1:
        return k, x, L.cast(indices[k], np.dtype(np.int64))
    linear: SSAValue | None = None
    for j, size in enumerate(sizes):
        i = L.cast(indices[k + j], np.dtype(np.int64))
        i = L.op("Mod", [L.op("Add", [i, L.ints([size])]), L.ints([size])])  # wrap negatives
        stride = int(np.prod(sizes[j + 1:], dtype=np.int64))
        term = L.op("Mul", [i, L.ints([stride])]) if stride != 1 else i
        linear = term if linear is None else L.op("Add", [linear, term])
    assert linear is not None
    flat = L.reshape(x, (*shape[:k], int(np.prod(sizes, dtype=np.int64)), *shape[k + len(placed):]))
    return k, flat, linear


@row(aten.index.Tensor)
def _index(L: Lowering, x: SSAValue, indices: Sequence[Any]) -> SSAValue:
    k, flat, linear = _advanced(L, x, indices)
    return L.op("Gather", [flat, linear], {"axis": k}, specs=[L.out_spec()])


@row(aten.index_put.default, aten._unsafe_index_put.default)
def _index_put(L: Lowering, x: SSAValue, indices: Sequence[Any], values: SSAValue, accumulate: bool = False) -> SSAValue:
    """ScatterND over the leading indexed axes; values broadcast to the updates' shape."""
    indices = list(indices) + [None] * (rank(x) - len(indices))
    placed = [k for k, i in enumerate(indices) if i is not None]
    if placed != list(range(len(placed))):
        raise UnsupportedOp(f"{L.where()}: index_put on axes other than the leading ones is not supported")
    for i in indices:
        if i is not None and spec(i)[1].numpy == np.bool_:
            raise UnsupportedOp(f"{L.where()}: index_put with a boolean mask has a data-dependent shape")
    idx = [L.cast(indices[k], np.dtype(np.int64)) for k in placed]
    bshape = tuple(np.broadcast_shapes(*[spec(i)[0] for i in idx]))
    cols = [L.op("Unsqueeze", [L.op("Expand", [i, L.ints(bshape)]) if spec(i)[0] != bshape else i, L.ints([-1])]) for i in idx]
    stacked = cols[0] if len(cols) == 1 else L.op("Concat", cols, {"axis": -1})
    xs = spec(x)[0]
    ushape = (*bshape, *xs[len(placed):])
    dt = spec(x)[1].numpy
    updates = L.cast(values, dt)
    if spec(updates)[0] != ushape:
        updates = L.op("Expand", [updates, L.ints(ushape)])
    return L.op("ScatterND", [x, stacked, updates], {"reduction": "add" if accumulate else "none"}, specs=[L.out_spec()])


@row(aten.scatter.src, aten.scatter.value, aten.scatter_add.default, aten.scatter.reduce, aten.scatter.value_reduce)
def _scatter(L: Lowering, x: SSAValue, dim: int, idx: SSAValue, src: Any, *, reduce: str | None = None) -> SSAValue:
    dt = spec(x)[1].numpy
    if not isinstance(src, SSAValue):
        src = L.filled(src, spec(idx)[0], dt)
    elif spec(src)[0] != spec(idx)[0]:  # only the index's extent of src is scattered
        src = L.op("Slice", [src, L.ints([0] * rank(idx)), L.ints(spec(idx)[0]), L.ints(range(rank(idx)))])
    reduction = "add" if L.node is not None and L.node.target == aten.scatter_add.default else {None: "none", "add": "add", "sum": "add", "multiply": "mul"}[reduce]
    return L.op("ScatterElements", [x, idx, L.cast(src, dt)], {"axis": axis(dim, rank(x)), "reduction": reduction},
                specs=[L.out_spec()])


@row(aten.slice_scatter.default)
def _slice_scatter(L: Lowering, x: SSAValue, src: SSAValue, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> SSAValue:
    r = rank(x)
    d = axis(dim, r)
    lo, _ = _bounds(start, end, spec(x)[0][d])
    return _scatter_along(L, x, src, d, lo, step)


@row(aten.select_scatter.default)
def _select_scatter(L: Lowering, x: SSAValue, src: SSAValue, dim: int, index: int) -> SSAValue:
    d = axis(dim, rank(x))
    size = spec(x)[0][d]
    s = list(spec(src)[0])
    s.insert(d, 1)
    return _scatter_along(L, x, L.reshape(src, s), d, int(index) % size, 1)


def _scatter_along(L: Lowering, x: SSAValue, src: SSAValue, d: int, lo: int, step: int) -> SSAValue:
    """x with ``src`` written at positions lo, lo+step, ... of axis d: ScatterElements
    with a small index constant expanded to src's shape."""
    sshape = spec(src)[0]
    r = len(sshape)
    pos = (lo + np.arange(sshape[d], dtype=np.int64) * step).reshape([sshape[d] if k == d else 1 for k in range(r)])
    idx = L.const(pos)
    if tuple(pos.shape) != tuple(sshape):
        idx = L.op("Expand", [idx, L.ints(sshape)])
    return L.op("ScatterElements", [x, idx, L.cast(src, spec(x)[1].numpy)], {"axis": d}, specs=[L.out_spec()])
