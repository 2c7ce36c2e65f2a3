"""``graphopt precision``: the few nodes to keep in float32 so a float16 compile validates.

What ``polygraphy debug precision`` does for TensorRT, for ascend-sim's precision modes:
1. **Start** from what range says (one float32 run of the reference, every node's value):
   the nodes whose result leaves float16's range and the nodes reading such a result (a
   kernel that is not kept reads a kept result in float16, ATC's Cast, so the readers of
   an out-of-range value must be kept with it).
2. **Grow** while validation fails: ``graphopt compare`` on the current set names the first
   node out of tolerance (an overflow's origin, a cancellation's subtraction and the
   nodes producing its operands); add it and try again.
3. **Shrink** by delta debugging (Zeller's ddmin): drop halves, then quarters, ... of the
   set as long as validation still passes, so what is left is 1-minimal (dropping any one
   node fails) as far as the budget of compiles allows.
Each trial is a full compile for the target with ``keep_dtype`` set, validated against
onnxruntime on the same inputs; the simulated time of the result is read from the timing
report, beside all-float16 and all-float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphopt.errors import GraphoptError

GROW_ROUNDS = 32  # compare-and-add rounds before giving up


class _Trials:
    """Compiles with a keep set and judges them; remembers every verdict."""

    def __init__(self, model: Any, target: str, options: Mapping[str, Any], opt_level: int, shapes: Any,
                 feeds: Mapping[str, Any] | None, seed: int, tol: tuple[float, float] | None):
        self.model, self.target, self.options, self.opt_level, self.shapes = model, target, dict(options), opt_level, shapes
        self.feeds, self.seed, self.tol = feeds, seed, tol
        self.seen: dict[frozenset[str], tuple[bool, float | None]] = {}
        self.refs: list[Any] | None = None

    def compile(self, keep: Sequence[str], precision: str | None = None) -> Any:
        import graphopt

        options = {**self.options, "keep_dtype": list(keep) or None}
        if precision is not None:
            options["precision"] = precision
        return graphopt.compile(self.model, self.target, opt_level=self.opt_level, shapes=self.shapes,
                                target_options=options)

    def passes(self, keep: Sequence[str]) -> bool:
        key = frozenset(keep)
        if key not in self.seen:
            compiled = self.compile(sorted(key))
            self.seen[key] = (self.judge(compiled), _time_us(compiled))
        return self.seen[key][0]

    def judge(self, compiled: Any) -> bool:
        from graphopt.validate import compare_value, compiled_inputs, reduction_depth, run_onnxruntime, validate

        feeds = dict(self.feeds) if self.feeds is not None else compiled_inputs(compiled, self.seed)
        if self.tol is None:
            return bool(validate(compiled, feeds)["passed"])
        if self.refs is None:
            self.refs = run_onnxruntime(compiled.source, compiled.output_names, feeds)
        ours = compiled.run(feeds)
        depth = reduction_depth(compiled.module)
        compute = getattr(compiled.executable, "compute_dtype", None)
        return all(compare_value(n, ours[n], r, depth, compute, self.tol)["passed"]
                   for n, r in zip(compiled.output_names, self.refs))


def _time_us(compiled: Any) -> float | None:
    timing = compiled.report.get("timing")
    return None if not isinstance(timing, dict) else timing.get("total_us")


def advise(
    model: Any,
    target: str = "ascend-sim",
    *,
    target_options: Mapping[str, Any] | None = None,
    opt_level: int = 2,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    tol: tuple[float, float] | None = None,
    budget: int = 200,
) -> dict[str, Any]:
    """The smallest set of source nodes found to keep in float32 so ``model`` validates.

    Returns ``{"keep", "passed", "nodes", "time_us", "time_us_all_fp16", "time_us_all_fp32",
    "trials"}``; ``passed`` is False when even growing the set did not make it validate
    (then ``keep`` is what was tried last). ``tol``: (rtol, atol) instead of validation's
    own tolerance. ``budget``: at most this many compiles while shrinking."""
    from graphopt.compare import compare_model

    options = {k: v for k, v in (target_options or {}).items() if v is not None}
    if options.get("precision", "force_fp16") == "must_keep_origin_dtype":
        raise GraphoptError("--precision must_keep_origin_dtype keeps everything in float32 already; "
                            "the advisor chooses what to keep under force_fp16 or allow_mix_precision")
    if options.get("keep_dtype"):
        raise GraphoptError("--keep-dtype: the advisor chooses the set itself; drop the option")
    trials = _Trials(model, target, options, opt_level, shapes, inputs, seed, tol)
    fp16 = trials.compile([])
    names = _node_names(fp16)
    from graphopt.validate import compiled_inputs

    inputs = trials.feeds = dict(inputs) if inputs is not None else compiled_inputs(fp16, seed)
    keep: list[str] = []
    if not trials.passes(keep):
        keep = [n for n in _out_of_range(model, fp16, inputs, shapes) if n in names]
        upstream = 1
        for _ in range(GROW_ROUNDS):
            if trials.passes(keep):
                break
            found = compare_model(model, target, target_options={**options, "keep_dtype": keep or None},
                                  opt_level=opt_level, shapes=shapes, inputs=inputs, seed=seed)
            more = (_culprits(found) & names) - set(keep)
            if not more:
                # The first bad value is computed in float32 already: its inputs carry the
                # error (an ill-conditioned op such as a softmax of large logits). Keep the
                # values before it too, nearest first, twice as many each round.
                more = set(_before_first_bad(found, names, set(keep))[:upstream])
                upstream *= 2
            if not more:
                break  # nothing left to keep: the failure is not a precision one
            keep = sorted(set(keep) | more)
        if trials.passes(keep):
            keep = ddmin(keep, trials.passes, budget)
    passed = trials.passes(keep)
    fp32 = trials.compile([], precision="must_keep_origin_dtype")
    return {
        "keep": sorted(keep),
        "passed": passed,
        "nodes": _node_count(fp16),
        "time_us": trials.seen[frozenset(keep)][1],
        "time_us_all_fp16": _time_us(fp16),
        "time_us_all_fp32": _time_us(fp32),
        "trials": len(trials.seen),
    }


def _node_names(compiled: Any) -> set[str]:
    """The source nodes --keep-dtype may name: those left in the compiled model (a node a
    pass removed, a Dropout, names nothing)."""
    from graphopt.dialects.graph import provenance

    return {s for op in compiled.module.walk() for s in provenance(op)}


def _node_count(compiled: Any) -> int:
    """How many nodes the model has (the ONNX graph's, else what the compile kept)."""
    return len(compiled.source.graph.node) if compiled.source is not None else len(_node_names(compiled))


def _out_of_range(model: Any, compiled: Any, feeds: Mapping[str, Any], shapes: Any) -> list[str]:
    """The nodes whose float32 reference result leaves ``compiled``'s compute dtype's
    range, and the nodes reading such a result (they read it in float16 unless kept too)."""
    import graphopt
    from graphopt.compare import observed, predecessors

    compute = getattr(compiled.executable, "compute_dtype", None)
    if compute is None or np.dtype(compute).kind != "f":
        return []
    limit = float(np.finfo(compute).max)
    ref = graphopt.compile(model, "cpu", opt_level=0, shapes=shapes)
    values, _, _ = observed(ref, feeds)
    beyond = set()
    for key, v in values.items():
        if v.dtype.kind == "f" and v.size:
            finite = np.abs(v[np.isfinite(v)].astype(np.float64))
            if finite.size and float(finite.max()) > limit:
                beyond.add(key)
    readers = {key[0] for key, preds in predecessors(ref.module).items() if preds & beyond}
    return sorted({k[0] for k in beyond} | readers)


def _culprits(found: Mapping[str, Any]) -> set[str]:
    """What compare names for keeping: the first node out of tolerance; for a cancellation,
    the addition and the nodes producing its operands (stored in float16, they have lost
    the digits the addition needs before it runs)."""
    out = set()
    if found.get("first_bad"):
        out.add(found["first_bad"])
    c = found.get("cancellation")
    if c:
        out |= {c["node"], *c["producers"]}
    return out


def _before_first_bad(found: Mapping[str, Any], names: set[str], kept: set[str]) -> list[str]:
    """The nodes of compare's rows before its first bad row, nearest first, not yet kept."""
    rows = found.get("rows", [])
    first = next((k for k, r in enumerate(rows) if r.get("first_bad")), len(rows))
    return [r["node"] for r in reversed(rows[:first]) if r["node"] in names and r["node"] not in kept]


def ddmin(items: Sequence[str], passes: Any, budget: int) -> list[str]:
    """A subset of ``items`` for which ``passes`` still holds, by delta debugging: try
    dropping each of n chunks (n = 2, 4, ... up to single items), keeping any drop that
    passes. At most ``budget`` new calls of ``passes``."""
    keep = list(items)
    n = 2
    calls = 0
    while len(keep) >= 1 and calls < budget:
        size = max(1, len(keep) // n)
        chunks = [keep[i:i + size] for i in range(0, len(keep), size)]
        dropped = False
        for chunk in chunks:
            rest = [x for x in keep if x not in chunk]
            calls += 1
            if passes(rest):
                keep, dropped = rest, True
                n = max(n - 1, 2)
                break
            if calls >= budget:
                break
        if not dropped:
            if size == 1:
                break
            n = min(len(keep), n * 2)
    return keep
