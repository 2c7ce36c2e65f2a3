"""Cube matmul tiling: C[M,N] = A[M,K] @ B[K,N] on one chip.

A tiling is the AscendC TCubeTiling in miniature:
  - core split: a `grid_m x grid_n` grid of cores (blockDim = grid_m * grid_n); core (r, c)
    owns a contiguous block of base tiles of C (`singleCoreM x singleCoreN`, full K);
  - base tiles `base_m x base_n x base_k`: A2 = base_m x base_k in L0A, B2 = base_k x base_n
    in L0B (both double buffered), CO1 = base_m x base_n accumulators in L0C;
  - L1 staging: each GM->L1 load brings `step_k` base-K blocks of A and of B (stepKa = stepKb),
    double buffered;
  - fractal padding: base dims are multiples of the fractal (16 x K0 x 16), and edge tiles are
    padded up to the fractal, which the cube pays for.
`check_tiling` proves a tiling fits the chip; `choose_tiling` enumerates legal candidates,
ranks them with a closed-form estimate, and simulates the best few with the timing model.
`strategy="naive"` returns a simple fixed tiling for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.chip import ACC_BYTES, DTYPE_BYTES, Chip
from graphopt.targets.ascend.matmul_kernel import (
    estimate_by_prefix,
    hbm_fractions,
    load_cycles,
    memory_floors,
    mmad_step_cycles,
    store_cycles,
)
from graphopt.targets.ascend.timing import copy_cycles

# Base-dim choices (multiples of 16): powers of two keep GM bursts 512 B-aligned.
_BASE_MN = (16, 32, 64, 128, 256)
_STEP_K = (1, 2, 4, 8)
# How many closed-form winners the event simulation re-ranks.
_SIMULATED = 6


@dataclass(frozen=True)
class MatmulTiling:
    m: int
    n: int
    k: int
    grid_m: int
    grid_n: int
    base_m: int
    base_n: int
    base_k: int
    step_k: int
    dtype: str = "fp16"
    out_dtype: str = "fp32"
    l1_buffers: int = 2
    l0_buffers: int = 2
    l0c_buffers: int = 1
    epilogue_ub: int = 0  # UB bytes per C element the vector epilogue needs, all buffering included
    # Which loop is outer: "rows" works on strips of grid_m tile rows and sweeps N (B panels
    # re-read once per strip), "cols" on strips of grid_n tile columns sweeping M (A panels
    # re-read once per strip). It only matters when the operands outgrow L2.
    order: str = "rows"
    # Independent matmuls of one kernel (a batched MatMul, a grouped convolution's groups):
    # batch b runs on the cores of group b mod grid_b, each group tiling its matmul grid_m x grid_n.
    batch: int = 1
    grid_b: int = 1

    @property
    def block_dim(self) -> int:
        return self.grid_b * self.grid_m * self.grid_n

    @property
    def core_batches(self) -> int:
        """Matmuls of the batch per core group, the busiest group's."""
        return math.ceil(self.batch / self.grid_b)

    @property
    def tiles_m(self) -> int:
        return math.ceil(self.m / self.base_m)

    @property
    def tiles_n(self) -> int:
        return math.ceil(self.n / self.base_n)

    @property
    def k_steps(self) -> int:
        return math.ceil(self.k / self.base_k)

    @property
    def core_tiles_m(self) -> int:
        """Base tiles along M per core (singleCoreM / baseM), the busiest core's."""
        return math.ceil(self.tiles_m / self.grid_m)

    @property
    def core_tiles_n(self) -> int:
        return math.ceil(self.tiles_n / self.grid_n)

    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.n * self.k

    def footprint(self) -> dict[str, int]:
        """Bytes each on-chip buffer holds, all buffering included."""
        s, o = DTYPE_BYTES[self.dtype], DTYPE_BYTES[self.out_dtype]
        return {
            "l1": self.l1_buffers * (self.base_m + self.base_n) * self.base_k * self.step_k * s,
            "l0a": self.l0_buffers * self.base_m * self.base_k * s,
            "l0b": self.l0_buffers * self.base_k * self.base_n * s,
            "l0c": self.l0c_buffers * self.base_m * self.base_n * ACC_BYTES,
            # Chips without FixPipe stage L0C through UB (double buffered) on the way to GM;
            # a vector epilogue holds its operand and result tiles there.
            "ub": max(2 * o, self.epilogue_ub) * self.base_m * self.base_n,
        }

    def describe(self) -> str:
        return (
            f"grid {self.grid_m}x{self.grid_n} (blockDim {self.block_dim}), base {self.base_m}x{self.base_n}x{self.base_k}, "
            f"stepK {self.step_k}, L0C x{self.l0c_buffers}" + (", columns outer" if self.order == "cols" else "")
            + (f", batch {self.batch} over {self.grid_b} core groups" if self.batch > 1 else "")
        )


def check_tiling(chip: Chip, t: MatmulTiling) -> None:
    """Raise GraphoptError (one line naming the buffer) unless `t` fits `chip`."""
    if t.dtype not in chip.macs_per_cycle:
        raise GraphoptError(f"chip {chip.name}: the cube has no {t.dtype} mode")
    m0, n0, k0 = chip.fractal_m, chip.fractal_n, chip.k0[t.dtype]
    if t.base_m % m0 or t.base_n % n0 or t.base_k % k0:
        raise GraphoptError(f"tiling {t.describe()}: base tiles must be multiples of the fractal {m0}x{k0}x{n0}")
    if t.block_dim > chip.cube_cores:
        raise GraphoptError(f"tiling {t.describe()}: blockDim {t.block_dim} exceeds the {chip.cube_cores} cube cores")
    if t.grid_m > t.tiles_m or t.grid_n > t.tiles_n or t.grid_b > t.batch:
        raise GraphoptError(f"tiling {t.describe()}: more cores than tiles along an axis")
    uses_ub = chip.path("L0C", "GM") is None or t.epilogue_ub > 0
    for buf, need in t.footprint().items():
        if buf == "ub" and not uses_ub:
            continue
        have = chip.cube_kernel_ub() if buf == "ub" else chip.buffers[buf]
        if need > have:
            raise GraphoptError(f"tiling {t.describe()}: {buf} needs {need} bytes, the chip has {have}")
    for buf, tile in (("l0a", t.base_m * t.base_k), ("l0b", t.base_k * t.base_n)):
        if tile * DTYPE_BYTES[t.dtype] % chip.alignment[buf]:
            raise GraphoptError(f"tiling {t.describe()}: {buf} tile is not {chip.alignment[buf]}-byte aligned")


def fits(chip: Chip, t: MatmulTiling) -> bool:
    try:
        check_tiling(chip, t)
    except GraphoptError:
        return False
    return True


def naive_tiling(
    chip: Chip, m: int, n: int, k: int, dtype: str = "fp16", out_dtype: str = "fp32", epilogue_ub: int = 0
) -> MatmulTiling:
    """A simple fixed tiling: 128x128x(4*K0) base tiles (shrunk to the fractal for tiny shapes,
    halved along N while a vector epilogue does not fit UB), one base-K block per GM->L1 load,
    cores split along M first."""
    base_m, base_n = min(128, _round_up(m, chip.fractal_m)), min(128, _round_up(n, chip.fractal_n))
    while base_n > chip.fractal_n and base_m * base_n * max(epilogue_ub, 2 * DTYPE_BYTES[out_dtype]) > chip.cube_kernel_ub():
        base_n //= 2
    t = MatmulTiling(m, n, k, 1, 1, base_m, base_n, chip.k0[dtype] * 4, 1, dtype, out_dtype, epilogue_ub=epilogue_ub)
    grid_m = min(chip.cube_cores, t.tiles_m)
    grid_n = min(chip.cube_cores // grid_m, t.tiles_n)
    t = replace(t, grid_m=grid_m, grid_n=grid_n)
    check_tiling(chip, t)
    return t


def candidate_tilings(
    chip: Chip, m: int, n: int, k: int, dtype: str = "fp16", out_dtype: str = "fp32", epilogue_ub: int = 0,
    batch: int = 1,
) -> list[MatmulTiling]:
    """Every legal tiling from the base-dim, stepK and core-grid choices (L0C ping-pong when it
    fits); a batch takes the cores a grid leaves over."""
    k0 = chip.k0[dtype]
    base_ks = sorted({k0 * f for f in (1, 2, 4, 8, 16) if k0 * f <= max(k0, _round_up(k, k0))})
    out: list[MatmulTiling] = []
    for bm in _BASE_MN:
        if bm > max(16, _round_up(m, 16)):
            continue
        for bn in _BASE_MN:
            if bn > max(16, _round_up(n, 16)):
                continue
            for bk in base_ks:
                for sk in _STEP_K:
                    if (sk - 1) * bk >= k:
                        continue
                    for grid_m, grid_n in _grids(chip.cube_cores, math.ceil(m / bm), math.ceil(n / bn)):
                        grid_b = min(batch, chip.cube_cores // (grid_m * grid_n))
                        t = MatmulTiling(m, n, k, grid_m, grid_n, bm, bn, bk, sk, dtype, out_dtype, epilogue_ub=epilogue_ub,
                                         batch=batch, grid_b=grid_b)
                        t2 = replace(t, l0c_buffers=2)
                        if fits(chip, t2):
                            out.append(t2)
                        elif fits(chip, t):
                            out.append(t)
    # Past L2, which operand a strip re-reads matters: try both loop orders.
    s, o = DTYPE_BYTES[dtype], DTYPE_BYTES[out_dtype]
    if batch * ((m * k + k * n) * s + m * n * o) > chip.l2_bytes:
        out += [replace(t, order="cols") for t in out]
    return out


def estimate_cycles(chip: Chip, t: MatmulTiling) -> float:
    """Closed-form kernel estimate used to prune candidates before simulating them.

    Per core: tiles x max(cube, MTE2, MTE1) per tile + the serialized output store when L0C
    is not double buffered, + one panel load of prologue + launch.
    """
    fa, fb = hbm_fractions(chip, t)
    panels = math.ceil(t.k_steps / t.step_k)
    cube = t.k_steps * mmad_step_cycles(chip, t)
    mte2 = panels * (load_cycles(chip, t, "A", fa) + load_cycles(chip, t, "B", fb))
    s = DTYPE_BYTES[t.dtype]
    mte1 = t.k_steps * sum(copy_cycles(chip, chip.copy_paths[p], t.base_k * rows * s)
                           for p, rows in (("L1_L0A", t.base_m), ("L1_L0B", t.base_n)))
    store = store_cycles(chip, t)
    per_tile = max(cube, mte2, mte1) + (store if t.l0c_buffers == 1 else 0.0)
    tiles = t.core_batches * t.core_tiles_m * t.core_tiles_n
    prologue = mte2 / panels + store
    return chip.launch_cycles(t.block_dim) + max(tiles * per_tile + prologue, *memory_floors(chip, t))


def choose_tiling(
    chip: Chip, m: int, n: int, k: int, dtype: str = "fp16", out_dtype: str = "fp32", strategy: str = "model",
    epilogue_ub: int = 0, batch: int = 1,
) -> MatmulTiling:
    """The tiling to use: `naive`, or the timing model's best among the legal candidates.
    `epilogue_ub`: UB bytes per C element the kernel's vector epilogue holds (0: none)."""
    if strategy == "naive":
        return replace(naive_tiling(chip, m, n, k, dtype, out_dtype, epilogue_ub), batch=batch)
    if strategy != "model":
        raise GraphoptError(f"unknown tiling strategy '{strategy}' (use model or naive)")
    cands = candidate_tilings(chip, m, n, k, dtype, out_dtype, epilogue_ub, batch)
    if not cands:
        raise GraphoptError(f"no tiling of {m}x{n}x{k} {dtype} fits chip {chip.name}")
    # Grids with the same per-core work look alike per core; keep the one with the least L2
    # traffic between panel reuses (the most square), so the simulated few differ in substance.
    best: dict[tuple[int, ...], MatmulTiling] = {}
    for t in cands:
        key = (t.core_batches, t.core_tiles_m, t.core_tiles_n, t.block_dim, t.base_m, t.base_n, t.base_k, t.step_k,
               t.l0c_buffers, t.order)
        if key not in best or _reuse_distance(t) < _reuse_distance(best[key]):
            best[key] = t
    # Ties (MTE2-bound candidates) go to fewer, larger mmads: less per-instruction overhead.
    ranked = sorted(best.values(), key=lambda t: (estimate_cycles(chip, t), t.k_steps))
    return min(ranked[:_SIMULATED], key=lambda t: estimate_by_prefix(chip, t))


def _reuse_distance(t: MatmulTiling) -> int:
    """Distinct A + B rows/columns all cores touch per step: grid_m * base_m + grid_n * base_n."""
    return t.grid_m * t.base_m + t.grid_n * t.base_n


def _grids(cores: int, tiles_m: int, tiles_n: int) -> list[tuple[int, int]]:
    """Core grids worth trying: for each grid_m, the widest grid_n that fits, dropping grids
    that leave the per-core tile counts unchanged but use more cores."""
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    for gm in range(1, min(cores, tiles_m) + 1):
        gn = min(tiles_n, cores // gm)
        load = (math.ceil(tiles_m / gm), math.ceil(tiles_n / gn))
        if load not in seen or gm * gn < seen[load][0] * seen[load][1]:
            seen[load] = (gm, gn)
    return list(seen.values())


def _round_up(x: int, a: int) -> int:
    return -(-x // a) * a
