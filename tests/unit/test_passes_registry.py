"""Every pass of graphopt's own in the registry: an IR test, a one-line doc, a file named after it.

"graphopt's own" are the rows of ``_BUILTIN_PASSES`` whose class lives in graphopt.passes
(passes/ in the repository); canonicalize, cse and dce are xDSL's and tested in tests/ir/.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from xdsl.passes import ModulePass

from graphopt.registry import _BUILTIN_PASSES, all_passes

ROOT = Path(__file__).resolve().parents[2]
IR_TESTS = ROOT / "tests" / "ir" / "passes"
PASSES_DIR = ROOT / "passes"

OWN = sorted(name for name, path in _BUILTIN_PASSES.items() if path.startswith("graphopt.passes."))


def _pipeline_passes(run_line: str) -> list[str]:
    """The pass names of a RUN line's ``-p PIPELINE`` (options in braces dropped)."""
    words = shlex.split(run_line.split("// RUN:", 1)[1])
    names: list[str] = []
    for flag, value in itertools.pairwise(words):
        if flag == "-p":
            names += [re.sub(r"\{.*?\}", "", part).strip() for part in value.split(",")]
    return names


def _module_and_class(name: str) -> tuple[str, str]:
    module, cls = _BUILTIN_PASSES[name].split(":")
    return module, cls


def test_graphopt_has_its_own_passes():
    # The cleanup, folding, recognition and fusion passes of the passes issue.
    expected = {
        "fold-constants", "fold-shapes", "remove-identity", "simplify-algebra", "simplify-transpose-reshape",
        "fold-conv-bn", "fold-matmul-add", "recognize-gelu", "recognize-layernorm", "recognize-rmsnorm",
        "recognize-attention", "recognize-swiglu", "fuse",
    }
    assert expected <= set(OWN), f"missing from the registry: {sorted(expected - set(OWN))}"


@pytest.mark.parametrize("name", OWN)
def test_pass_class_is_a_module_pass_named_as_registered(name):
    cls = all_passes()[name]()
    assert inspect.isclass(cls) and issubclass(cls, ModulePass), f"{name}: {cls!r} is not a ModulePass"
    assert cls.name == name, f"registered as {name!r} but the class says name = {cls.name!r}"


@pytest.mark.parametrize("name", OWN)
def test_pass_has_an_ir_test(name):
    path = IR_TESTS / f"{name}.mlir"
    assert path.is_file(), f"{name}: no IR test {path.relative_to(ROOT)}"
    text = path.read_text()
    run_lines = [line for line in text.splitlines() if line.strip().startswith("// RUN:")]
    assert any(name in _pipeline_passes(line) for line in run_lines), f"{path.relative_to(ROOT)}: no RUN line runs -p {name}"
    assert "CHECK" in text


@pytest.mark.parametrize("name", OWN)
def test_pass_file_is_snake_case_of_its_name(name):
    module, _ = _module_and_class(name)
    package, _, stem = module.rpartition(".")
    assert package == "graphopt.passes"
    assert stem == name.replace("-", "_"), f"{name} lives in {stem}.py, expected {name.replace('-', '_')}.py"
    assert (PASSES_DIR / f"{stem}.py").is_file(), f"{name}: passes/{stem}.py does not exist"
    mod = importlib.import_module(module)
    assert Path(mod.__file__).resolve() == (PASSES_DIR / f"{stem}.py").resolve()


@pytest.mark.parametrize("name", OWN)
def test_pass_has_a_one_line_docstring(name):
    cls = all_passes()[name]()
    doc = inspect.cleandoc(cls.__doc__ or "")
    assert doc, f"{name}: the pass class has no docstring"
    assert "\n" not in doc, f"{name}: the docstring is {len(doc.splitlines())} lines; `graphopt passes` shows only the first:\n{doc}"
    module = importlib.import_module(_module_and_class(name)[0])
    assert (module.__doc__ or "").strip().startswith(f"{name}:"), f"{name}: the module docstring should start with '{name}:'"


def test_graphopt_passes_lists_each_with_its_doc():
    env = dict(os.environ)
    env.pop("GRAPHOPT_DEBUG", None)
    exe = Path(sys.executable).parent / "graphopt"
    proc = subprocess.run([str(exe), "passes"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    for name in OWN:
        assert name in lines, f"`graphopt passes` does not list {name}"
        doc = inspect.cleandoc(all_passes()[name]().__doc__ or "")
        shown = lines[name][len(name):].strip()
        assert shown and shown == doc, f"{name}: `graphopt passes` shows {shown!r}, the doc is {doc!r}"
