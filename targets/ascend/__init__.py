"""The ascend-sim target: a cycle-approximate model of a Huawei Ascend (DaVinci) NPU.

A target is data plus a little code (STYLE R10): the chip description (``chips/*.toml``,
loaded by ``chip.py``), a pipeline of target passes (layout, lowering), and a backend that
runs the lowered kernels in the functional simulator (``sim.py``) and emits AscendC-style
source (``emit.py``). Passes read the chip's capabilities; nothing branches on its name.

    graphopt compile model.onnx --target ascend-sim                 # the default chip, 910B
    graphopt compile model.onnx --target ascend-sim:ascend310p
    graphopt compile model.onnx --target ascend-sim --chip my_chip.toml --precision allow_mix_precision
    graphopt compile model.onnx --target ascend-sim --keep-dtype keep.txt    # these nodes in float32
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from graphopt.errors import GraphoptError
from graphopt.target import Executable, Target, TargetOption
from graphopt.targets.ascend.chip import DEFAULT_CHIP, Chip, available_chips, load_chip

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp

    from graphopt.weights import WeightStore

# CANN ATC's --precision_mode values that graphopt models (see sim.py for their numerics).
PRECISION_MODES = ("force_fp16", "allow_mix_precision", "must_keep_origin_dtype")
TILING_STRATEGIES = ("model", "naive")


class AscendSimTarget(Target):
    name = "ascend-sim"
    description = "Huawei Ascend (DaVinci) NPU model: layout, tiling, functional + timing simulation, AscendC emitter"
    lowering_passes = frozenset({"ascend-layout", "ascend-lower"})
    passes: ClassVar[dict[str, str]] = {
        "ascend-channels-first": "graphopt.targets.ascend.channels_first:ChannelsFirst",
        "ascend-conv-transpose": "graphopt.targets.ascend.conv_transpose:ConvTransposeToConvPass",
        "ascend-attention-fallback": "graphopt.targets.ascend.attention_fallback:AttentionFallbackPass",
        "ascend-dft-matmul": "graphopt.targets.ascend.dft_matmul:DftMatmulPass",
        "ascend-depthwise-blocks": "graphopt.targets.ascend.depthwise:DepthwiseBlocksPass",
        "ascend-column-reduce": "graphopt.targets.ascend.column_reduce:ColumnReducePass",
        "ascend-long-rows": "graphopt.targets.ascend.long_rows:LongRowsPass",
        "ascend-transposed-matmul": "graphopt.targets.ascend.transposed_matmul:TransposedMatmulPass",
        "ascend-layout": "graphopt.targets.ascend.layout:AssignLayout",
        "ascend-lower": "graphopt.targets.ascend.lower:LowerToAscend",
    }
    dialects: ClassVar[dict[str, str]] = {"ascend": "graphopt.targets.ascend.dialect:Ascend"}
    commands: ClassVar[dict[str, str]] = {"train-sim": "graphopt.targets.ascend.training.cli:register"}
    options = (
        TargetOption("chip", "a chip description (.toml) instead of a bundled chip"),
        TargetOption("precision", "force_fp16 (default), allow_mix_precision or must_keep_origin_dtype"),
        TargetOption("tiling", "model (default: ranked by the timing model) or naive"),
        TargetOption("keep_dtype", "node names or op types (one per line) to compute and store in float32 in a "
                     "float16 mode", metavar="FILE"),
        TargetOption("trace", "write the timing simulation as a Chrome/Perfetto trace (JSON)", metavar="FILE", writes=".json"),
        TargetOption("cluster", "the cluster a graph's collectives are timed on: a bundled name (atlas-800t-a2, the "
                     "default) or a .toml file"),
    )

    def __init__(
        self,
        variant: str | None = None,
        *,
        chip: str | Path | None = None,
        precision: str = "force_fp16",
        tiling: str = "model",
        trace: str | Path | None = None,
        keep_dtype: str | Path | Sequence[str] | None = None,
        cluster: str | Path | None = None,
    ) -> None:
        if variant and chip:
            raise GraphoptError(f"--target ascend-sim:{variant} and --chip {chip}: give one chip, not two")
        if precision not in PRECISION_MODES:
            raise GraphoptError(f"--precision {precision}: use one of {', '.join(PRECISION_MODES)}")
        if tiling not in TILING_STRATEGIES:
            raise GraphoptError(f"--tiling {tiling}: use one of {', '.join(TILING_STRATEGIES)}")
        if trace is not None and not isinstance(trace, str | Path):
            raise GraphoptError(f"--trace {trace!r}: give the path of a .json file to write the trace to")
        self.chip: Chip = load_chip(chip or variant or DEFAULT_CHIP)
        self.precision = precision
        self.tiling = tiling
        self.trace = trace  # where the timing simulation's Chrome/Perfetto trace goes (--trace)
        from graphopt.targets.ascend.keep_dtype import keep_entries

        # Nodes or op types computed and stored in their own dtype in a float16 mode (--keep-dtype).
        self.keep_dtype = keep_entries(keep_dtype)
        from graphopt.targets.ascend.cluster import DEFAULT_CLUSTER, load_cluster

        self.cluster = load_cluster(cluster or DEFAULT_CLUSTER)  # the link model of collectives

    @classmethod
    def variants(cls) -> dict[str, str]:
        """The bundled chips, for `graphopt targets`."""
        return {name: load_chip(name).description for name in available_chips()}

    def supports(self, op_type: str, domain: str, dtypes: Sequence[str]) -> str | None:
        """What the cube and vector units cannot run goes to the AI CPU, which runs the cpu
        target's kernels (as CANN does): so the chip supports what the cpu target does."""
        from graphopt.targets.cpu import CpuTarget

        return CpuTarget().supports(op_type, domain, dtypes)

    def pipeline(self, opt_level: int) -> str:
        # No horizontal matmul merging here: the lowering cannot yet write a matmul's
        # columns straight into the Split's outputs, so a merge costs a Split kernel that
        # moves the whole output through GM again (on the LLaMA-7B layer: 64.0 % MFU
        # without the merge, 62.2 % with it; benchmarks/ascend_llama_layer.py).
        passes = [p for p in super().pipeline(opt_level).split(",") if p and p != "merge-parallel-matmuls"]
        # A ConvTranspose becomes a Conv, and a channels-last island's matmuls 1x1 Convs,
        # before fusion, so their epilogues fuse like any conv's.
        fuse = next((k for k, p in enumerate(passes) if p.split("{")[0] == "fuse"), len(passes))
        passes[fuse:fuse] = ["ascend-attention-fallback", "ascend-dft-matmul", "ascend-channels-first", "ascend-conv-transpose",
                             "ascend-depthwise-blocks", "ascend-column-reduce", "ascend-long-rows", "ascend-transposed-matmul"]
        return ",".join([*passes, "ascend-layout", "ascend-lower"])

    def build(self, module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> Executable:
        from graphopt.targets.ascend.sim import build_executable

        return build_executable(module, weights, input_names, self.chip, self.precision)

    def save_artifacts(self, executable: Executable, module: ModuleOp, folder: Path) -> None:
        """kernels/<name>.cpp (AscendC-style source) and tiling.json; model.mlir is the lowered IR."""
        from graphopt.targets.ascend.emit import emit_kernels

        emit_kernels(module, self.chip, folder, self.precision)

    def report(self, executable: Executable) -> dict[str, Any]:
        from graphopt.targets.ascend.report_timing import (
            per_update_kernels,
            simulate_module,
            timing_section,
            untimed_kernels,
        )
        from graphopt.targets.ascend.sim import AscendExecutable, executable_report

        assert isinstance(executable, AscendExecutable)
        # The timing model needs no data: it runs here, at compile time, on the lowered kernels.
        from graphopt.targets.ascend.comm_timing import schedule
        from graphopt.targets.ascend.report_timing import kernels_of

        results = simulate_module(self.chip, executable.module, trace=self.trace is not None)
        steps = schedule(self.cluster, kernels_of(executable.module), results, per_update_kernels(executable.module),
                         executable.num)
        if self.trace is not None:
            from graphopt.targets.ascend.trace import write_trace

            write_trace(self.chip, results, self.trace, steps)
        return {
            "chip": {"name": self.chip.name, "file": self.chip.source_file, "precision": self.precision, "tiling": self.tiling,
                     "keep_dtype": list(self.keep_dtype)},
            **executable_report(executable),
            "timing": timing_section(self.chip, results, "fp32" if self.precision == "must_keep_origin_dtype" else "fp16",
                                     untimed_kernels(executable.module), per_update_kernels(executable.module), steps),
        }

    def summary_lines(self, report: dict[str, Any]) -> list[str]:
        kernels = report.get("kernels", [])
        kinds: dict[str, int] = {}
        for k in kernels:
            kinds[k["kind"]] = kinds.get(k["kind"], 0) + 1
        chip, layout = report["chip"], report.get("layout", {})
        lines = [
            f"  chip: {chip['name']} ({self.chip.cube_cores} cube + {self.chip.vector_cores} vector cores), "
            f"precision {chip['precision']}, tiling {chip['tiling']}",
            f"  kernels: {len(kernels)} (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")",
            f"  layout: {layout.get('transdata', 0)} TransData moving {layout.get('transdata_bytes', 0) / 1e6:.2f} MB"
            + (f", and {layout['parameter_transdata']} of parameters fed at run time, run when they change"
               if layout.get("parameter_transdata") else ""),
        ]
        aicpu = report.get("aicpu", [])
        if aicpu:
            names = ", ".join(sorted({op.removeprefix("graph.") for a in aicpu for op in a["ops"]}))
            lines.append(f"  AI CPU: {len(aicpu)} kernels ({names})")
        if "timing" in report:
            from graphopt.targets.ascend.report_timing import timing_table

            lines += timing_table(report["timing"], limit=8)
        if self.trace is not None:
            lines.append(f"  trace: {self.trace} (chrome://tracing or ui.perfetto.dev)")
        return lines
