"""ONNX's official node test cases, run through graphopt.onnx_backend.GraphoptBackend.

Import to the graph IR, a cpu pipeline, the cpu execution plan: only graphopt's own kernels
run. The suite runs twice on the cpu target: at -O3 (every generic pass; the counts printed
at the end are this run's) and at -O0 (no pass), so a pass that breaks an op's meaning
shows as a case that passes at -O0 and fails at -O3. Known failures, with reasons, are in
known_failures.txt; both runs must match it exactly.

It runs a third time on ascend-sim (the 910B) at must_keep_origin_dtype, float32 numerics,
so the suite's tolerances apply: layout, lowering, the functional simulator and the AI CPU
placement are checked op by op. Its known failures are the cpu target's plus the few in
known_failures_ascend.txt, each with its reason.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, ClassVar

import onnx.backend.test

from graphopt.onnx_backend import GraphoptBackend
from tests.conformance.suite import KNOWN_FAILURES_ASCEND, known_failures

warnings.filterwarnings("ignore", category=RuntimeWarning)



class GraphoptBackendO3(GraphoptBackend):
    OPT_LEVEL = 3


class GraphoptBackendO0(GraphoptBackend):
    OPT_LEVEL = 0


class GraphoptBackendAscend(GraphoptBackend):
    TARGET = "ascend-sim"
    TARGET_OPTIONS: ClassVar[dict[str, Any]] = {"precision": "must_keep_origin_dtype"}


def _suite(backend: type[GraphoptBackend], failures: dict[str, str]) -> type:
    suite = onnx.backend.test.BackendTest(backend, __name__)
    suite.include(r"_cpu$")
    for name in failures:
        suite.xfail(rf"^{re.escape(name)}_cpu$")
    return suite.test_cases["OnnxBackendNodeModelTest"]


OnnxBackendNodeModelTest = _suite(GraphoptBackendO3, known_failures())
OnnxBackendNodeModelTestO0 = _suite(GraphoptBackendO0, known_failures())
OnnxBackendNodeModelTestAscend = _suite(GraphoptBackendAscend, {**known_failures(), **known_failures(KNOWN_FAILURES_ASCEND)})
