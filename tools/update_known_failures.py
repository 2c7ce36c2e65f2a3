"""Rewrite tests/conformance/known_failures.txt from a fresh run of the node suite.

    python tools/update_known_failures.py

Each failing case is listed under a heading made from its error, so the reasons read as
what is missing ("the cpu target has no kernel for GridSample"). Errors of a known kind
get a clean heading (``_CLEAN``: "refused: random op ..."). A heading written by hand is
kept when re-running yields exactly the same set of cases under one heading, so edit
headings freely; a group whose cases change is regrouped under its error text again.
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


# Error text -> a heading a reader can check, for errors of a known kind.
_CLEAN = [
    (re.compile(r"\(Scan, opset 8\): the body declares"),
     "control flow: Scan opset 8 (a batch axis and sequence_lens) is not legalized to the opset-9 form"),
    (re.compile(r"Unable to compare expected type"),
     "onnx's test runner cannot compare a sequence holding a 0-d tensor (it calls len() on it); graphopt's output matches"),
    (re.compile(r"graphopt refuses this op: (.*)"), r"refused: \1"),
    (re.compile(r"Dropout with training_mode true"), "refused: Dropout in training mode is random (training only)"),
    (re.compile(r"\((\w+), opset \d+\): control flow \(subgraph attributes\)"),
     r"control flow: \1 (subgraph attributes) not supported yet (helper 'control flow')"),
    (re.compile(r"only tensor inputs are supported"), "control flow: sequence/optional graph inputs not supported yet (helper 'control flow')"),
]


def _clean(why: str) -> str:
    """A clean heading for a known kind of error, else the error text marked ``error:``
    (a marked heading is regenerated on every run; an unmarked one is hand-written)."""
    for pattern, heading in _CLEAN:
        m = pattern.search(why)
        if m:
            return m.expand(heading)
    return f"error: {why}"


def _old_headings(path: Path) -> dict[frozenset[str], str]:
    """The existing file's hand-written groups: case set -> heading."""
    if not path.is_file():
        return {}
    groups: dict[str, list[str]] = defaultdict(list)
    heading = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
        elif line:
            groups[heading].append(line)
    return {frozenset(names): h for h, names in groups.items() if not h.startswith("error: ")}


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
        groups[_clean(why)].append(name.removesuffix("_cpu"))
    out = ROOT / "tests" / "conformance" / "known_failures.txt"
    old = _old_headings(out)
    merged: dict[str, list[str]] = defaultdict(list)
    for why, names in groups.items():
        merged[old.get(frozenset(names), why)].extend(names)
    groups = merged
    lines = []
    for why, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"# {why}")
        lines.extend(names)
        lines.append("")
    out.write_text("\n".join(lines))
    failing = sum(len(v) for v in groups.values())
    print(f"{total - failing} of {total} pass; wrote {failing} known failures to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
