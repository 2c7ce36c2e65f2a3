"""The ONNX node suite through ascend-sim in a float16 precision mode, judged as float16.

The conformance tests (tests/conformance/test_onnx_node.py) run the suite on ascend-sim at
must_keep_origin_dtype, where the suite's own float32 tolerances apply. In force_fp16 the
chip stores every float in fp16, so those tolerances cannot hold; this script counts the
cases that pass when each output is judged the way `graphopt compile` judges a float16
target (graphopt.validate: the float16 tolerance, then the float16 rounding floor measured
by onnxruntime with every value rounded), against the suite's expected outputs.

    python benchmarks/node_suite_fp16.py [--precision force_fp16] [--chip ascend910b] [-k PATTERN] [-v]

Prints the counts (all cases; the cases the cpu target passes), and with -v each case
that does not pass with its reason.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_case(model: Any, sets: list[tuple[list[Any], list[Any]]], options: dict[str, Any], target: str) -> tuple[str, str]:
    """(status, reason): status pass, mismatch, refused (GraphoptError) or internal."""
    from graphopt.errors import GraphoptError
    from graphopt.onnx_backend import GraphoptBackend, _as_array
    from graphopt.validate import compare_value, judge_by_floor, reduction_depth, rounding_floor

    try:
        rep = GraphoptBackend.prepare(model, target=target, target_options=options)
        for ins, want in sets:
            ins, want = [_as_array(v) for v in ins], [_as_array(v) for v in want]  # the suite holds TensorProtos
            got = rep.run(ins)
            compiled = rep.compiled or rep._for_shapes(ins)
            compute = getattr(compiled.executable, "compute_dtype", None)
            depth = reduction_depth(compiled.module)
            names = [o.name for o in model.graph.output]
            feeds = {i.name: v for i, v in zip(model.graph.input, ins)}
            floors: list[float | None] | None = None
            for k, (g, w) in enumerate(zip(got, want)):
                entry = compare_value(names[k], g, w, depth, compute)
                if not entry["passed"] and isinstance(w, np.ndarray) and w.dtype == np.float32 and compute is not None:
                    if floors is None:
                        floors = rounding_floor(model, names, feeds, want, np.dtype(compute))
                    judge_by_floor(entry, floors[k])
                if not entry["passed"]:
                    return "mismatch", f"{names[k]}: {entry.get('why', '')} max abs err {entry['max_abs_err']:.3g}, rel {entry['max_rel_err']:.3g}" \
                        + (f", floor {entry['rounding_floor']:.3g}" if "rounding_floor" in entry else "")
    except GraphoptError as e:
        return "refused", str(e)[:160]
    except Exception as e:  # an internal error: a bug to fix
        return "internal", f"{type(e).__name__}: {str(e)[:160]}"
    return "pass", ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", default="force_fp16", choices=["force_fp16", "allow_mix_precision"])
    ap.add_argument("--chip", default="ascend910b")
    ap.add_argument("-k", default="", help="only cases whose name matches this regular expression")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    warnings.filterwarnings("ignore")
    from onnx.backend.test.loader import load_model_tests

    from tests.conformance.suite import known_failures

    cpu_fails = set(known_failures())
    target = "ascend-sim" if args.chip == "ascend910b" else f"ascend-sim:{args.chip}"
    counts: Counter[str] = Counter()
    on_cpu_passing: Counter[str] = Counter()
    t0 = time.perf_counter()
    cases = [c for c in load_model_tests(kind="node") if re.search(args.k, c.name)]  # in memory, as the suite runs them
    for case in cases:
        status, why = run_case(case.model, list(case.data_sets or []), {"precision": args.precision}, target)
        counts[status] += 1
        if case.name not in cpu_fails:
            on_cpu_passing[status] += 1
        if args.verbose and status != "pass":
            print(f"{case.name}: {status}: {why}", flush=True)
    n, m = sum(counts.values()), sum(on_cpu_passing.values())
    print(f"ONNX node suite on {target} at {args.precision}, float16 judging ({time.perf_counter() - t0:.0f} s):")
    print(f"  all cases: {counts['pass']} of {n} pass ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()) if k != 'pass')})")
    print(f"  cases the cpu target passes: {on_cpu_passing['pass']} of {m} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(on_cpu_passing.items()) if k != 'pass')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
