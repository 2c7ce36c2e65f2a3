"""What a target is: a description, a pipeline per optimisation level, and a builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from graphopt.weights import WeightStore

# The generic pipelines every target starts from (passes/ holds them).
GENERIC_PIPELINES = {
    0: "",
    1: "dce",
    2: "canonicalize,cse,dce",
    3: "canonicalize,cse,dce",
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
