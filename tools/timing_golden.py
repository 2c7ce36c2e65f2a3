"""The bundled examples' ascend-sim timing, kept as a golden file so a change that moves it
is seen: tests/targets/ascend/test_timing_golden.py compares against it.

    .venv/bin/python tools/timing_golden.py            # print what differs from the golden file
    .venv/bin/python tools/timing_golden.py --update   # rewrite it (say why in the commit)

Each bundled model (examples/models/*.onnx) is compiled as `graphopt compile MODEL --target
ascend-sim --chip CHIP` does by default (-O2, force_fp16), without validation, on both chips.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "targets" / "ascend" / "timing_golden.json"
CHIPS = ("ascend910b", "ascend310p")


def measure(model: Path, chip: str) -> dict[str, Any]:
    import graphopt

    compiled = graphopt.compile(str(model), "ascend-sim", target_options={"chip": chip}, validate=False)
    t = compiled.report["timing"]
    return {"total_us": t["total_us"], "mfu": t["mfu"],
            "kernels": [[k["name"], k["time_us"], k["cycles"], k.get("bound")] for k in t["kernels"]]}


def current() -> dict[str, dict[str, Any]]:
    return {f"{m.stem}@{chip}": measure(m, chip) for m in sorted((ROOT / "examples" / "models").glob("*.onnx"))
            for chip in CHIPS}


def differences(golden: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One line per model whose timing moved (float fields to 1e-9 relative)."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) or isinstance(b, float):
            return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-9)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b

    out = []
    for key in sorted(set(golden) | set(now)):
        g, n = golden.get(key), now.get(key)
        if g is None or n is None:
            out.append(f"{key}: {'new' if g is None else 'gone'}")
        elif not same(g["kernels"], n["kernels"]) or not same(g["total_us"], n["total_us"]):
            out.append(f"{key}: total {g['total_us']} -> {n['total_us']} us, {len(g['kernels'])} -> {len(n['kernels'])} kernels")
    return out


def main(argv: list[str]) -> int:
    now = current()
    if "--update" in argv:
        GOLDEN.write_text(json.dumps(now, indent=1) + "\n")
        print(f"wrote {GOLDEN.relative_to(ROOT)} ({len(now)} model/chip pairs)")
        return 0
    diff = differences(json.loads(GOLDEN.read_text()), now)
    print("\n".join(diff) if diff else f"timing identical to {GOLDEN.relative_to(ROOT)} ({len(now)} pairs)")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
