"""Counts of the node suite at the end of the run: all, plain-dtype subset, float32 subset."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.suite import case_name, subsets

# run (the test class) -> case name -> passed; the cpu -O3 run and the ascend-sim run are counted
_RUNS = {"OnnxBackendNodeModelTest": "cpu", "OnnxBackendNodeModelTestAscend": "ascend-sim, must_keep_origin_dtype"}
_outcomes: dict[str, dict[str, bool]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    name = case_name(item.nodeid)
    run = next((r for r in _RUNS if f"::{r}::" in item.nodeid), None)
    if name is None or run is None:
        return
    if report.when == "call":
        _outcomes.setdefault(run, {})[name] = report.passed and not hasattr(report, "wasxfail")
    elif report.when == "setup" and report.outcome != "passed":
        _outcomes.setdefault(run, {})[name] = False


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    kinds = subsets()
    plain = {n for n, (p, _) in kinds.items() if p}
    f32 = {n for n, (_, f) in kinds.items() if f}
    for run, outcomes in _outcomes.items():
        passed = {n for n, ok in outcomes.items() if ok}
        terminalreporter.write_line(
            f"ONNX node conformance (graphopt {_RUNS[run]}): {len(passed)} of {len(kinds)} passed; "
            f"plain-dtype subset {len(passed & plain)} of {len(plain)}; float32 subset {len(passed & f32)} of {len(f32)}"
        )
