"""The cpu target: the reference executor and the test oracle for every pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from graphopt.target import Executable, Target
from graphopt.targets.cpu.plan import ExecutionPlan, build_plan
from graphopt.weights import WeightStore


class CpuTarget(Target):
    name = "cpu"
    description = "numpy interpreter over a flat execution plan (the reference target)"

    def build(self, module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> ExecutionPlan:
        return build_plan(module, weights, input_names)

    def report(self, executable: Executable) -> dict[str, Any]:
        assert isinstance(executable, ExecutionPlan)
        return {"plan": {"steps": len(executable.steps), "slots": executable.n_slots, "peak_bytes": executable.peak_bytes}}
