"""Chip descriptions: a frozen `Chip` loaded from a TOML file in `chips/` (or a user's own).

The TOML file is the single place a chip's numbers live; this module only reads and checks
them. Every number is written `{ value = ..., src = "[TAG] where it comes from" }` and a bare
number is rejected, so a reader can always tell a documented figure from an estimate.

Passes read capabilities from `Chip` (buffer sizes, copy paths, pipes, rates) and never
branch on `Chip.name`: a chip without FixPipe, say, simply has no `L0C->GM` path.

Validation, in order (the first problem found is reported, as one line naming the file and
the field): the TOML parses; every required field exists and carries a source tag; numbers
are positive; dtype tables agree; the copy paths a cube kernel needs exist; and each buffer
holds at least one double-buffered fractal of every cube dtype (a chip that cannot do that
cannot run a single `mmad`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError

CHIPS_DIR = Path(__file__).parent / "chips"
DEFAULT_CHIP = "ascend910b"

# Bytes per element of the dtypes the cube and vector units know.
DTYPE_BYTES: dict[str, int] = {"fp16": 2, "bf16": 2, "int8": 1, "fp32": 4, "int32": 4}
# The cube accumulates in 32 bits (fp32 for float inputs, int32 for int8) [OFF].
ACC_BYTES = 4
VECTOR_OP_CLASSES = ("elementwise", "tensor_scalar", "exp_fp32", "exp_fp16", "div", "reduce", "cast")
PIPES = ("S", "MTE1", "MTE2", "MTE3", "M", "FIX", "V")

# Scalar fields: dotted TOML key -> (attribute name, type). All are required.
_SCALARS: dict[str, tuple[str, type]] = {
    "chip.clock_ghz": ("clock_ghz", float),
    "chip.cube_cores": ("cube_cores", int),
    "chip.vector_cores": ("vector_cores", int),
    "cube.fractal_m": ("fractal_m", int),
    "cube.fractal_n": ("fractal_n", int),
    "cube.mmad_overhead_cycles": ("mmad_overhead_cycles", float),
    "cube.mmad_efficiency": ("mmad_efficiency", float),
    "cube.load_data_fixed_cycles": ("load_data_fixed_cycles", float),
    "vector.repeat_bytes": ("vector_repeat_bytes", int),
    "vector.instr_fixed_cycles": ("vector_instr_fixed_cycles", float),
    "vector.max_repeats": ("vector_max_repeats", int),
    "dma.fixed_cycles": ("dma_fixed_cycles", float),
    "dma.full_bw_bytes": ("dma_full_bw_bytes", int),
    "dma.misaligned_efficiency": ("dma_misaligned_efficiency", float),
    "dma.same_address_efficiency": ("dma_same_address_efficiency", float),
    "dma.queue_depth": ("queue_depth", int),
    "memory.l2_bytes": ("l2_bytes", int),
    "memory.l2_gbps": ("l2_gbps", float),
    "memory.hbm_bytes": ("hbm_bytes", int),
    "memory.hbm_gbps": ("hbm_gbps", float),
    "memory.hbm_write_cost": ("hbm_write_cost", float),
    "launch.base_us": ("launch_base_us", float),
    "launch.per_core_us": ("launch_per_core_us", float),
    "launch.scalar_issue_cycles": ("scalar_issue_cycles", float),
    "sync.cross_core_cycles": ("cross_core_cycles", float),
    "aicpu.ops_per_s": ("aicpu_ops_per_s", float),
    "aicpu.gbps": ("aicpu_gbps", float),
}
_BUFFERS = ("l1", "l0a", "l0b", "l0c", "ub")
_ALIGNMENTS = ("l1", "l0a", "l0b", "l0c", "ub", "gm_best")
# Fields that may be zero (a coupled chip has no cross-core sync).
_MAY_BE_ZERO = {"sync.cross_core_cycles", "launch.per_core_us", "cube.mmad_overhead_cycles"}
# Copy paths every chip needs for a cube kernel; the output path is one of _OUT_PATHS.
_NEEDED_PATHS = ("GM_L1", "L1_L0A", "L1_L0B", "GM_UB", "UB_GM")
_OUT_PATHS = ("L0C_GM", "L0C_UB")


@dataclass(frozen=True)
class CopyPath:
    """One data path: `src -> dst` on engine `pipe` at a per-core width in bytes/cycle."""

    name: str
    src: str
    dst: str
    pipe: str
    bytes_per_cycle: float
    sustained_bytes_per_cycle: float
    fixed_cycles: float = 0.0  # per DMA instruction on a GM path: the path's own, else dma.fixed_cycles


# eq=False: chips are cached per file, so identity is equality, and the dict fields stay unhashed.
@dataclass(frozen=True, eq=False)
class Chip:
    """A DaVinci chip's capabilities; see the module docstring and `chips/*.toml`."""

    name: str
    description: str
    source_file: str
    arch: str
    split: bool
    has_fixpipe: bool
    clock_ghz: float
    cube_cores: int
    vector_cores: int
    buffers: Mapping[str, int]
    alignment: Mapping[str, int]
    fractal_m: int
    fractal_n: int
    k0: Mapping[str, int]
    macs_per_cycle: Mapping[str, int]
    mmad_overhead_cycles: float
    mmad_efficiency: float
    vector_repeat_bytes: int
    vector_instr_fixed_cycles: float
    vector_max_repeats: int
    vector_bytes_per_cycle: Mapping[str, float]
    # per op class, the fixed cycles of one instruction ([vector.fixed_cycles], else vector.instr_fixed_cycles)
    vector_fixed_cycles: Mapping[str, float]
    copy_paths: Mapping[str, CopyPath]
    dma_fixed_cycles: float
    load_data_fixed_cycles: float
    dma_full_bw_bytes: int
    dma_misaligned_efficiency: float
    dma_same_address_efficiency: float
    queue_depth: int
    l2_bytes: int
    l2_gbps: float
    hbm_bytes: int
    hbm_gbps: float
    hbm_write_cost: float
    launch_base_us: float
    launch_per_core_us: float
    scalar_issue_cycles: float
    cross_core_cycles: float
    aicpu_ops_per_s: float
    aicpu_gbps: float
    sources: Mapping[str, str]

    @property
    def cube_dtypes(self) -> tuple[str, ...]:
        return tuple(self.macs_per_cycle)

    def peak_flops(self, dtype: str = "fp16") -> float:
        """Peak cube FLOP/s for `dtype` [DER]: cube_cores x MAC/cycle x 2 x clock."""
        if dtype not in self.macs_per_cycle:
            raise GraphoptError(f"chip {self.name} has no cube rate for dtype {dtype} (has {', '.join(self.cube_dtypes)})")
        return self.cube_cores * self.macs_per_cycle[dtype] * 2 * self.clock_ghz * 1e9

    def cycles_to_us(self, cycles: float) -> float:
        return cycles / (self.clock_ghz * 1e3)

    def bytes_per_cycle(self, gbps: float) -> float:
        """A chip-level bandwidth in GB/s as bytes per core clock cycle."""
        return gbps / self.clock_ghz

    def launch_cycles(self, cores: int) -> float:
        """Launch + head overhead, growing linearly with the cores launched [EST, see chip file]."""
        return (self.launch_base_us + self.launch_per_core_us * cores) * self.clock_ghz * 1e3

    def cube_kernel_ub(self) -> int:
        """UB bytes a cube kernel's vector side may use: on split chips the epilogue (and the
        flash-attention softmax) is shared by the AIC's vector cores (MIX_AIC_1_2 [OFF]: each
        AIV takes its share of a tile's rows into its own UB); on coupled chips, the one UB."""
        per_aic = max(1, self.vector_cores // self.cube_cores) if self.split else 1
        return self.buffers["ub"] * per_aic

    def path(self, src: str, dst: str) -> CopyPath | None:
        """The copy path `src -> dst`, or None if this chip has no such engine path."""
        return self.copy_paths.get(f"{src}_{dst}")

    def cube_output_path(self) -> list[CopyPath]:
        """How L0C reaches GM: FixPipe directly, or (coupled chips) L0C->UB->GM."""
        direct = self.path("L0C", "GM")
        if direct is not None:
            return [direct]
        return [self.copy_paths["L0C_UB"], self.copy_paths["UB_GM"]]


def available_chips() -> list[str]:
    """Names of the bundled chip descriptions."""
    return sorted(p.stem for p in CHIPS_DIR.glob("*.toml"))


def load_chip(name_or_path: str | Path = DEFAULT_CHIP) -> Chip:
    """A bundled chip by name (`ascend310p`) or a user's TOML file by path (`my_chip.toml`)."""
    return _load(find_description(name_or_path, CHIPS_DIR, "chip", available_chips))


CHIP_FILE_MAX = 1 << 20  # bytes: a chip (or cluster) description is a page of numbers


def find_description(name_or_path: str | Path, folder: Path, kind: str, available: Callable[[], list[str]]) -> Path:
    """The file of a bundled description (a name in ``folder``) or a user's (a path)."""
    text = str(name_or_path)
    path = Path(text) if text.endswith(".toml") or "/" in text else folder / f"{text}.toml"
    if not path.is_file():
        if path.parent == folder:
            raise GraphoptError(f"unknown {kind} '{text}' (bundled {kind}s: {', '.join(available())})")
        raise GraphoptError(f"{kind} file {path} does not exist")
    return path.resolve()


def read_description(path: Path, kind: str) -> dict[str, Any]:
    """A description's TOML, every failure one line naming the file."""
    try:
        if path.stat().st_size > CHIP_FILE_MAX:
            raise GraphoptError(f"{path}: {path.stat().st_size} bytes is too large for a {kind} description "
                                f"(at most {CHIP_FILE_MAX}); is it the right file?")
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise GraphoptError(f"{path}: not UTF-8 text; a {kind} description is a TOML file") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise GraphoptError(f"{path}: not valid TOML ({type(exc).__name__}: {str(exc)[:200]})") from None
    except OSError as exc:
        raise GraphoptError(f"{path}: cannot be read ({exc.strerror})") from None


@cache
def _load(path: Path) -> Chip:
    data = read_description(path, "chip")
    return _Reader(path, data).chip()


class _Reader:
    """Reads tagged numbers out of the parsed TOML, failing with one line per problem."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.sources: dict[str, str] = {}

    def fail(self, message: str) -> GraphoptError:
        return GraphoptError(f"{self.path}: {message}")

    def raw(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise self.fail(f"missing field '{key}'")
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        try:
            self.raw(key)
        except GraphoptError:
            return False
        return True

    def number_or(self, key: str, fallback: str) -> Any:
        """The number at ``key`` if the file has it, else the one at ``fallback``."""
        return self.number(key if self.has(key) else fallback)

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.fail(f"field '{key}' must be a string")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self.fail(f"field '{key}' must be true or false")
        return value

    def number(self, key: str, kind: type = float) -> Any:
        node = self.raw(key)
        if not isinstance(node, dict) or "value" not in node or not isinstance(node.get("src"), str):
            raise self.fail(f"field '{key}' needs a value and a source tag: {{ value = ..., src = \"[TAG] ...\" }}")
        value = node["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
            raise self.fail(f"field '{key}' must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(f"field '{key}' must be a finite number, got {value}")
        if value < 0 or (value == 0 and key not in _MAY_BE_ZERO):
            raise self.fail(f"field '{key}' must be positive, got {value}")
        self.sources[key] = node["src"]
        return kind(value)

    def table(self, key: str) -> dict[str, Any]:
        node = self.raw(key)
        if not isinstance(node, dict) or not node:
            raise self.fail(f"field '{key}' must be a non-empty table")
        return node

    def copy_paths(self) -> dict[str, CopyPath]:
        paths: dict[str, CopyPath] = {}
        for name in self.table("copy"):
            key = f"copy.{name}"
            pipe = self.text(f"{key}.pipe")
            if pipe not in PIPES:
                raise self.fail(f"field '{key}.pipe' = {pipe!r} is not a pipe ({', '.join(PIPES)})")
            width = self.number(f"{key}.bytes_per_cycle")
            sustained = self.number(f"{key}.sustained_bytes_per_cycle")
            src, dst = self.text(f"{key}.from"), self.text(f"{key}.to")
            touches_gm = "GM" in (src, dst)
            fixed = self.number_or(f"{key}.fixed_cycles", "dma.fixed_cycles") if touches_gm else 0.0
            paths[name] = CopyPath(name, src, dst, pipe, width, min(width, sustained), fixed)
        for name in _NEEDED_PATHS:
            if name not in paths:
                raise self.fail(f"missing field 'copy.{name}' (a cube kernel needs this path)")
        if not any(name in paths for name in _OUT_PATHS):
            raise self.fail("missing field 'copy.L0C_GM' (or copy.L0C_UB): the cube's output has no path")
        return paths

    def chip(self) -> Chip:
        scalars = {attr: self.number(key, kind) for key, (attr, kind) in _SCALARS.items()}
        buffers = {b: self.number(f"buffers.{b}", int) for b in _BUFFERS}
        alignment = {a: self.number(f"alignment.{a}", int) for a in _ALIGNMENTS}
        k0 = {dt: self.number(f"cube.k0.{dt}", int) for dt in self.table("cube.k0")}
        macs = {dt: self.number(f"cube.macs_per_cycle.{dt}", int) for dt in self.table("cube.macs_per_cycle")}
        for dt in macs:
            if dt not in DTYPE_BYTES:
                raise self.fail(f"field 'cube.macs_per_cycle.{dt}': unknown dtype (known: {', '.join(DTYPE_BYTES)})")
            if dt not in k0:
                raise self.fail(f"missing field 'cube.k0.{dt}' (cube.macs_per_cycle has {dt})")
        if "fp16" not in macs:
            raise self.fail("missing field 'cube.macs_per_cycle.fp16'")
        vector = {op: self.number(f"vector.bytes_per_cycle.{op}") for op in VECTOR_OP_CLASSES}
        for op in self.table("vector.fixed_cycles") if self.has("vector.fixed_cycles") else ():
            if op not in VECTOR_OP_CLASSES:
                raise self.fail(f"field 'vector.fixed_cycles.{op}': unknown op class (known: {', '.join(VECTOR_OP_CLASSES)})")
        vector_fixed = {op: self.number_or(f"vector.fixed_cycles.{op}", "vector.instr_fixed_cycles")
                        for op in VECTOR_OP_CLASSES}
        chip = Chip(
            name=self.text("chip.name"),
            description=self.text("chip.description"),
            source_file=str(self.path),
            arch=self.text("chip.arch"),
            split=self.flag("chip.split"),
            has_fixpipe=self.flag("chip.has_fixpipe"),
            buffers=buffers,
            alignment=alignment,
            k0=k0,
            macs_per_cycle=macs,
            vector_bytes_per_cycle=vector,
            vector_fixed_cycles=vector_fixed,
            copy_paths=self.copy_paths(),
            sources=dict(self.sources),
            **scalars,
        )
        self.check_capacities(chip)
        return chip

    def check_capacities(self, chip: Chip) -> None:
        """Each buffer must hold one double-buffered fractal of every cube dtype."""
        for dt in chip.cube_dtypes:
            fractal = chip.fractal_m * chip.k0[dt] * DTYPE_BYTES[dt]
            for buf in ("l0a", "l0b"):
                if chip.buffers[buf] < 2 * fractal:
                    raise self.fail(
                        f"field 'buffers.{buf}' = {chip.buffers[buf]} is smaller than one double-buffered "
                        f"{dt} fractal ({2 * fractal} bytes)"
                    )
            if chip.buffers["l1"] < 4 * fractal:
                raise self.fail(f"field 'buffers.l1' = {chip.buffers['l1']} cannot stage double-buffered {dt} A and B fractals ({4 * fractal} bytes)")
        acc = chip.fractal_m * chip.fractal_n * ACC_BYTES
        if chip.buffers["l0c"] < 2 * acc:
            raise self.fail(f"field 'buffers.l0c' = {chip.buffers['l0c']} is smaller than one double-buffered accumulator fractal ({2 * acc} bytes)")
        if chip.buffers["ub"] < 2 * chip.vector_repeat_bytes:
            raise self.fail(f"field 'buffers.ub' = {chip.buffers['ub']} is smaller than two vector repeats ({2 * chip.vector_repeat_bytes} bytes)")
        for eff in ("mmad_efficiency", "dma_misaligned_efficiency", "dma_same_address_efficiency"):
            if getattr(chip, eff) > 1:
                raise self.fail(f"field '{eff.replace('dma_', 'dma.').replace('mmad_', 'cube.mmad_')}' must be at most 1")


def pass_target(ctx: Any, chip: str = "", precision: str = "") -> tuple[Chip, str]:
    """The chip and precision mode an ascend pass works for: its own option when given
    (``graphopt opt -p 'ascend-lower{chip=ascend310p precision=must_keep_origin_dtype}'``),
    else the compiling target's, else the bundled default chip and force_fp16."""
    from graphopt.targets.ascend.vector import Numerics

    target = getattr(ctx, "target", None)
    mode = precision or getattr(target, "precision", "force_fp16")
    Numerics.of(mode)  # one of the modes, or the error naming them
    return load_chip(chip) if chip else getattr(target, "chip", None) or load_chip(), mode
