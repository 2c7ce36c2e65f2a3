"""The hostile-input corpus, Python API cases (in-process: each call is cheap and bounded)."""

from __future__ import annotations

import pytest
from hostile_cases_api import CASES
from hostile_harness import run_api_case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_api_case(case, case_folder):
    outcome, problems = run_api_case(case, case_folder)
    assert not problems, f"{case.id}: {outcome}\n  " + "\n  ".join(problems)
