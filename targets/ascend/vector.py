"""The vector unit: which graph ops it runs, how, and in which dtype.

``VECTOR_OPS`` is the table the lowering and the simulator share, one row per ONNX op
type: the timing class of its instructions (a key of ``Chip.vector_bytes_per_cycle``),
whether it is *precise* (a reduction, softmax or norm: allow_mix_precision keeps these in
fp32), and the first axis it mixes values along (the tile loop may split only the axes
before it). The numpy implementation of a row is the op's rule in ``graphopt.semantics``,
applied to tiles cast to the vector dtype (``Numerics``): what the unit computes in.

Internal instructions (``attn.*``: the flash-attention softmax steps) are in ``INTERNAL``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphopt.errors import GraphoptError

AxisRule = Callable[[dict[str, Any], int, Sequence[np.ndarray | None]], int]


@dataclass(frozen=True)
class VecRow:
    unit: str  # timing class: elementwise, exp_fp16/exp_fp32 (by dtype), div, reduce, cast
    precise: bool = False
    first_mixed_axis: AxisRule | None = None  # None: elementwise, mixes nothing
    # Operand positions that are parameters, not data laid out like the output (a
    # reduction's axes): a kernel loads them whole, never tiles or broadcasts them.
    params: tuple[int, ...] = ()
    # Operand positions holding one value per channel ([C], indexing axis 1, not
    # broadcast from the right): a kernel tiling rows of (N, C) tiles them with the rows.
    channel: tuple[int, ...] = ()
    # Operand positions whose axes line up with the result's leading axes (OneHot's indices:
    # the result has one more axis), not broadcast from the right as numpy would.
    leading: tuple[int, ...] = ()


def _axis(attrs: dict[str, Any], rank: int, _consts: Sequence[np.ndarray | None]) -> int:
    a = int(attrs.get("axis", -1))
    return a % rank if rank else 0


def _reduce_axes(attrs: dict[str, Any], rank: int, consts: Sequence[np.ndarray | None]) -> int:
    axes = attrs.get("axes")
    if axes is None and len(consts) > 1 and consts[1] is not None:
        axes = consts[1].tolist()
    if not axes:
        return 0  # every axis (noop_with_empty_axes aside)
    return min(int(a) % rank for a in axes)


def _axis_first(attrs: dict[str, Any], rank: int, _consts: Sequence[np.ndarray | None]) -> int:
    """ArgMax/ArgMin: the ``axis`` attribute, 0 when absent."""
    return int(attrs.get("axis", 0)) % rank if rank else 0


def _axis_input(attrs: dict[str, Any], rank: int, consts: Sequence[np.ndarray | None]) -> int:
    """CumSum: the axis is its second input (a constant here, or nothing is tiled)."""
    if len(consts) < 2 or consts[1] is None or consts[1].size != 1:
        return 0
    return int(consts[1].reshape(-1)[0]) % rank if rank else 0


def _one_hot_axis(attrs: dict[str, Any], rank: int, _consts: Sequence[np.ndarray | None]) -> int:
    """OneHot: ``rank`` is its indices'; the output gains the class axis at ``axis`` (of
    rank + 1). Rows are the index axes before it: each index writes its own class row."""
    return int(attrs.get("axis", -1)) % (rank + 1)


def _resize_axis(attrs: dict[str, Any], rank: int, _consts: Sequence[np.ndarray | None]) -> int:
    """Resize: the first axis it resizes (every axis when ``axes`` is absent)."""
    axes = attrs.get("axes")
    return min(int(a) % rank for a in axes) if axes and rank else 0


def _fixed(n: int) -> AxisRule:
    return lambda attrs, rank, consts: min(n, rank)


def _rotary(attrs: dict[str, Any], rank: int, consts: Sequence[np.ndarray | None]) -> int:
    """RotaryEmbedding: its caches are [B, S, D/2], indexed by x's batch and sequence
    position. In the 3-D form x [B, S, H*D] they share x's leading axes, so rows of x
    (a tile over B and S) are tiled with the matching rows of the caches. The 4-D form
    [B, H, S, D] does not line up with them, and position_ids index the caches by value:
    these run as one tile."""
    if len(consts) > 3:
        return 0
    return 2 if rank == 3 else 0


_ELEMENTWISE = """Add Sub Mul Div Pow Max Min Sum Mean Neg Abs Sqrt Reciprocal Floor Ceil Round Sign
Relu LeakyRelu Elu Selu Celu HardSigmoid HardSwish Softsign ThresholdedRelu Shrink Clip Where PRelu
Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Xor IsNaN IsInf Identity Mod""".split()
_TRANSCENDENTAL = "Exp Log Sigmoid Tanh Erf Gelu Softplus Mish Sin Cos Swish SwiGLU".split()
_REDUCTIONS = "ReduceSum ReduceMean ReduceMax ReduceMin ReduceSumSquare ReduceL1 ReduceL2 ReduceLogSumExp".split()

VECTOR_OPS: dict[str, VecRow] = {
    **{t: VecRow("elementwise") for t in _ELEMENTWISE},
    **{t: VecRow("exp") for t in _TRANSCENDENTAL},
    "Div": VecRow("div"),
    "Cast": VecRow("cast"),
    **{t: VecRow("reduce", True, _reduce_axes, params=(1,)) for t in _REDUCTIONS},
    "Softmax": VecRow("exp", True, _axis),
    "LogSoftmax": VecRow("exp", True, _axis),
    "LayerNormalization": VecRow("reduce", True, _axis),
    "RMSNormalization": VecRow("reduce", True, _axis),
    "RotaryEmbedding": VecRow("elementwise", False, _rotary),
    # Per-channel ops on NCHW: each (n, c) plane is independent, a tile holds whole planes
    # and the slice of the per-channel parameters they need.
    "BatchNormalization": VecRow("elementwise", False, _fixed(2), channel=(1, 2, 3, 4)),
    "InstanceNormalization": VecRow("reduce", True, _fixed(2), channel=(1, 2)),
    # Groups span channels (and C0 blocks in NC1HWC0): a tile holds whole samples.
    "GroupNormalization": VecRow("reduce", True, _fixed(1), params=(1, 2)),
    "ChannelLayerNorm": VecRow("reduce", True, _fixed(1), params=(1, 2)),
    "LRN": VecRow("reduce", True, _fixed(1)),
    # Along one axis: a tile holds that axis and everything after it (CANN: ArgMaxV2, Cumsum).
    "ArgMax": VecRow("reduce", False, _axis_first),
    "ArgMin": VecRow("reduce", False, _axis_first),
    "CumSum": VecRow("reduce", True, _axis_input, params=(1,)),
    # TopK sorts along its axis (CANN: TopKV2 on the AI Core, AscendC's Sort32 and MrgSort);
    # K is a parameter. OneHot compares each index against the classes (CANN: OneHot).
    "TopK": VecRow("sort", False, _axis, params=(1,)),
    "OneHot": VecRow("elementwise", False, _one_hot_axis, params=(1, 2), leading=(0,)),
    # Col2Im sums each sample's overlapping patches into its image (CANN: Col2im on the AI
    # Core): a tile is whole samples; the image and block shapes are parameters.
    "Col2Im": VecRow("elementwise", True, _fixed(1), params=(1, 2), leading=(0,)),
        # Resize of H and W (its axes = [2, 3] form, ascend-layout's _resize_planes): each (n, c)
    # plane is independent (CANN: ResizeBilinearV2, ResizeNearestNeighborV2 on the AI Core);
    # any other Resize is one tile. roi, scales and sizes are parameters.
    "Resize": VecRow("elementwise", False, _resize_axis, params=(1, 2, 3)),
    # Pooling: each (n, c) plane is independent.
    "GlobalAveragePool": VecRow("reduce", True, _fixed(2)),
    "GlobalMaxPool": VecRow("reduce", False, _fixed(2)),
    "MaxPool": VecRow("reduce", False, _fixed(2)),
    "AveragePool": VecRow("reduce", True, _fixed(2)),
}

# Data-movement ops: a kernel of strided DMA through UB (ascend.move); values are unchanged.
# The gathers and scatters address by index values read at run time (the scalar unit computes
# each row's address, as CANN's GatherNd and ScatterNdUpdate do on the AI Core).
MOVE_OPS = frozenset(
    "Transpose Slice Concat Split Expand Tile Gather GatherElements GatherND ScatterND ScatterElements Pad "
    "DepthToSpace SpaceToDepth".split()
)
# Moves that read only what they write from their first input (plus the indices): a gather's
# traffic is its output, not the whole table it picks from.
GATHERS = frozenset("Gather GatherElements GatherND".split())
# Reshape-like ops on ND tensors: no data moves (ascend.view).
VIEW_OPS = frozenset("Reshape Flatten Squeeze Unsqueeze Identity".split())

# Ops whose result is a sum of many terms accumulate in fp32 under every precision mode, as
# CANN's reduce-type kernels cast float16 to float32 on chips whose vector unit has float32
# (and MindSpore's graph kernels raise fp16 reductions the same way, RaiseReductionPrecision):
# a float16 running sum of n terms loses about log2(n) bits, and of cancelling terms all of
# them. Their inputs are read at the storage dtype; the result rounds to it on the way out.
ACCUMULATING = frozenset(
    "ReduceSum ReduceMean ReduceSumSquare ReduceL1 ReduceL2 ReduceLogSumExp CumSum GlobalAveragePool "
    "AveragePool LayerNormalization RMSNormalization InstanceNormalization GroupNormalization LRN Softmax "
    "LogSoftmax ChannelLayerNorm".split()
)

PRECISION_DTYPES = {
    # mode: (float storage in GM, cube input, elementwise vector, precise vector)
    "force_fp16": (np.float16, np.float16, np.float16, np.float16),
    "allow_mix_precision": (np.float16, np.float16, np.float16, np.float32),
    "must_keep_origin_dtype": (np.float32, np.float32, np.float32, np.float32),
}


@dataclass(frozen=True)
class Numerics:
    """The dtypes the chip computes in under a CANN precision mode. The cube always
    accumulates in fp32 (L0C); copies out of L0C round to the storage dtype."""

    mode: str
    storage: np.dtype
    cube_in: np.dtype
    vector: np.dtype
    precise: np.dtype
    acc: np.dtype = np.dtype(np.float32)  # noqa: RUF009 (a dtype is immutable)

    @classmethod
    def of(cls, mode: str) -> Numerics:
        if mode not in PRECISION_DTYPES:
            raise GraphoptError(f"--precision {mode}: use one of {', '.join(PRECISION_DTYPES)}")
        return cls(mode, *(np.dtype(d) for d in PRECISION_DTYPES[mode]))

    def store(self, dtype: np.dtype) -> np.dtype:
        """The GM dtype of a tensor whose model dtype is ``dtype``: floats narrow to storage,
        except under must_keep_origin_dtype, which keeps every dtype (a float64 tensor stays
        float64: the AI CPU computes in it, and a tree ensemble's thresholds depend on it)."""
        if self.mode == "must_keep_origin_dtype":
            return dtype
        if dtype.kind == "f" and dtype.itemsize > self.storage.itemsize:
            return self.storage
        return dtype

    def compute(self, op_type: str, dtype: np.dtype) -> np.dtype:
        """The dtype the vector unit computes ``op_type`` in for float operands of ``dtype``."""
        if dtype.kind != "f":
            return dtype
        row = VECTOR_OPS.get(op_type)
        want = self.precise if row is not None and row.precise else self.vector
        if op_type in ACCUMULATING and self.acc.itemsize > want.itemsize:
            want = self.acc
        return want if want.itemsize >= dtype.itemsize or dtype.itemsize > 4 else dtype


def first_mixed_axis(op_type: str, attrs: dict[str, Any], rank: int, consts: Sequence[np.ndarray | None]) -> int:
    """The first axis ``op_type`` mixes values along (``rank`` if none)."""
    row = VECTOR_OPS[op_type]
    return rank if row.first_mixed_axis is None else row.first_mixed_axis(attrs, rank, consts)


def tile_rows(rows: int, row_bytes: int, ub_bytes: int, align: int, buffers: int = 2) -> int:
    """Rows per UB tile: as many as fit ``ub_bytes`` with every buffer ``buffers`` deep
    (double buffering), rounded down so a tile's bytes stay ``align``-aligned."""
    step = align // math.gcd(align, max(row_bytes, 1))  # rows per aligned unit
    fit = ub_bytes // max(buffers * row_bytes, 1)
    if fit < 1:
        return 0  # one row does not fit
    r = min(rows, fit)
    return max(step, r // step * step) if r >= step else r


# ---------------------------------------------------------------------------------------
# Flash-attention steps (vector side of the attention kernel), on one q tile x kv tile.
# State per q row: running max m, running sum l, and the output accumulator acc.


def attn_scores(s: np.ndarray, *rest: Any, scale: float, causal: int, q_tile: int, kv_tile: int, kv_len: int,
                row_tile: int = 0) -> np.ndarray:
    """scale * S (+ mask tile) with causal masking and kv padding, as -inf. ``rest`` is the
    optional mask tile followed by the row chunk, q tile and kv tile indices: ``s`` holds rows
    ``r * row_tile ...`` of q tile ``qi`` (the vector side works on a block in row chunks)."""
    mask, (r, qi, kj) = (rest[0], rest[1:]) if len(rest) == 4 else (None, rest)
    s = s.astype(np.float32) * np.float32(scale)
    if mask is not None and mask.dtype == np.bool_:  # a boolean mask keeps where True (ONNX Attention)
        s = np.where(mask, s, np.float32(-np.inf))
    elif mask is not None:
        s = s + mask.astype(np.float32)
    rows = np.arange(s.shape[-2])[:, None] + qi * q_tile + r * row_tile
    cols = np.arange(s.shape[-1])[None, :] + kj * kv_tile
    dead = cols >= kv_len
    if causal:
        dead = dead | (cols > rows)
    return np.where(dead, -np.inf, s).astype(np.float32)


def attn_scale_q(q: np.ndarray, *, scale: float) -> np.ndarray:
    """The softmax scale folded into a Q tile once per q tile (computed in fp32, stored in
    the tile's dtype), so S = (scale Q) K^T needs no per-block scaling pass."""
    return (q.astype(np.float32) * np.float32(scale)).astype(q.dtype)


def attn_online_softmax(s: np.ndarray, m: np.ndarray, l: np.ndarray, alpha: np.ndarray, kv: Any, r: Any) -> tuple[np.ndarray, ...]:
    """One online-softmax step on row chunk ``r`` of a block (``s`` holds its rows; ``m``,
    ``l`` and ``alpha`` hold every row of the q tile, and only the chunk's rows change): new
    max, rescale factor for the old state, probabilities P = exp(S - m_new) of the chunk and
    the new running sum."""
    rows = s.shape[-2]
    if m is None or m.shape[-2] == rows:  # whole rows (whole mode: the state starts unset)
        return _online_softmax_rows(s, m, l, kv)
    part = (..., slice(r * rows, (r + 1) * rows), slice(None))
    m, l, alpha = m.copy(), l.copy(), alpha.copy()
    m[part], alpha[part], p, l[part] = _online_softmax_rows(s, m[part], l[part], kv)
    return m, alpha, p, l


def _online_softmax_rows(s: np.ndarray, m: np.ndarray, l: np.ndarray, kv: Any) -> tuple[np.ndarray, ...]:
    """The online-softmax step on whole rows. Rows with every key masked so far keep
    m = -inf; their P is 0 (ONNX: a fully masked row gives zeros)."""
    m_new = np.maximum(m, s.max(axis=-1, keepdims=True)) if kv else s.max(axis=-1, keepdims=True)
    safe = np.where(np.isfinite(m_new), m_new, 0).astype(np.float32)
    p = np.exp(s - safe).astype(np.float32)
    alpha = np.exp(np.where(np.isfinite(m), m, safe) - safe).astype(np.float32) if kv else np.zeros_like(safe)
    l_new = (l * alpha if kv else 0) + p.sum(axis=-1, keepdims=True)
    return m_new.astype(np.float32), alpha, p, np.asarray(l_new, np.float32)


def attn_rescale(acc: np.ndarray, alpha: np.ndarray, pv: np.ndarray, kv: Any) -> np.ndarray:
    """acc = acc * alpha + P @ V (the first kv step starts from zero)."""
    pv = pv.astype(np.float32)
    return (acc * alpha + pv if kv else pv).astype(np.float32)


def attn_finalize(acc: np.ndarray, l: np.ndarray) -> np.ndarray:
    return (acc / np.where(l == 0, 1, l)).astype(np.float32)
