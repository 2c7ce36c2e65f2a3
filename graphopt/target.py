"""What a target is: a description, a pipeline per optimisation level, and a builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from graphopt.weights import WeightStore

# The generic pipelines every target starts from (passes/ holds them).
_CLEANUP = "remove-identity,fold-shapes,fold-constants,simplify-algebra,simplify-transpose-reshape,cse,dce"
_RECOGNIZE = (
    "fold-conv-bn,recognize-gelu,recognize-layernorm,recognize-rmsnorm,recognize-attention,"
    "recognize-swiglu,fold-matmul-add,merge-parallel-matmuls"
)
GENERIC_PIPELINES = {
    0: "",
    1: _CLEANUP,
    2: f"{_CLEANUP},{_RECOGNIZE},{_CLEANUP},fuse,dce",
    3: f"{_CLEANUP},{_RECOGNIZE},{_CLEANUP},fuse{{max-ops=32}},dce",
}


class Executable(Protocol):
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class Target:
    """Base of every target. Subclasses set the class attributes and implement ``build``."""

    name: ClassVar[str]
    description: ClassVar[str]

    def pipeline(self, opt_level: int) -> str:
        """The default pass pipeline at ``opt_level`` (0 to 3)."""
        return GENERIC_PIPELINES[opt_level]

    def build(self, module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> Executable:
        raise NotImplementedError(f"target {self.name} cannot build executables")

    def report(self, executable: Executable) -> dict[str, Any]:
        """Target-specific keys for report.json."""
        return {}

    def supports(self, op_type: str, domain: str, dtypes: Sequence[str]) -> str | None:
        """Whether this target can compile ``op_type`` of ``domain`` used with element
        types ``dtypes`` (ONNX names: "float", "int64" ...): None if it can, else why not.
        ``graphopt check`` asks every target this. The base answer covers what no target
        compiles (graphopt's refused ops); targets add their own limits on top."""
        from graphopt.refused import refusal

        return refusal(op_type, domain)
