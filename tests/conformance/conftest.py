"""Counts of the node suite at the end of the run: all, plain-dtype subset, float32 subset."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.suite import case_name, subsets

_outcomes: dict[str, bool] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    name = case_name(item.nodeid)
    if name is None or "::OnnxBackendNodeModelTest::" not in item.nodeid:  # the -O3 run
        return
    if report.when == "call":
        _outcomes[name] = report.passed and not hasattr(report, "wasxfail")
    elif report.when == "setup" and report.outcome != "passed":
        _outcomes[name] = False


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    kinds = subsets()
    passed = {n for n, ok in _outcomes.items() if ok}
    plain = {n for n, (p, _) in kinds.items() if p}
    f32 = {n for n, (_, f) in kinds.items() if f}
    terminalreporter.write_line(
        f"ONNX node conformance (graphopt cpu): {len(passed)} of {len(kinds)} passed; "
        f"plain-dtype subset {len(passed & plain)} of {len(plain)}; float32 subset {len(passed & f32)} of {len(f32)}"
    )
