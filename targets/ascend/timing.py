"""Timing model: an in-order, per-pipe event simulator over a list of instructions.

A kernel is a `Program`: the instructions each simulated core runs, in program order, each
on one pipe (cube core: MTE2, MTE1, M, FIX, S; vector core: MTE2, V, MTE3, S), with explicit
dependencies standing in for SetFlag/WaitFlag pairs (and CrossCoreSetFlag/WaitFlag between
cores). Generators build programs: `matmul_kernel.py` for tiled cube matmuls; the IR lowering
will build vector kernels and cube->vector hand-offs the same way.

Algorithm (one pass in program order, which is a topological order because a dependency
always names an earlier instruction):
  1. The core's scalar unit dispatches each instruction `scalar_issue_cycles` after the
     previous one; it stalls while the target queue already holds `queue_depth` instructions
     that have not started (the queues are 32 deep [OFF]).
  2. An instruction starts when it is dispatched, its pipe is free (pipes are in order) and
     every dependency has finished (+ `cross_core_cycles` for a dependency on another core).
  3. It occupies its pipe for `cycles`; copies get `cycles` from `copy_cycles` below.
Kernel time = launch(blockDim) + max(slowest core, HBM floor, L2 floor): the floors are the
kernel's total HBM and L2 bytes over the chip's bandwidths, so sharing among cores can never
make a kernel beat the memory roofline, whatever the per-core costs say.

Assumptions: simulated cores stand for `replicas` identical launched cores (SPMD); copies
cost a fixed DMA cost that occupies the engine plus streaming at the path width (L2 hits)
or at the core's share of HBM (misses); no bank conflicts, no instruction cache misses.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field

from graphopt.targets.ascend.chip import Chip, CopyPath

# Which unit's busy time names the bound, by pipe.
BOUND_OF_PIPE = {"M": "cube", "V": "vector", "MTE1": "MTE", "MTE2": "MTE", "MTE3": "MTE", "FIX": "MTE", "S": "scalar"}


@dataclass(frozen=True, slots=True)
class Instr:
    """One instruction in a pipe's queue. `deps` index earlier instructions of the program."""

    pipe: str
    cycles: float
    deps: tuple[int, ...] = ()
    name: str = ""
    core: int = 0
    src: str = ""  # memory level read by a copy ("GM", "L1", "L0C", "UB"), "" for compute
    dst: str = ""
    nbytes: int = 0
    flops: float = 0.0


@dataclass
class Program:
    """A kernel to simulate; `replicas[c]` launched cores run the same program as core `c`."""

    name: str
    kind: str  # "cube", "vector" or "mix"
    instrs: list[Instr]
    cores_launched: int
    replicas: dict[int, int]
    flops: float  # useful (unpadded) FLOPs of the whole kernel
    dtype: str = "fp16"
    hbm_bytes: float = 0.0  # whole kernel, all cores: bytes that must cross HBM
    hbm_write_bytes: float = 0.0  # the part of hbm_bytes that is written
    l2_bytes: float = 0.0  # whole kernel, all cores: GM traffic through L2


@dataclass(frozen=True)
class TraceEvent:
    core: int
    pipe: str
    name: str
    start: float
    end: float


@dataclass
class SimResult:
    """What the model says about one kernel. Busy figures are those of the slowest core."""

    name: str
    kind: str
    cycles: float
    time_us: float
    launch_cycles: float
    core_cycles: float
    busy: dict[str, float]
    busy_pct: dict[str, float]
    bytes: dict[str, float]
    floors: dict[str, float]
    bound: str
    flops: float
    tflops: float
    pct_of_peak: float
    peak_tflops: float
    trace: list[TraceEvent] = field(default_factory=list[TraceEvent])


def copy_cycles(
    chip: Chip,
    path: CopyPath,
    nbytes: float,
    *,
    active_cores: int = 1,
    hbm_fraction: float = 0.0,
    burst_bytes: int | None = None,
) -> float:
    """Engine occupancy of one DMA: fixed cost + streaming time.

    - a fixed cost per instruction (the path's `fixed_cycles`, else `dma.fixed_cycles`),
      occupying the engine (in-order queues do
      not start the next DMA before this one completes; this is also why >=16 KB transfers
      are needed for full bandwidth [OFF]);
    - L2-hit bytes stream at the path width, x `misaligned_efficiency` when the contiguous
      GM run (`burst_bytes`) is not a multiple of the best GM alignment (512 B);
    - `hbm_fraction` of the bytes miss L2 and stream at this core's share of HBM
      (HBM bandwidth / active cores: misses of SPMD cores cluster, since they start together).
    On-chip paths cost their width, plus for an MTE1 LoadData (L1->L0A/L0B) the
    instruction's fixed part.
    """
    touches_gm = "GM" in (path.src, path.dst)
    if not touches_gm:
        return (chip.load_data_fixed_cycles if path.pipe == "MTE1" else 0.0) + nbytes / path.bytes_per_cycle
    width = path.bytes_per_cycle
    if burst_bytes is not None and burst_bytes % chip.alignment["gm_best"] != 0:
        width *= chip.dma_misaligned_efficiency
    hbm_share = chip.bytes_per_cycle(chip.hbm_gbps) / max(1, active_cores)
    stream = nbytes * ((1.0 - hbm_fraction) / width + hbm_fraction / min(width, hbm_share))
    return path.fixed_cycles + stream


def hbm_cycles(chip: Chip, read_bytes: float, write_bytes: float) -> float:
    """The least time HBM needs to move a kernel's bytes: at the chip's bandwidth, a written
    byte costing `memory.hbm_write_cost` read bytes (streaming read + write sustains less
    than reads alone)."""
    return (read_bytes + chip.hbm_write_cost * write_bytes) / chip.bytes_per_cycle(chip.hbm_gbps)


def l2_cycles(chip: Chip, nbytes: float) -> float:
    """The least time L2 needs to move a kernel's GM traffic."""
    return nbytes / chip.bytes_per_cycle(chip.l2_gbps)


def mmad_cycles(chip: Chip, m: int, n: int, k: int, dtype: str) -> float:
    """Cube time of one mmad: fractal-padded MACs at the dtype's rate, at the measured sustained
    efficiency, plus a fixed per-instruction overhead [OFF data msKPP]."""
    m0, n0, k0 = chip.fractal_m, chip.fractal_n, chip.k0[dtype]
    padded = _ceil(m, m0) * m0 * _ceil(n, n0) * n0 * _ceil(k, k0) * k0
    return chip.mmad_overhead_cycles + padded / (chip.macs_per_cycle[dtype] * chip.mmad_efficiency)


def vector_cycles(chip: Chip, op_class: str, nbytes: float) -> float:
    """Vector time of one pass over ``nbytes``: the bytes at the op class's sustained rate, plus
    each instruction's fixed cost (by op class); an instruction covers at most ``max_repeats`` repeats of
    ``repeat_bytes`` (pto-isa's measured cycles = slope x repeats + fixed)."""
    repeats = max(1, math.ceil(nbytes / chip.vector_repeat_bytes))
    instructions = math.ceil(repeats / chip.vector_max_repeats)
    return instructions * chip.vector_fixed_cycles[op_class] + nbytes / chip.vector_bytes_per_cycle[op_class]


def simulate(chip: Chip, program: Program, *, trace: bool = False) -> SimResult:
    """Run the per-pipe simulation described in the module docstring."""
    done: list[float] = []
    pipe_free: dict[tuple[int, str], float] = defaultdict(float)
    dispatched: dict[int, float] = defaultdict(float)
    queued: dict[tuple[int, str], deque[float]] = defaultdict(deque)
    busy: dict[tuple[int, str], float] = defaultdict(float)
    events: list[TraceEvent] = []
    depth = chip.queue_depth
    for ins in program.instrs:
        key = (ins.core, ins.pipe)
        issue = dispatched[ins.core] + chip.scalar_issue_cycles
        starts = queued[key]
        if len(starts) >= depth:
            # The queue is full: the scalar waits until the oldest queued instruction starts.
            issue = max(issue, starts[-depth])
        dispatched[ins.core] = issue
        ready = issue
        for d in ins.deps:
            ready = max(ready, done[d] + (chip.cross_core_cycles if program.instrs[d].core != ins.core else 0.0))
        start = max(ready, pipe_free[key])
        end = start + ins.cycles
        pipe_free[key] = end
        starts.append(start)
        if len(starts) > depth:
            starts.popleft()
        busy[key] += ins.cycles
        done.append(end)
        if trace:
            events.append(TraceEvent(ins.core, ins.pipe, ins.name, start, end))
    return _summarise(chip, program, done, busy, dispatched, events)


def _summarise(
    chip: Chip,
    program: Program,
    done: list[float],
    busy: dict[tuple[int, str], float],
    dispatched: dict[int, float],
    events: list[TraceEvent],
) -> SimResult:
    core_end: dict[int, float] = defaultdict(float)
    for ins, end in zip(program.instrs, done, strict=True):
        core_end[ins.core] = max(core_end[ins.core], end)
    for core, t in dispatched.items():
        core_end[core] = max(core_end[core], t)
    critical = max(core_end, key=lambda c: core_end[c]) if core_end else 0
    core_cycles = core_end.get(critical, 0.0)
    floors = {
        "HBM": hbm_cycles(chip, program.hbm_bytes - program.hbm_write_bytes, program.hbm_write_bytes),
        "L2": l2_cycles(chip, program.l2_bytes),
    }
    launch = chip.launch_cycles(program.cores_launched)
    body = max(core_cycles, *floors.values())
    cycles = launch + body
    pipes = sorted({p for (_, p) in busy})
    # Per pipe, the busiest simulated core's figure: on split chips a cube kernel's M pipe is
    # on the AIC and its V pipe on an AIV, and both belong in the kernel's picture.
    crit_busy = {p: max(b for (_, q), b in busy.items() if q == p) for p in pipes}
    crit_busy["S"] = crit_busy.get("S", 0.0) + chip.scalar_issue_cycles * sum(
        1 for ins in program.instrs if ins.core == critical
    )
    busy_pct = {p: 100.0 * b / cycles for p, b in crit_busy.items()}
    level_bytes: dict[str, float] = defaultdict(float)
    for ins in program.instrs:
        if ins.nbytes:
            weight = program.replicas.get(ins.core, 1)
            level_bytes[ins.src] += ins.nbytes * weight
            level_bytes[ins.dst] += ins.nbytes * weight
    level_bytes["HBM"] = program.hbm_bytes
    time_us = chip.cycles_to_us(cycles)
    peak = chip.peak_flops(program.dtype) if program.dtype in chip.macs_per_cycle else chip.peak_flops("fp16")
    achieved = program.flops / (time_us * 1e-6) if time_us > 0 else 0.0
    return SimResult(
        name=program.name,
        kind=program.kind,
        cycles=cycles,
        time_us=time_us,
        launch_cycles=launch,
        core_cycles=core_cycles,
        busy=crit_busy,
        busy_pct=busy_pct,
        bytes=dict(level_bytes),
        floors=floors,
        bound=_bound(launch, core_cycles, floors, crit_busy),
        flops=program.flops,
        tflops=achieved / 1e12,
        pct_of_peak=100.0 * achieved / peak,
        peak_tflops=peak / 1e12,
        trace=events,
    )


def _bound(launch: float, core_cycles: float, floors: dict[str, float], busy: dict[str, float]) -> str:
    """cube / vector / MTE / launch: the largest of launch, a memory floor, or a pipe's busy time."""
    worst_floor = max(floors.values())
    if launch >= max(core_cycles, worst_floor):
        return "launch"
    if worst_floor > core_cycles:
        return "MTE"  # the kernel waits on shared HBM or L2 bandwidth
    pipe = max(busy, key=lambda p: busy[p])
    return BOUND_OF_PIPE.get(pipe, "MTE")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)
