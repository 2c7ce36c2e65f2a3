"""``graphopt bisect``: the pass, and inside it the rewrite, that changed a model's answer.

The reference is the unoptimized model run on the cpu target (float32, one op per node).
The pipeline then runs pass by pass; after each graph-level pass the IR runs on the cpu
target and its outputs are compared with the reference's at float32 tolerance, so the first
pass whose IR leaves tolerance is found exactly (a linear scan: a pipeline is a few dozen
passes, and a later pass may repair or hide what an earlier one broke, which bisection over
passes would miss). A pass past the target's lowering cut runs on no cpu kernel: when every
graph-level pass keeps the answer, the target's own build is judged at its compute dtype's
tolerance and, if it fails, the target's passes are named together.

Inside the first bad pass, the rewrites of every pattern-rewrite walk (xDSL's
``PatternRewriteWalker``, which our pattern passes and most user passes use) are counted,
and the pass is replayed with only the first ``b`` allowed, bisecting ``b`` for the first
rewrite after which the answer leaves tolerance (as LLVM's opt-bisect limits transforms by
count). A pass that rewrites without a walker (fusion, a whole-graph analysis) is named
without a rewrite.

The reproducer folder holds the IR before and after that pass (``graphopt opt before.mlir
-p PASS`` gives after.mlir), the weights, and for an ONNX model the smallest subgraph
around the rewritten nodes that still fails validation with the pipeline up to that pass.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import provenance
from graphopt.errors import GraphoptError


@dataclass
class _Log:
    """The rewrites of the walks in one pass run: (pattern, source nodes) in order, and
    how many are allowed (None: all)."""

    limit: int | None = None
    applied: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass(eq=False)
class _Counted(RewritePattern):
    inner: RewritePattern
    log: _Log

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        log = self.log
        if log.limit is not None and len(log.applied) >= log.limit:
            return
        touched = list(provenance(op))
        inserted: list[Operation] = []
        rewriter.operation_insertion_handler.append(inserted.append)
        try:
            self.inner.match_and_rewrite(op, rewriter)
        finally:
            rewriter.operation_insertion_handler.remove(inserted.append)
        if rewriter.has_done_action:
            for new in inserted:
                touched += [s for s in provenance(new) if s not in touched]
            name = getattr(self.inner, "last_pattern", None) or type(self.inner).__name__
            log.applied.append((name, touched))


@contextlib.contextmanager
def counting(log: _Log) -> Iterator[None]:
    """While open, every PatternRewriteWalker's rewrites are logged, and stop at ``log.limit``."""
    real = PatternRewriteWalker.rewrite_region

    def rewrite_region(walker: PatternRewriteWalker, region: Any) -> bool:
        pattern = walker.pattern
        if isinstance(pattern, GreedyRewritePatternApplier):
            patterns = pattern.rewrite_patterns
            pattern.rewrite_patterns = [_Counted(p, log) for p in patterns]
            try:
                return real(walker, region)
            finally:
                pattern.rewrite_patterns = patterns
        walker.pattern = _Counted(pattern, log)
        try:
            return real(walker, region)
        finally:
            walker.pattern = pattern

    PatternRewriteWalker.rewrite_region = rewrite_region  # type: ignore[method-assign]
    try:
        yield
    finally:
        PatternRewriteWalker.rewrite_region = real  # type: ignore[method-assign]


def spec_of(p: ModulePass) -> str:
    """A pass as a pipeline names it, with its options (``fuse{max-ops=32}``)."""
    return str(p.pipeline_pass_spec())


@dataclass
class _Run:
    """What bisect works on: the imported model, its inputs, its reference outputs."""

    imported: Any
    ctx: Any
    target: Any
    feeds: dict[str, Any]
    reference: list[Any]
    depth: int

    def outputs_on_cpu(self, module: ModuleOp) -> list[Any]:
        from graphopt.registry import get_target

        names = [name for name, _ in self.imported.inputs]
        plan = get_target("cpu").build(module, self.ctx.weights, names)
        return plan.run([self.feeds[n] for n in names])

    def judge(self, outputs: Sequence[Any], compute: Any = None) -> dict[str, Any]:
        """Outputs against the reference's: {passed, worst output name, its errors}."""
        from graphopt.validate import compare_value

        entries = [compare_value(name, ours, ref, self.depth, compute)
                   for name, ours, ref in zip(self.imported.outputs, outputs, self.reference)]
        bad = [e for e in entries if not e["passed"]]
        worst = max(bad, key=lambda e: e["max_abs_err"]) if bad else None
        return {"passed": not bad, "output": worst and worst["name"], "max_abs_err": worst and worst["max_abs_err"]}

    def judge_module(self, module: ModuleOp) -> dict[str, Any]:
        try:
            return self.judge(self.outputs_on_cpu(module))
        except GraphoptError as e:  # the rewritten IR does not run: as wrong as an answer gets
            return {"passed": False, "output": None, "max_abs_err": None, "error": str(e)}


def bisect_model(
    model: Any,
    target: str = "cpu",
    *,
    target_options: Mapping[str, Any] | None = None,
    opt_level: int = 2,
    pipeline: str | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
) -> dict[str, Any]:
    """Find the first pass (and rewrite) after which ``model``'s answer leaves tolerance.

    Returns ``{"pass", "pattern", "nodes", "rewrite", "rewrites", "reproducer", "passes"}``;
    ``pass`` is None when the whole pipeline keeps the answer. ``output``: the reproducer
    folder to write (nothing is written when no pass is found). ``plugins``: the pass
    plugin files given, named in the reproducer's command."""
    from graphopt.compiler import _check_arguments, import_any, input_specs, lowering_cut, parse_pipeline, verify
    from graphopt.ir import make_context
    from graphopt.registry import get_target
    from graphopt.validate import module_input_types, reduction_depth, seeded_inputs

    bound = _check_arguments(model, target, opt_level, pipeline, shapes, inputs, None, target_options)
    if output is not None:
        from graphopt import outputs as out_files

        out_files.check_output_folder(output, f"-o {output}", [model] if isinstance(model, str | Path) else [])
    tgt = get_target(target, **{k: v for k, v in (target_options or {}).items() if v is not None})
    imported, _, proto, _ = import_any(model, bound)
    ctx = make_context(imported.weights)
    ctx.target = tgt
    passes = parse_pipeline(pipeline if pipeline is not None else tgt.pipeline(opt_level))
    cut = lowering_cut(passes, tgt)
    module = imported.module
    names = [name for name, _ in imported.inputs]
    feeds = dict(inputs) if inputs is not None else \
        seeded_inputs(names, input_specs(imported), module_input_types(module, len(names)), seed)
    run = _Run(imported, ctx, tgt, feeds, [], reduction_depth(module))
    run.reference = run.outputs_on_cpu(module.clone())

    checked: list[dict[str, Any]] = []
    bad_at = None
    before = module
    for k, p in enumerate(passes[:cut]):
        before = module.clone()
        log = _Log()
        with counting(log):
            p.apply(ctx, module)
        verify(module, f"pass {p.name}")
        verdict = run.judge_module(module)
        checked.append({"pass": spec_of(p), "rewrites": len(log.applied), **verdict})
        if not verdict["passed"]:
            bad_at = k
            break
    result: dict[str, Any] = {"pass": None, "pattern": None, "nodes": [], "rewrite": None, "rewrites": None,
                              "reproducer": None, "passes": checked}
    if bad_at is None:
        lowering = passes[cut:]
        if not lowering:
            return result
        for p in lowering:
            p.apply(ctx, module)
        exe = tgt.build(module, ctx.weights, names)
        verdict = run.judge(exe.run([feeds[n] for n in names]), getattr(exe, "compute_dtype", None))
        checked.append({"pass": ",".join(spec_of(p) for p in lowering), "rewrites": None, **verdict})
        if verdict["passed"]:
            return result
        result["pass"] = ",".join(spec_of(p) for p in lowering)
        result["target_passes"] = True
        return result

    bad_pass = passes[bad_at]
    result["pass"] = spec_of(bad_pass)
    n = checked[-1]["rewrites"]
    result["rewrites"] = n
    if n:
        first_bad, culprit = _first_bad_rewrite(run, ctx, bad_pass, before, n)
        if culprit is not None:
            result.update(rewrite=first_bad, pattern=culprit[0], nodes=culprit[1])
    if output is not None:
        result["reproducer"] = str(_write_reproducer(Path(output), run, proto, passes, bad_at, before, module, result,
                                                     plugins))
    return result


def _first_bad_rewrite(run: _Run, ctx: Any, p: ModulePass, before: ModuleOp, n: int,
                       ) -> tuple[int, tuple[str, list[str]] | None]:
    """The smallest b in 1..n such that the pass with only its first b rewrites leaves
    tolerance, and that b-th rewrite (pattern, nodes); (0, None) when even none does."""

    def bad(b: int) -> tuple[bool, _Log]:
        module = before.clone()
        log = _Log(limit=b)
        with counting(log):
            p.apply(ctx, module)
        return not run.judge_module(module)["passed"], log

    if bad(0)[0]:
        return 0, None
    lo, hi = 0, n  # bad(lo) is False, bad(hi) is True (the full pass)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bad(mid)[0]:
            hi = mid
        else:
            lo = mid
    _, log = bad(hi)
    return hi, log.applied[hi - 1] if len(log.applied) >= hi else None


def _write_reproducer(dest: Path, run: _Run, proto: Any, passes: Sequence[ModulePass], k: int,
                      before: ModuleOp, after: ModuleOp, result: dict[str, Any], plugins: Sequence[str]) -> Path:
    """before.mlir, after.mlir, weights, subgraph.onnx (ONNX models), bisect.json, README."""
    from graphopt import outputs
    from graphopt.ir import print_module

    label = f"-o {dest}"

    def fill(tmp: Path) -> None:
        (tmp / "before.mlir").write_text(print_module(before))
        (tmp / "after.mlir").write_text(print_module(after))
        run.ctx.weights.save(tmp)
        load = "".join(f" --load-pass-plugin {p}" for p in plugins)
        prefix = ",".join(spec_of(p) for p in passes[: k + 1])
        lines = [f"graphopt bisect: the answer leaves tolerance after pass {result['pass']}"
                 + (f", at its rewrite {result['rewrite']} of {result['rewrites']} (pattern {result['pattern']}, nodes "
                    f"{', '.join(result['nodes'])})" if result["pattern"] else ""),
                 "",
                 "The pass alone, on the IR before it:",
                 f"    graphopt opt before.mlir -p '{spec_of(passes[k])}'{load} -o after.mlir"]
        if proto is not None and result["nodes"]:
            sub, nodes = smallest_failing_subgraph(proto, result["nodes"], prefix, plugins)
            if sub is not None:
                (tmp / "subgraph.onnx").write_bytes(sub.SerializeToString())
                result["subgraph_nodes"] = nodes
                lines += ["", f"subgraph.onnx: the {len(nodes)} node(s) around it, which alone still fail validation:",
                          f"    graphopt compile subgraph.onnx -p '{prefix}'{load}"]
        (tmp / "bisect.json").write_text(json.dumps({k: v for k, v in result.items() if k != "reproducer"}, indent=1,
                                                    default=_plain) + "\n")
        (tmp / "README.txt").write_text("\n".join(lines) + "\n")

    return outputs.write_folder(dest, label, fill)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def node_name(node: Any) -> str:
    """An ONNX node's source name as the frontend gives it (provenance)."""
    return node.name or node.output[0]


def subgraph(model: Any, keep: set[str]) -> Any:
    """The nodes of ``model``'s main graph named in ``keep``, as a model of their own: what
    they read from outside becomes an input (initializers stay initializers), what they
    produce that the rest of the graph (or its outputs) reads becomes an output."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    g = inferred.graph
    types = {vi.name: vi for vi in [*g.input, *g.value_info, *g.output]}
    inits = {t.name: t for t in g.initializer}
    nodes = [n for n in g.node if node_name(n) in keep]
    made = {o for n in nodes for o in n.output if o}
    read = [i for n in nodes for i in n.input if i]
    outside = {i for n in g.node if node_name(n) not in keep for i in n.input} | {o.name for o in g.output}
    ins = list(dict.fromkeys(i for i in read if i not in made and i not in inits))
    outs = [o for n in nodes for o in n.output if o and o in outside] or [o for o in nodes[-1].output if o]
    if any(i not in types for i in ins) or any(o not in types for o in outs):
        return None  # a value of unknown type: onnx's inference could not say
    graph = onnx.helper.make_graph(nodes, f"{g.name}_subgraph", [types[i] for i in ins], [types[o] for o in outs],
                                   [inits[i] for i in dict.fromkeys(read) if i in inits])
    sub = onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    sub.functions.extend(model.functions)
    return sub


def _neighbours(model: Any, keep: set[str]) -> set[str]:
    """``keep`` grown by one hop: the producers of what it reads and the readers of what it makes."""
    g = model.graph
    producer = {o: node_name(n) for n in g.node for o in n.output if o}
    grown = set(keep)
    for n in g.node:
        name = node_name(n)
        if name in keep:
            grown |= {producer[i] for i in n.input if i in producer}
        elif any(producer.get(i) in keep for i in n.input):
            grown.add(name)
    return grown


def smallest_failing_subgraph(model: Any, nodes: Sequence[str], pipeline: str, plugins: Sequence[str] = (),
                              ) -> tuple[Any, list[str]]:
    """The subgraph of the rewritten ``nodes``, grown a hop at a time (the pattern may need
    its neighbours to match), until compiling it with ``pipeline`` fails validation against
    onnxruntime; (None, []) when even the whole graph does not."""
    import graphopt
    from graphopt.errors import ValidationError

    everything = {node_name(n) for n in model.graph.node}
    keep = {n for n in nodes if n in everything}
    while keep:
        sub = subgraph(model, keep)
        if sub is not None:
            try:
                graphopt.compile(sub, "cpu", pipeline=pipeline, validate=True)
            except ValidationError:
                return sub, [node_name(n) for n in sub.graph.node]
            except GraphoptError:
                pass  # not a model of its own yet (an input onnx cannot type): grow it
        if keep == everything:
            break
        keep = _neighbours(model, keep)
    return None, []
