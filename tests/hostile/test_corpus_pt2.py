"""The hostile-input corpus, .pt2 cases (torch.export archives), through the CLI and the API."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from hostile_cases_pt2 import API_CASES, CASES
from hostile_harness import run_api_case, run_cli_case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pt2_case(case, torch_runner, case_folder):
    res, problems = run_cli_case(case, torch_runner, case_folder)
    assert not problems, f"{case.id}: {res.summary()}\n  " + "\n  ".join(problems) + f"\nstderr:\n{res.stderr[-2000:]}"


@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_pt2_api_case(case, case_folder):
    outcome, problems = run_api_case(case, case_folder)
    assert not problems, f"{case.id}: {outcome}\n  " + "\n  ".join(problems)
