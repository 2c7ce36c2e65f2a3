"""compile(model, target=...) -> Compiled: the driver that every front door calls."""

from __future__ import annotations

import json
import os
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

from graphopt import limits
from graphopt.errors import GraphoptError
from graphopt.ir import CompileContext, make_context, print_module
from graphopt.target import Executable, Observer, Target
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
    # Verify the module after every pass that changed it (mlir-opt's -verify-each), or once
    # after the pipeline: a third of a CNN's compile time went to verifying it seven times.
    # Off by default (as IREE's and XLA's release pipelines run); GRAPHOPT_VERIFY_EACH=1, the
    # CLI's --verify-each, `graphopt opt` and the test suite turn it on.
    verify_each: bool = field(default_factory=lambda: os.environ.get("GRAPHOPT_VERIFY_EACH", "") not in ("", "0"))
    progress: Progress | None = None
    ir_sink: Callable[[str], None] | None = None  # where printed IR goes (the CLI: stdout)
    # Keep the fused graph's IR text from before the target lowers it (Compiled.graph_ir;
    # save() writes it as graph.mlir, which `graphopt explore` draws the graph from).
    keep_graph_ir: bool = False


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
    # the fused graph before the target's lowering passes (PipelineOptions.keep_graph_ir)
    graph_ir: str | None = None

    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
            observe: Observer | None = None) -> dict[str, np.ndarray]:
        """Run on a dict name -> array (or arrays in input order); outputs in graph order.
        ``observe`` sees every value a top-level op produces (Executable.run).

        An output that is a weight or constant of the model (or a view of one) is read-only:
        every run shares it."""
        needs = ", ".join(self.input_names) or "no inputs"
        if isinstance(inputs, Mapping):
            unknown = [k for k in inputs if k not in self.input_names]
            if unknown:
                raise GraphoptError(f"input {str(unknown[0])!r}: the model has no such input (inputs: {needs})")
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise GraphoptError(f"input {missing[0]}: not given; the model needs {needs}")
            ordered = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, list | tuple):
            ordered = list(inputs)
            if len(ordered) != len(self.input_names):
                raise GraphoptError(f"{len(ordered)} inputs given; the model needs {len(self.input_names)}: {needs}")
        else:
            raise GraphoptError(f"run() takes a dict of input name -> array, or a list of arrays in input order "
                                f"({needs}); not a {type(inputs).__name__}")
        types = _input_types(self)
        ordered = [_checked_input(n, v, spec, t) for n, v, spec, t in zip(self.input_names, ordered, self.input_specs, types)]
        outputs = self.executable.run(ordered, observe) if observe is not None else self.executable.run(ordered)
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

        def fill(tmp: Path) -> None:
            (tmp / "model.mlir").write_text(self.ir)
            if self.graph_ir is not None:
                (tmp / "graph.mlir").write_text(self.graph_ir)
            self.weights.save(tmp)
            self.target.save_artifacts(self.executable, self.module, tmp)  # ascend-sim: kernels/, tiling.json
            (tmp / "report.json").write_text(json.dumps(self.report, indent=1, default=json_default) + "\n")
            if dot:
                from graphopt.dot import write_dot

                write_dot(self.module, tmp / "model.dot")

        return outputs.write_folder(dest, label, fill, keep)


def _input_types(compiled: Compiled) -> list[Any]:
    """Each input's IR type (the main function's argument types; None where unknown)."""
    fn = next((op for op in compiled.module.ops if isinstance(op, func.FuncOp)), None)
    types = list(fn.function_type.inputs) if fn is not None else []
    return types if len(types) == len(compiled.input_names) else [None] * len(compiled.input_names)


def _describe_spec(shape: Sequence[int], dtype: np.dtype) -> str:
    return f"{'string' if dtype == np.dtype(object) else dtype}[{', '.join('?' if d < 0 else str(d) for d in shape)}]"


def _checked_input(name: str, value: Any, spec: tuple[tuple[int, ...], np.dtype], t: Any) -> Any:
    """``value`` checked against the input's spec (a tensor: its dtype and shape; strings
    made an object array), or a GraphoptError naming the input and what it expects."""
    from graphopt.dialects.types import OptionalType, SequenceType

    if isinstance(t, SequenceType):
        if not isinstance(value, list | tuple):
            raise GraphoptError(f"input {name}: a {type(value).__name__}; the model wants a sequence (a list of arrays)")
        return list(value)
    if isinstance(t, OptionalType):
        return value  # None (empty) or its value: the target checks the value
    shape, dtype = spec
    want = _describe_spec(shape, dtype)
    if value is None or isinstance(value, str | bytes | Mapping):
        raise GraphoptError(f"input {name}: a {type(value).__name__}, not an array; the model wants {want}")
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (ValueError, TypeError):  # a ragged nested list ...
        array = None
    if array is None or (array.dtype == object and dtype != object):  # noqa: E721 (numpy dtype equality)
        raise GraphoptError(f"input {name}: a {type(value).__name__}, not an array of numbers; the model wants {want}")
    if dtype == np.dtype(object):  # ONNX strings
        if array.dtype.kind not in "OU":
            raise GraphoptError(f"input {name}: dtype {array.dtype}; the model wants {want} (an array of str)")
        array = array.astype(object)
    elif array.dtype != dtype:
        raise GraphoptError(f"input {name}: dtype {array.dtype}, the model wants {want}; cast it first")
    if array.ndim != len(shape) or any(d not in (-1, v) for d, v in zip(shape, array.shape)):
        raise GraphoptError(f"input {name}: shape {list(array.shape)}, the model was compiled for {want}; recompile with --shape")
    return array


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


def _verify_import(module: ModuleOp, imported: Any) -> None:
    """Verify the imported IR. An ONNX model whose IR does not verify is inconsistent (a
    declared type its node cannot give, a required attribute missing, an axis out of
    range ...): a GraphoptError naming the node. A torch program's is graphopt's bug."""
    try:
        verify(module, "import")
    except Exception as e:
        from graphopt.frontends.onnx import Imported

        if not isinstance(imported, Imported):
            raise
        found = _invalid_node(module)
        if found is None:
            raise
        raise found from e


def _invalid_node(module: ModuleOp) -> GraphoptError | None:
    """The first op of ``module`` that does not verify, as the error naming its ONNX node."""
    from graphopt.dialects.graph import GraphOp, provenance

    for op in module.walk():
        if isinstance(op, ModuleOp | func.FuncOp):
            continue
        try:
            op.verify(verify_nested_ops=False)
        except Exception as e:
            lines = str(e).strip().splitlines()
            why = lines[0] if lines else type(e).__name__
            src = ", ".join(provenance(op)) or "?"
            kind = op.ONNX_TYPE if isinstance(op, GraphOp) else op.name
            return GraphoptError(f"node {src!r} ({kind}): the model is inconsistent here ({why}); check it against the ONNX spec")
    return None


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


@limits.with_max_memory
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
    max_memory: int | str | None = None,
) -> Compiled:
    """Compile a model for ``target``: an ONNX model (path or ModelProto), or a torch model:
    a ``torch.export`` ExportedProgram, a ``.pt2`` file, or an ``nn.Module`` with
    ``example_inputs`` (exported for you).

    ``shapes`` binds dynamic ONNX input dimensions (``{"x": (1, 3, 224, 224)}``). With
    ``validate=True`` the model also runs in onnxruntime (torch models: in torch eager) on
    seeded random inputs (or ``inputs``) and a mismatch raises ``ValidationError``.
    ``target_options`` are the target's own settings (ascend-sim: ``chip``, ``precision``,
    ``tiling``). ``max_memory`` (bytes, or text such as ``"8G"``) refuses any single tensor
    larger, in the model and in validation (default: the process-wide limit, which is half
    the physical memory unless ``graphopt.limits.set_max_memory`` changed it).
    """
    from graphopt.registry import get_target

    bound = _check_arguments(model, target, opt_level, pipeline, shapes, inputs, options, target_options)
    opts = options or PipelineOptions()
    tgt = get_target(target, **(target_options or {})) if isinstance(target, str) else target
    t0 = time.perf_counter()
    if opts.progress:
        opts.progress("importing")
    imported, reference, proto, label = import_any(model, bound, example_inputs)
    compiled = build_compiled(imported, tgt, opt_level=opt_level, pipeline=pipeline, options=opts,
                              import_seconds=time.perf_counter() - t0, label=label)
    compiled.source, compiled.reference = proto, reference
    if isinstance(model, str | os.PathLike):
        compiled.source_path = Path(model)
        compiled.report["model_path"] = str(Path(model).resolve())  # where `graphopt explore` finds it again
    if validate:
        from graphopt.validate import check
        from graphopt.validate import validate as judge

        check(judge(compiled, inputs))
    return compiled


def import_any(model: Any, shapes: dict[str, tuple[int, ...]], example_inputs: Sequence[Any] | None = None,
               ) -> tuple[Any, Any, onnx.ModelProto | None, str]:
    """A model through its frontend: (imported IR, torch eager as the judge for a torch
    model else None, the ONNX model for an ONNX one else None, the model's label)."""
    if _is_torch(model):
        from graphopt.frontends.fx import import_torch

        imported, reference, label = import_torch(model, example_inputs)
        return imported, reference, None, label
    from graphopt.frontends.onnx import import_model

    proto = _as_model(model)
    return import_model(proto, shapes), None, proto, _model_label(model, proto)


def lowering_cut(passes: Sequence[ModulePass], target: Target) -> int:
    """How many passes of ``passes`` come before the first that lowers into the target's IR."""
    return next((k for k, p in enumerate(passes) if p.name in target.lowering_passes), len(passes))


def input_specs(imported: Any) -> list[tuple[tuple[int, ...], np.dtype]]:
    """Each input's (shape, numpy dtype); a sequence or optional input, which has no single
    shape, is ((), object), for what validate makes."""
    return [(spec[0], spec[1].numpy) if spec else ((), np.dtype(object)) for _, spec in imported.inputs]


def _check_arguments(
    model: Any, target: Any, opt_level: Any, pipeline: Any, shapes: Any, inputs: Any, options: Any, target_options: Any
) -> dict[str, tuple[int, ...]]:
    """compile()'s arguments checked before any work, each wrong one a GraphoptError naming
    it; returns ``shapes`` as {input name: dims}."""
    if isinstance(model, str | os.PathLike):
        try:
            is_dir = Path(model).is_dir()
        except (OSError, RuntimeError) as e:  # a name too long for the system, a link loop
            raise GraphoptError(f"{os.fspath(model)}: cannot be opened ({getattr(e, 'strerror', None) or e}); check the path") from None
        if is_dir:
            raise GraphoptError(f"{os.fspath(model)}: is a folder; give an .onnx or .pt2 file")
    if not isinstance(target, str | Target):
        raise GraphoptError(f"target {target!r}: give a target name such as 'cpu' or 'ascend-sim' (see `graphopt targets`)")
    if isinstance(opt_level, bool) or not isinstance(opt_level, int | np.integer) or opt_level not in (0, 1, 2, 3):
        raise GraphoptError(f"opt_level {opt_level!r}: the optimisation level is 0, 1, 2 or 3")
    if pipeline is not None and not isinstance(pipeline, str):
        raise GraphoptError(f"pipeline {pipeline!r}: give a pass pipeline in MLIR syntax, e.g. 'canonicalize,cse'")
    if options is not None and not isinstance(options, PipelineOptions):
        raise GraphoptError(f"options: a graphopt.compiler.PipelineOptions, not a {type(options).__name__}")
    if target_options is not None and (not isinstance(target_options, Mapping) or not all(isinstance(k, str) for k in target_options)):
        raise GraphoptError(f"target_options {target_options!r}: give a dict of option name -> value, e.g. {{'precision': 'force_fp16'}}")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise GraphoptError(f"inputs: a dict of input name -> array, not a {type(inputs).__name__}")
    if shapes is None:
        return {}
    if not isinstance(shapes, Mapping):
        raise GraphoptError(f"shapes: a dict of input name -> dims such as {{'x': (1, 3, 224, 224)}}, not a {type(shapes).__name__}")
    bound: dict[str, tuple[int, ...]] = {}
    for name, dims in shapes.items():
        if not isinstance(name, str):
            raise GraphoptError(f"shapes: key {name!r} is not an input name (a str)")
        if isinstance(dims, str | bytes) or not isinstance(dims, Sequence | np.ndarray) or np.ndim(dims) != 1:
            raise GraphoptError(f"shapes[{name!r}]: {dims!r} is not a list of dimensions; write e.g. (1, 3, 224, 224)")
        for k, d in enumerate(dims):
            if isinstance(d, bool) or not isinstance(d, int | np.integer) or not 0 <= d < 1 << 63:
                raise GraphoptError(f"shapes[{name!r}]: dimension {k} is {d!r}; dimensions are integers from 0 to 2**63 - 1")
        bound[name] = tuple(int(d) for d in dims)
    return bound


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
    limits.check_module(module)  # every value's static type, before a pass or the target allocates one
    _verify_import(module, imported)  # an inconsistent model is the user's error, named before any pass
    ctx = make_context(imported.weights)
    ctx.target = tgt
    spec = pipeline if pipeline is not None else tgt.pipeline(opt_level)
    passes = parse_pipeline(spec)
    # Fusion and pattern statistics describe the graph before a target lowers it away.
    cut = lowering_cut(passes, tgt)
    timings = run_pipeline(module, ctx, passes[:cut], opts, total=len(passes))
    graph_stats = fusion_report(module, ctx.remarks)
    graph_ir = print_module(module) if opts.keep_graph_ir and passes[cut:] else None
    timings += run_pipeline(module, ctx, passes[cut:], opts, first=cut, total=len(passes))
    graph_stats["remarks"] = [r for r in ctx.remarks if r.get("pass") != "fuse"]
    if not opts.verify_each:
        verify(module, "the pipeline")
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
        input_specs=input_specs(imported),
        output_names=imported.outputs,
        graph_ir=graph_ir,
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
