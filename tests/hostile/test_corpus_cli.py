"""The hostile-input corpus, CLI cases without torch: ONNX files, .mlir and weights folders,
.npy inputs, command lines and output paths (hostile_cases_*.py; the rules in
hostile_harness.py)."""

from __future__ import annotations

import pytest
from hostile_cases_args import CASES as ARG_CASES
from hostile_cases_args import OUTPUT_CASES
from hostile_cases_mlir import CASES as MLIR_CASES
from hostile_cases_npy import CASES as NPY_CASES
from hostile_cases_onnx import CASES as ONNX_CASES
from hostile_harness import run_cli_case

CASES = [*ONNX_CASES, *MLIR_CASES, *NPY_CASES, *ARG_CASES, *OUTPUT_CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_case(case, light_runner, case_folder):
    assert not case.torch
    if case.as_nobody and light_runner.fresh:
        pytest.skip("a fresh interpreter may not be executable by another user (the fork server's children need not exec)")
    res, problems = run_cli_case(case, light_runner, case_folder)
    assert not problems, f"{case.id}: {res.summary()}\n  " + "\n  ".join(problems) + f"\nstderr:\n{res.stderr[-2000:]}"
