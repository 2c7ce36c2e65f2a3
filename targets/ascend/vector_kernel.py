"""Vector kernels: a group of vector ops (elementwise, reductions, softmax, norms, pools)
tiled by rows in UB, as AscendC's CopyIn -> Compute -> CopyOut with TQue double buffering.

Tiling (the algorithm):
1. p = the number of leading axes no op of the group mixes values along (every op's
   ``first_mixed_axis``), lowered until every value computed in the group and every output
   shares the first output's leading p dims L. The rows are the prod(L) items of L; a row
   is everything after them (an elementwise group has p = rank: a row is one element).
2. A GM input whose leading dims are L is tiled by rows; one that broadcasts over L is
   broadcast to it (a strided DMA) and tiled; one that does not touch L (a scale vector)
   or is a parameter, not data (a reduction's axes, ``VecRow.params``), is loaded whole once.
   A per-channel vector [C] (``VecRow.channel``: BatchNormalization's scale, bias, mean
   and variance) broadcasts as [1, C, 1, ...], so with rows of (N, C) planes each tile
   reads the channels of its rows.
3. rows per tile r: as many as fit UB with every tiled buffer double buffered, rounded so
   each tile stays 32-byte aligned where at least that many rows fit (else a tile is off
   the block size and its copies are DataCopyPad). Tiles are spread over the vector cores.
A tile keeps the rank of its value, (1, ..., 1, r, *row), so ops with axis attributes read
their axes unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from xdsl.dialects.builtin import NoneType, TensorType
from xdsl.ir import SSAValue

from graphopt.dialects.graph import ConstantOp
from graphopt.targets.ascend.builder import KernelBuilder
from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import ConstOp, KernelOp
from graphopt.targets.ascend.group import Group, np_dtype, shape
from graphopt.targets.ascend.vector import VECTOR_OPS, Numerics, first_mixed_axis


def _lead_ok(s: tuple[int, ...], lead: tuple[int, ...]) -> bool:
    return len(s) >= len(lead) and s[: len(lead)] == lead


Plan = tuple[dict[str, Any] | None, tuple[int, ...], np.dtype]  # (GM view or None: whole, row shape, dtype)


class _Rows:
    """How a vector group is cut into tiles: rows over the leading ``p`` axes of its first
    result, every value's tile holding whole rows (its shape past those axes), or one tile
    of whole tensors when ``p`` is 0."""

    def __init__(self, g: Group, num: Numerics):

        self.g, self.num, self.shape = g, num, shape
        self.out0 = shape(g.yields[0])
        self.same = format_changes(g)  # a TransData inside the group: the same logical tile
        self.yields = [self.same.get(y, y) for y in g.yields]
        self.computed = [r for op in g.ops for r in op.results] + self.yields
        self.params = _params(g.ops)
        self.channel = _channel_vectors(g.ops)
        self.leading = {op.operands[k] for op in g.ops for k in VECTOR_OPS[op.ONNX_TYPE].leading}
        self.consts = [self.same.get(v, v) for op in g.ops for v in op.operands
                       if isinstance(self.same.get(v, v).owner, ConstantOp) and self.same.get(v, v) not in g.args
                       and v not in self.params]

    def row_axes(self) -> int:
        """``p``: no op may mix values along a row axis, every computed value must share the
        rows' leading axes, constants broadcast along them, and the tiles line up (``aligned``)."""
        shape, out0 = self.shape, self.out0
        p = len(out0)
        for op in self.g.ops:
            # An op that mixes no axis (elementwise) mixes none of its result's: its rank is the
            # result's, not its first operand's, which may be a broadcast scalar (1 + x).
            mixes = VECTOR_OPS[op.ONNX_TYPE].first_mixed_axis is not None
            ranked = op.operands[0] if op.operands and (mixes or not op.results) else (op.results[0] if op.results else None)
            rank = len(shape(ranked)) if ranked is not None else 0
            p = min(p, first_mixed_axis(op.ONNX_TYPE, op.onnx_attrs(), rank, self.g.consts(op)))
        while p > 0:
            lead = out0[:p]
            ok = all(_lead_ok(shape(v), lead) for v in self.computed)
            ok = ok and all(all(d == 1 for d in ((1,) * (self.broadcast_rank(c) - len(shape(c))) + shape(c))[:p])
                            for c in self.consts)
            if ok and self.aligned(p):
                break
            p -= 1
        return p

    def broadcast_rank(self, v: SSAValue) -> int:
        """The rank ``v`` broadcasts at, numpy-style: the widest value of the ops reading it.
        Not the group's: a reduction that drops axes (keepdims=0) leaves the ops after it
        narrower than those before (fuzz seeds 24670 and 32151)."""
        if v in self.leading:
            return len(self.shape(v))
        readers = [op for op in self.g.ops if v in {self.same.get(x, x) for x in op.operands}]
        ranks = [len(self.shape(x)) for op in readers for x in [*op.operands, *op.results] if isinstance(x.type, TensorType)]
        return max([len(self.shape(v)), *ranks])

    def padded(self, a: SSAValue) -> tuple[int, ...]:
        """An argument's shape with the unit axes it broadcasts along (a per-channel
        vector of BatchNormalization: [1, C, 1, 1])."""
        s, full = self.shape(a), self.broadcast_rank(a)
        if a in self.channel and len(s) == 1 and full >= 2:
            return (1, *s) + (1,) * (full - 2)
        return (1,) * (full - len(s)) + s

    def tile_rank(self, v: SSAValue, p: int) -> int | None:
        """The rank of ``v``'s tile over the first ``p`` axes, or None for a value loaded
        whole (a parameter, a constant, one that broadcasts along every tiled axis)."""
        if v in self.computed:
            return len(self.shape(v))
        if v not in self.g.args or v in self.params:
            return None
        s = self.shape(v)
        if _lead_ok(s, self.out0[:p]) and (len(s) >= len(self.out0) or v in self.leading):
            return len(s)
        return None if all(d == 1 for d in self.padded(v)[:p]) else len(self.padded(v))

    def aligned(self, p: int) -> bool:
        """Tiles are cut along leading axes, numpy broadcasts from the trailing ones: an
        elementwise op whose tiled operands differ in rank from its result would pair
        the wrong axes (fuzz seed 32402: Where(m [2, 2, 2, 8], a [2, 2, 8], b)). Such a
        group runs as one whole tile."""
        for op in self.g.ops:
            if VECTOR_OPS[op.ONNX_TYPE].first_mixed_axis is None and op.results:
                ranks = {self.tile_rank(self.same.get(v, v), p) for v in op.operands} - {None}
                if ranks - {len(self.shape(op.results[0]))}:
                    return False
        return True

    def plans(self, p: int) -> dict[SSAValue, Plan]:
        """Each argument's tiling: its rows through a GM view (broadcast to the rows first
        when it broadcasts along them), or loaded whole."""

        shape, lead = self.shape, self.out0[:p]
        rows = math.prod(lead)
        used = {self.same.get(v, v) for op in self.g.ops for v in op.operands}
        plans: dict[SSAValue, Plan] = {}
        for a in self.g.args:
            if (a not in used and a not in self.yields) or not isinstance(a.type, TensorType):
                continue  # unread, or an absent optional parameter (the op reads None)
            s, dt, pad = shape(a), self.num.store(np_dtype(a)), self.padded(a)
            if p == 0 or a in self.params:
                plans[a] = (None, s, dt)
            elif _lead_ok(s, lead) and (len(s) >= len(self.out0) or a in self.leading):
                plans[a] = ({"shape": [rows, *s[p:]]}, s[p:], dt)
            elif all(d == 1 for d in pad[:p]):
                plans[a] = (None, s, dt)
            else:
                plans[a] = ({"pre": list(pad), "bcast": [*lead, *pad[p:]], "shape": [rows, *pad[p:]]}, pad[p:], dt)
        return plans

    def results(self, p: int) -> dict[SSAValue, tuple[tuple[int, ...], np.dtype]]:
        """Each computed value's row shape and the dtype the vector unit computes it in."""

        out: dict[SSAValue, tuple[tuple[int, ...], np.dtype]] = {}
        for op in self.g.ops:
            for r in op.results:
                out[r] = (self.shape(r)[p:], _result_dtype(self.num, op.ONNX_TYPE, r))
        return out


def build_vector(name: str, chip: Chip, num: Numerics, g: Group) -> KernelOp | str:

    if _is_rotary_bhsd(g):
        return _build_rotary_bhsd(name, chip, num, g)
    if _is_per_pixel(g):
        return _build_per_pixel(name, chip, num, g)
    made = _build_rows(name, chip, num, g)
    if made == _NO_ROW and _is_row_pool(g):
        return _build_row_pool(name, chip, num, g)
    if isinstance(made, str) and _mixed_span(g) is not None:  # a row, or the one tile, does not fit
        columns = _build_columns(name, chip, num, g)
        return made if isinstance(columns, str) else columns
    return made


_NO_ROW = "a row does not fit in UB"


def _build_rows(name: str, chip: Chip, num: Numerics, g: Group) -> KernelOp | str:
    """The generic vector kernel: tiles of whole rows (see the module's docstring)."""
    cut = _Rows(g, num)
    p = cut.row_axes()
    plans, results = cut.plans(p), cut.results(p)
    same, yields = cut.same, cut.yields
    rows = math.prod(cut.out0[:p])
    outer = (1,) * (p - 1)
    row_bytes = [math.prod(row) * dt.itemsize for view, row, dt in plans.values() if view is not None]
    row_bytes += [math.prod(row) * dt.itemsize for row, dt in results.values()]
    whole = sum(math.prod(s) * dt.itemsize for view, s, dt in plans.values() if view is None)
    r = _rows_per_tile(rows, row_bytes, chip.buffers["ub"] - whole, chip.alignment["ub"]) if p else 1
    if r < 1:
        return _NO_ROW
    if not p:  # one tile holding every tensor whole (results double buffered), each slot block-rounded
        align = chip.alignment["ub"]
        need = sum(-(-math.prod(s) * dt.itemsize // align) * align for _, s, dt in plans.values())
        need += sum(2 * (-(-math.prod(row) * dt.itemsize // align) * align) for row, dt in results.values())
        if need > chip.buffers["ub"]:
            return (f"it mixes values along its first axis, so it is one tile, and that needs {need} bytes of UB "
                    f"(the chip has {chip.buffers['ub']})")
    tiles = math.ceil(rows / r)
    cores = min(chip.vector_cores, tiles)
    kb = KernelBuilder(name, "vector", g.ins, [v.type for v in g.yields])
    tile_shape = (lambda row: (*outer, r, *row)) if p else (lambda row: row)
    bufs: dict[SSAValue, SSAValue] = {}
    for a, (view, row, dt) in plans.items():
        bufs[a] = kb.buffer("UB", tile_shape(row) if view is not None else row, dt, 2 if view is not None else 1)
    for res, (row, dt) in results.items():
        bufs[res] = kb.buffer("UB", tile_shape(row) if p else shape(res), dt, 2)
    with kb.loop(tiles, cores) as i:
        for k, a in enumerate(g.args):
            if a in plans:
                view = plans[a][0]
                if view is None:
                    kb.copy(kb.arg(k), bufs[a], "MTE2")
                else:
                    kb.copy(kb.arg(k), bufs[a], "MTE2", [i], [0], [r], view)
        kb.flag("MTE2", "V")
        for op in g.ops:
            operands = [same.get(v, v) for v in op.operands]
            ins = [x for x in (_vec_operand(kb, g, bufs, v) for v in operands) if x is not None]
            if len(ins) != len(op.operands):
                return f"{op.ONNX_TYPE} has an operand the kernel cannot load"
            kb.vec(op.onnx_key(), ins, [bufs[x] for x in op.results], dict(op.properties))
        kb.flag("V", "MTE3")
        for k, y in enumerate(yields):
            if p:
                kb.copy(bufs[y], kb.out(k), "MTE3", [i], [0], [r], {"shape": [rows, *shape(y)[p:]]})
            else:
                kb.copy(bufs[y], kb.out(k), "MTE3")
    tiling = {"rows": rows, "tile_rows": r, "row_axes": p, "tiles": tiles, "ub_bytes": sum(row_bytes) * r * 2 + whole}
    return kb.finish(cores, tiling)


def _vec_operand(kb: KernelBuilder, g: Group, bufs: dict[SSAValue, SSAValue], v: SSAValue) -> SSAValue | None:
    """What an ascend.vec reads for operand ``v``: its UB buffer, a scalar constant, or the
    kernel's argument for an absent optional parameter (None at run time); None if none."""
    if v in bufs:
        return bufs[v]
    if isinstance(v.owner, ConstantOp):
        return kb.add(ConstOp(v.owner.value)).results[0]
    if isinstance(v.type, NoneType) and v in g.args:
        return kb.arg(g.args.index(v))
    return None


def _is_row_pool(g: Group) -> bool:
    """One MaxPool or AveragePool of [N, C, H, W] whose windows do not overlap along H and
    need no padding there (VGG's 2 x 2, stride 2): a tile of r output rows reads r * stride
    input rows of its own, so a plane too large for UB can be cut along H without halos."""
    if len(g.ops) != 1 or g.ops[0].ONNX_TYPE not in ("MaxPool", "AveragePool"):
        return False
    op = g.ops[0]
    if len(op.operands) != 1 or op.operands[0] not in g.args or len(shape(op.operands[0])) != 4:
        return False
    if any(r.uses for r in op.results[1:]):
        return False  # MaxPool's indices address the whole plane
    a = op.onnx_attrs()
    k, s = a["kernel_shape"][0], (a.get("strides") or [1, 1])[0]
    pads, dil = a.get("pads") or [0, 0, 0, 0], (a.get("dilations") or [1, 1])[0]
    h, h_out = shape(op.operands[0])[2], shape(op.results[0])[2]
    return (a.get("auto_pad", "NOTSET") in ("NOTSET", "VALID") and pads[0] == pads[2] == 0 and dil == 1
            and k <= s and h_out * s <= h and (k == s or not a.get("ceil_mode", 0)))


def _build_row_pool(name: str, chip: Chip, num: Numerics, g: Group) -> KernelOp | str:
    """A pool over planes larger than UB, cut along H (``_is_row_pool``): a work item is
    (n, a block of cb channels, a block of r output rows), cb a divisor of C up to C0 = 16
    (one NC1HWC0 block), r a divisor of H_out so every tile is whole; the input tile is
    [1, cb, r * stride, W], the output [1, cb, r, W_out]."""
    from graphopt.targets.ascend.dialect import IndexAddOp

    op = g.ops[0]
    x, y = op.operands[0], op.results[0]
    n, c, _, w = shape(x)
    h_out, w_out = shape(y)[2], shape(y)[3]
    stride = (op.onnx_attrs().get("strides") or [1, 1])[0]
    x_dt = num.store(np_dtype(x))
    y_dt = _result_dtype(num, op.ONNX_TYPE, y)
    cb = max(d for d in range(1, min(c, 16) + 1) if c % d == 0)
    row_bytes = [cb * stride * w * x_dt.itemsize, cb * w_out * y_dt.itemsize]
    fit = _rows_per_tile(h_out, row_bytes, chip.buffers["ub"], chip.alignment["ub"])
    r = max((d for d in range(1, max(fit, 0) + 1) if h_out % d == 0), default=0)
    if r < 1:
        return _NO_ROW
    blocks, cblocks = h_out // r, c // cb
    items = n * cblocks * blocks
    cores = min(chip.vector_cores, items)
    kb = KernelBuilder(name, "vector", g.ins, [v.type for v in g.yields])
    bx, by = kb.buffer("UB", (1, cb, r * stride, w), x_dt, 2), kb.buffer("UB", (1, cb, r, w_out), y_dt, 2)
    with kb.loop(items, cores) as i:
        ni = kb.add(IndexAddOp(i, 0, div=cblocks * blocks)).results[0]
        ci = kb.add(IndexAddOp(i, 0, div=blocks, mod=cblocks)).results[0]
        hi = kb.add(IndexAddOp(i, 0, mod=blocks)).results[0]
        kb.copy(kb.arg(0), bx, "MTE2", [ni, ci, hi], [0, 1, 2], [1, cb, r * stride])
        kb.flag("MTE2", "V")
        kb.vec(op.onnx_key(), [bx], [by], dict(op.properties))
        kb.flag("V", "MTE3")
        kb.copy(by, kb.out(0), "MTE3", [ni, ci, hi], [0, 1, 2], [1, cb, r])
    tiling = {"rows": n * c * h_out, "tile_rows": r, "row_axes": 3, "tiles": items, "ub_bytes": sum(row_bytes) * r * 2}
    return kb.finish(cores, tiling)


# Ops that mix values along a span of axes and nothing after it (a reduction over axes
# [a..b], a softmax, arg-max or cumulative sum along axis a, a Resize of axis a alone): the
# axes after the span are independent columns.
_ALONG_AXES = frozenset({"Softmax", "LogSoftmax", "ArgMax", "ArgMin", "CumSum", "Resize",
                         *(t for t in VECTOR_OPS if t.startswith("Reduce"))})


def _mixed_span(g: Group) -> tuple[int, int] | None:
    """(a, b): the axes a..b the group's one op mixes values along, when axes follow them
    (the columns), else None."""
    if len(g.ops) != 1 or g.ops[0].ONNX_TYPE not in _ALONG_AXES or g.ops[0].ONNX_DOMAIN:
        return None
    op = g.ops[0]
    x = op.operands[0]
    if x not in g.args or not isinstance(x.type, TensorType) or any(r.uses for r in op.results[1:]):
        return None
    rank = len(shape(x))
    consts = g.consts(op)
    a = first_mixed_axis(op.ONNX_TYPE, op.onnx_attrs(), rank, consts)
    b = a
    if op.ONNX_TYPE.startswith("Reduce"):
        axes = op.onnx_attrs().get("axes")
        if axes is None and len(consts) > 1 and consts[1] is not None:
            axes = consts[1].reshape(-1).tolist()
        if not axes:
            return None
        mixed = sorted(int(k) % rank for k in axes)
        if mixed != list(range(mixed[0], mixed[-1] + 1)):
            return None  # reduced axes with kept ones between them
        a, b = mixed[0], mixed[-1]
    if op.ONNX_TYPE == "Resize":  # one axis, named: its sizes and scales then hold that axis alone
        axes = op.onnx_attrs().get("axes") or []
        if len(axes) != 1:
            return None
        a = b = int(axes[0]) % rank
    return (a, b) if b < rank - 1 else None


def _column_view(s: tuple[int, ...], a: int, trail: int) -> list[int]:
    """``s`` at its own rank with its ``a`` axes before the span folded into the first (L)
    and its ``trail`` axes after it into the last (T); the span's axes (none left when a
    reduction drops them) stay: a tile is one l and a run of columns."""
    head = [math.prod(s[:a])] + [1] * (a - 1) if a else []
    tail = [1] * (trail - 1) + [math.prod(s[len(s) - trail:])]
    return head + list(s[a:len(s) - trail]) + tail


def _build_columns(name: str, chip: Chip, num: Numerics, g: Group) -> KernelOp | str:
    """A reduction, softmax, arg-max, cumulative sum or Resize along axes a..b of x whose span
    does not fit UB as a row (a segmentation head's ArgMax over classes of [N, K, H, W],
    Hiera's max over its mask units [B, 4, N, C], the H half of a large plane's Resize,
    ascend-layout's ``_resize_separable``): the axes after the span are independent, so a
    tile is the whole span for a run of t of them, x viewed as [L, (span), T] at its own
    rank (``_column_view``), a work item (l, block of t columns). CANN's reduce kernels
    tile the non-reduced trailing axes the same way."""
    from graphopt.targets.ascend.dialect import IndexAddOp

    op = g.ops[0]
    span = _mixed_span(g)
    assert span is not None
    a, b = span
    x = op.operands[0]
    xs = shape(x)
    trail = len(xs) - 1 - b
    cols = math.prod(xs[b + 1:])
    lead = math.prod(xs[:a])
    params = [v for v in op.operands[1:] if v in g.args and isinstance(v.type, TensorType)]
    whole = _loaded_whole(num, params)
    x_dt = num.store(np_dtype(x))
    outs = [(r, _result_dtype(num, op.ONNX_TYPE, r)) for r in op.results if r.uses or r is op.results[0]]
    col_bytes = [math.prod(xs[a:b + 1]) * x_dt.itemsize]
    col_bytes += [math.prod(shape(r)) // max(lead * cols, 1) * dt.itemsize for r, dt in outs]
    work = _work(chip, lead, cols, col_bytes, whole)
    if work is None:
        return "the span it mixes does not fit in UB for one column"
    t, blocks, items, cores = work
    kb = KernelBuilder(name, "vector", g.ins, [v.type for v in g.yields])
    args = {v: kb.arg(k) for k, v in enumerate(g.args)}
    views = {v: _column_view(shape(v), a, trail) for v in [x, *(r for r, _ in outs)]}
    tile = {v: [1 if k < (1 if a else 0) else d for k, d in enumerate(vw[:-1])] + [t] for v, vw in views.items()}
    bufs = {x: kb.buffer("UB", tile[x], x_dt, 2)} | {r: kb.buffer("UB", tile[r], dt, 2) for r, dt in outs}
    bp = {v: kb.buffer("UB", shape(v), num.store(np_dtype(v)), 1) for v in params}
    for v, buf in bp.items():
        kb.copy(args[v], buf, "MTE2")
    dims = lambda v: ([0] if a else []) + [len(views[v]) - 1]  # noqa: E731
    with kb.loop(items, cores) as i:
        li = kb.add(IndexAddOp(i, 0, div=blocks)).results[0]
        ci = kb.add(IndexAddOp(i, 0, mod=blocks)).results[0]
        index = [li, ci] if a else [ci]
        kb.copy(args[x], bufs[x], "MTE2", index, dims(x), [1, t] if a else [t], {"shape": views[x]})
        kb.flag("MTE2", "V")
        ins = [bufs[x]] + [bp[v] if v in bp else _vec_operand(kb, g, bufs, v) for v in op.operands[1:]]
        if any(v is None for v in ins):
            return f"{op.ONNX_TYPE} has an operand the kernel cannot load"
        kb.vec(op.onnx_key(), ins, [bufs[r] for r, _ in outs], dict(op.properties))  # pyright: ignore[reportArgumentType]
        kb.flag("V", "MTE3")
        for r, _ in outs:
            kb.copy(bufs[r], kb.out(g.yields.index(r)), "MTE3", index, dims(r), [1, t] if a else [t], {"shape": views[r]})
    tiling = {"rows": lead * cols, "tile_rows": t, "row_axes": a, "tiles": items,
              "ub_bytes": sum(col_bytes) * t * 2 + whole}
    return kb.finish(cores, tiling)


def _is_rotary_bhsd(g: Group) -> bool:
    """A group that is one RotaryEmbedding in its 4-D form: x [B, H, S, D], caches [B, S, D/2]
    (or [B, S, rotary_embedding_dim/2]), without position_ids."""

    if len(g.ops) != 1 or g.ops[0].ONNX_TYPE != "RotaryEmbedding" or len(g.ops[0].operands) != 3:
        return False
    x, cos, sin = g.ops[0].operands
    return len(shape(x)) == 4 and len(shape(cos)) == 3 and all(v in g.args for v in (x, cos, sin))


def _build_rotary_bhsd(name: str, chip: Chip, num: Numerics, g: Group) -> KernelOp | str:
    """RotaryEmbedding on x [B, H, S, D] (transformers' q and k layout) with caches [B, S, D/2]:
    the generic tiling cannot pair a row of x (b, h, s) with its cache row (b, s), which
    skips H, so it ran as one tile (a LLaMA-7B layer's needs 100 MB of UB). Here a work
    item is r sequence positions of one (b, h): x, y as [B, H, S, D] tiles [1, 1, r, D]
    and the caches as [B, S, D/2] tiles [1, r, D/2], the item index split into
    (b, h, block) by div/mod; each head reads its cache rows again (the same bytes, mostly
    from L2)."""
    from graphopt.targets.ascend.dialect import IndexAddOp

    op = g.ops[0]
    x, cos, sin = op.operands
    y = op.results[0]
    b, h, seq, d = shape(x)
    half = shape(cos)[-1]  # d/2, or rotary_embedding_dim/2 when only part of x rotates
    dt = {v: num.store(np_dtype(v)) for v in (x, cos, sin)}
    out_dt = _result_dtype(num, op.ONNX_TYPE, y)
    row_bytes = [d * dt[x].itemsize, half * dt[cos].itemsize, half * dt[sin].itemsize, d * out_dt.itemsize]
    work = _work(chip, b * h, seq, row_bytes)
    if work is None:
        return "a row does not fit in UB"
    r, blocks, items, cores = work
    kb = KernelBuilder(name, "vector", g.ins, [v.type for v in g.yields])
    bx = kb.buffer("UB", (1, 1, r, d), dt[x], 2)
    bc = kb.buffer("UB", (1, r, half), dt[cos], 2)
    bs = kb.buffer("UB", (1, r, half), dt[sin], 2)
    by = kb.buffer("UB", (1, 1, r, d), out_dt, 2)
    args = {v: kb.arg(k) for k, v in enumerate(g.args)}
    with kb.loop(items, cores) as w:
        bi = kb.add(IndexAddOp(w, 0, div=h * blocks)).results[0] if b > 1 else w
        hi = kb.add(IndexAddOp(w, 0, div=blocks, mod=h)).results[0]
        ji = kb.add(IndexAddOp(w, 0, mod=blocks)).results[0]
        kb.copy(args[x], bx, "MTE2", [bi, hi, ji], [0, 1, 2], [1, 1, r])
        kb.copy(args[cos], bc, "MTE2", [bi, ji], [0, 1], [1, r])
        kb.copy(args[sin], bs, "MTE2", [bi, ji], [0, 1], [1, r])
        kb.flag("MTE2", "V")
        kb.vec(op.onnx_key(), [bx, bc, bs], [by], dict(op.properties))
        kb.flag("V", "MTE3")
        kb.copy(by, kb.out(0), "MTE3", [bi, hi, ji], [0, 1, 2], [1, 1, r])
    tiling = {"rows": b * h * seq, "tile_rows": r, "row_axes": 3, "tiles": items, "ub_bytes": sum(row_bytes) * r * 2}
    return kb.finish(cores, tiling)


# Ops that mix the channels of each pixel and nothing else (LRN: a window of neighbouring
# channels; ChannelLayerNorm: all of them).
_PER_PIXEL = frozenset({"ChannelLayerNorm", "LRN"})


def _is_per_pixel(g: Group) -> bool:
    """A group that is one per-pixel channel op of an [N, C, H, W] value."""

    if len(g.ops) != 1 or g.ops[0].ONNX_TYPE not in _PER_PIXEL:
        return False
    op = g.ops[0]
    return len(shape(op.operands[0])) == 4 and all(v in g.args for v in op.operands)


def _build_per_pixel(name: str, chip: Chip, num: Numerics, g: Group) -> KernelOp | str:
    """ChannelLayerNorm or LRN of x [N, C, H, W]: each pixel is normalised over its channels
    alone, so a tile is r rows of H with every channel, [1, C, r, W] (in NC1HWC0, C1 strided
    blocks of r x W x C0), not a whole sample: ConvNeXt's stage 1 at 224 x 224 has
    96 x 56 x 56 per sample, AlexNet's first LRN 96 x 55 x 55, which no UB holds. A work item is (n, block of r rows), split by div/mod;
    the per-channel scale and bias are loaded whole once."""
    from graphopt.targets.ascend.dialect import IndexAddOp

    op = g.ops[0]
    x, params, y = op.operands[0], list(op.operands[1:]), op.results[0]
    n, c, h, w = shape(x)
    x_dt = num.store(np_dtype(x))
    y_dt = _result_dtype(num, op.ONNX_TYPE, y)
    whole = _loaded_whole(num, params)
    row_bytes = [c * w * x_dt.itemsize, c * w * y_dt.itemsize]
    work = _work(chip, n, h, row_bytes, whole)
    if work is None:
        return "a row of every channel does not fit in UB"
    r, blocks, items, cores = work
    kb = KernelBuilder(name, "vector", g.ins, [v.type for v in g.yields])
    args = {v: kb.arg(k) for k, v in enumerate(g.args)}
    bx, by = kb.buffer("UB", (1, c, r, w), x_dt, 2), kb.buffer("UB", (1, c, r, w), y_dt, 2)
    bp = [kb.buffer("UB", shape(v), num.store(np_dtype(v)), 1) for v in params]
    for v, b in zip(params, bp, strict=True):
        kb.copy(args[v], b, "MTE2")
    with kb.loop(items, cores) as i:
        ni = kb.add(IndexAddOp(i, 0, div=blocks)).results[0]
        ji = kb.add(IndexAddOp(i, 0, mod=blocks)).results[0]
        kb.copy(args[x], bx, "MTE2", [ni, ji], [0, 2], [1, r])
        kb.flag("MTE2", "V")
        kb.vec(op.onnx_key(), [bx, *bp], [by], dict(op.properties))
        kb.flag("V", "MTE3")
        kb.copy(by, kb.out(0), "MTE3", [ni, ji], [0, 2], [1, r])
    tiling = {"rows": n * h, "tile_rows": r, "row_axes": 3, "tiles": items, "ub_bytes": sum(row_bytes) * r * 2 + whole}
    return kb.finish(cores, tiling)


def _work(chip: Chip, lead: int, extent: int, unit_bytes: list[int], reserved: int = 0) -> tuple[int, int, int, int] | None:
    """How a kernel tiling ``extent`` units (rows, columns, positions) of each of ``lead``
    independent items splits its work: (units per tile, tiles per item, work items, cores),
    every buffer double buffered in what UB leaves after ``reserved``; None when one unit
    does not fit."""
    r = min(_rows_per_tile(extent, unit_bytes, chip.buffers["ub"] - reserved, chip.alignment["ub"]), extent)
    if r < 1:
        return None
    blocks = math.ceil(extent / r)
    items = lead * blocks
    return r, blocks, items, min(chip.vector_cores, items)


def _result_dtype(num: Numerics, op_type: str, v: SSAValue) -> np.dtype:
    """The dtype the vector unit computes ``v`` (a result of ``op_type``) in: its storage
    dtype, widened as ``Numerics.compute`` says; a non-float dtype as it is."""
    return num.compute(op_type, num.store(np_dtype(v)))


def _loaded_whole(num: Numerics, params: list[SSAValue]) -> int:
    """UB bytes of parameters a kernel loads whole once (a norm's scale and bias)."""
    return sum(math.prod(shape(v)) * num.store(np_dtype(v)).itemsize for v in params)


def _params(ops: list[Any]) -> set[SSAValue]:
    """Values the group reads only as parameters (``VecRow.params``: a reduction's axes)."""
    as_param = {op.operands[k] for op in ops for k in VECTOR_OPS[op.ONNX_TYPE].params if k < len(op.operands)}
    as_data = {v for op in ops for k, v in enumerate(op.operands) if k not in VECTOR_OPS[op.ONNX_TYPE].params}
    return as_param - as_data


def format_changes(g: Group) -> dict[SSAValue, SSAValue]:
    """The TransData ops inside a fused group (ascend-layout: an op of the group that runs
    in ND beside others in NC1HWC0), each result mapped to the value it converts. A kernel
    holds tiles as logical values (each GM operand's DMA converts its storage format), so
    in UB a TransData is the tile it reads."""
    from graphopt.dialects.graph import FusedOp
    from graphopt.targets.ascend.dialect import TransDataOp

    same: dict[SSAValue, SSAValue] = {}
    if isinstance(g.root, FusedOp):
        for op in g.root.body.block.ops:
            if isinstance(op, TransDataOp):
                same[op.output] = same.get(op.input, op.input)
    return same


def _channel_vectors(ops: list[Any]) -> set[SSAValue]:
    """Values the group reads only as per-channel vectors (``VecRow.channel``)."""
    as_channel = {op.operands[k] for op in ops for k in VECTOR_OPS[op.ONNX_TYPE].channel if k < len(op.operands)}
    elsewhere = {v for op in ops for k, v in enumerate(op.operands) if k not in VECTOR_OPS[op.ONNX_TYPE].channel}
    return as_channel - elsewhere


def _rows_per_tile(rows: int, row_bytes: list[int], ub: int, align: int) -> int:
    """Rows per tile: the most that fit ``ub`` double buffered, a multiple of the row count
    that keeps every buffer's tile ``align``-byte aligned (all rows if they fit at once)."""
    step = math.lcm(*(align // math.gcd(align, max(b, 1)) for b in row_bytes)) if row_bytes else 1
    # Under ``step`` rows a tile is off the block size: each double-buffered slot is
    # rounded up to a block (and copied with DataCopyPad), so keep room for that.
    fit = max(ub - 2 * align * len(row_bytes), 0) // max(2 * sum(row_bytes), 1)
    if fit >= rows:
        return rows
    if fit < step:
        return fit if fit >= 1 else 0
    return fit // step * step


