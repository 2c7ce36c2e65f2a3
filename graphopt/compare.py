"""Per-node comparison: every intermediate a compiled model computes, against a reference.

``graphopt compare`` answers where a target's result starts to differ. Both sides run on
the same inputs with an observer (``Executable.run``) that sees each value a top-level op
produces, as the logical array the model's types describe (a storage format converted
back). Values are lined up by what they hold: the source node and output index
(``graph.result_sources``: provenance survives rewrites, fusion and lowering). So the
rows are the values both sides have: every node boundary on the reference, which is the
cpu target at -O0 (one op per node, float32 as the model says, itself checked against
onnxruntime or torch eager), and every fused-group or kernel boundary on the target.

A row's tolerance is validation's (``validate.tolerance``) for the value's dtype, the
target's compute dtype and the reduction depth on the way to it (the longest sum on any
path from the inputs), its absolute part scaled by the value's magnitude as validation
scales an output's. The first row out of tolerance is marked; when a value is infinite or
NaN where the reference is finite, the node where that starts is named (inside a fused
kernel, the first of its nodes whose reference value leaves the compute dtype's range).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from graphopt.dialects.graph import ConstantOp, GraphOp, WeightOp, node_results, provenance

Key = tuple[str, int]  # (source node, output index)


def node_values(module: ModuleOp) -> dict[SSAValue, Key]:
    """The main function's values that are a source node's result (graph.node_results)."""
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    return node_results(fn.body.block)


def depths(module: ModuleOp) -> dict[SSAValue, int]:
    """Each value's reduction depth: the longest sum on any path from the inputs to it."""
    from graphopt.validate import op_reduction_depth

    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    depth: dict[SSAValue, int] = {}
    for op in fn.body.block.ops:
        own = max((op_reduction_depth(o) for o in op.walk()), default=1)
        d = max([own, *(depth.get(v, 1) for v in op.operands)])
        for r in op.results:
            depth[r] = d
    return depth


def observed(compiled: Any, feeds: Mapping[str, Any]) -> tuple[dict[Key, Any], dict[Key, Operation], dict[str, Any]]:
    """Run ``compiled`` on ``feeds``: each source value it computes (the first value a key
    names wins: a clone of a cheap op in two kernels holds the same), the op that produced
    it, and the outputs."""
    producers: dict[Key, Operation] = {}
    for v, key in node_values(compiled.module).items():
        assert isinstance(v.owner, Operation)
        producers.setdefault(key, v.owner)
    values: dict[Key, Any] = {}

    def observe(key: Key, value: Any) -> None:
        if key not in values and isinstance(value, np.ndarray):
            values[key] = value.copy()

    outputs = compiled.run(feeds, observe=observe)
    return values, producers, outputs


def _label(op: Operation) -> str:
    """A target op as the user finds it in the compiled IR: a kernel's name, else the op."""
    name = op.properties.get("sym_name")
    return getattr(name, "data", None) or op.name


def _op_type(op: Operation) -> str:
    return op.ONNX_TYPE if isinstance(op, GraphOp) else op.name


def _row(key: Key, value: np.ndarray, expected: np.ndarray, tol: tuple[float, float], compute: Any) -> dict[str, Any]:
    """One value's comparison at tolerance ``tol`` (validation's compare)."""
    from graphopt.validate import compare

    entry = compare(key[0], value, expected, 1, compute, tol)
    finite = math.isfinite(entry["max_abs_err"])
    return {
        "node": key[0] if key[1] == 0 else f"{key[0]}:{key[1]}",
        "shape": list(expected.shape),
        "dtype": str(expected.dtype),
        "max_abs_err": entry["max_abs_err"],
        "max_rel_err": entry["max_rel_err"],
        "cosine": entry["cosine"],
        "tolerance": list(tol),
        # How far past its tolerance the worst element is (<= 1 within): what a picture colours by.
        "tolerance_ratio": 0.0 if entry["max_abs_err"] == 0 else _tolerance_ratio(value, expected, *tol) if finite else math.inf,
        # Infinite where the reference is finite: within validation's overflow rule (a
        # mask's -inf), but where bad values start.
        "nonfinite": _nonfinite_where_finite(value, expected),
        "ok": bool(entry["passed"]),
        "key": key,
    }


def _tolerance_ratio(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> float:
    """max |ours - ref| / (atol + rtol |ref|) over the elements: at most 1 within tolerance."""
    if ours.dtype.kind not in "fc" or ref.dtype.kind not in "fc":
        return 0.0 if np.array_equal(ours, ref) else math.inf
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(a - b) / (atol + rtol * np.abs(b))
    ratio = ratio[~(np.isnan(a) & np.isnan(b)) & ~((a == b) & np.isinf(a))]
    if not ratio.size:
        return 0.0
    worst = float(np.max(np.where(np.isnan(ratio), np.inf, ratio)))
    return worst


def _nonfinite_where_finite(ours: np.ndarray, ref: np.ndarray) -> int:
    if ours.dtype.kind not in "fc" or ref.dtype.kind not in "fc" or ours.shape != ref.shape:
        return 0
    return int(np.count_nonzero(~np.isfinite(ours) & np.isfinite(ref)))


def compare_model(
    model: Any,
    target: str = "cpu",
    *,
    target_options: Mapping[str, Any] | None = None,
    opt_level: int = 2,
    pipeline: str | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    example_inputs: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Compile ``model`` for ``target`` and for the reference, run both on the same inputs
    (``inputs``, else seeded random ones) and compare every value both compute.

    Returns ``{"first_bad", "overflow", "rows", "reference_check", "compute_dtype", ...}``;
    a row is ``{"node", "op", "kernel", "shape", "dtype", "max_abs_err", "max_rel_err",
    "cosine", "tolerance": [rtol, atol], "ok", "nonfinite"}`` in the target's execution order."""
    import graphopt
    from graphopt.validate import FLOOR_FACTOR, compiled_inputs, tolerance, validate

    common: dict[str, Any] = {"shapes": shapes, "example_inputs": example_inputs}
    ours = graphopt.compile(model, target, opt_level=opt_level, pipeline=pipeline, target_options=target_options, **common)
    ref = graphopt.compile(model, "cpu", opt_level=0, **common)
    feeds = dict(inputs) if inputs is not None else compiled_inputs(ours, seed)
    check = validate(ref, feeds)  # the reference, checked against the judge first
    ref_values, ref_producers, _ = observed(ref, feeds)
    our_values, our_producers, _ = observed(ours, feeds)
    ref_depth = depths(ref.module)
    ref_keys = node_values(ref.module)
    ref_result = {key: r for r, key in ref_keys.items()}
    compute = getattr(ours.executable, "compute_dtype", None)
    narrow = np.dtype(compute) if compute is not None and np.dtype(compute).kind == "f" else None
    order = {key: k for k, key in enumerate(ref_values)}

    def value_of(v: SSAValue) -> Any:
        return _value(ref, feeds, ref_values, ref_keys, v)

    rows: list[dict[str, Any]] = []
    row_producers: dict[str, Operation] = {}
    for key, value in our_values.items():
        expected = ref_values.get(key)
        if expected is None or expected.shape != value.shape:
            continue  # a value the reference does not hold as such (a rewrite's own)
        rtol, atol = tolerance(expected.dtype, ref_depth.get(ref_result[key], 1), compute)
        involved = [expected, *(value_of(v) for v in ref_producers[key].operands)]
        row = _row(key, value, expected, (rtol, atol * _scale(involved, narrow)), compute)
        if not row["ok"] and narrow is not None and math.isfinite(row["max_abs_err"]):
            # validation's rounding floor, for one op: what the node itself gives on its
            # inputs rounded to the compute dtype (a BatchNorm with a tiny variance
            # multiplies its inputs' rounding by 1/sqrt(eps))
            floor = _local_floor(ref_producers[key], key[1], involved[1:], expected, narrow)
            row["ok"] = floor is not None and row["max_abs_err"] <= FLOOR_FACTOR * floor + row["tolerance"][1]
        row.update(op=_op_type(ref_producers[key]), kernel=_label(our_producers[key]))
        rows.append(row)
        row_producers[row["node"]] = our_producers[key]
    first = next((r for r in rows if not r["ok"]), None)
    first_bad, overflow, cancellation = None, None, None
    if first is not None:
        preds = predecessors(ref.module)
        if first["nonfinite"]:
            # Where the infinities began is the first value out of tolerance, though
            # validation's overflow rule alone would let an infinite value pass.
            first = _nonfinite_start(first, rows, preds)
            first["ok"] = False
            overflow = _origin(first, row_producers[first["node"]], ref_values, order, narrow)
        else:
            # An addition whose inputs are far larger than its result stays within the
            # tolerance it inherits from them, and the node after it is where the error
            # shows: look inside the bad row's kernel and at the rows it reads.
            inside = [k for k in ref_values if k[0] in provenance(row_producers[first["node"]])]
            inside += _upstream_rows(first, rows, preds)
            cancellation = _cancellation(inside, ref_producers, value_of, narrow, first["tolerance"][0])
        if cancellation is not None:
            # The subtraction is where the error starts: its row (when the target holds
            # one) is the first bad value, though its inputs' rounding explains it.
            first = next((r for r in rows if r["key"] == (cancellation["node"], 0)), first)
            first["ok"] = False
        first["first_bad"] = True
        first_bad = (cancellation or overflow or {"node": first["key"][0]})["node"]
    for r in rows:
        del r["key"]
    return {
        "model": ours.report.get("model"),
        "target": ours.report.get("target"),
        "compute_dtype": None if narrow is None else narrow.name,
        "reference": "cpu -O0",
        "reference_check": {"judge": check["reference"], "passed": check["passed"]},
        "first_bad": first_bad,
        "overflow": overflow,
        "cancellation": cancellation,
        "rows": rows,
    }


def _scale(values: Sequence[Any], narrow: np.dtype | None) -> float:
    """What a row's absolute tolerance scales by: the largest magnitude among its value and
    the values it is computed from (a result inherits the absolute rounding error of its
    largest input: a BatchNorm of values near 7 stored in float16 is off by 7 x 1e-3 near
    its zeros). Below 1 it scales down only under a narrower compute dtype, as validation
    does, and a magnitude beyond that dtype's range (a mask's float32 minimum) is left out."""
    limit = float(np.finfo(narrow).max) if narrow is not None else math.inf
    largest = 0.0
    for v in values:
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size:
            held = np.abs(v[np.isfinite(v)].astype(np.float64))
            held = held[held <= limit]
            if held.size:
                largest = max(largest, float(held.max()))
    return max(1.0, largest) if narrow is None else largest if largest > 0 else 1.0


def _local_floor(op: Operation, index: int, operands: Sequence[Any], expected: np.ndarray,
                 narrow: np.dtype) -> float | None:
    """The largest error the op's own rule makes on its float operands rounded to ``narrow``
    against the reference result (None when it cannot say: an operand not held, no rule)."""
    from graphopt.semantics import get_rule
    from graphopt.semantics.onnx_attrs import rule_kwargs

    if not isinstance(op, GraphOp) or any(v is None for v in operands):
        return None
    rule = get_rule(op.onnx_key())
    if rule is None:
        return None
    rounded = [v.astype(narrow).astype(v.dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
               for v in operands]
    try:
        with np.errstate(all="ignore"):
            out = rule(*rounded, **rule_kwargs(type(op), op.onnx_attrs(), len(op.results)))
    except Exception:  # a rule refusing what it gets: no floor, the row stays as judged
        return None
    out = out[index] if isinstance(out, tuple | list) else out
    out = np.asarray(out)
    if out.shape != expected.shape or out.dtype.kind != "f":
        return None
    d = np.abs(out.astype(np.float64) - expected.astype(np.float64))
    d = d[np.isfinite(d)]
    return float(d.max()) if d.size else None


def _upstream_rows(row: dict[str, Any], rows: Sequence[dict[str, Any]], preds: Mapping[Key, set[Key]]) -> list[Key]:
    """The nodes ``row`` is computed from, back to the nearest rows (those included)."""
    held = {r["key"] for r in rows}
    found: list[Key] = []
    todo, seen = list(preds.get(row["key"], ())), set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        found.append(k)
        if k not in held:
            todo.extend(preds.get(k, ()))
    return found


def predecessors(module: ModuleOp) -> dict[Key, set[Key]]:
    """Each source value's nearest source values upstream (through values that are no
    node's result, such as a decomposed node's inner steps)."""
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    keys = node_values(module)
    reaches: dict[SSAValue, set[Key]] = {}  # the source values a value is computed from, nearest first
    preds: dict[Key, set[Key]] = {}
    for op in fn.body.block.ops:
        upstream = set().union(*(reaches.get(v, set()) for v in op.operands)) if op.operands else set()
        for r in op.results:
            key = keys.get(r)
            if key is None:
                reaches[r] = upstream
            else:
                preds[key] = upstream
                reaches[r] = {key}
    return preds


def _nonfinite_start(row: dict[str, Any], rows: Sequence[dict[str, Any]], preds: Mapping[Key, set[Key]]) -> dict[str, Any]:
    """The earliest row, upstream of ``row`` through rows that are infinite or NaN where
    the reference is finite, where that began (a mask's -inf that a softmax absorbed
    does not lead here: the softmax's row is finite)."""
    by_key = {r["key"]: r for r in rows}
    seen, todo = {row["key"]}, [row["key"]]
    while todo:
        key = todo.pop()
        stack = list(preds.get(key, ()))
        while stack:  # through source values the target does not hold (inside its kernels)
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            r = by_key.get(k)
            if r is None:
                stack.extend(preds.get(k, ()))
            elif r["nonfinite"]:
                todo.append(k)
    bad = [r for r in rows if r["key"] in seen and r["nonfinite"]]
    return bad[0]  # rows are in execution order


def _cancellation(keys: Sequence[Key], producers: Mapping[Key, Operation], value_of: Any,
                  narrow: np.dtype | None, rtol: float) -> dict[str, Any] | None:
    """Among the nodes ``keys`` (the reference's: those a bad row's kernel fused, or the
    row's node alone), the addition or subtraction that loses the most to cancellation.
    Rounding error of an addition's inputs is relative to them, not to its result: its
    largest input magnitude over its largest result magnitude, ``amplification``, times
    the compute dtype's epsilon is the relative error the rounding of its inputs alone
    leaves in the result. None when no node's reaches half the row's ``rtol``."""
    eps = float(np.finfo(narrow if narrow is not None else np.float32).eps)
    worst: dict[str, Any] | None = None
    for key in keys:
        op = producers[key]
        if _op_type(op) not in ("Add", "Sub", "Sum") or key[1] != 0:
            continue
        ins = [value_of(v) for v in op.operands]
        out = value_of(op.results[0])
        if any(not isinstance(a, np.ndarray) or a.dtype.kind != "f" or not a.size for a in [*ins, out]):
            continue
        big = max(float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)) for a in ins)
        small = float(np.max(np.abs(out[np.isfinite(out)]), initial=0.0))
        amplification = big / max(small, float(np.finfo(np.float64).tiny))
        if amplification * eps > rtol / 2 and (worst is None or amplification > worst["amplification"]):
            upstream = [provenance(v.owner)[-1] for v in op.operands if isinstance(v.owner, Operation) and provenance(v.owner)]
            worst = {"node": key[0], "op": _op_type(op), "inputs": big, "result": small, "amplification": amplification,
                     "relative_error": amplification * eps, "producers": list(dict.fromkeys(upstream))}
    return worst


def _value(compiled: Any, feeds: Mapping[str, Any], values: Mapping[Key, Any], keys: Mapping[SSAValue, Key],
           v: SSAValue) -> Any:
    """A value of ``compiled``'s main function after a run that observed ``values``: an
    input, a constant, a weight or a node's result (``keys``: node_values; None for a step
    inside a node)."""
    from xdsl.ir import BlockArgument

    if isinstance(v, BlockArgument):
        return feeds.get(compiled.input_names[v.index])
    owner = v.owner
    if isinstance(owner, ConstantOp):
        return owner.array()
    if isinstance(owner, WeightOp):
        return compiled.weights[owner.ref.data]
    key = keys.get(v)
    return None if key is None else values.get(key)


def _origin(row: dict[str, Any], producer: Operation, ref_values: Mapping[Key, Any], order: Mapping[Key, int],
            narrow: np.dtype | None) -> dict[str, Any]:
    """Where the first infinity or NaN the reference does not have comes from: the row's
    node itself, or (the row a kernel's output that fuses several nodes) the first of the
    kernel's nodes whose reference value leaves ``narrow``'s range."""
    origin = {"node": row["key"][0], "row": row["node"], "kind": "nonfinite"}
    if narrow is None:
        return origin
    limit = float(np.finfo(narrow).max)
    inside = [k for k in ref_values if k[0] in provenance(producer)]
    for k in sorted(inside, key=lambda k: order[k]):
        v = ref_values[k]
        if v.dtype.kind != "f" or not v.size:
            continue
        finite = np.abs(v[np.isfinite(v)].astype(np.float64))
        if finite.size and float(finite.max()) > limit:
            return {"node": k[0], "row": row["node"], "kind": "overflow", "magnitude": float(finite.max()), "limit": limit}
    return origin


def table_lines(result: Mapping[str, Any]) -> list[str]:
    """The comparison as the CLI prints it: one row per value, execution order."""
    rows = result["rows"]
    width = max([4, *(len(r["node"]) for r in rows)])
    opw = max([2, *(len(r["op"]) for r in rows)])
    kw = max([6, *(len(r["kernel"]) for r in rows)])
    lines = [f"{'node':<{width}}  {'op':<{opw}}  {'kernel':<{kw}}  {'shape':<16} {'dtype':<8} {'max_abs_err':>11} {'max_rel_err':>11} "
             f"{'cosine':>9} {'rtol':>8} {'atol':>8}"]
    for r in rows:
        shape = "x".join(map(str, r["shape"])) or "scalar"
        mark = "  <-- first out of tolerance" if r.get("first_bad") else "" if r["ok"] else "  <-- out of tolerance"
        if r["nonfinite"]:
            mark += f" ({r['nonfinite']} inf/NaN where the reference is finite)"
        lines.append(f"{r['node']:<{width}}  {r['op']:<{opw}}  {r['kernel']:<{kw}}  {shape:<16} {r['dtype']:<8} {_num(r['max_abs_err'])} "
                     f"{_num(r['max_rel_err'])} {r['cosine']:>9.6f} {r['tolerance'][0]:>8.2g} {r['tolerance'][1]:>8.2g}{mark}")
    return lines


def _num(x: float) -> str:
    return f"{x:>11.4g}" if math.isfinite(x) else f"{'inf':>11}"


def verdict_lines(result: Mapping[str, Any]) -> list[str]:
    """What the comparison concludes, for a person: the first node out of tolerance and why."""
    lines = []
    check = result["reference_check"]
    if not check["passed"]:
        lines.append(f"warning: the reference (cpu -O0) itself differs from {check['judge']}: rows compare against it")
    bad = sum(not r["ok"] for r in result["rows"])
    if result["first_bad"] is None:
        lines.append(f"all {len(result['rows'])} values within tolerance")
        return lines
    lines.append(f"{bad} of {len(result['rows'])} values out of tolerance; first: node {result['first_bad']}")
    o = result["overflow"]
    if o is not None and o["kind"] == "overflow":
        shows = f" (inside a kernel: it shows in the row of {o['row']})" if o["row"] != o["node"] else ""
        lines.append(f"{result['compute_dtype']} overflow at node {o['node']}: |x| reaches {o['magnitude']:.3g}, "
                     f"beyond {o['limit']:.6g}{shows}; keep {o['node']} in float32 (--keep-dtype FILE, one node per "
                     "line) or compile with --precision must_keep_origin_dtype")
    elif o is not None:
        lines.append(f"inf or NaN first at node {o['node']}, where the reference is finite")
    c = result.get("cancellation")
    if c is not None:
        lines.append(f"cancellation at node {c['node']} ({c['op']}): inputs of |x| up to {c['inputs']:.3g} give results of "
                     f"|x| up to {c['result']:.3g}, so {result['compute_dtype'] or 'float32'} rounding of the inputs alone "
                     f"leaves a relative error near {c['relative_error']:.2g}; keep {c['node']} and the nodes "
                     "producing its inputs in float32 (--keep-dtype FILE, one node per line)")
    return lines
