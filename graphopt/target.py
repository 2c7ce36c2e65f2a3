"""What a target is: a description, a pipeline per optimisation level, and a builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # a target class loads without them: `graphopt --help` lists targets' options
    import numpy as np
    from xdsl.dialects.builtin import ModuleOp

    from graphopt.weights import WeightStore

# The generic pipelines every target starts from (passes/ holds them).
_CLEANUP = "remove-identity,fold-shapes,fold-constants,simplify-algebra,simplify-transpose-reshape,cse,dce"
_RECOGNIZE = (
    "decompose-einsum,fold-conv-bn,recognize-gelu,recognize-layernorm,recognize-rmsnorm,recognize-rotary,"
    "recognize-attention,recognize-swiglu,fold-matmul-add,merge-parallel-matmuls"
)
GENERIC_PIPELINES = {
    0: "",
    1: _CLEANUP,
    2: f"{_CLEANUP},{_RECOGNIZE},{_CLEANUP},fuse,dce,overlap-collectives",
    # -O3 cleans up after recognition with canonicalize: every cleanup pattern at once,
    # until none applies (the separate passes each run once).
    3: f"{_CLEANUP},{_RECOGNIZE},canonicalize,cse,dce,fuse{{max-ops=32}},dce,overlap-collectives",
}


# Called with each value of the compiled function that is a source node's result
# (graph.node_results: (node name, output index)), in execution order, as the logical array
# the model's types describe (storage formats converted back): what `graphopt compare`
# lines up against its reference. Executables hold keys, not IR, so a plan keeps no module.
Observer = Callable[[tuple[str, int], Any], None]


class Executable(Protocol):
    def run(self, inputs: Sequence[np.ndarray], observe: Observer | None = None) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class TargetOption:
    """One option a target takes: the keyword of its constructor (``chip``), from which the
    CLI makes a flag (``--chip``) and the Python APIs take ``target_options={"chip": ...}``."""

    name: str
    help: str
    metavar: str | None = None
    writes: str = ""  # the suffix of a file the compile writes there (".json"): the CLI checks it as an output

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class Target:
    """Base of every target. Subclasses set the class attributes and implement ``build``.

    A target module should import little at the top (numpy, xDSL and the rest inside its
    methods): the CLI imports every target class to list their ``options``."""

    name: ClassVar[str]
    description: ClassVar[str]
    # The options the constructor takes besides a variant (None = the default).
    options: ClassVar[tuple[TargetOption, ...]] = ()
    # The target's own passes and IR dialects, name -> "module:attr", imported when used.
    passes: ClassVar[Mapping[str, str]] = {}
    dialects: ClassVar[Mapping[str, str]] = {}
    # Subcommands the target adds to the CLI, name -> "module:function"; the function takes
    # argparse's subparsers, adds its parser and returns the handler (args -> exit code).
    # Its module is imported at every CLI start: keep its imports light.
    commands: ClassVar[Mapping[str, str]] = {}
    # Passes that turn graph ops into the target's own IR; the report's fusion and pattern
    # statistics are taken just before the first of them runs.
    lowering_passes: ClassVar[frozenset[str]] = frozenset()

    def pipeline(self, opt_level: int) -> str:
        """The default pass pipeline at ``opt_level`` (0 to 3)."""
        return GENERIC_PIPELINES[opt_level]

    def build(self, module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> Executable:
        raise NotImplementedError(f"target {self.name} cannot build executables")

    def report(self, executable: Executable) -> dict[str, Any]:
        """Target-specific keys for report.json."""
        return {}

    def summary_lines(self, report: dict[str, Any]) -> list[str]:
        """What `graphopt compile` prints about the target's result (from report.json)."""
        return []

    def save_artifacts(self, executable: Executable, module: ModuleOp, folder: Path) -> None:
        """Write target-specific files (kernel source, tiling) into the output ``folder``,
        beside model.mlir (which holds ``module``, the lowered IR). Default: nothing."""

    def supports(self, op_type: str, domain: str, dtypes: Sequence[str]) -> str | None:
        """Whether this target can compile ``op_type`` of ``domain`` used with element
        types ``dtypes`` (ONNX names: "float", "int64" ...): None if it can, else why not.
        ``graphopt check`` asks every target this. The base answer covers what no target
        compiles (graphopt's refused ops); targets add their own limits on top."""
        from graphopt.refused import refusal

        return refusal(op_type, domain)
