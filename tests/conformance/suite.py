"""The ONNX node conformance suite through GraphoptBackend, and its known failures.

``known_failures.txt`` lists each case graphopt does not pass, one per line, under a
``# reason`` heading. Listed cases run as expected failures: one that starts passing
fails the run until its line is removed, so the file stays true.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
KNOWN_FAILURES = HERE / "known_failures.txt"
# ascend-sim at must_keep_origin_dtype fails these beyond the cpu target's known failures
KNOWN_FAILURES_ASCEND = HERE / "known_failures_ascend.txt"


def known_failures(path: Path = KNOWN_FAILURES) -> dict[str, str]:
    """case name -> reason."""
    reasons: dict[str, str] = {}
    reason = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            reason = line.lstrip("# ").strip()
        elif line:
            reasons[line] = reason
    return reasons


def subsets() -> dict[str, tuple[bool, bool]]:
    """case name -> (all inputs/outputs plain numpy dtypes, all float32).

    Plain: every input and output is an ndarray of numpy's own bool, int, uint or float
    types (no bfloat16, float8, int4, strings, sequences or optionals).
    """
    from onnx.backend.test.case.node import collect_testcases

    found = {}
    for case in collect_testcases(None):
        arrays = [a for ins, outs in case.data_sets for a in (*ins, *outs)]
        plain = all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in arrays)
        f32 = all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)
        found[case.name] = (plain, f32)
    return found


def case_name(test_id: str) -> str | None:
    """``...::test_abs_cpu`` -> ``test_abs``."""
    m = re.search(r"(test_\w+)_cpu$", test_id)
    return m.group(1) if m else None
