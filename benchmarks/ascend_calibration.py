"""Predicted against measured: every row of ../shared/reference/ascend-measured.md.

Each measured case is built the way graphopt sees it (a model compiled for ascend-sim on the
ascend910b chip file, or, for per-instruction and per-DMA costs, the timing model's own cost
functions) and printed beside the published figure, with the error. A summary gives the mean
and worst absolute error per family (GEMM, attention, vector, DMA, fixed costs); a case the
model has nothing for is listed as unmodelled, not skipped.

The chip file's constants chosen against rows of the page: the cube and GM->L1 constants
on the three square GEMMs (their times and pipe busy ratios; MTE1's LoadData fixed part on
its busy ratio), the vector instruction fixed cost on TADD (per class on TEXP, TDIV, TCVT),
the tensor-scalar rate on TMAXS/TMULS/TRELU, HBM's write cost on the streaming rows, the
GM->UB and L0C->GM per-DMA fixed costs on those paths' measured curves. Those rows are
named in FITTED and the summary reports them apart, as fit residuals; every other row is
out of sample (nothing was fitted to it). A change that fits a constant to more rows must
add them to FITTED, so that the figure the summary calls out-of-sample stays one.

    .venv/bin/python benchmarks/ascend_calibration.py            # the whole table (~1 min)
    .venv/bin/python benchmarks/ascend_calibration.py --family gemm
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from onnx import TensorProto, helper

import graphopt
from graphopt.targets.ascend.chip import Chip, load_chip
from graphopt.targets.ascend.matmul_kernel import matmul_traffic, simulate_matmul
from graphopt.targets.ascend.tiling import MatmulTiling, check_tiling, choose_tiling
from graphopt.targets.ascend.timing import copy_cycles, vector_cycles

CHIP = "ascend910b"
PEAK_TF = 353.9  # the reference page normalises every % of peak to this
# Case names a constant of the chip file was chosen against (see the module docstring):
# the square GEMMs (cube and GM->L1 constants; MTE1 busy: cube.load_data_fixed_cycles), TADD
# (vector.instr_fixed_cycles), TEXP/TDIV/TCVT ([vector.fixed_cycles]), TMAXS/TMULS/TRELU
# (the tensor_scalar rate).
FITTED: set[str] = {f"square {n}{pipe}" for n in (1536, 3072, 6144) for pipe in ("", " M busy", " MTE1 busy", " MTE2 busy",
                                                                                    " FIX busy")}
FITTED |= {f"{name} x{r} repeats" for name in ("TADD", "TMAXS", "TMULS", "TRELU", "TEXP", "TDIV", "TCVT") for r in (1, 64)}
# memory.hbm_write_cost is derived from the streaming measurement.
FITTED |= {f"HBM streaming {op} fp32 256 MB" for op in ("Exp", "Sigmoid")}
# The GM->UB and L0C->GM per-DMA fixed costs are those curves' half-bandwidth size over their peak.
FITTED |= {f"{path} {kb} KB" for path in ("GM->UB", "L0C->GM") for kb in (4, 32, 256)}
# The cluster file's HCCS link bandwidth is the 8-card all-gather's algorithm bandwidth / 8.
FITTED |= {"all_gather 8 cards"}


@dataclass
class Row:
    family: str
    case: str
    unit: str
    measured: float
    predicted: float | None  # None: the model has nothing for this case
    source: str
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        """Relative error in %; for a ratio (a busy or hit %), the difference in points."""
        if self.predicted is None:
            return None
        if self.unit.endswith(" %"):
            return self.predicted - self.measured
        return 100.0 * (self.predicted - self.measured) / self.measured


# -- building cases ----------------------------------------------------------------------


def _compile(nodes, inputs, outputs, opset: int = 23):
    g = helper.make_graph(nodes, "case", inputs, outputs)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return graphopt.compile(model, "ascend-sim", target_options={"chip": CHIP}, validate=False)


def _vi(name: str, shape: list[int], dtype: int = TensorProto.FLOAT16):
    return helper.make_tensor_value_info(name, dtype, shape)


def _matmul_us(m: int, n: int, k: int) -> tuple[float, float]:
    """(kernel time without launch, total with launch) of an fp16 MatMul [m, k] x [k, n], in us."""
    c = _compile([helper.make_node("MatMul", ["a", "b"], ["y"])], [_vi("a", [m, k]), _vi("b", [k, n])], [_vi("y", [m, n])])
    cube = [kk for kk in c.report["timing"]["kernels"] if kk["kind"] == "cube"]
    return sum(kk["time_us"] - kk.get("launch_us", 0.0) for kk in cube), c.report["timing"]["total_us"]


def _attention_us(sq: int, skv: int, d: int = 128) -> tuple[float, float]:
    """(kernel time without launch, total with launch) of fp16 non-causal attention, B1 H1."""
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"])
    c = _compile([node], [_vi("q", [1, 1, sq, d]), _vi("k", [1, 1, skv, d]), _vi("v", [1, 1, skv, d])],
                 [_vi("y", [1, 1, sq, d])])
    ks = c.report["timing"]["kernels"]
    return sum(kk["time_us"] - kk.get("launch_us", 0.0) for kk in ks), c.report["timing"]["total_us"]


# -- the families ------------------------------------------------------------------------


def square_rows(chip: Chip) -> list[Row]:
    rows = []
    src = "pto-isa gemm_performance [OFF]"
    # Square: the measured kernel's own tiling (grid 4x6, base 128x256x64, stepK 4).
    square = {1536: (38.8, 54.5, 42.2, 72.2, 7.7), 3072: (206.7, 79.0, 62.0, 90.9, 5.8),
              6144: (1506.0, 86.7, 68.1, 95.2, 3.1)}
    for size, (us, cube, mte1, mte2, fix) in square.items():
        t = MatmulTiling(size, size, size, grid_m=4, grid_n=6, base_m=128, base_n=256, base_k=64, step_k=4)
        check_tiling(chip, t)
        r = simulate_matmul(chip, t)
        rows.append(Row("gemm", f"square {size}", "us", us, r.time_us, src))
        for pipe, meas in (("M", cube), ("MTE1", mte1), ("MTE2", mte2), ("FIX", fix)):
            rows.append(Row("gemm-busy", f"square {size} {pipe} busy", "busy %", meas, r.busy_pct.get(pipe, 0.0), src,
                            "error in points"))
    return rows


# L2 hit rates (assumed M = N, K = 8192: the guide's 256 MB operand is 16384 x 8192 fp16).
L2_HIT_CASES = ((4096, 97.9, "no swizzle"), (16384, 30.9, "no swizzle"), (16384, 93.7, "swizzle"))


def l2_hit_row(chip: Chip, n: int, measured: float, how: str) -> Row:
    """Without a swizzle, aclnn hands consecutive row-major 128 x 256 tiles to consecutive
    cores (tile order "linear"); with one, the tiles of a strip share panels: graphopt's own
    kernel order ("grid", a swizzle of width grid_m or grid_n) with the tiling the pass chooses."""
    if how == "swizzle":
        t, order = choose_tiling(chip, n, n, 8192), "grid"
    else:
        t, order = MatmulTiling(n, n, 8192, grid_m=1, grid_n=24, base_m=128, base_n=256, base_k=64, step_k=4), "linear"
    a_reads, b_reads, a_miss, b_miss = matmul_traffic(chip.l2_bytes, t, order)
    hit = 100.0 * (1.0 - (a_miss + b_miss) / max(a_reads + b_reads, 1.0))
    strips = f"{t.grid_n} columns" if t.order == "cols" else f"{t.grid_m} rows"
    return Row("gemm-l2", f"L2 hit N={n} {how}", "hit %", measured, hit, "pto-dsl matmul guide [OFF]",
               f"graphopt's order: {t.base_m}x{t.base_n} tiles, strips of {strips}" if how == "swizzle"
               else "aclnn's order: row-major 128x256 tiles to consecutive cores")


def gemm_rows(chip: Chip) -> list[Row]:
    rows = square_rows(chip)
    # aclnnMatmul sweep, N = K = 8192, torch events (launch included); TF read off a plot.
    sweep = {128: 139, 640: 220, 1152: 276, 1664: 280, 2176: 283, 2688: 282, 3200: 283, 3712: 272, 4224: 260}
    for m, tf in sweep.items():
        _, total = _matmul_us(m, 8192, 8192)
        rows.append(Row("gemm", f"M-sweep M={m}", "TF", tf, 2 * m * 8192 * 8192 / total / 1e6,
                        "pto-dsl matmul guide [OFF], plot +-3 TF"))
    rows += [l2_hit_row(chip, n, meas, how) for n, meas, how in L2_HIT_CASES]
    # catlass split-K example: 2048 x 4096 x 4000 (M x N x K), msprof kernel time.
    kernel, _ = _matmul_us(2048, 4096, 4000)
    rows.append(Row("gemm", "catlass 2048x4096x4000 basic", "us", 445.0, kernel, "catlass 34_single_core_splitk [OFF]"))
    rows.append(Row("gemm", "catlass 2048x4096x4000 split-K", "us", 261.0, kernel, "catlass 34_single_core_splitk [OFF]",
                    "the tiling pass does not split K: predicted is its non-split kernel"))
    return rows


def attention_rows(chip: Chip) -> list[Row]:
    rows = []
    pto = {1024: 25.6, 2048: 66.2, 4096: 96.6, 8192: 117.4, 16384: 151.2, 32768: 168.5}
    torch_us = {1024: 58.5, 2048: 70.8, 4096: 118.3, 8192: 353.1, 16384: 1118.5, 32768: 3646.2}
    for s in pto:
        kernel, total = _attention_us(s, s)
        flops = 4.0 * s * s * 128
        rows.append(Row("attention", f"PTO kernel S={s}", "TF", pto[s], flops / kernel / 1e6, "pto-isa flash_atten [OFF]"))
        rows.append(Row("attention", f"torch_npu fused S={s}", "us", torch_us[s], total, "pto-isa flash_atten [OFF]",
                        "launch included"))
    kernel, _ = _attention_us(128, 8192)
    rows.append(Row("attention", "single core S0=128 S1=8192", "us", 74.54, kernel, "pto-isa flash_atten [OFF]"))
    return rows


# pto-isa cost-model comments: cycles = slope * repeats + fixed (one repeat = 256 B of fp32).
VECTOR = {  # instruction: (slope, fixed, the model's op class or None)
    "TADD": (2.11, 24, "elementwise"), "TSUB": (2.11, 24, "elementwise"), "TMUL": (2.3, 25, "elementwise"),
    "TMAX": (2.01, 23, "elementwise"), "TMAXS": (1.00, 23, "tensor_scalar"), "TMULS": (1.0, 26, "tensor_scalar"),
    "TRELU": (1.00, 23, "tensor_scalar"), "TEXP": (2.00, 31, "exp_fp32"), "TLOG": (2.00, 33, "exp_fp32"),
    "TRSQRT": (1.07, 24, None), "TDIV": (4.03, 31, "div"), "TCVT": (0.90, 27, "cast"), "TSORT32": (16, 21, None),
}
_NO_CLASS = {"TRSQRT": "the model issues no rsqrt (Sqrt and Reciprocal are timed as div)",
             "TSORT32": "the model issues no sort (TopK runs on the AI CPU)"}


def vector_rows(chip: Chip) -> list[Row]:
    rows = []
    for name, (slope, fixed, cls) in VECTOR.items():
        for r in (1, 64):
            pred = vector_cycles(chip, cls, r * 256) if cls is not None else None
            rows.append(Row("vector", f"{name} x{r} repeats", "cycles", slope * r + fixed, pred, "pto-isa cost model [OFF]",
                            _NO_CLASS.get(name, "")))
    return rows


DMA = {  # path: (peak GiB/s, K bytes), bandwidth(B) = peak * B / (K + B), one core
    ("GM", "UB"): (247.2, 30.6e3), ("GM", "L1"): (28.6, 1.1e3), ("UB", "GM"): (28.2, 1.8e3), ("L0C", "GM"): (41.3, 29.1e3),
}


def dma_rows(chip: Chip) -> list[Row]:
    rows = []
    for (src, dst), (peak, k) in DMA.items():
        path = chip.path(src, dst)
        for nbytes in (4096, 32768, 262144):
            meas = peak * nbytes / (k + nbytes)
            pred = None
            if path is not None:
                seconds = chip.cycles_to_us(copy_cycles(chip, path, nbytes)) * 1e-6
                pred = nbytes / seconds / 2**30
            rows.append(Row("dma", f"{src}->{dst} {nbytes // 1024} KB", "GiB/s", meas, pred, "pto-isa arch_config.hpp [OFF]"))
    return rows


def fixed_rows(chip: Chip) -> list[Row]:
    rows = []
    # catlass's kernels launch MIX_AIC_1_2 on every core: the cube cores and their vector cores.
    launch = chip.cycles_to_us(chip.launch_cycles(chip.cube_cores + chip.vector_cores))
    rows.append(Row("fixed", "empty full-core kernel launch", "us", 20.5, launch, "catlass bottleneck doc [OFF]",
                    f"predicted: launch + head of a kernel on all {chip.cube_cores} AIC + {chip.vector_cores} AIV"))
    x = [_vi("x", [8192, 8192], TensorProto.FLOAT)]
    for op in ("Exp", "Sigmoid"):
        c = _compile([helper.make_node(op, ["x"], ["y"])], x, [_vi("y", [8192, 8192], TensorProto.FLOAT)])
        gbps = 8192 * 8192 * 4 / c.report["timing"]["total_us"] / 1e3
        rows.append(Row("fixed", f"HBM streaming {op} fp32 256 MB", "GB/s in", 642.0, gbps, "limulidae benchmark [3P]"))
    from graphopt.targets.ascend.cluster import collective_time, load_cluster

    cluster, n = load_cluster(), 1 << 30  # "large messages": a 1 GiB gathered output
    for cards, gbps in ((8, 149.0), (4, 64.0), (2, 38.0)):
        cost = collective_time(cluster, "AllGather", n, list(range(cards)))
        rows.append(Row("collective", f"all_gather {cards} cards", "GB/s", gbps, n / cost.us / 1e3, "[3P]",
                        f"{cluster.name}: {cost.algorithm}, 1 GiB"))
    return rows


FAMILIES: dict[str, Callable[[Chip], list[Row]]] = {
    "gemm": gemm_rows, "attention": attention_rows, "vector": vector_rows, "dma": dma_rows, "fixed": fixed_rows,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", choices=sorted(FAMILIES), action="append", help="only these families (repeatable)")
    args = ap.parse_args(argv)
    chip = load_chip(CHIP)
    rows = [r for f in (args.family or FAMILIES) for r in FAMILIES[f](chip)]
    print(f"ascend-sim ({CHIP} chip file) against ../shared/reference/ascend-measured.md; error = predicted / measured - 1")
    head = f"{'family':<11} {'case':<34} {'unit':>7} {'measured':>10} {'predicted':>10} {'error':>8}  note"
    print(head)
    print("-" * len(head))
    for r in rows:
        pred = f"{r.predicted:10.2f}" if r.predicted is not None else f"{'-':>10}"
        err = f"{r.error_pct:+7.1f}%" if r.error_pct is not None else f"{'n/a':>8}"
        print(f"{r.family:<11} {r.case:<34} {r.unit:>7} {r.measured:10.2f} {pred} {err}  {r.note}")
    print()
    print(f"{'family':<11} {'rows':>5} {'mean |error|':>13} {'worst':>8}  worst case")
    for family in dict.fromkeys(r.family for r in rows):
        for fitted in (False, True):
            mine = [r for r in rows if r.family == family and r.error_pct is not None and (r.case in FITTED) == fitted]
            missing = [r for r in rows if r.family == family and r.error_pct is None]
            label = f"{family}{' (fit)' if fitted else ''}"
            if mine:
                worst = max(mine, key=lambda r: abs(r.error_pct or 0.0))
                mean = statistics.fmean(abs(r.error_pct or 0.0) for r in mine)
                pct = "p" if all(r.unit.endswith(" %") for r in mine) else "%"  # ratios: points
                print(f"{label:<11} {len(mine):>5} {mean:>12.1f}{pct} {worst.error_pct:>+7.1f}{pct}  {worst.case}"
                      + (f"; unmodelled: {len(missing)}" if missing and not fitted else ""))
            elif not fitted and missing:
                print(f"{label:<11} {0:>5} {'-':>13} {'-':>8}  unmodelled: {len(missing)}")
    print("rows without (fit) are out of sample: no constant of the chip file was chosen against them; p: points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
