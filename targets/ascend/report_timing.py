"""The `timing` section of report.json and its terminal table.

Kernels run one after another (a single stream, as a graph executes on one device queue);
each is simulated on its own (`kernel_timing.kernel_program` + `timing.simulate`), with an
L2 state carried from kernel to kernel. Totals:

- total_us: the sum of the kernels' times (each includes its launch); with collectives, the
  end of the later of the compute and communication streams (comm_timing: a collective
  overlaps the compute issued between it and its wait), and collective_us,
  collective_exposed_us, collective_hidden_us and each collective's algorithm and formula.
- flops: the model's FLOPs (matmul 2MNK, attention 4·Sq·Skv·D per head, halved when causal);
  vector work is not counted, as MFU conventionally does.
- mfu: flops / (total time x the chip's peak for the dtype); the peak is reported beside it
  (`peak_tflops`, `peak_basis`: cube cores x MAC/cycle x 2 x clock).
- parameter_conversion_us: the TransData kernels of parameters fed at run time (torch.compile
  lifts them into graph inputs; ``TransDataOp.per_update``). They run when a parameter
  changes (an optimizer step), not on every call, so total_us leaves them out.
- untimed: kernels whose tensors have run-time (data-dependent) sizes, such as everything
  after a NonZero in MoE routing: their time depends on the data, so they are listed and left
  out, and the totals are a lower bound (`complete` is false).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, TensorType

from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.comm_timing import Schedule, collectives_section
from graphopt.targets.ascend.dialect import KernelOp
from graphopt.targets.ascend.kernel_timing import kernel_program
from graphopt.targets.ascend.l2 import L2State
from graphopt.targets.ascend.timing import SimResult, simulate


def kernels_of(module: ModuleOp) -> list[KernelOp]:
    return [op for fn in module.ops if isinstance(fn, func.FuncOp) for op in fn.body.block.ops if isinstance(op, KernelOp)]


def has_runtime_sizes(kernel: KernelOp) -> bool:
    """Whether a tensor the kernel reads or writes has a dimension known only at run time."""
    return any(isinstance(v.type, TensorType | MemRefType) and any(d < 0 for d in v.type.get_shape())
               for v in (*kernel.inputs, *kernel.outputs))


def untimed_kernels(module: ModuleOp) -> list[str]:
    """The kernels the timing model cannot time at compile time (run-time sizes)."""
    return [k.sym_name.data for k in kernels_of(module) if has_runtime_sizes(k)]


def simulate_module(chip: Chip, module: ModuleOp, *, trace: bool = False) -> list[SimResult]:
    """Every kernel of the module with compile-time sizes, simulated in program order with a
    shared L2 state."""
    l2 = L2State(chip.l2_bytes)
    return [simulate(chip, kernel_program(chip, k, l2, names=trace), trace=trace)
            for k in kernels_of(module) if not has_runtime_sizes(k) and k.kind.data != "comm"]


def per_update_kernels(module: ModuleOp) -> list[str]:
    """The kernels converting parameters, which run when a parameter changes (TransDataOp.per_update)."""
    return [k.sym_name.data for k in kernels_of(module) if k.per_update]


def timing_section(chip: Chip, results: list[SimResult], dtype: str = "fp16", untimed: Sequence[str] = (),
                   per_update: Collection[str] = (), steps: Schedule | None = None) -> dict[str, Any]:
    """report.json's `timing` (see the module docstring); ``steps``: the two streams'
    schedule when the graph has collectives (comm_timing)."""
    conversions = [r for r in results if r.name in per_update]
    results = [r for r in results if r.name not in per_update]
    total_us = steps.total_us if steps is not None and steps.collectives else sum(r.time_us for r in results)
    flops = sum(r.flops for r in results)
    peak = chip.peak_flops(dtype if dtype in chip.macs_per_cycle else "fp16")
    seconds = total_us * 1e-6
    return {
        "total_us": round(total_us, 3),
        "flops": flops,
        "tflops": round(flops / seconds / 1e12, 3) if seconds else 0.0,
        "mfu": round(flops / (seconds * peak), 4) if seconds else 0.0,
        "peak_tflops": round(peak / 1e12, 2),
        "peak_basis": f"{chip.cube_cores} cube cores x {chip.macs_per_cycle.get(dtype, chip.macs_per_cycle['fp16'])} "
                      f"{dtype} MAC/cycle x 2 x {chip.clock_ghz} GHz",
        "kernels": [_kernel_row(r) for r in results],
        "complete": not untimed,
        "untimed": list(untimed),
        **(collectives_section(steps) if steps is not None else {}),
        **({"parameter_conversion_us": round(sum(r.time_us for r in conversions), 3),
            "parameter_conversions": [_kernel_row(r) for r in conversions]} if conversions else {}),
    }


def _kernel_row(r: SimResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "kind": r.kind,
        "cycles": round(r.cycles, 1),
        "time_us": round(r.time_us, 3),
        "flops": r.flops,
        "bytes": {level: round(b) for level, b in sorted(r.bytes.items()) if level},
        "busy_pct": {p: round(v, 1) for p, v in sorted(r.busy_pct.items())},
        "bound": r.bound,
        "launch_us": round(r.time_us * r.launch_cycles / r.cycles, 3) if r.cycles else 0.0,
    }


def timing_table(timing: dict[str, Any], limit: int = 12) -> list[str]:
    """The terminal summary: totals, then the slowest kernels."""
    untimed = timing.get("untimed", [])
    bound = "at least " if untimed else ""
    lines = [
        f"  timing: {bound}{timing['total_us']:.1f} us, {_si(timing['flops'])}FLOP, {_si(timing['tflops'] * 1e12)}FLOP/s, "
        f"MFU {'at most ' if untimed else ''}{100 * timing['mfu']:.2f} % (peak {timing['peak_tflops']} TFLOPS: {timing['peak_basis']})",
        f"    {'kernel':<26} {'kind':<7} {'us':>9} {'%time':>6} {'TFLOP/s':>8} {'bound':<7} busy % (M MTE1 MTE2 FIX V MTE3)",
    ]
    total = timing["total_us"] or 1.0
    rows = sorted(timing["kernels"], key=lambda k: -k["time_us"])
    for k in rows[:limit]:
        busy = k["busy_pct"]
        tf = k["flops"] / (k["time_us"] * 1e-6) / 1e12 if k["time_us"] else 0.0
        pipes = " ".join(f"{busy.get(p, 0.0):4.0f}" for p in ("M", "MTE1", "MTE2", "FIX", "V", "MTE3"))
        lines.append(f"    {k['name'][:26]:<26} {k['kind']:<7} {k['time_us']:>9.1f} {100 * k['time_us'] / total:>5.1f}% "
                     f"{tf:>8.1f} {k['bound']:<7} {pipes}")
    if len(rows) > limit:
        rest = sum(k["time_us"] for k in rows[limit:])
        lines.append(f"    ... {len(rows) - limit} more kernels, {rest:.1f} us")
    conversions = timing.get("parameter_conversions", [])
    if conversions:
        lines.append(f"    parameter conversions: {len(conversions)} TransData kernels, {timing['parameter_conversion_us']:.1f} us "
                     "when the parameters change (not per call)")
    if untimed:
        shown = ", ".join(untimed[:6]) + (f" and {len(untimed) - 6} more" if len(untimed) > 6 else "")
        lines.append(f"    not timed: {len(untimed)} kernels whose sizes are known only at run time ({shown})")
    return lines


def _si(value: float) -> str:
    """1.2e10 -> '12.0 G' (a small model's MFLOPs must not print as 0.0 GFLOP)."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {prefix}"
    return f"{value:.1f} "
