"""compile(model, target=...) -> Compiled: the driver that every front door calls."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import ArgSpecParseError, VerifyException

from graphopt.errors import GraphoptError
from graphopt.ir import CompileContext, make_context, print_module
from graphopt.target import Executable, Target
from graphopt.weights import WeightStore

if TYPE_CHECKING:
    import onnx

Progress = Callable[[str], None]


@dataclass
class PipelineOptions:
    """How passes run: what is printed, dumped and verified between them."""

    print_ir_after_all: bool = False
    print_ir_after: frozenset[str] = frozenset()
    dump_dir: Path | None = None
    verify_each: bool = True
    progress: Progress | None = None
    ir_sink: Callable[[str], None] | None = None  # where printed IR goes (the CLI: stdout)


@dataclass
class Compiled:
    """A compiled model: run it, read its report, save it."""

    module: ModuleOp
    weights: WeightStore
    target: Target
    executable: Executable
    input_names: list[str]
    input_specs: list[tuple[tuple[int, ...], np.dtype]]
    output_names: list[str]
    report: dict[str, Any] = field(default_factory=dict)
    source: onnx.ModelProto | None = None
    # torch models: their eager run on numpy inputs, the judge of validation
    reference: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None
    # the model file compiled, which save() never writes over
    source_path: Path | None = None

    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Run on a dict name -> array (or arrays in input order); outputs in graph order.

        An output that is a weight or constant of the model (or a view of one) is read-only:
        every run shares it."""
        if isinstance(inputs, Mapping):
            unknown = set(inputs) - set(self.input_names)
            if unknown:
                raise GraphoptError(f"input {sorted(unknown)[0]}: the model has no such input (inputs: {', '.join(self.input_names)})")
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise GraphoptError(f"input {missing[0]}: not given; the model needs {', '.join(self.input_names)}")
            ordered = [inputs[n] for n in self.input_names]
        else:
            ordered = list(inputs)
            if len(ordered) != len(self.input_names):
                raise GraphoptError(f"{len(ordered)} inputs given; the model needs {len(self.input_names)}: {', '.join(self.input_names)}")
        outputs = self.executable.run(ordered)
        return dict(zip(self.output_names, outputs, strict=True))

    @property
    def ir(self) -> str:
        return print_module(self.module)

    def save(self, folder: str | os.PathLike[str], *, dot: bool = False, label: str | None = None) -> Path:
        """Write model.mlir, the weights, report.json and the target's artifacts (``dot``:
        also model.dot, and model.svg where Graphviz is installed); all or nothing.

        The folder is written beside ``folder`` with a ``.graphopt-output`` marker listing
        its files, and put in place only if ``folder`` does not exist, is empty or is an
        earlier output (replaced; only its listed files are deleted); anything else raises
        GraphoptError and is left as it was. ``label`` names the folder in messages."""
        from graphopt import outputs

        dest = Path(folder)
        label = label or f"output folder {dest}"
        keep = [self.source_path] if self.source_path is not None else []
        outputs.check_output_folder(dest, label, keep)
        tmp = outputs.new_folder_beside(dest, label)
        try:
            (tmp / "model.mlir").write_text(self.ir)
            self.weights.save(tmp)
            self.target.save_artifacts(self.executable, self.module, tmp)  # ascend-sim: kernels/, tiling.json
            (tmp / "report.json").write_text(json.dumps(self.report, indent=1, default=json_default) + "\n")
            if dot:
                from graphopt.dot import write_dot

                write_dot(self.module, tmp / "model.dot")
            outputs.install_folder(tmp, dest, label, keep)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise GraphoptError(f"{label}: cannot write it ({e.strerror or e}); choose another folder") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


_NOT_COUNTED = {"func.return", "graph.constant", "graph.weight", "graph.none", "graph.yield"}

# report key -> the op that a recognized pattern becomes
PATTERN_OPS = {
    "layer_norm": "graph.layer_normalization",
    "gelu": "graph.gelu",
    "attention": "graph.attention",
    "rms_norm": "graph.rms_normalization",
    "swiglu": "graph.swiglu",
}


def op_histogram(module: ModuleOp) -> dict[str, int]:
    """Ops of the main function's body, not counting inside fused regions: what runs as
    separate kernels. Constants, weights and terminators are not ops that run."""
    counts: Counter[str] = Counter()
    for fn in module.ops:
        if isinstance(fn, func.FuncOp):
            counts.update(op.name for op in fn.body.block.ops if op.name not in _NOT_COUNTED)
    return dict(sorted(counts.items()))


def fusion_report(module: ModuleOp, remarks: list[dict[str, Any]]) -> dict[str, Any]:
    from graphopt.dialects.graph import FusedOp

    fused = [op for op in module.walk() if isinstance(op, FusedOp)]
    every = Counter(op.name for op in module.walk())
    return {
        "fusion": {
            "groups": len(fused),
            "by_kind": dict(sorted(Counter(op.kind.data for op in fused).items())),
            "missed": [{"ops": r["ops"], "reason": r["reason"]} for r in remarks if r.get("pass") == "fuse"],
        },
        "patterns": {key: every.get(name, 0) for key, name in PATTERN_OPS.items()},
        "remarks": [r for r in remarks if r.get("pass") != "fuse"],
    }


def parse_pipeline(spec: str) -> list[ModulePass]:
    from graphopt.registry import all_passes

    if not spec.strip():
        return []
    try:
        return list(PassPipeline.parse_spec(all_passes(), spec).passes)
    except (Exception, ArgSpecParseError) as e:  # ArgSpecParseError is a BaseException
        raise GraphoptError(f"pipeline {spec!r}: {str(e).strip().splitlines()[0]}; see `graphopt passes`") from None


def verify(module: ModuleOp, after: str) -> None:
    try:
        module.verify()
    except VerifyException as e:
        raise RuntimeError(f"the IR is invalid after {after}: {e}") from e


def fingerprint(module: ModuleOp) -> tuple[tuple[int, ...], ...]:
    """Which ops the module holds and what each reads: equal fingerprints mean a pass made
    no change worth verifying again. (Passes rewrite by replacing ops; one that edited an
    op's properties in place would not show, so none does.)"""
    return tuple((id(op), hash(op.name), *map(id, op.operands)) for op in module.walk())


def run_pipeline(
    module: ModuleOp, ctx: CompileContext, passes: Sequence[ModulePass], opts: PipelineOptions,
    first: int = 0, total: int | None = None,
) -> list[dict[str, Any]]:
    """Apply ``passes`` in order; returns [{name, seconds}] for the report.

    ``first``: how many passes of the pipeline ran before these (of ``total``), so a
    pipeline run in parts numbers its progress and dump files on; with ``first`` 0 a
    dump folder is started afresh (an earlier dump's files deleted, nothing else)."""
    from graphopt import outputs

    timings: list[dict[str, Any]] = []
    seen = fingerprint(module) if opts.verify_each else ()
    total = first + len(passes) if total is None else total
    dump = Path(opts.dump_dir) if opts.dump_dir is not None else None
    dump_label = f"dump folder {dump}"
    if dump is not None and first == 0:
        outputs.start_dump(dump, dump_label)
    for k, p in enumerate(passes, start=first):
        if opts.progress:
            opts.progress(f"[{k + 1}/{total}] {p.name}")
        t0 = time.perf_counter()
        p.apply(ctx, module)
        timings.append({"name": p.name, "seconds": round(time.perf_counter() - t0, 6)})
        if opts.verify_each:
            now = fingerprint(module)
            if now != seen:  # a pass that changed nothing leaves verified IR
                verify(module, f"pass {p.name}")
            seen = now
        text = None
        if opts.print_ir_after_all or p.name in opts.print_ir_after:
            text = print_module(module)
            sink = opts.ir_sink or print
            sink(f"// -----// IR after {p.name} //----- //\n{text}")
        if dump is not None:
            outputs.add_to_dump(dump, f"{k + 1:02d}_{p.name}.mlir", text or print_module(module), dump_label)
    return timings


def _as_model(model: Any) -> onnx.ModelProto:
    import onnx

    from graphopt.frontends.onnx import load_model

    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, str | os.PathLike):
        return load_model(model)
    raise GraphoptError(f"cannot compile a {type(model).__name__}; give a path to an .onnx or .pt2 file, an onnx.ModelProto, "
                       "a torch.export ExportedProgram, or an nn.Module with example_inputs")


def _is_torch(model: Any) -> bool:
    """A torch.nn.Module, an ExportedProgram or a .pt2 path: the fx frontend's (checked
    without importing torch: a torch object can only exist once torch is imported)."""
    if isinstance(model, str | os.PathLike):
        return str(model).endswith(".pt2")
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(model, torch.nn.Module) or type(model).__name__ == "ExportedProgram"


def compile(
    model: Any,
    target: str | Target = "cpu",
    *,
    opt_level: int = 2,
    pipeline: str | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    validate: bool = False,
    inputs: Mapping[str, np.ndarray] | None = None,
    options: PipelineOptions | None = None,
    target_options: Mapping[str, Any] | None = None,
    example_inputs: Sequence[Any] | None = None,
) -> Compiled:
    """Compile a model for ``target``: an ONNX model (path or ModelProto), or a torch model:
    a ``torch.export`` ExportedProgram, a ``.pt2`` file, or an ``nn.Module`` with
    ``example_inputs`` (exported for you).

    ``shapes`` binds dynamic ONNX input dimensions (``{"x": (1, 3, 224, 224)}``). With
    ``validate=True`` the model also runs in onnxruntime (torch models: in torch eager) on
    seeded random inputs (or ``inputs``) and a mismatch raises ``ValidationError``.
    ``target_options`` are the target's own settings (ascend-sim: ``chip``, ``precision``,
    ``tiling``).
    """
    from graphopt.registry import get_target

    if opt_level not in (0, 1, 2, 3):
        raise GraphoptError(f"-O{opt_level}: the optimisation level is 0, 1, 2 or 3")
    opts = options or PipelineOptions()
    tgt = get_target(target, **(target_options or {})) if isinstance(target, str) else target
    t0 = time.perf_counter()
    if opts.progress:
        opts.progress("importing")
    proto: onnx.ModelProto | None = None
    reference = None
    if _is_torch(model):
        from graphopt.frontends.fx import import_torch

        imported, reference, label = import_torch(model, example_inputs)
    else:
        from graphopt.frontends.onnx import import_model

        proto = _as_model(model)
        imported = import_model(proto, {k: tuple(int(d) for d in v) for k, v in (shapes or {}).items()})
        label = _model_label(model, proto)
    compiled = build_compiled(imported, tgt, opt_level=opt_level, pipeline=pipeline, options=opts,
                              import_seconds=time.perf_counter() - t0, label=label)
    compiled.source, compiled.reference = proto, reference
    if isinstance(model, str | os.PathLike):
        compiled.source_path = Path(model)
    if validate:
        from graphopt.validate import check, validate_against_onnxruntime, validate_against_torch

        if reference is not None:
            result = validate_against_torch(compiled, reference, inputs)
        else:
            assert proto is not None
            result = validate_against_onnxruntime(compiled, proto, inputs)
        compiled.report["validation"] = result
        check(result)
    return compiled


def build_compiled(
    imported: Any,
    tgt: Target,
    *,
    opt_level: int = 2,
    pipeline: str | None = None,
    options: PipelineOptions | None = None,
    import_seconds: float = 0.0,
    label: str = "",
) -> Compiled:
    """Imported IR (from any frontend) -> passes -> the target's executable, with its report."""
    opts = options or PipelineOptions()
    module = imported.module
    if opts.verify_each:  # else once, after the pipeline
        verify(module, "import")
    ctx = make_context(imported.weights)
    ctx.target = tgt
    spec = pipeline if pipeline is not None else tgt.pipeline(opt_level)
    passes = parse_pipeline(spec)
    # Fusion and pattern statistics describe the graph before a target lowers it away.
    cut = next((k for k, p in enumerate(passes) if p.name in tgt.lowering_passes), len(passes))
    timings = run_pipeline(module, ctx, passes[:cut], opts, total=len(passes))
    graph_stats = fusion_report(module, ctx.remarks)
    timings += run_pipeline(module, ctx, passes[cut:], opts, first=cut, total=len(passes))
    graph_stats["remarks"] = [r for r in ctx.remarks if r.get("pass") != "fuse"]
    if not opts.verify_each:
        verify(module, "import and the pipeline")
    _drop_unused_weights(module, ctx.weights)
    input_names = [name for name, _ in imported.inputs]
    if opts.progress:
        opts.progress(f"building for {tgt.name}")
    t1 = time.perf_counter()
    executable = tgt.build(module, ctx.weights, input_names)
    compiled = Compiled(
        module=module,
        weights=ctx.weights,
        target=tgt,
        executable=executable,
        input_names=input_names,
        # A sequence or optional input has no single shape: object, for what validate makes.
        input_specs=[(spec[0], spec[1].numpy) if spec else ((), np.dtype(object)) for _, spec in imported.inputs],
        output_names=imported.outputs,
    )
    compiled.report = {
        "target": tgt.name,
        "model": label,
        "opset": imported.opset,
        "pipeline": spec,
        "passes": [{"name": "import", "seconds": round(import_seconds, 6)}, *timings,
                   {"name": f"build-{tgt.name}", "seconds": round(time.perf_counter() - t1, 6)}],
        "ops": {"imported": dict(sorted(imported.histogram.items())), "final": op_histogram(module)},
        "weights": {"count": len(ctx.weights), "bytes": ctx.weights.nbytes()},
        **graph_stats,
        **tgt.report(executable),
    }
    return compiled


def _model_label(model: Any, proto: onnx.ModelProto) -> str:
    if isinstance(model, str | os.PathLike):
        return str(model)
    return proto.graph.name or "<ModelProto>"


def _drop_unused_weights(module: ModuleOp, weights: WeightStore) -> None:
    from graphopt.dialects.graph import WeightOp

    weights.keep_only({op.ref.data for op in module.walk() if isinstance(op, WeightOp)})
