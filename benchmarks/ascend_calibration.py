"""Predicted vs measured: the calibration table of ../shared/reference/ascend.md.

GEMM, fp16 inputs, fp32 output, M = N = K, on ascend910b (24 AIC at 1.8 GHz), % of peak =
achieved / (24 x 4096 x 2 x 1.8e9). The measured kernel is pto-isa's a2a3 GEMM
(kernels/manual/a2a3/gemm_performance): grid 4x6, base 128x256x64, stepKa = stepKb = 4,
L1/L0A/L0B double buffered, one L0C buffer. The "kernel" columns simulate that tiling; the
"chosen" column is the tiling the model itself picks. Per-pipe busy % are printed beside the
measured TMATMUL/TEXTRACT/TLOAD/TSTORE ratios from the same README. Nothing here is fitted:
every number comes from chips/ascend910b.toml.

    .venv/bin/python benchmarks/ascend_calibration.py
"""

from __future__ import annotations

from graphopt.targets.ascend.chip import load_chip
from graphopt.targets.ascend.matmul_kernel import simulate_matmul
from graphopt.targets.ascend.tiling import MatmulTiling, check_tiling, choose_tiling

# size -> (measured ms, % of peak, M, MTE1, MTE2, FIX busy %) from the reference / pto-isa README.
MEASURED = {
    1536: (0.0388, 52.8, 54.5, 42.2, 72.2, 7.7),
    3072: (0.2067, 79.3, 79.0, 62.0, 90.9, 5.8),
    6144: (1.506, 87.0, 86.7, 68.1, 95.2, 3.1),
}
# Also in the pto-isa README but not in the reference's calibration table (out of sample).
EXTRA = {7680: (3.168, 100 * 2 * 7680**3 / 3.168e-3 / 353.8944e12, 80.6, 63.0, 98.4, 2.4)}


def calibrate() -> list[dict[str, float]]:
    """One row per size: predicted and measured % of peak and pipe busy."""
    chip = load_chip("ascend910b")
    rows = []
    for size, (ms, pct, m, mte1, mte2, fix) in {**MEASURED, **EXTRA}.items():
        kernel = MatmulTiling(size, size, size, grid_m=4, grid_n=6, base_m=128, base_n=256, base_k=64, step_k=4)
        check_tiling(chip, kernel)
        r = simulate_matmul(chip, kernel)
        chosen = simulate_matmul(chip, choose_tiling(chip, size, size, size))
        rows.append(
            {
                "size": size,
                "in_table": size in MEASURED,
                "measured_ms": ms,
                "predicted_ms": r.time_us / 1e3,
                "measured_pct": pct,
                "predicted_pct": r.pct_of_peak,
                "error_pts": r.pct_of_peak - pct,
                "chosen_pct": chosen.pct_of_peak,
                "bound": r.bound,
                "busy": {p: r.busy_pct.get(p, 0.0) for p in ("M", "MTE1", "MTE2", "FIX")},
                "measured_busy": {"M": m, "MTE1": mte1, "MTE2": mte2, "FIX": fix},
            }
        )
    return rows


def main() -> None:
    print("GEMM fp16 -> fp32, M = N = K, ascend910b, % of peak 353.9 TFLOPS (24 x 4096 x 2 x 1.8 GHz)")
    head = f"{'M=N=K':>6} {'meas ms':>8} {'pred ms':>8} {'meas %':>7} {'pred %':>7} {'err pts':>8} {'chosen %':>9} {'bound':>6}   busy % pred/meas: M, MTE1, MTE2, FIX"
    print(head)
    print("-" * len(head))
    for r in calibrate():
        busy = "  ".join(f"{r['busy'][p]:4.1f}/{r['measured_busy'][p]:4.1f}" for p in ("M", "MTE1", "MTE2", "FIX"))
        note = "" if r["in_table"] else "   (pto-isa README only; not in the reference table)"
        print(
            f"{r['size']:>6} {r['measured_ms']:>8.4f} {r['predicted_ms']:>8.4f} {r['measured_pct']:>7.1f} {r['predicted_pct']:>7.1f} "
            f"{r['error_pts']:>+8.1f} {r['chosen_pct']:>9.1f} {r['bound']:>6}   {busy}{note}"
        )
    print("flash attention fwd (S=8192 ~49 %, S=1024 25-48 TFLOP/s): not predicted yet; needs the cube->vector lowering")


if __name__ == "__main__":
    main()
