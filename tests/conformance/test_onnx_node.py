"""ONNX's official node test cases, run through graphopt.onnx_backend.GraphoptBackend.

Import to the graph IR, the default cpu pipeline, the cpu execution plan: only graphopt's
own kernels run. Known failures are listed with reasons in known_failures.txt.
"""

from __future__ import annotations

import re
import warnings

import onnx.backend.test

from graphopt.onnx_backend import GraphoptBackend
from tests.conformance.suite import known_failures

warnings.filterwarnings("ignore", category=RuntimeWarning)

_backend_test = onnx.backend.test.BackendTest(GraphoptBackend, __name__)
_backend_test.include(r"_cpu$")
for _name in known_failures():
    _backend_test.xfail(rf"^{re.escape(_name)}_cpu$")

OnnxBackendNodeModelTest = _backend_test.test_cases["OnnxBackendNodeModelTest"]
