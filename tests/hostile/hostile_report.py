"""Run the hostile corpus outside pytest and print one line per case: ok or FAIL, the exit
code and the first stderr line (or the exception), then each failing case's problems.

    .venv/bin/python tests/hostile/hostile_report.py [--only PREFIX] [--failures]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "unit"))


def main() -> int:
    from hostile_cases_api import CASES as API
    from hostile_cases_args import CASES as ARGS
    from hostile_cases_args import OUTPUT_CASES
    from hostile_cases_mlir import CASES as MLIR
    from hostile_cases_npy import CASES as NPY
    from hostile_cases_onnx import CASES as ONNX
    from hostile_harness import ApiCase, Runner, run_api_case, run_cli_case

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="run the cases whose id starts with this")
    ap.add_argument("--failures", action="store_true", help="print only the failing cases")
    ap.add_argument("--no-torch", action="store_true", help="leave out the .pt2 cases")
    args = ap.parse_args()
    cases = [*ONNX, *MLIR, *NPY, *ARGS, *OUTPUT_CASES, *API]
    if not args.no_torch:
        from hostile_cases_pt2 import API_CASES as PT2_API
        from hostile_cases_pt2 import CASES as PT2

        cases += [*PT2, *PT2_API]
    cases = [c for c in cases if c.id.startswith(args.only)]
    work = Path(tempfile.mkdtemp(prefix="graphopt-hostile-report-"))
    work.chmod(0o777)
    runners: dict[bool, Runner] = {}
    failed = 0
    try:
        for k, case in enumerate(cases):
            folder = work / f"{k:03d}"
            folder.mkdir()
            folder.chmod(0o777)
            if isinstance(case, ApiCase):
                outcome, problems = run_api_case(case, folder)
            else:
                if case.torch not in runners:
                    io = work / f"io-{case.torch}"
                    io.mkdir()
                    runners[case.torch] = Runner(io, with_torch=case.torch)
                res, problems = run_cli_case(case, runners[case.torch], folder)
                outcome = res.summary()
            failed += bool(problems)
            if problems or not args.failures:
                print(f"{'FAIL' if problems else 'ok  '} {case.id:<48} {outcome}")
                for p in problems:
                    print(f"       - {p[:300]}")
            sys.stdout.flush()
    finally:
        for r in runners.values():
            r.close()
        for dirpath, dirnames, _ in os.walk(work):
            for d in dirnames:
                p = Path(dirpath) / d
                if not p.is_symlink():
                    p.chmod(0o700)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(cases) - failed} of {len(cases)} cases met their expectation")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
