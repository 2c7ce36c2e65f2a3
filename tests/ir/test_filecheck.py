"""Runs the `// RUN:` lines of every .mlir file under tests/ir/ (lit style: %s is the file).

Each RUN line is a shell pipeline (`graphopt opt %s -p cse | filecheck %s`); the current
interpreter's bin folder goes first on PATH, so `graphopt` and `filecheck` are the venv's.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FILES = sorted(HERE.rglob("*.mlir"))


def run_lines(path: Path) -> list[str]:
    lines, pending = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped.startswith("// RUN:"):
            continue
        part = stripped[len("// RUN:"):].strip()
        if part.endswith("\\"):
            pending += part[:-1] + " "
            continue
        lines.append(pending + part)
        pending = ""
    return lines


def test_there_are_ir_tests():
    assert FILES and all(run_lines(p) for p in FILES), "every .mlir under tests/ir needs a RUN line"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(HERE)) for p in FILES])
def test_ir_file(path: Path):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("GRAPHOPT_DEBUG", None)
    for line in run_lines(path):
        cmd = line.replace("%s", shlex.quote(str(path)))
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env, capture_output=True, text=True,
                              timeout=120, cwd=path.parent)
        assert proc.returncode == 0, f"RUN: {line}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
