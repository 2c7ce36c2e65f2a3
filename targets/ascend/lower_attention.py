"""The flash-attention cube kernel (``build_attention``): its blocking, chosen to fit the
chip's buffers (``attention_blocking``), and its software-pipelined program. See ``lower.py``
for what chooses it and ``lower_cube.py`` for the matmul kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.ir import Attribute, SSAValue

from graphopt.targets.ascend.builder import KernelBuilder, ir_dict
from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import CopyOp, IndexAddOp, KernelOp
from graphopt.targets.ascend.lower_cube import DTYPE_NAME, _np_of, _up
from graphopt.targets.ascend.vector import Numerics


@dataclass
class AttentionSpec:
    bh: int  # batch x query heads
    sq: int
    skv: int
    d: int
    dv: int
    scale: float
    causal: bool
    q_view: dict[str, Any]
    kt_view: dict[str, Any]  # K as [BH, D, Skv]
    v_view: dict[str, Any]
    out_view: dict[str, Any]
    mask: int | None = None  # kernel input index of the mask (additive float, or boolean: keep where True)
    mask_view: dict[str, Any] | None = None


# Kv tiles tried, widest first: a wide block amortises the fixed cost of each DMA (the K and V
# panels, the P hand-off) and of each FixPipe write over more cube work.
_KV_TILES = (512, 256, 128, 64, 32, 16)
_Q_TILES = (128, 64, 32, 16)


@dataclass(frozen=True)
class AttentionTiles:
    """The flash-attention kernel's blocking (see build_attention).

    ``bm`` x ``bn``: the q x kv block of one pipeline step; ``ck``: the kv chunk of one cube
    instruction (S and P.V are computed ``bn / ck`` chunks at a time so S and O share L0C);
    ``ring_a`` / ``ring_b`` / ``ring_c``: whether L0A (Q, P chunks), L0B (K, V chunks) and
    L0C (S chunks, O) are one ping-pong pair shared by both operands (their shapes agree) or
    separate buffers; ``*_copies``: buffer counts of the separate ones; ``panel_copies``: of
    the K, V and P panels in L1 (a wide block fits L1 once); ``rc``: the rows of one
    vector-side chunk (the AIVs take a block's scores ``rc`` rows at a time, so S and P fit
    the UB twice and the next chunk's load overlaps this one's softmax); ``ub_copies``: of
    the S, P (and mask) chunks."""

    bm: int
    bn: int
    ck: int
    ring_a: bool
    ring_b: bool
    ring_c: bool
    p_copies: int
    kv_copies: int
    s_copies: int
    panel_copies: int = 2
    rc: int = 0
    ub_copies: int = 1


def _attention_fit(chip: Chip, num: Numerics, spec: AttentionSpec, bm: int, bn: int) -> AttentionTiles | None:
    """The buffers build_attention declares for a bm x bn block, or None when they do not fit.
    UB is per vector core: on split chips each of the AIC's AIVs holds its share of the rows."""
    s = np.dtype(num.cube_in).itemsize
    dp, dvp = _up(spec.d, 16), _up(spec.dv, 16)
    ck = next(c for c in (128, 64, 32, 16) if bn % c == 0)  # bn is a multiple of the fractal
    aivs = max(1, chip.vector_cores // chip.cube_cores) if chip.split else 1
    rows = math.ceil(bm / aivs)
    mask = bn * 4 if spec.mask is not None else 0
    # UB, per row of the q tile: P.V in, the accumulator, the output tile (which also stages
    # the scaled Q tile when their shapes agree, else a Q tile of its own), the running max and
    # sum, the finished item's sum and alpha's even/odd history pair; per row of a chunk, S
    # (fp32), P (cube dtype) and the mask, twice when the rows are taken in chunks (split
    # chips: S comes from a GM workspace, so any rows can be fetched), else once.
    q_tile = 0 if dp == dvp and np.dtype(num.storage) == np.dtype(num.cube_in) else dp * s
    state = rows * (dvp * (4 + 4 + np.dtype(num.storage).itemsize) + q_tile + 5 * 4)
    chunked = [c for c in (bm // 2, bm // 4, bm // 8) if c and bm % c == 0 and c % (8 * aivs) == 0]
    rc, ub_copies = bm, 1
    for c in chunked if chip.split else []:
        if state + 2 * math.ceil(c / aivs) * (bn * (4 + s) + mask) <= chip.buffers["ub"]:
            rc, ub_copies = c, 2
            break
    ub = state + ub_copies * math.ceil(rc / aivs) * (bn * (4 + s) + mask)
    ring_a = dp == ck
    l0a = 2 * bm * ck * s if ring_a else bm * dp * s + bm * ck * s
    p_copies = 1
    if not ring_a and bm * dp * s + 2 * bm * ck * s <= chip.buffers["l0a"]:
        p_copies, l0a = 2, bm * dp * s + 2 * bm * ck * s
    ring_b = dp == ck == dvp
    kv_copies = 2 if ring_b or 2 * (dp * ck + ck * dvp) * s <= chip.buffers["l0b"] else 1
    l0b = 2 * ck * ck * s if ring_b else kv_copies * (dp * ck + ck * dvp) * s
    ring_c = ck == dvp
    s_copies = 2 if ring_c or (2 * ck + dvp) * bm * 4 <= chip.buffers["l0c"] else 1
    l0c = 2 * bm * ck * 4 if ring_c else (s_copies * ck + dvp) * bm * 4
    # L1 ping-pong pairs: Q, K^T, P, V; on coupled chips P arrives straight from UB and keeps
    # an even/odd pair (the two-block lead's history), on split ones that history is in GM.
    # A panel held once is refilled as soon as its last chunk has gone to L0, while the other
    # stage of the iteration runs (QK(j+2) and PV(j) use different panels).
    p_pairs = 2 if chip.path("UB", "L1") is not None else 1
    panels = (dp * bn + p_pairs * bm * bn + bn * dvp) * s
    panel_copies = 2 if 2 * bm * dp * s + 2 * panels <= chip.buffers["l1"] else 1
    l1 = 2 * bm * dp * s + panel_copies * panels
    fits = (l0a <= chip.buffers["l0a"] and l0b <= chip.buffers["l0b"] and l0c <= chip.buffers["l0c"]
            and l1 <= chip.buffers["l1"] and ub <= chip.buffers["ub"])
    tiles = AttentionTiles(bm, bn, ck, ring_a, ring_b, ring_c, p_copies, kv_copies, s_copies, panel_copies, rc, ub_copies)
    return tiles if fits else None


def attention_fits(chip: Chip, num: Numerics, spec: AttentionSpec) -> bool:
    """Whether the kernel's smallest block (16 x 16) fits the chip's buffers: a long head
    dimension may not (the kernel keeps whole rows of Q, K and V)."""
    return _attention_fit(chip, num, spec, 16, 16) is not None


def attention_blocking(chip: Chip, num: Numerics, spec: AttentionSpec) -> AttentionTiles:
    """The largest q tile, then the widest kv tile, whose buffers fit (``_attention_fit``),
    cut down to the sequence lengths (rounded up to the fractal)."""
    for bm in _Q_TILES:
        for bn in _KV_TILES:
            # Past one chunk, round the kv length up to whole 128-wide chunks (fewer cube instructions).
            kv = _up(spec.skv, 128 if spec.skv > 128 else 16)
            t = _attention_fit(chip, num, spec, min(bm, _up(spec.sq, 16)), min(bn, kv))
            if t is not None:
                return t
    return AttentionTiles(16, 16, 16, False, False, False, 1, 1, 1)


def attention_cores(cores: int, bh: int, tq: int) -> tuple[int, int]:
    """Cores over (heads, q tiles): the grid whose busiest core has the fewest work items."""
    best = (1, 1)
    for c1 in range(1, min(cores, bh) + 1):
        c2 = max(1, min(tq, cores // c1))
        load = math.ceil(bh / c1) * math.ceil(tq / c2)
        if load < math.ceil(bh / best[0]) * math.ceil(tq / best[1]):
            best = (c1, c2)
    return best


def build_attention(name: str, chip: Chip, num: Numerics, ins: Sequence[SSAValue], out_types: Sequence[Attribute],
                    spec: AttentionSpec) -> KernelOp:
    """Flash attention (online softmax), software pipelined as hand-written AscendC kernels are
    (CANN FlashAttentionScore, pto-isa): one flat parallel loop over work items (batch*head,
    q tile), core c taking items c, c + cores, ... (``ascend.index_add`` div/mod give an item's
    coordinates). Once per q tile the AIVs fold the softmax scale into Q (``attn.scale_q``),
    so no block pays a scaling pass; a core scales its next item's Q ahead, into a staging
    buffer the current item no longer needs. Then per kv block j, four stages:

      QK(j)  AIC: K^T panel GM->L1 (MTE2), S = (scale Q) K^T chunk by chunk (MTE1, M), each
             chunk FixPipe'd into a GM workspace tile (L0C holds a chunk and P.V at once)
      SM(j)  AIV: S to UB ``rc`` rows at a time, masks where needed, online softmax (new max,
             alpha_j, P_j, running sum) of those rows, P_j (cube dtype) back to a GM workspace
      PV(j)  AIC: P_j and the V panel to L1, P.V chunk by chunk into L0C, FixPipe to GM
      AC(j)  AIV: P.V to UB, acc = (acc + P_j V_j) * alpha_{j+1} (the last block: acc + P.V)

    The loop is skewed by two blocks (a two-block lead): a prologue runs QK(0), SM(0), QK(1),
    SM(1); steady-state iteration j runs QK(j+2), PV(j) on the AIC and SM(j+2), AC(j) on the
    AIVs; an epilogue runs PV and AC of the last two blocks. Between SM(j) and the AC(j) that
    consumes its P.V the AIVs have two softmaxes and an accumulate of other blocks to do, which
    covers the P -> GM -> PV -> GM -> AC round trip (four DMAs and two cross-core flags); the
    cube likewise has QK(j+1), PV(j-1), QK(j+2) between QK(j) and PV(j). The pipeline runs
    across work items too: a core's first item has the prologue; every item's epilogue is
    merged with the next item's prologue (``transition``, guarded loops: the last item has no
    next), so the fill and drain of consecutive q tiles overlap.
    History buffers make the lead correct: P_j is written by SM(j) two iterations before PV(j)
    reads it, with SM(j+1) in between, and AC(j) needs alpha_{j+1} after SM(j+2) has produced
    alpha_{j+2}; so P and alpha have an even and an odd buffer (block j uses buffer j mod 2)
    and the steady state is unrolled by two (``ascend.index_add`` with ``mul = 2`` names block
    2p + e). The accumulator is kept scaled to the running max of the block after the last
    one accumulated (alpha_{j+1}).
    Every hand-off is a buffer with explicit syncs; the ping-pong buffers (2 copies) are what
    lets QK(j+2) fill L0C/L1 while PV(j) drains, so the timing model derives the overlap from
    the buffer dependencies alone. On split chips the vector side is the AIC's two AIVs, each
    taking half the rows (MIX_AIC_1_2); they fetch a block's S in row chunks (its rows are
    independent in the softmax), so S and P of a 128 x 512 block pass through the UB
    double-buffered. A block that wide amortises the per-block P.V hand-off (one FixPipe, one
    fetch and one accumulate per 512 keys instead of per 256) over twice the cube work; its
    K, V and P panels then fit L1 once each, and each is refilled while the other stage of the
    iteration computes.
    Each stage is a one-trip ``ascend.for`` (its ops name one kv block; the timing model skips
    fully masked causal blocks stage by stage). The program order is also a correct sequential
    program (every read sees the latest write), which the functional simulator runs."""
    return _AttentionKernel(name, chip, num, ins, out_types, spec).build()


class _AttentionKernel:
    """build_attention's program, one method per stage; __init__ lays out the buffers."""

    def __init__(self, name: str, chip: Chip, num: Numerics, ins: Sequence[SSAValue], out_types: Sequence[Attribute],
                 spec: AttentionSpec):
        self.chip, self.num, self.spec = chip, num, spec
        self.t = t = attention_blocking(chip, num, spec)
        self.bm, self.bn, self.ck = bm, bn, ck = t.bm, t.bn, t.ck
        self.nc = bn // ck
        self.dp, self.dvp = dp, dvp = _up(spec.d, 16), _up(spec.dv, 16)
        self.dt = dt = num.cube_in
        self.tq, self.tk = math.ceil(spec.sq / bm), math.ceil(spec.skv / bn)
        self.kb = KernelBuilder(name, "cube", ins, out_types)
        self.split = chip.path("L0C", "UB") is None
        self.to_l1_via_gm = chip.path("UB", "L1") is None
        self.rc, self.nrc = t.rc or bm, bm // (t.rc or bm)
        self._cube_buffers(t, bm, bn, ck, dp, dvp, dt)
        self._vector_buffers(t, bm, bn, dp, dvp, dt)
        c_heads, c_q = attention_cores(chip.cube_cores, spec.bh, self.tq)
        self.cores, self.items = c_heads * c_q, spec.bh * self.tq

    def _cube_buffers(self, t: AttentionTiles, bm: int, bn: int, ck: int, dp: int, dvp: int, dt: Any) -> None:
        kb, f32, pc = self.kb, np.float32, t.panel_copies
        self.l1q = kb.buffer("L1", [bm, dp], dt, 2)
        self.l1k, self.l1p, self.l1v = kb.buffer("L1", [dp, bn], dt, pc), kb.buffer("L1", [bm, bn], dt, pc), kb.buffer("L1", [bn, dvp], dt, pc)
        if t.ring_a:  # Q and the P chunks alternate in one L0A ping-pong pair; Q is reloaded per block
            self.l0q = self.l0p = kb.buffer("L0A", [bm, ck], dt, 2)
        else:
            self.l0q, self.l0p = kb.buffer("L0A", [bm, dp], dt, 1), kb.buffer("L0A", [bm, ck], dt, t.p_copies)
        if t.ring_b:
            self.l0k = self.l0v = kb.buffer("L0B", [ck, ck], dt, 2)
        else:
            self.l0k, self.l0v = kb.buffer("L0B", [dp, ck], dt, t.kv_copies), kb.buffer("L0B", [ck, dvp], dt, t.kv_copies)
        if t.ring_c:
            self.l0s = self.l0o = kb.buffer("L0C", [bm, ck], f32, 2)
        else:
            self.l0s, self.l0o = kb.buffer("L0C", [bm, ck], f32, t.s_copies), kb.buffer("L0C", [bm, dvp], f32, 1)
        self.ws_s = kb.buffer("GM", [bm, bn], f32, 2) if self.split else None
        self.ws_o = kb.buffer("GM", [bm, dvp], f32, 2) if self.split else None
        # History: P_j in ws_p[j % 2] (or the L1 pair on coupled chips), alpha_j in ub_alpha[j % 2].
        self.ws_p = [kb.buffer("GM", [bm, bn], dt, 2) for _ in range(2)] if self.to_l1_via_gm else None
        self.l1ps = [self.l1p, kb.buffer("L1", [bm, bn], dt, pc)] if not self.to_l1_via_gm else [self.l1p, self.l1p]
        self.ws_q = kb.buffer("GM", [bm, dp], dt, 2) if self.to_l1_via_gm else None

    def _vector_buffers(self, t: AttentionTiles, bm: int, bn: int, dp: int, dvp: int, dt: Any) -> None:
        kb, f32, rc, num = self.kb, np.float32, self.rc, self.num
        self.ub_s, self.ub_p = kb.buffer("UB", [rc, bn], f32, t.ub_copies), kb.buffer("UB", [rc, bn], dt, t.ub_copies)
        self.ub_m, self.ub_l = kb.buffer("UB", [bm, 1], f32), kb.buffer("UB", [bm, 1], f32)
        self.ub_lf = kb.buffer("UB", [bm, 1], f32)  # the finished item's sum (the next item's starts in ub_l)
        self.ub_alpha = [kb.buffer("UB", [bm, 1], f32) for _ in range(2)]
        self.ub_pv, self.ub_acc = kb.buffer("UB", [bm, dvp], f32), kb.buffer("UB", [bm, dvp], f32)
        self.ub_o = kb.buffer("UB", [bm, dvp], num.storage)
        # The scaled Q tile is staged in the output tile's UB when they agree (it is free until
        # the q tile's finalize), which keeps the UB budget of _attention_fit.
        same = dp == dvp and np.dtype(num.storage) == np.dtype(dt)
        self.ub_q = self.ub_o if same else kb.buffer("UB", [bm, dp], dt)
        mask = self.spec.mask
        self.ub_mask = kb.buffer("UB", [rc, bn], _np_of(kb.arg(mask).type), t.ub_copies) if mask is not None else None

    def affine(self, i: SSAValue, by: int, mul: int = 1) -> SSAValue:
        return self.kb.add(IndexAddOp(i, by, mul)).results[0] if by or mul != 1 else i

    def qk(self, h: SSAValue, kv: SSAValue) -> None:
        kb, split = self.kb, self.split
        kb.copy(kb.arg(1), self.l1k, "MTE2", [h, kv], [0, 2], [1, self.bn], self.spec.kt_view)
        kb.flag("MTE2", "MTE1")
        if self.t.ring_a:
            kb.copy(self.l1q, self.l0q, "MTE1")
        with kb.loop(self.nc) as c:
            kb.copy(self.l1k, self.l0k, "MTE1", [c], [1], [self.ck])
            kb.flag("MTE1", "M")
            kb.mmad(self.l0s, self.l0q, self.l0k, [])
            kb.flag("M", "FIX" if split else "V")
            if split:
                assert self.ws_s is not None
                kb.add(CopyOp(self.l0s, self.ws_s, "FIX", [c], [1], [self.ck], into=True))
            else:
                kb.add(CopyOp(self.l0s, self.ub_s, "V", [c], [1], [self.ck], into=True))
        if split:
            kb.flag("FIX", "MTE2", cross_core=True)

    def sm(self, h: SSAValue, qi: SSAValue, kv: SSAValue, e: int) -> None:
        """The block's softmax, ``rc`` rows at a time (row r of chunk k is row k * rc + r)."""
        kb, spec, rc, nrc, bn = self.kb, self.spec, self.rc, self.nrc, self.bn
        p_dest = self.ws_p[e] if self.ws_p is not None else self.l1ps[e]  # coupled: UB -> L1 directly
        for k in range(nrc):
            r = self.affine(qi, k, 0)  # the chunk's index, k
            rows: tuple[list[SSAValue], list[int], list[int]] = ([r], [0], [rc]) if nrc > 1 else ([], [], [])
            if self.split:
                assert self.ws_s is not None
                kb.copy(self.ws_s, self.ub_s, "MTE2", *rows)
            score_ins = [self.ub_s]
            if self.ub_mask is not None:
                qr = self.affine(qi, k, nrc)  # the chunk's rows in units of rc
                kb.copy(kb.arg(spec.mask or 0), self.ub_mask, "MTE2", [h, qr, kv], [0, 1, 2], [1, rc, bn], spec.mask_view)
                score_ins.append(self.ub_mask)
            kb.flag("MTE2", "V")
            # Scale 1: Q is pre-scaled; what is left are the masks (causal, padding, additive).
            attrs = {"scale": 1.0, "causal": int(spec.causal), "q_tile": self.bm, "kv_tile": bn, "kv_len": spec.skv, "row_tile": rc}
            kb.vec("attn.scores", [*score_ins, r, qi, kv], [self.ub_s], ir_dict(attrs))
            kb.vec("attn.online_softmax", [self.ub_s, self.ub_m, self.ub_l, self.ub_alpha[e], kv, r],
                   [self.ub_m, self.ub_alpha[e], self.ub_p, self.ub_l])
            kb.flag("V", "MTE3")
            kb.add(CopyOp(self.ub_p, p_dest, "MTE3", *rows, into=nrc > 1))
        if self.ws_p is not None:
            kb.flag("MTE3", "MTE2", cross_core=True)

    def pv(self, h: SSAValue, kv: SSAValue, e: int) -> None:
        kb = self.kb
        # P is fetched here, by its consumer, after the V panel (which waits for nothing):
        # MTE2 is in order, so a fetch queued behind the softmax would hold up other loads.
        kb.copy(kb.arg(2), self.l1v, "MTE2", [h, kv], [0, 1], [1, self.bn], self.spec.v_view)
        if self.ws_p is not None:
            kb.copy(self.ws_p[e], self.l1ps[e], "MTE2")
        else:
            kb.flag("MTE3", "MTE1")
        kb.flag("MTE2", "MTE1")
        with kb.loop(self.nc) as c:
            kb.copy(self.l1ps[e], self.l0p, "MTE1", [c], [1], [self.ck])
            kb.copy(self.l1v, self.l0v, "MTE1", [c], [0], [self.ck])
            kb.flag("MTE1", "M")
            kb.mmad(self.l0o, self.l0p, self.l0v, [c])
        if self.split:
            assert self.ws_o is not None
            kb.flag("M", "FIX")
            kb.copy(self.l0o, self.ws_o, "FIX")
            kb.flag("FIX", "MTE2", cross_core=True)
        else:
            kb.flag("M", "V")

    def ac(self, kv: SSAValue, e_next: int, final: bool) -> None:
        kb = self.kb
        if self.split:
            assert self.ws_o is not None
            kb.copy(self.ws_o, self.ub_pv, "MTE2")
            kb.flag("MTE2", "V")
        else:
            kb.copy(self.l0o, self.ub_pv, "V")
        kb.vec("attn.accumulate", [self.ub_acc, self.ub_alpha[e_next], self.ub_pv, kv], [self.ub_acc], ir_dict({"final": int(final)}))

    def stage(self, fn: Any, *args: Any) -> None:
        with self.kb.loop(1):  # one kv block's stage (see build_attention)
            fn(*args)

    def steady(self, h: SSAValue, qi: SSAValue, j: SSAValue, e: int) -> None:
        """Iteration j (of parity e): start block j + 2, finish block j."""
        j2 = self.affine(j, 2)
        self.stage(self.qk, h, j2)
        self.stage(self.pv, h, j, e)
        self.stage(self.sm, h, qi, j2, e)
        self.stage(self.ac, j, 1 - e, False)

    def scale_q(self, h: SSAValue, qi: SSAValue) -> None:
        """Q of one work item, scaled once on the vector side, staged for its kv loop (in GM
        on split chips, in the UB otherwise)."""
        kb = self.kb
        kb.copy(kb.arg(0), self.ub_q, "MTE2", [h, qi], [0, 1], [1, self.bm], self.spec.q_view)
        kb.flag("MTE2", "V")
        kb.vec("attn.scale_q", [self.ub_q], [self.ub_q], ir_dict({"scale": float(self.spec.scale)}))
        kb.flag("V", "MTE3")
        if self.ws_q is not None:
            kb.copy(self.ub_q, self.ws_q, "MTE3")
            kb.flag("MTE3", "MTE2", cross_core=True)

    def load_q(self) -> None:
        """The staged scaled Q into L1 (and L0A) for the whole kv loop."""
        kb = self.kb
        if self.ws_q is not None:
            kb.copy(self.ws_q, self.l1q, "MTE2")
            kb.flag("MTE2", "MTE1")
        else:
            kb.copy(self.ub_q, self.l1q, "MTE3")
            kb.flag("MTE3", "MTE1")
        if not self.t.ring_a:
            kb.copy(self.l1q, self.l0q, "MTE1")

    def coords(self, w: SSAValue) -> tuple[SSAValue, SSAValue]:
        """(batch*head, q tile) of flat work item w."""
        h = self.kb.add(IndexAddOp(w, 0, div=self.tq)).results[0] if self.tq > 1 else w
        return h, self.kb.add(IndexAddOp(w, 0, mod=self.tq)).results[0]

    def transition_order(self) -> list[tuple[str, int]]:
        """The order of transition's stages: the steady state's (QK, PV, SM, AC) with this
        item's last blocks and the next item's first; a stage not yet allowed waits for the
        first later one that is."""
        tk = self.tk
        epi, pro = list(range(max(0, tk - 2), tk)), list(range(min(2, tk)))
        order: list[tuple[str, int]] = [("load", 0)]
        for i in range(max(len(epi), len(pro))):
            order += [(x, blk[i]) for x, blk in (("qk", pro), ("pv", epi), ("sm", pro), ("ac", epi)) if i < len(blk)]
        done: list[tuple[str, int]] = []

        def ready(o: tuple[str, int]) -> bool:
            if o[0] == "qk":  # after the softmax that reads the previous block's S
                return ("load", 0) in done and (o[1] == 0 or ("sm", o[1] - 1) in done)
            if o[0] == "sm":  # after every read of the history slots it overwrites
                return ("qk", o[1]) in done and all(
                    ("pv", x) in done for x in epi if x % 2 == o[1] % 2) and all(
                    ("ac", x) in done for x in epi if x != tk - 1 and (x + 1) % 2 == o[1] % 2)
            if o[0] == "ac":
                return ("pv", o[1]) in done
            return True

        pending = order
        while pending:
            o = next(x for x in pending if ready(x))
            pending.remove(o)
            done.append(o)
        return done

    def transition(self, z: SSAValue, h: SSAValue, nxt: SSAValue, hn: SSAValue, qn: SSAValue) -> None:
        """The drain of this item (P.V and accumulate of its last two blocks) merged with the
        fill of the core's next item (its Q into L1, QK^T and softmax of its blocks 0 and 1,
        guarded: the last item has none), so the round trip of the last blocks overlaps the
        next item's first ones. The next item's softmaxes write the running max and sum and
        the history buffers: its block k's P and alpha go where PV(x) / AC(x) of this item
        with the same parity read them, so SM'(k) comes after those (first ready in the
        preferred order); the sum is kept for the finalize (ub_lf) before."""
        kb, tk = self.kb, self.tk
        zb = {b: self.affine(z, b) for b in range(max(0, tk - 2), tk)}
        kn = {k: kb.add(IndexAddOp(z, k)).results[0] for k in range(min(2, tk))}  # the next item's blocks
        kb.vec("Identity", [self.ub_l], [self.ub_lf])
        for kind, b in self.transition_order():
            if kind == "pv":
                self.stage(self.pv, h, zb[b], b % 2)
            elif kind == "ac":
                self.stage(self.ac, zb[b], (b + 1) % 2, b == tk - 1)
            else:
                with kb.loop(1, guard=nxt, below=self.items):  # only when the core has a next item
                    if kind == "load":
                        self.load_q()
                    elif kind == "qk":
                        self.qk(hn, kn[b])
                    else:
                        self.sm(hn, qn, kn[b], b)

    def build(self) -> KernelOp:
        kb, tk, cores, items = self.kb, self.tk, self.cores, self.items
        # One flat loop over work items (head, q tile); core c takes items c, c + cores, ... Its
        # first item's Q is scaled on entry; each item scales the next one's (w + cores) ahead,
        # so the next item's kv loop starts without the Q load / scale / GM hand-off in front.
        with kb.loop(items, cores) as w:
            h, qi = self.coords(w)
            nxt = self.affine(w, cores)
            hn, qn = self.coords(nxt)
            with kb.loop(1, guard=w, below=cores):  # the core's first item: its Q and prologue
                self.scale_q(h, qi)
                self.load_q()
                with kb.loop(1) as z:  # QK^T and softmax of blocks 0 and 1
                    for b in range(min(2, tk)):
                        zb = self.affine(z, b)
                        self.stage(self.qk, h, zb)
                        self.stage(self.sm, h, qi, zb, b)
            self.kv_loop(h, qi, nxt, hn, qn)
            kb.vec("attn.finalize", [self.ub_acc, self.ub_lf], [self.ub_o])
            kb.flag("V", "MTE3")
            kb.copy(self.ub_o, kb.out(0), "MTE3", [h, qi], [0, 1], [1, self.bm], self.spec.out_view)
        spec = self.spec
        tiling = {"q_tile": self.bm, "kv_tile": self.bn, "kv_chunk": self.ck, "bh": spec.bh, "sq": spec.sq, "skv": spec.skv,
                  "d": spec.d, "causal": int(spec.causal), "dtype": DTYPE_NAME[np.dtype(self.dt)], "pipelined": 2}
        return kb.finish(cores, tiling)

    def kv_loop(self, h: SSAValue, qi: SSAValue, nxt: SSAValue, hn: SSAValue, qn: SSAValue) -> None:
        """The steady state, unrolled by two, then the transition to the next item."""
        kb, n = self.kb, self.tk - 2  # steady-state iterations

        def scale_next() -> None:  # the next item's Q, scaled ahead into its staging
            with kb.loop(1, guard=nxt, below=self.items):
                self.scale_q(hn, qn)

        # The next item's Q is scaled after the first steady pair, where the vector side has
        # slack and this item's output (which shares the staging tile) has long been stored.
        peel = 1 if n // 2 >= 2 else 0
        if peel:
            with kb.loop(1) as z:
                for e in (0, 1):
                    self.steady(h, qi, self.affine(z, e), e)
        scale_next()
        if n // 2 > peel:
            with kb.loop(n // 2 - peel) as p:
                for e in (0, 1):
                    self.steady(h, qi, self.affine(p, 2 * peel + e, 2), e)
        if n > 0 and n % 2:
            with kb.loop(1) as z:
                self.steady(h, qi, self.affine(z, n - 1), (n - 1) % 2)
        with kb.loop(1) as z:
            self.transition(z, h, nxt, hn, qn)
