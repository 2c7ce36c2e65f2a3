"""benchmarks/ascend_calibration.py keeps running: its fast families build every row, and a
row without a prediction says why (the slow GEMM and attention families run in the benchmark)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("ascend_calibration", ROOT / "benchmarks" / "ascend_calibration.py")
assert spec is not None and spec.loader is not None
cal = importlib.util.module_from_spec(spec)
sys.modules.setdefault("ascend_calibration", cal)  # its dataclass looks its module up
spec.loader.exec_module(cal)


def test_fast_families_build_every_row():
    chip = cal.load_chip(cal.CHIP)
    rows = cal.vector_rows(chip) + cal.dma_rows(chip)
    assert len(rows) == 2 * len(cal.VECTOR) + 3 * len(cal.DMA)
    for r in rows:
        assert r.measured > 0, r
        assert r.predicted is not None or r.note, r
    # the per-DMA rows follow the fitted curve bandwidth(B) = peak * B / (K + B)
    peak, k = cal.DMA[("GM", "UB")]
    gm_ub = next(r for r in rows if r.case == "GM->UB 32 KB")
    assert abs(gm_ub.measured - peak * 32768 / (k + 32768)) < 1e-9


def test_error_is_relative_to_the_measurement():
    assert cal.Row("x", "c", "us", 200.0, 150.0, "s").error_pct == -25.0
    assert cal.Row("x", "c", "us", 200.0, None, "s", "why").error_pct is None
    # busy and hit ratios are compared in points
    assert cal.Row("x", "c", "busy %", 68.1, 66.9, "s").error_pct == 66.9 - 68.1


def test_square_busy_ratios_and_l2_hit_rates_hold():
    """The done-when figures that are cheap to compute: every pipe's busy ratio of the
    measured square GEMMs within 10 points, the L2 hit rates within 5 (aclnn's order without
    a swizzle, graphopt's own with one)."""
    chip = cal.load_chip(cal.CHIP)
    busy = [r for r in cal.square_rows(chip) if r.family == "gemm-busy"]
    assert len(busy) == 12
    assert all(abs(r.error_pct) <= 10 for r in busy), [(r.case, r.error_pct) for r in busy]
    for n, measured, how in cal.L2_HIT_CASES:
        row = cal.l2_hit_row(chip, n, measured, how)
        assert abs(row.error_pct) <= 5, (row.case, row.error_pct)
