"""Rewrite tests/conformance/known_failures.txt from a fresh run of the node suite.

    python tools/update_known_failures.py

Each failing case is listed under a heading made from its error, so the reasons read as
what is missing ("the cpu target has no kernel for GridSample"). Edit headings by hand
afterwards where a better reason is known; re-running regroups them.
"""

from __future__ import annotations

import re
import sys
import unittest
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _reason(text: str) -> str:
    line = text.strip().splitlines()[-1]
    line = re.sub(r"^[\w.]+(Error|Exception): ", "", line)
    line = re.sub(r"\(node [^)]*\)", "", line)  # node names differ per case
    line = re.sub(r"node '[^']*' ", "", line)
    line = re.sub(r"\s+", " ", line)
    return line[:160]


def main() -> int:
    warnings.simplefilter("ignore")
    import onnx.backend.test

    from graphopt.onnx_backend import GraphoptBackend

    bt = onnx.backend.test.BackendTest(GraphoptBackend, "update")
    cls = bt.test_cases["OnnxBackendNodeModelTest"]
    groups: dict[str, list[str]] = defaultdict(list)
    total = 0
    for name in sorted(n for n in dir(cls) if n.startswith("test_") and n.endswith("_cpu")):
        total += 1
        result = unittest.TestResult()
        cls(name).run(result)
        if result.wasSuccessful() and not result.skipped:
            continue
        problems = result.errors or result.failures
        why = _reason(problems[0][1]) if problems else "skipped"
        groups[why].append(name.removesuffix("_cpu"))
    lines = []
    for why, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"# {why}")
        lines.extend(names)
        lines.append("")
    out = ROOT / "tests" / "conformance" / "known_failures.txt"
    out.write_text("\n".join(lines))
    failing = sum(len(v) for v in groups.values())
    print(f"{total - failing} of {total} pass; wrote {failing} known failures to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
