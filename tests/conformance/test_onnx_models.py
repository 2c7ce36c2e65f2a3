"""ONNX's own model test cases beside the node suite: ``simple`` (small graphs), and
``pytorch-converted`` and ``pytorch-operator`` (modules and operators exported by torch's
first exporters, opsets 6 to 9: Add with ``broadcast`` and ``axis``, Gemm with
``broadcast``, a per-channel PRelu slope, float64 data). Each through the cpu target at -O3
and through ascend-sim at must_keep_origin_dtype. (``real`` needs downloads: not here.)

Known failures: the node suite's files (their names differ from these cases') and
``FAILURES`` here.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, ClassVar

import onnx.backend.test

from graphopt.onnx_backend import GraphoptBackend
from tests.conformance.suite import KNOWN_FAILURES_ASCEND, known_failures

warnings.filterwarnings("ignore", category=RuntimeWarning)

# Gradient is a training op (ai.onnx.preview.training): graphopt compiles inference graphs
# and refuses it with a one-line error naming the node (onnxruntime's default build has no
# kernel for it either).
FAILURES = {"test_gradient_of_add": "training op", "test_gradient_of_add_and_mul": "training op"}
SUITES = ("OnnxBackendSimpleModelTest", "OnnxBackendPyTorchConvertedModelTest", "OnnxBackendPyTorchOperatorModelTest")


class _Cpu(GraphoptBackend):
    OPT_LEVEL = 3


class _Ascend(GraphoptBackend):
    TARGET = "ascend-sim"
    TARGET_OPTIONS: ClassVar[dict[str, Any]] = {"precision": "must_keep_origin_dtype"}


def _suites(backend: type[GraphoptBackend], failures: dict[str, str], tag: str) -> dict[str, type]:
    suite = onnx.backend.test.BackendTest(backend, f"{__name__}.{tag}")
    suite.include(r"_cpu$")
    for name in failures:
        suite.xfail(rf"^{re.escape(name)}_cpu$")
    return {f"{name}{tag}": suite.test_cases[name] for name in SUITES}


globals().update(_suites(_Cpu, {**known_failures(), **FAILURES}, "Cpu"))
globals().update(_suites(_Ascend, {**known_failures(), **known_failures(KNOWN_FAILURES_ASCEND), **FAILURES}, "Ascend"))
