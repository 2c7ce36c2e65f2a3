"""Turn a cube matmul tiling into a `timing.Program` and simulate it.

The generated instruction stream is the standard double-buffered DaVinci GEMM (the structure
of the pto-isa a2a3 GEMM kernel and of AscendC's Matmul API), per core, tile by tile:

    for each matmul of the batch this core's group runs (batch b on group b mod grid_b):
      for each C tile (i outer, j inner; columns outer: j, then i) of this core:
        for each base-K step:
            every step_k steps: MTE2  GM->L1  A panel, B panel    (L1 double buffered)
            MTE1  L1->L0A A tile; MTE1  L1->L0B B tile            (L0 double buffered)
            M     mmad into L0C (accumulate over K)
        FIX   L0C->GM store of the tile  (coupled chips: V L0C->UB, then MTE3 UB->GM)

Dependencies (the SetFlag/WaitFlag pairs): a panel load waits until the extracts that read
its L1 slot two panels ago are done; an extract waits for its panel and for the mmad that last
read its L0 slot; an mmad waits for both extracts, and the first mmad of a tile waits for the
store that drained its L0C buffer (with one L0C buffer the cube idles during the store); a
store waits for the tile's last mmad.

L2 model (`hbm_fractions`, `matmul_traffic`): the first touch of A and B comes from HBM;
a re-read hits L2 when an LRU of L2's capacity, run over the kernel's tile order, still holds
the panel (cyclic reuse larger than an LRU cache thrashes). C is written back to HBM once.
Edge tiles are padded to fractals on the cube; copies move the real bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from graphopt.targets.ascend.chip import DTYPE_BYTES, Chip
from graphopt.targets.ascend.timing import (
    Instr,
    Program,
    SimResult,
    copy_cycles,
    hbm_cycles,
    l2_cycles,
    mmad_cycles,
    simulate,
)

if TYPE_CHECKING:
    from graphopt.targets.ascend.tiling import MatmulTiling


def hbm_fractions(chip: Chip, t: MatmulTiling) -> tuple[float, float]:
    """Fraction of A-load and B-load bytes that miss L2 (see the module docstring)."""
    a_reads, b_reads, a_miss, b_miss = l2_traffic(chip, t)
    return a_miss / a_reads, b_miss / b_reads


# Tile orders: "grid" is graphopt's cube kernel (its parallel loops hand tile row i to core
# i mod grid_m and column j to core j mod grid_n: the chip works on a grid_m x grid_n block of
# C tiles at a time; with rows outer (MatmulTiling.order) it sweeps N before moving down, a
# swizzle of width grid_m, with columns outer it sweeps M); "linear" hands consecutive
# row-major tiles to consecutive cores (catlass/aclnn without a swizzle: the chip sweeps one
# row of tiles at a time, a swizzle of width 1).
ORDERS = ("grid", "linear")


def matmul_traffic(capacity: int, t: MatmulTiling, order: str = "grid") -> tuple[float, float, float, float]:
    """(A bytes read, B bytes read, A bytes from HBM, B bytes from HBM) of a tiled matmul.

    Each C tile reads its A row panel [base_m, K] and B column panel [K, base_n] and writes
    itself; the cores work through the tiles in rounds, as ``order`` says. L2 is an LRU of
    ``capacity`` bytes with C's writes allocating in it, so a re-read hits exactly when the
    distinct bytes touched since the panel's last use fit (a cyclic sweep larger than an LRU
    thrashes: every re-read misses). Every order sweeps strips: with rows outer, a strip of
    ``width`` tile rows across N, so an A panel is re-read in the next round (a short
    distance) and a B panel one strip later, after all of B, the strip's A panels and its C
    tiles; with columns outer the same with A and B swapped. Cores of one round start
    together, so a panel several of them read in a round comes from HBM once.
    """
    if order not in ORDERS:
        raise ValueError(f"unknown tile order {order!r} (known: {', '.join(ORDERS)})")
    if t.batch > 1:  # the matmuls of a batch: grid_b at a time, sharing L2
        one = matmul_traffic(capacity // t.grid_b, replace(t, batch=1, grid_b=1), order)
        return tuple(t.batch * x for x in one)  # type: ignore[return-value]
    s, o = DTYPE_BYTES[t.dtype], DTYPE_BYTES[t.out_dtype]
    a_unique, b_unique = t.m * t.k * s, t.k * t.n * s
    a_reads, b_reads = float(a_unique * t.tiles_n), float(b_unique * t.tiles_m)
    a_panel, b_panel, c_tile = t.base_m * t.k * s, t.k * t.base_n * s, t.base_m * t.base_n * o
    if order == "linear":
        width, cols = 1, min(t.block_dim, t.tiles_n)
    elif t.order == "cols":  # the same sweep with the roles of A and B swapped
        b_miss, a_miss = _strip_misses(capacity, t.tiles_n, t.tiles_m, t.grid_n, t.grid_m, b_panel, a_panel, b_unique, a_unique, c_tile)
        return a_reads, b_reads, a_miss, b_miss
    else:
        width, cols = t.grid_m, t.grid_n
    a_miss, b_miss = _strip_misses(capacity, t.tiles_m, t.tiles_n, width, cols, a_panel, b_panel, a_unique, b_unique, c_tile)
    return a_reads, b_reads, a_miss, b_miss


def _strip_misses(capacity: int, lines: int, across: int, width: int, cols: int, near_panel: int, far_panel: int,
                  near_unique: int, far_unique: int, c_tile: int) -> tuple[float, float]:
    """HBM bytes of a sweep: strips of ``width`` of the ``lines`` tile lines, each swept across
    ``across`` tiles ``cols`` at a time. The strip's own ("near") panels are re-read round
    after round, the crossing ("far") ones once a strip."""
    strips = math.ceil(lines / width)
    rounds_per_strip = math.ceil(across / cols)
    near_distance = width * near_panel + cols * far_panel + width * cols * c_tile
    far_distance = min(far_unique, across * far_panel) + width * near_panel + width * across * c_tile
    near_miss = near_unique if near_distance <= capacity else min(near_unique * across, near_unique * rounds_per_strip)
    far_miss = far_unique if far_distance <= capacity or strips == 1 else far_unique * strips
    return float(near_miss), float(far_miss)


def l2_traffic(chip: Chip, t: MatmulTiling) -> tuple[float, float, float, float]:
    """``matmul_traffic`` of graphopt's own kernel (tile order "grid") on this chip's L2."""
    return matmul_traffic(chip.l2_bytes, t)


def mmad_step_cycles(chip: Chip, t: MatmulTiling) -> float:
    return mmad_cycles(chip, t.base_m, t.base_n, t.base_k, t.dtype)


def load_cycles(chip: Chip, t: MatmulTiling, which: str, hbm_fraction: float) -> float:
    """MTE2 time of one full GM->L1 panel of A or B."""
    s, kk = DTYPE_BYTES[t.dtype], min(t.k, t.step_k * t.base_k)
    rows_cols = t.base_m if which == "A" else t.base_n
    burst = kk * s if which == "A" else t.base_n * s
    return copy_cycles(chip, chip.copy_paths["GM_L1"], rows_cols * kk * s, active_cores=t.block_dim, hbm_fraction=hbm_fraction, burst_bytes=burst)


def store_cycles(chip: Chip, t: MatmulTiling) -> float:
    """How long a full tile's store holds L0C: the FixPipe copy, or the vector's L0C->UB copy."""
    nbytes = t.base_m * t.base_n * DTYPE_BYTES[t.out_dtype]
    first = chip.cube_output_path()[0]
    return copy_cycles(chip, first, nbytes, active_cores=t.block_dim, burst_bytes=t.base_n * DTYPE_BYTES[t.out_dtype])


def matmul_program(chip: Chip, t: MatmulTiling, max_tiles: int | None = None) -> Program:
    """The instruction stream of every distinct core of the tiled matmul (see module
    docstring); with ``max_tiles``, each core's first ``max_tiles`` tiles only."""
    signatures: Counter[tuple[int, tuple[int, ...], tuple[int, ...]]] = Counter()
    for core in range(t.block_dim):
        group, tile_core = divmod(core, t.grid_m * t.grid_n)
        r, q = tile_core % t.grid_m, tile_core // t.grid_m
        rows = _sizes(t.m, t.base_m, r * t.core_tiles_m, t.core_tiles_m)
        cols = _sizes(t.n, t.base_n, q * t.core_tiles_n, t.core_tiles_n)
        batches = len(range(group, t.batch, t.grid_b))
        if rows and cols and batches:
            signatures[(batches, rows, cols)] += 1
    instrs: list[Instr] = []
    replicas: dict[int, int] = {}
    fa, fb = hbm_fractions(chip, t)
    # Cores with work at each tile step (HBM is shared by those, not by idle ones).
    tiles_of = [b * len(rows) * len(cols) for (b, rows, cols), count in signatures.items() for _ in range(count)]
    if max_tiles is not None:
        tiles_of = [min(n, max_tiles) for n in tiles_of]
    active = [sum(1 for n in tiles_of if n > step) for step in range(max(tiles_of, default=0))]
    for core_id, ((batches, rows, cols), count) in enumerate(signatures.items()):
        replicas[core_id] = count
        _emit_core(chip, t, core_id, batches, rows, cols, fa, fb, active, instrs, max_tiles)
    hbm_read, c_bytes, l2_bytes = _memory_bytes(chip, t)
    return Program(
        name=f"matmul_{t.m}x{t.n}x{t.k}",
        kind="cube",
        instrs=instrs,
        cores_launched=t.block_dim,
        replicas=replicas,
        flops=t.flops(),
        dtype=t.dtype,
        hbm_bytes=hbm_read + c_bytes,
        hbm_write_bytes=c_bytes,
        l2_bytes=l2_bytes,
    )


def _memory_bytes(chip: Chip, t: MatmulTiling) -> tuple[float, float, float]:
    """(HBM bytes read, HBM bytes written, L2 bytes) of the whole kernel: A and B panel
    misses, C written once, every panel read and C through L2."""
    a_reads, b_reads, a_miss, b_miss = l2_traffic(chip, t)
    c_bytes = t.batch * t.m * t.n * DTYPE_BYTES[t.out_dtype]
    return a_miss + b_miss, c_bytes, a_reads + b_reads + c_bytes


def memory_floors(chip: Chip, t: MatmulTiling) -> tuple[float, float]:
    """The kernel's HBM and L2 floors in cycles (as ``timing.simulate`` takes them)."""
    hbm_read, hbm_write, l2_bytes = _memory_bytes(chip, t)
    return hbm_cycles(chip, hbm_read, hbm_write), l2_cycles(chip, l2_bytes)


def simulate_matmul(chip: Chip, t: MatmulTiling, *, trace: bool = False) -> SimResult:
    return simulate(chip, matmul_program(chip, t), trace=trace)


def estimate_by_prefix(chip: Chip, t: MatmulTiling, tiles: int = 8) -> float:
    """Kernel cycles from simulating each core's first ``tiles`` and ``tiles // 2`` tiles
    and extending the difference to all its tiles (every tile of a core costs the same in
    steady state: its copies' L2 fractions are the kernel's), then the kernel's HBM and L2
    floors. The tiler ranks its few finalists by this; simulating every tile of a large
    matmul took seconds per candidate."""
    total = t.core_batches * t.core_tiles_m * t.core_tiles_n
    if total <= tiles:
        return simulate_matmul(chip, t).cycles
    full, half = (simulate(chip, matmul_program(chip, t, n)) for n in (tiles, tiles // 2))
    per_tile = (full.core_cycles - half.core_cycles) / (tiles - tiles // 2)
    core = full.core_cycles + (total - tiles) * per_tile
    return full.launch_cycles + max(core, *memory_floors(chip, t))


def _emit_core(
    chip: Chip, t: MatmulTiling, core: int, batches: int, rows: tuple[int, ...], cols: tuple[int, ...], fa: float,
    fb: float, active: list[int], out: list[Instr], max_tiles: int | None = None
) -> None:
    s, o = DTYPE_BYTES[t.dtype], DTYPE_BYTES[t.out_dtype]
    gm_l1, l1_l0a, l1_l0b = chip.copy_paths["GM_L1"], chip.copy_paths["L1_L0A"], chip.copy_paths["L1_L0B"]
    out_paths = chip.cube_output_path()
    m0, n0, k0 = chip.fractal_m, chip.fractal_n, chip.k0[t.dtype]
    panel_k = t.step_k * t.base_k
    l1_release: list[int | None] = [None] * t.l1_buffers  # last extract reading each L1 slot
    l0_release: list[int | None] = [None] * t.l0_buffers  # last mmad reading each L0A/L0B slot
    l0c_release: list[int | None] = [None] * t.l0c_buffers  # store that drained each L0C buffer
    ub_release: list[int | None] = [None, None]  # coupled chips: UB->GM copy of each UB slot
    panel = step = tile = 0

    def add(ins: Instr) -> int:
        out.append(ins)
        return len(out) - 1

    def after(*deps: int | None) -> tuple[int, ...]:
        return tuple(d for d in deps if d is not None)

    pairs = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    if t.order == "cols":
        pairs = [(i, j) for j in range(len(cols)) for i in range(len(rows))]
    for i, j in (pairs * batches)[:max_tiles]:
        tm, tn = rows[i], cols[j]
        tag = f"tile({i},{j})"
        load_a = load_b = last_mmad = -1
        for kk in range(t.k_steps):
            kb = min(t.base_k, t.k - kk * t.base_k)
            if kk % t.step_k == 0:
                pk = min(panel_k, t.k - kk * t.base_k)
                slot = panel % t.l1_buffers
                a_bytes, b_bytes = tm * pk * s, pk * tn * s
                a_cyc = copy_cycles(chip, gm_l1, a_bytes, active_cores=active[tile], hbm_fraction=fa, burst_bytes=pk * s)
                b_cyc = copy_cycles(chip, gm_l1, b_bytes, active_cores=active[tile], hbm_fraction=fb, burst_bytes=tn * s)
                deps = after(l1_release[slot])
                load_a = add(Instr("MTE2", a_cyc, deps, f"{tag} load A k{kk}", core, "GM", "L1", a_bytes))
                load_b = add(Instr("MTE2", b_cyc, deps, f"{tag} load B k{kk}", core, "GM", "L1", b_bytes))
                panel += 1
            l0 = step % t.l0_buffers
            # L1 holds fractal-padded NZ tiles; MTE1 moves whole fractals.
            a_l0 = _pad(tm, m0) * _pad(kb, k0) * s
            b_l0 = _pad(kb, k0) * _pad(tn, n0) * s
            ext_a = add(Instr("MTE1", copy_cycles(chip, l1_l0a, a_l0), after(load_a, l0_release[l0]), f"{tag} extract A k{kk}", core, "L1", "L0A", a_l0))
            ext_b = add(Instr("MTE1", copy_cycles(chip, l1_l0b, b_l0), after(load_b, l0_release[l0]), f"{tag} extract B k{kk}", core, "L1", "L0B", b_l0))
            if (kk + 1) % t.step_k == 0 or kk == t.k_steps - 1:
                l1_release[(panel - 1) % t.l1_buffers] = ext_b
            drain = l0c_release[tile % t.l0c_buffers] if kk == 0 else None
            last_mmad = add(
                Instr("M", mmad_cycles(chip, tm, tn, kb, t.dtype), after(ext_a, ext_b, drain), f"{tag} mmad k{kk}", core, flops=2.0 * tm * tn * kb)
            )
            l0_release[l0] = last_mmad
            step += 1
        nbytes = tm * tn * o
        first = out_paths[0]
        first_deps = after(last_mmad, ub_release[tile % 2] if len(out_paths) > 1 else None)
        cyc = copy_cycles(chip, first, nbytes, active_cores=active[tile], burst_bytes=tn * o)
        store = add(Instr(first.pipe, cyc, first_deps, f"{tag} store", core, first.src, first.dst, nbytes))
        l0c_release[tile % t.l0c_buffers] = store
        if len(out_paths) > 1:  # coupled chip: UB -> GM on MTE3
            nxt = out_paths[1]
            cyc = copy_cycles(chip, nxt, nbytes, active_cores=active[tile], burst_bytes=tn * o)
            ub_release[tile % 2] = add(Instr(nxt.pipe, cyc, (store,), f"{tag} copy out", core, nxt.src, nxt.dst, nbytes))
        tile += 1


def _sizes(total: int, base: int, first_tile: int, count: int) -> tuple[int, ...]:
    """Extents of `count` base tiles starting at tile `first_tile` (edge tile cut, empty past the end)."""
    return tuple(min(base, total - b * base) for b in range(first_tile, first_tile + count) if b * base < total)


def _pad(x: int, a: int) -> int:
    return math.ceil(x / a) * a
