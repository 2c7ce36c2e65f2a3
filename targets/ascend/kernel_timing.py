"""Timing programs from lowered kernels: each ``ascend.kernel`` becomes a ``timing.Program``.

The walk needs no data, so it runs at compile time. For each kernel:

- **Cores.** A parallel ``ascend.for`` (``cores`` > 1) gives iteration i to core coordinate
  i mod cores; nested parallel loops combine into one core id. A guarded loop (``below``)
  runs on a core only where its guard index is below the bound (a core's first / next item). Cores doing the same work
  (same iteration counts, same edge tiles; for causal attention, whose cores skip different
  kv blocks, also the same number of blocks left) are simulated once and counted as replicas.
- **Unrolling.** Loops are unrolled by their trip counts on each simulated core, in program
  order; each copy, mmad and vector op becomes one instruction on its pipe.
- **Split chips.** In a cube kernel, the UB side (MTE2 into UB, V, MTE3) runs on the AIC's
  vector cores (MIX_AIC_1_2): modelled as one AIV doing its share of each tile's rows (the
  others are replicas running alongside). Its hand-offs with the AIC go through a GM/L2
  workspace and pay the cross-core flag latency (`sync.cross_core_cycles`). Coupled chips
  keep everything on one core.
- **Dependencies** are the ones the kernel's SetFlag/WaitFlag pairs protect, derived from the
  buffers: a read waits for the write of its buffer slot (RAW), a write waits for the last
  reads of the slot it overwrites (WAR); buffers declared with 2 copies ping-pong, so
  double buffering overlaps exactly as far as the kernel allows. Pipes are in order.
- **Costs** come from the chip file: copies by bytes and path (`timing.copy_cycles`: fixed DMA
  cost, path width, 512 B alignment, HBM share), mmad by fractal steps and dtype
  (`timing.mmad_cycles`), vector ops by bytes and op class (`vector_recipes.py`).
- **L2** (`l2.py`). A cube matmul's A and B re-reads miss or hit L2 as
  `matmul_kernel.l2_traffic` says; other GM inputs come from HBM once per kernel unless
  `L2State` holds them (the tensors most recently written or read, LRU, up to the chip's L2
  size); workspaces stay in L2.
- **Causal attention** skips kv blocks that are fully masked (key index > every query index of
  the q tile), as flash-attention kernels do; the diagonal blocks pay one more vector pass.
- **AI CPU** kernels (`aicpu_timing.py`): their ops' work at `aicpu.flops_per_s` [EST], plus
  moving inputs and outputs between device memory and the AI CPU at `aicpu.gbps` [EST], plus
  a launch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import IntegerAttr, MemRefType, TensorType
from xdsl.ir import Block, Operation, SSAValue

from graphopt.targets.ascend.aicpu_timing import aicpu_program
from graphopt.targets.ascend.chip import Chip, CopyPath
from graphopt.targets.ascend.dialect import (
    BufferOp,
    CopyOp,
    ForOp,
    IndexAddOp,
    KernelOp,
    MmadOp,
    MoveOp,
    VecOp,
    space_of,
)
from graphopt.targets.ascend.interpret import KernelInterpretation, rule
from graphopt.targets.ascend.kernel_facts import elem_bytes, model_flops, parallel_loops, tensor_bytes, tiling_of
from graphopt.targets.ascend.l2 import L2State, hbm_fractions
from graphopt.targets.ascend.timing import Instr, Program, copy_cycles, mmad_cycles, vector_cycles
from graphopt.targets.ascend.vector import GATHERS
from graphopt.targets.ascend.vector_recipes import online_softmax_recipe, op_class, recipe_of, sort_recipe

# Pipes that run on the vector side of a cube kernel on split chips.
_AIV_PIPES = ("V", "MTE3")


def _dtype_name(v: SSAValue) -> str:
    return "fp32" if elem_bytes(v) == 4 else "fp16" if elem_bytes(v) == 2 else "int8"


# ---------------------------------------------------------------------------------------
# Cores


def _enclosing_parallel(op: Operation) -> tuple[ForOp, ...]:
    loops = []
    parent = op.parent_op()
    while isinstance(parent, ForOp):
        if parent.core_count > 1:
            loops.append(parent)
        parent = parent.parent_op()
    return tuple(loops)


def _core_groups(loops: list[ForOp], block_dim: int, work: Any = None) -> list[tuple[dict[ForOp, int], int]]:
    """[(coordinate of each parallel loop, replicas)]: one representative per distinct work.
    ``work`` (coordinates -> a number), when given, also tells cores apart (causal attention:
    cores with the same item count skip different kv blocks)."""
    radix = [loop.core_count for loop in loops]
    groups: dict[tuple[Any, ...], tuple[dict[ForOp, int], int]] = {}
    for core in range(max(1, min(block_dim, math.prod(radix) if radix else 1))):
        coords, rest = {}, core
        for loop, r in zip(loops, radix):
            coords[loop], rest = rest % r, rest // r
        sig = []
        for loop, c in coords.items():
            trip, r = loop.trip_count, loop.core_count
            count = len(range(c, trip, r))
            sig.append((count, count > 0 and (trip - 1) % r == c))
        key = (*sig, work(coords)) if work is not None else tuple(sig)
        if all(count for count, _ in sig):  # idle cores add nothing
            rep, n = groups.get(key, (coords, 0))
            groups[key] = (rep, n + 1)
    return list(groups.values()) or [({loop: 0 for loop in loops}, 1)]


# ---------------------------------------------------------------------------------------
# The walk


@dataclass(frozen=True)
class _CopyStatic:
    """What a copy's cost needs that does not change from one execution to the next (read
    from the IR once per kernel: attribute access dominates the walk otherwise)."""

    pipe: str
    src_space: str
    dst_space: str
    on_aiv: bool
    gm: SSAValue | None  # the GM side of a GM <-> buffer copy, else None
    gm_elem: int
    shape: tuple[int, ...]  # the GM side's view
    tiled: tuple[tuple[int, int, SSAValue], ...]  # (dim, tile, index) of the tiled view dims
    im2col: bool
    clamp: bool  # an untiled copy into or out of a buffer moves at most the buffer
    buf_bytes: int
    buf_elem: int
    moved: int  # buffer-to-buffer copies: bytes moved
    parallel: tuple[ForOp, ...]  # the enclosing loops spread over cores
    path: CopyPath
    frac: float  # HBM-miss fraction of its GM reads
    burst_div: int  # 0: no tiling (one contiguous run)
    index: tuple[SSAValue, ...]
    into: bool
    source: int  # id() of the source and destination values
    dest: int


@dataclass(frozen=True)
class _MmadStatic:
    cycles: float
    flops: float
    init_when: tuple[SSAValue, ...]
    operands: tuple[int, int, int]  # id()s of lhs, rhs, acc


class _Walk(KernelInterpretation):
    """Unroll one kernel for one representative core into instructions (module docstring);
    ops without a rule (buffers, constants, syncs) cost nothing themselves."""

    def __init__(self, chip: Chip, kernel: KernelOp, coords: dict[ForOp, int], core: int,
                 hbm_fraction: dict[int, float], out: list[Instr], names: bool = True,
                 static: dict[Operation, Any] | None = None) -> None:
        self.chip, self.k, self.coords, self.out = chip, kernel, coords, out
        self.static = static if static is not None else {}  # per op: _CopyStatic / _MmadStatic, shared by the walks of a kernel
        self.names = names  # instruction names (kernel, operation, tile indices): only traces show them
        self.kind = kernel.kind.data
        self.tiling = tiling_of(kernel)
        self.aic, self.aiv = core, core + 1
        self.split = chip.split and self.kind == "cube"
        self.aiv_share = max(1, chip.vector_cores // chip.cube_cores) if self.split else 1
        self.hbm_fraction = hbm_fraction
        self.env: dict[SSAValue, int] = {}
        # Buffer slots, buffers by id(): copies, writes so far, last writer and readers of each slot.
        self.nbuf: dict[int, int] = {}
        self.writes: dict[int, int] = defaultdict(int)
        self.writer: dict[tuple[int, int], int] = {}
        self.readers: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.fill = 1.0  # real fraction of the current vector tile (edge tiles)
        self.causal = int(self.tiling.get("causal", 0))
        self.kv_values: set[SSAValue] | None = None  # kv-block index operands (see _masked)
        self.q_values: dict[SSAValue, SSAValue] = {}  # kv index -> q tile index (see _masked)

    # -- helpers ---------------------------------------------------------------------------
    def core_of(self, pipe: str, dst_space: str) -> int:
        if not self.split:
            return self.aic
        if pipe in _AIV_PIPES or (pipe == "MTE2" and dst_space == "UB"):
            return self.aiv
        return self.aic

    def slot(self, buf: int, write: bool, accumulate: bool = False) -> tuple[int, int]:
        n = self.nbuf.get(buf, 1)
        if write and not accumulate:
            self.writes[buf] += 1
        return buf, max(0, self.writes[buf] - 1) % n

    def emit(self, ins: Instr, reads: Sequence[int], writes: Sequence[int], accumulate: bool = False) -> None:
        """Append ``ins`` with its dependencies on earlier instructions: ``reads`` and
        ``writes`` are the id()s of the values it reads and writes (non-buffers are ignored)."""
        deps: set[int] = set()
        read_slots = [self.slot(b, False) for b in reads if b in self.nbuf]
        for s in read_slots:
            if s in self.writer:
                deps.add(self.writer[s])
        write_slots = [self.slot(b, True, accumulate) for b in writes if b in self.nbuf]
        for s in write_slots:
            deps.update(self.readers[s])
            if s in self.writer:
                deps.add(self.writer[s])
        index = len(self.out)
        self.out.append(Instr(ins.pipe, ins.cycles, tuple(sorted(deps)), ins.name, ins.core, ins.src, ins.dst, ins.nbytes, ins.flops))
        for s in read_slots:
            self.readers[s].append(index)
        for s in write_slots:
            self.writer[s] = index
            self.readers[s] = []

    # -- ops -------------------------------------------------------------------------------
    def run(self) -> None:
        for op in self.k.body.block.ops:
            if isinstance(op, BufferOp):
                self.nbuf[id(op.result)] = op.buffers.value.data
        self.block(self.k.body.block)

    @rule(IndexAddOp)
    def index_add(self, op: IndexAddOp) -> None:
        self.env[op.result] = self.ival(op.result)

    def ival(self, v: SSAValue) -> int:
        """The value of an index operand: a loop index, or an affine function of one (index_add)."""
        owner = v.owner
        if isinstance(owner, IndexAddOp):
            return owner.apply(self.ival(owner.index))
        return self.env.get(v, 0)

    @rule(ForOp)
    def loop(self, op: ForOp) -> None:
        if not op.runs(self.ival):
            return  # a guarded loop (a core's first or last work item only)
        for i in op.on_core(self.coords.get(op, 0)):
            self.env[op.index] = i
            if self.causal and self._masked(op.body.block):
                continue
            self.block(op.body.block)

    def _masked(self, body: Block) -> bool:
        """Causal attention: whether `body` works on a kv block every key of which is after
        every query of the q tile. A body's kv block is an index operand of one of its own ops
        that the kernel's ``attn.scores`` / ``attn.accumulate`` take as their kv index (the
        stages QK(j), SM(j), PV(j), AC(j) of the pipelined kernel each name block j)."""
        if self.kv_values is None:
            self.kv_values, self.q_values = set(), {}
            for o in self.k.body.block.walk():
                if isinstance(o, VecOp) and o.op.data in ("attn.scores", "attn.accumulate"):
                    self.kv_values.add(o.ins[-1])
                    if o.op.data == "attn.scores":
                        self.q_values.setdefault(o.ins[-1], o.ins[-2])
        if not self.kv_values or not self.q_values:
            return False
        # The q tile of a kv index is the one its attn.scores names (a stage of the next work
        # item, started early, names the next one's); else the first attn.scores' q tile.
        first = next(iter(self.q_values.values()))
        bm, bn = int(self.tiling.get("q_tile", 1)), int(self.tiling.get("kv_tile", 1))
        for o in body.ops:
            for v in o.operands:
                if v in self.kv_values:
                    qi = self.ival(self.q_values.get(v, first))
                    return self.ival(v) * bn > (qi + 1) * bm - 1
        return False

    def _scores_recipe(self, op: VecOp) -> list[tuple[str, float]]:
        """attn.scores does only the passes its block needs, as kernels branch around the
        others: scaling (scale != 1), an additive mask tile, the causal mask on a diagonal
        block, the padding mask on the block that holds the kv sequence's end."""
        attrs = op.attrs.data
        scale = attrs["scale"].value.data if "scale" in attrs else 1.0  # pyright: ignore
        tiles = [v for v in op.ins if isinstance(v.type, MemRefType)]  # S, and the mask tile if any
        passes = float(scale != 1.0) + float(len(tiles) > 1)
        if self.causal and self._diagonal(op):
            passes += 1.0
        kv_len = int(self.tiling.get("skv", 0))
        bn = int(self.tiling.get("kv_tile", 1))
        if kv_len and (self.ival(op.ins[-1]) + 1) * bn > kv_len:
            passes += 1.0
        return [("elementwise", passes)] if passes else []

    def _diagonal(self, scores: VecOp) -> bool:
        """Whether the block's rows (one row chunk of a q tile: ``ins`` end with r, qi, kv)
        see keys past the first of them."""
        r, qi, kj = (self.ival(v) for v in scores.ins[-3:])
        bm, bn = int(self.tiling.get("q_tile", 1)), int(self.tiling.get("kv_tile", 1))
        rows = scores.attrs.data.get("row_tile")
        first = qi * bm + r * (rows.value.data if rows is not None else 0)  # pyright: ignore[reportAttributeAccessIssue]
        return (kj + 1) * bn - 1 > first

    def _copy_static(self, op: CopyOp) -> _CopyStatic:
        st = self.static.get(op)
        if st is None:
            src_space, dst_space = space_of(op.source.type), space_of(op.dest.type)
            pipe = op.pipe.data
            gm_src, gm_dst = isinstance(op.source.type, TensorType), isinstance(op.dest.type, TensorType)
            gm = (op.source if gm_src else op.dest) if gm_src or gm_dst else None
            buf = op.dest if gm_src else op.source
            shape = tuple(op.view_spec.logical_shape(gm.type.get_shape())) if gm is not None else ()  # pyright: ignore[reportAttributeAccessIssue]
            dims, tiles = [int(d) for d in op.dims.get_values()], [int(t) for t in op.tile.get_values()]
            path = self.chip.path(src_space, dst_space) or self.chip.path(src_space if src_space != "GM" else "GM", "UB")
            assert path is not None
            st = self.static[op] = _CopyStatic(
                pipe=pipe, src_space=src_space, dst_space=dst_space,
                on_aiv=self.core_of(pipe, dst_space) == self.aiv,
                gm=gm, gm_elem=elem_bytes(gm) if gm is not None else 0, shape=shape,
                tiled=tuple((d, t, i) for d, t, i in zip(dims, tiles, op.index) if d < len(shape)),
                im2col=op.im2col is not None,
                clamp=not dims and isinstance(buf.type, MemRefType),
                buf_bytes=tensor_bytes(buf), buf_elem=elem_bytes(buf),
                # A copy `into` a block of a wider buffer moves its whole source (one L0C chunk).
                moved=tensor_bytes(op.source if op.into is not None else op.dest),
                parallel=_enclosing_parallel(op),
                path=path,
                frac=self.hbm_fraction.get(id(op), 0.0) if src_space == "GM" else 0.0,
                burst_div=max(1, math.prod(tiles[:-1]) or 1) if tiles else 0,
                index=tuple(op.index), into=op.into is not None, source=id(op.source), dest=id(op.dest),
            )
        return st

    @rule(CopyOp)
    def copy(self, op: CopyOp) -> None:
        st = self._copy_static(op)
        core = self.aiv if st.on_aiv else self.aic
        if st.gm is not None:
            # Elements of the GM-side tile: the tiled dims cut at the edge, the others whole.
            ext = list(st.shape)
            for d, t, i in st.tiled:
                ext[d] = max(0, min(t, st.shape[d] - self.env.get(i, 0) * t)) if st.shape[d] > 1 else 1
            nbytes = math.prod(ext) * st.gm_elem
            if st.im2col:
                nbytes = st.buf_bytes
            elif st.clamp:
                nbytes = min(nbytes, st.buf_bytes)
            if st.dst_space == "UB":
                self.fill = min(1.0, nbytes / max(1, st.buf_bytes * st.gm_elem / st.buf_elem))
        else:
            nbytes = st.moved
            if st.dst_space == "UB" or st.src_space == "UB":
                nbytes = int(nbytes * self.fill)
        if st.on_aiv and self.aiv_share > 1:
            nbytes //= self.aiv_share  # this AIV's share of the tile's rows
        # The contiguous GM run: the tile's innermost extent when tiled, else the whole transfer.
        burst = max(1, nbytes // st.burst_div) if st.burst_div else None
        # HBM is shared by the cores of this copy's kind (the AICs, or all the AIVs) that have
        # work in this round: all launched ones but in a last, partial round of a loop.
        active = self.k.block_dim.value.data * (self.aiv_share if st.on_aiv else 1)
        for loop in st.parallel:
            cores, trip = loop.core_count, loop.trip_count
            first = self.env.get(loop.index, 0) // cores * cores
            active = active * min(cores, trip - first) / cores
        cyc = copy_cycles(self.chip, st.path, nbytes, active_cores=active, hbm_fraction=st.frac, burst_bytes=burst)
        name = f"{self.k.sym_name.data} {st.pipe} {st.src_space}->{st.dst_space}{self._tag(op)}" if self.names else ""
        # A copy `into` one block of a buffer fills the slot its first block started: the
        # chunks of one tile share a slot, as an accumulating mmad's steps do.
        into_later_block = st.into and any(self.ival(i) != 0 for i in st.index)
        self.emit(Instr(st.pipe, cyc, (), name, core, st.src_space, st.dst_space, nbytes), (st.source,), (st.dest,), into_later_block)

    @rule(MmadOp)
    def mmad(self, op: MmadOp) -> None:
        st = self.static.get(op)
        if st is None:
            a, b = op.lhs.type, op.rhs.type
            assert isinstance(a, MemRefType) and isinstance(b, MemRefType)
            m, k = a.get_shape()[-2], a.get_shape()[-1]
            n = b.get_shape()[-1]
            cyc = mmad_cycles(self.chip, m, n, k, _dtype_name(op.lhs))
            st = self.static[op] = _MmadStatic(cyc, 2.0 * m * n * k, tuple(op.init_when), (id(op.lhs), id(op.rhs), id(op.acc)))
        accumulate = bool(st.init_when) and any(self.env.get(i, 0) != 0 for i in st.init_when)
        name = f"{self.k.sym_name.data} mmad{self._tag(op)}" if self.names else ""
        lhs, rhs, acc = st.operands
        self.emit(Instr("M", st.cycles, (), name, self.aic, flops=st.flops), (lhs, rhs, acc) if accumulate else (lhs, rhs),
                  (acc,), accumulate)

    @rule(VecOp)
    def vec(self, op: VecOp) -> None:
        bufs = [v for v in [*op.ins, *op.outs] if isinstance(v.type, MemRefType)]
        big = max(bufs, key=lambda v: tensor_bytes(v))
        out = op.outs[0] if op.outs else big
        elems = tensor_bytes(big) // elem_bytes(big)
        nbytes = elems * elem_bytes(out) * self.fill / self.aiv_share
        if op.op.data == "attn.scores":
            recipe = self._scores_recipe(op)
        elif op.op.data == "attn.online_softmax":
            recipe = online_softmax_recipe(int(self.tiling.get("kv_tile", 1)))
        elif op.op.data == "TopK":
            recipe = sort_recipe(_sort_length(op))
        else:
            recipe = list(recipe_of(op.op.data))
        cyc = sum(passes * vector_cycles(self.chip, op_class(cls, out), nbytes) for cls, passes in recipe)
        core = self.aiv if self.split else self.aic
        name = f"{self.k.sym_name.data} {op.op.data}{self._tag(op)}" if self.names else ""
        self.emit(Instr("V", cyc, (), name, core), [id(v) for v in op.ins], [id(v) for v in op.outs])

    @rule(MoveOp)
    def move(self, op: MoveOp) -> None:
        """A data-movement kernel: its bytes in (MTE2) and out (MTE3), tiled through UB."""
        moved_out = sum(tensor_bytes(v) for v in op.outs if isinstance(v.type, TensorType))
        ins = [v for v in op.ins if isinstance(v.type, TensorType)]
        if op.op.data in GATHERS:  # the rows picked, not the table: output bytes plus the indices
            moved_in = moved_out + sum(tensor_bytes(v) for v in ins[1:])
        else:
            moved_in = sum(tensor_bytes(v) for v in ins)
        cores = self.k.block_dim.value.data
        per_core_in, per_core_out = moved_in / cores, moved_out / cores
        tile = self.chip.buffers["ub"] // 4  # double-buffered in and out tiles
        tiles = max(1, math.ceil(max(per_core_in, per_core_out) / tile))
        frac = self.hbm_fraction.get(id(op), 1.0)
        gm_ub, ub_gm = self.chip.copy_paths["GM_UB"], self.chip.copy_paths["UB_GM"]
        slots: list[int | None] = [None, None]
        for t in range(tiles):
            cin = copy_cycles(self.chip, gm_ub, per_core_in / tiles, active_cores=cores, hbm_fraction=frac)
            ld = len(self.out)
            self.out.append(Instr("MTE2", cin, tuple(d for d in (slots[t % 2],) if d is not None),
                                  f"{self.k.sym_name.data} {op.op.data} in t{t}", self.aic, "GM", "UB", int(per_core_in / tiles)))
            cout = copy_cycles(self.chip, ub_gm, per_core_out / tiles, active_cores=cores)
            slots[t % 2] = len(self.out)
            self.out.append(Instr("MTE3", cout, (ld,), f"{self.k.sym_name.data} {op.op.data} out t{t}", self.aic, "UB", "GM",
                                  int(per_core_out / tiles)))

    def _tag(self, op: Operation) -> str:
        """Tile indices as the event name's suffix: the loop indices around `op`."""
        idx = []
        parent = op.parent_op()
        while isinstance(parent, ForOp):
            idx.append(self.env.get(parent.index, 0))
            parent = parent.parent_op()
        return f" [{','.join(str(i) for i in reversed(idx))}]" if idx else ""


# ---------------------------------------------------------------------------------------
# Whole kernels


def kernel_program(chip: Chip, kernel: KernelOp, l2: L2State | None = None, *, names: bool = True) -> Program:
    """The timing Program of one lowered kernel (see the module docstring); ``names``: name
    each instruction for a trace (formatting them is a large part of the walk)."""
    if kernel.kind.data == "aicpu":
        return aicpu_program(chip, kernel, l2)
    fractions, hbm_in = hbm_fractions(chip, kernel, l2)
    instrs: list[Instr] = []
    replicas: dict[int, int] = {}
    loops = parallel_loops(kernel)
    block_dim = kernel.block_dim.value.data
    split = chip.split and kernel.kind.data == "cube"
    share = max(1, chip.vector_cores // chip.cube_cores) if split else 1
    static: dict[Operation, Any] = {}
    for g, (coords, count) in enumerate(_core_groups(loops, block_dim, _causal_work(kernel, loops))):
        if not loops:
            count = block_dim  # a data-movement kernel: each core moves its share (_Walk.move)
        core = 2 * g
        replicas[core] = count
        if split:
            replicas[core + 1] = count * share
        _Walk(chip, kernel, coords, core, fractions, instrs, names, static).run()
    out_bytes = sum(tensor_bytes(r) for r in kernel.outputs)
    gm_reads = sum(i.nbytes * replicas.get(i.core, 1) for i in instrs if i.src == "GM")
    gm_writes = sum(i.nbytes * replicas.get(i.core, 1) for i in instrs if i.dst == "GM")
    if l2 is not None:
        for v in kernel.inputs:
            l2.touch(v, tensor_bytes(v))
        for r in kernel.outputs:
            l2.touch(r, tensor_bytes(r))
    flops = model_flops(kernel)
    return Program(
        name=kernel.sym_name.data,
        kind=kernel.kind.data,
        instrs=instrs,
        # MIX_AIC_1_2 launches the AIVs too; a cube kernel without vector work is AIC_ONLY.
        cores_launched=block_dim * (1 + share if split and any(i.core % 2 for i in instrs) else 1),
        replicas=replicas,
        flops=flops,
        dtype=str(tiling_of(kernel).get("dtype", "fp16")),
        hbm_bytes=hbm_in + out_bytes,
        hbm_write_bytes=out_bytes,
        l2_bytes=max(gm_reads + gm_writes, hbm_in + out_bytes),
    )


def _causal_work(kernel: KernelOp, loops: list[ForOp]) -> Any:
    """For causal attention (one parallel loop over (batch*head, q tile) work items), a core's
    work: the kv blocks its items do not skip. None for every other kernel."""
    t = tiling_of(kernel)
    if not int(t.get("causal", 0)) or "q_tile" not in t or len(loops) != 1:
        return None
    bm, bn = int(t["q_tile"]), int(t["kv_tile"])
    tq, tk = -(-int(t["sq"]) // bm), -(-int(t["skv"]) // bn)
    loop = loops[0]
    trip, cores = loop.trip_count, loop.core_count

    def work(coords: dict[ForOp, int]) -> int:
        return sum(min(tk, ((w % tq + 1) * bm - 1) // bn + 1) for w in range(coords[loop], trip, cores))

    return work


__all__ = ["kernel_program"]


def _sort_length(op: VecOp) -> int:
    """The length of the axis a TopK tile sorts along (its ``axis`` attribute, default -1)."""
    x = op.ins[0].type
    assert isinstance(x, MemRefType)
    ax = op.attrs.data.get("axis")
    axis = int(ax.value.data) if isinstance(ax, IntegerAttr) else -1  # pyright: ignore
    return x.get_shape()[axis]
