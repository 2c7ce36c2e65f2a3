"""The cpu target: the reference executor and the test oracle for every pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graphopt.target import Executable, Target

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp

    from graphopt.targets.cpu.plan import ExecutionPlan
    from graphopt.weights import WeightStore


class CpuTarget(Target):
    name = "cpu"
    description = "numpy interpreter over a flat execution plan (the reference target)"

    def build(self, module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> ExecutionPlan:
        from graphopt.dialects.graph import is_collective
        from graphopt.targets.cpu.plan import build_plan

        groups = {op.onnx_attrs().get("group") or "" for op in module.walk() if is_collective(op, wait=False)}
        if groups:  # collectives run on torch.distributed's live groups: they must be there now
            from graphopt.semantics.collectives import process_group

            for group in sorted(groups):
                process_group(group)
        return build_plan(module, weights, input_names)

    def supports(self, op_type: str, domain: str, dtypes: Sequence[str]) -> str | None:
        """Supported when not refused and the op has a kernel (its semantic rule or a
        kernel of the target's own); every element type graphopt knows runs in numpy."""
        from graphopt.targets.cpu.kernels import cpu_kernel_gap

        why = super().supports(op_type, domain, dtypes)
        if why is not None:
            return why
        return cpu_kernel_gap(op_type, domain)

    def report(self, executable: Executable) -> dict[str, Any]:
        from graphopt.targets.cpu.plan import ExecutionPlan

        assert isinstance(executable, ExecutionPlan)
        return {"plan": {"steps": len(executable.steps), "slots": executable.n_slots, "peak_bytes": executable.peak_bytes}}
