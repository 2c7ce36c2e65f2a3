"""The torch.compile backend: ``torch.compile(model, backend="graphopt")``.

Registered through the ``torch_dynamo_backends`` entry point (pyproject.toml), so user
code needs no ``import graphopt``. Options: ``options={"target": "cpu", "target_options": None,
"pipeline": None, "opt_level": 2, "validate": False, "report_dir": None}``
(``target_options``: the target's own, ``{"precision": "must_keep_origin_dtype"}`` on
ascend-sim, as ``graphopt.compile`` takes them); with ``report_dir``, each
compiled graph writes its report there (on ascend-sim: the simulated time, per-unit
utilisation and MFU).

Each dynamo graph goes through ``aot_autograd`` with the core ATen decompositions (less
attention's, ``capture.aot_decompositions``); its forward, backward and inference graphs are lowered by ``frontends/fx/`` and compiled by
graphopt. A compiled graph runs the graphopt executable: torch tensors -> numpy (no copy)
-> graphopt -> torch.

Shapes: specialise per shape, with a cache. A graph whose shapes are static is compiled
when dynamo hands it over. A graph with symbolic shapes (``dynamic=True``, or dynamo's
automatic dynamic shapes after a second shape) is compiled on the first call with each
new set of input shapes (the SymInt placeholders arrive as ints then) and the executable
is cached by those shapes.

Unsupported aten ops: an error (``UnsupportedOp``) naming the op and the user's source
line, raised when dynamo hands the graph over (torch wraps it in its
``BackendCompilerFailed``). graphopt does not silently fall back to eager: the user asked
for graphopt.

``validate=True`` runs the aten graph eagerly on the first call of each compiled shape
and compares with torch's float32 tolerances (``torch.testing.assert_close``'s defaults);
a mismatch raises ``ValidationError``.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphopt.errors import GraphoptError

_OPTIONS = {"target", "target_options", "pipeline", "opt_level", "validate", "report_dir"}


@dataclass(frozen=True)
class BackendOptions:
    target: str = "cpu"
    pipeline: str | None = None
    opt_level: int = 2
    validate: bool = False
    report_dir: str | None = None  # each compiled graph's report.json goes there
    # The target's own options, as graphopt.compile's target_options: {"precision": ...} on ascend-sim
    target_options: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> BackendOptions:
        options = dict(options or {})
        unknown = set(options) - _OPTIONS
        if unknown:
            raise GraphoptError(f"torch.compile option {sorted(unknown)[0]!r}: graphopt takes {', '.join(sorted(_OPTIONS))}")
        given = options.get("target_options")
        if given is not None and (not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given)):
            raise GraphoptError(f"torch.compile option 'target_options' {given!r}: give a dict of option name -> value, "
                                "e.g. {'precision': 'must_keep_origin_dtype'}")
        return cls(**options)


def graphopt_backend(gm: Any, example_inputs: Sequence[Any], *, options: Mapping[str, Any] | None = None,
                     mode: str | None = None) -> Callable[..., Any]:
    """The backend dynamo calls with each captured graph (the entry point's target)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from graphopt.frontends.fx.capture import aot_decompositions

    opts = BackendOptions.from_dict(options)

    def compiler(phase: str) -> Callable[..., Any]:
        def compile_graph(graph: Any, inputs: Sequence[Any]) -> Callable[..., Any]:
            return make_boxed_func(GraphRunner(graph, opts, phase))

        return compile_graph

    return aot_autograd(
        fw_compiler=compiler("fw"),
        bw_compiler=compiler("bw"),
        inference_compiler=compiler("infer"),
        decompositions=aot_decompositions(),
    )(gm, example_inputs)


@dataclass
class _Entry:
    executable: Any  # the target's executable; the IR is not kept (see _young_garbage)
    positions: list[int]  # which fx inputs are the IR's inputs
    kinds: list[Any]  # per fx output: "tensor", or the Python value to return
    out_dtypes: list[Any]  # torch dtype per tensor output
    depth: int  # the graph's longest reduction, for validation's tolerances
    validated: bool = False


@contextmanager
def _young_garbage() -> Iterator[None]:
    """Compile with the cyclic GC paused, then collect only the youngest generation.

    A compile inside torch.compile runs in a process holding torch's few hundred thousand
    live objects. The IR is cyclic (ops point at their blocks and back) and lives for the
    whole compile, so CPython's generational GC would promote it into the oldest
    generation, and those promotions trigger full collections over torch's heap (0.2-0.3 s
    each, measured on BERT-base); the IR, dead once the executable is built, would then
    wait in the oldest generation for the next full collection. Paused, everything the
    compile allocates stays young; one youngest-generation collection afterwards frees
    the IR at a cost proportional to what the compile allocated, and what survives (the
    executable, imported modules) ages normally."""
    if not gc.isenabled():  # the user turned the GC off: leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)


class GraphRunner:
    """One aot graph: its executables by input shapes, and the call that runs them."""

    def __init__(self, gm: Any, opts: BackendOptions, phase: str):
        self.gm = gm
        self.opts = opts
        self.phase = phase
        self.cache: dict[tuple[Any, ...], _Entry] = {}
        self.parameters = _static_inputs(phase)
        with _young_garbage():  # graphopt's own imports too, the first time
            from graphopt.frontends.fx import is_static, unsupported_error, unsupported_nodes

            bad = unsupported_nodes(gm)
            if bad:  # fail when dynamo hands the graph over, not at its first call
                raise unsupported_error(bad[0])
            self.static = is_static(gm)
            if self.static:
                self.cache[()] = self._build(None)

    def _key(self, args: Sequence[Any]) -> tuple[Any, ...]:
        if self.static:
            return ()
        return tuple((tuple(a.shape), a.dtype) if hasattr(a, "shape") else a for a in args)

    def _build(self, args: Sequence[Any] | None) -> _Entry:
        with _young_garbage():
            return self._compile(args)

    def _compile(self, args: Sequence[Any] | None) -> _Entry:
        from graphopt.compiler import PipelineOptions, build_compiled
        from graphopt.frontends.fx import lower_graph
        from graphopt.registry import get_target
        from graphopt.validate import reduction_depth

        imported = lower_graph(self.gm, args, parameters=self.parameters)
        # A JIT compile verifies the IR once, after the pipeline, not between every pass:
        # first-call latency is what a torch.compile user waits for.
        target = get_target(self.opts.target, **dict(self.opts.target_options or {}))
        compiled = build_compiled(imported, target, opt_level=self.opts.opt_level,
                                  pipeline=self.opts.pipeline, label=f"torch.compile graph ({self.phase})",
                                  options=PipelineOptions(verify_each=False))
        if self.opts.report_dir is not None:
            shapes = [list(spec[0]) if spec else None for _, spec in imported.inputs]
            _write_report(compiled.report, self.opts.report_dir, self.phase, shapes)
        outs = next(n for n in self.gm.graph.nodes if n.op == "output").args[0]
        dtypes = [_meta_dtype(o) for o, kind in zip(outs, imported.output_kinds) if kind == "tensor"]
        return _Entry(compiled.executable, imported.tensor_placeholders, imported.output_kinds, dtypes,
                      reduction_depth(compiled.module))

    def __call__(self, *args: Any) -> list[Any]:
        import torch

        key = self._key(args)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._build(args)
        ins = [_to_numpy(args[p]) for p in entry.positions]
        outs = entry.executable.run(ins)
        results = _to_torch(outs, entry, ins, torch)
        if self.opts.validate and not entry.validated:
            _validate_against_eager(self.gm, args, results, entry)
            entry.validated = True
        return results


def _static_inputs(phase: str) -> frozenset[int]:
    """The positions of a forward or inference graph's inputs that are the model's parameters
    and buffers (aot_autograd's static inputs, as cudagraphs uses them): graphopt marks them
    so a target may keep them converted between calls. A backward graph's are not known."""
    if phase == "bw":
        return frozenset()
    from torch._guards import TracingContext

    context = TracingContext.try_get()
    meta = getattr(context, "fw_metadata", None)
    return frozenset(getattr(meta, "static_input_indices", None) or ())


_reports_written = itertools.count()


def _write_report(report: dict[str, Any], folder: str, phase: str, shapes: list[Any]) -> None:
    """``<folder>/graph<k>_<phase>.json``: one compiled graph's report (passes, fusion, and on
    ascend-sim the simulated timing and MFU), numbered in compile order; written whole or
    not at all."""
    import json
    import os
    import tempfile
    from pathlib import Path

    from graphopt.compiler import json_default

    dest = Path(folder)
    dest.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**report, "phase": phase, "input_shapes": shapes}, indent=1, default=json_default) + "\n"
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".report.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, dest / f"graph{next(_reports_written)}_{phase}.json")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _meta_dtype(node: Any) -> Any:
    val = node.meta.get("val") if hasattr(node, "meta") else None
    return getattr(val, "dtype", None)


def _to_numpy(t: Any) -> np.ndarray:
    from graphopt.frontends.fx import to_numpy

    return to_numpy(t)


def _to_torch(outs: Sequence[Any], entry: _Entry, ins: Sequence[np.ndarray], torch: Any) -> list[Any]:
    """The executable's numpy outputs as torch tensors of the graph's dtypes. torch may
    write an output in place (a buffer made by zeros_like, then index_add_), so an output is
    copied when it is read-only (a weight or constant of the executable, shared by every
    run), or shares memory with an input or an earlier output (one value returned twice)."""
    results: list[Any] = []
    given: list[np.ndarray] = list(ins)
    it = iter(zip(outs, entry.out_dtypes))
    for kind in entry.kinds:
        if kind != "tensor":
            results.append(kind)
            continue
        arr, dtype = next(it)
        arr = np.asarray(arr)
        if not arr.flags.writeable or not arr.flags.c_contiguous or any(np.may_share_memory(arr, g) for g in given):
            arr = np.array(arr, order="C")
        given.append(arr)
        if arr.dtype.name == "bfloat16":
            t = torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(arr)
        results.append(t.to(dtype) if dtype is not None and t.dtype != dtype else t)
    return results


def _validate_against_eager(gm: Any, args: Sequence[Any], results: Sequence[Any], entry: _Entry) -> None:
    import torch

    from graphopt.errors import ValidationError
    from graphopt.frontends.fx.capture import eager_rounded_to_half
    from graphopt.validate import compare_with_torch, judge_by_floor, max_finite_diff

    with torch.no_grad():
        ref = gm(*args)
    ref = ref if isinstance(ref, list | tuple) else [ref]
    compute = getattr(entry.executable, "compute_dtype", None)
    rounded: list[Any] | None = None
    bad = []
    for k, (ours, theirs) in enumerate(zip(results, ref)):
        if not isinstance(theirs, torch.Tensor) or not isinstance(ours, torch.Tensor):
            continue
        a, b = _to_numpy(ours), _to_numpy(theirs)
        entry_ = compare_with_torch(f"output {k}", a, b, entry.depth, compute)
        if not entry_["passed"] and compute is not None and np.dtype(compute) == np.float16 and theirs.dtype == torch.float32:
            rounded = eager_rounded_to_half(gm, args) if rounded is None else rounded
            half = _to_numpy(rounded[k]) if isinstance(rounded[k], torch.Tensor) else None
            judge_by_floor(entry_, max_finite_diff(half, b))
        if not entry_["passed"]:
            floor = f", float16 rounding alone costs {entry_['rounding_floor']:.3g}" if "rounding_floor" in entry_ else ""
            bad.append(f"{entry_['name']} (max abs err {entry_['max_abs_err']:.3g}, max rel err {entry_['max_rel_err']:.3g}{floor})")
    if bad:
        raise ValidationError(f"validation against torch eager failed for {len(bad)} output(s): {', '.join(bad[:3])}")
