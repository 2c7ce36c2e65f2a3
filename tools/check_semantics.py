"""Check the numpy rules in graphopt.semantics against ONNX's node test cases.

This runs each rule directly, without the IR or any target, so rules can be written and
checked on their own:

    python tools/check_semantics.py Add Conv Reshape      # cases of these op types
    python tools/check_semantics.py --all                 # every case
    python tools/check_semantics.py -v --match '^test_gemm'

Multi-node cases (the `_expanded` function bodies) run node by node. Cases whose node
has a graph attribute (If, Loop, Scan) are reported as not run.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
import warnings

import numpy as np

from graphopt.semantics import get_rule
from graphopt.semantics.onnx_attrs import node_attributes


def _opset(model, domain=""):
    for imp in model.opset_import:
        if imp.domain in (domain, "ai.onnx" if domain == "" else domain):
            return imp.version
    return 1


def run_graph(model, inputs):
    env = {}
    g = model.graph
    from onnx import numpy_helper

    for init in g.initializer:
        env[init.name] = numpy_helper.to_array(init)
    for vi, x in zip(g.input, inputs):
        env[vi.name] = _array(x)
    for node in g.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        fn = get_rule(key)
        if fn is None:
            raise KeyError(f"no rule for {key}")
        attrs = node_attributes(node, _opset(model, node.domain))
        args = [env[n] if n else None for n in node.input]
        out = fn(*args, **attrs)
        if not isinstance(out, tuple | list):
            out = (out,)
        for name, val in zip(node.output, out):
            if name:
                env[name] = val
    return [env[o.name] for o in g.output]


def _array(x):
    """Cases hold types numpy lacks (int4, float8 ...) as TensorProto."""
    from onnx import TensorProto, numpy_helper

    return numpy_helper.to_array(x) if isinstance(x, TensorProto) else x


def compare(case, got, want):
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(g, np.ndarray):
            return f"output {i} is {type(g).__name__}, not ndarray"
        w = np.asarray(_array(w))
        if g.dtype != w.dtype:
            return f"output {i} dtype {g.dtype}, expected {w.dtype}"
        if g.shape != w.shape:
            return f"output {i} shape {g.shape}, expected {w.shape}"
        if w.dtype.kind in "OUS":
            if not np.array_equal(g, w):
                return f"output {i} differs"
            continue
        gf, wf = g.astype(np.float64), w.astype(np.float64)
        # The runner of BackendTest widens bfloat16 to rtol 2**-6 too.
        rtol = case.rtol
        if w.dtype == np.dtype("float16"):
            rtol = max(rtol, 1e-3)
        elif w.dtype.name == "bfloat16":
            rtol = max(rtol, 2**-6)
        if not np.allclose(gf, wf, rtol=rtol, atol=case.atol, equal_nan=True):
            err = np.nanmax(np.abs(gf - wf)) if gf.size else 0
            return f"output {i} max abs err {err:.3g}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ops", nargs="*")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--match")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from onnx.backend.test.case.node import collect_testcases

    cases = collect_testcases(None)
    ok = fail = notrun = 0
    for case in cases:
        types = {n.op_type for n in case.model.graph.node}
        if not args.all and args.ops and not (types & set(args.ops)):
            continue
        if args.match and not re.search(args.match, case.name):
            continue
        if not args.all and not args.ops and not args.match:
            continue
        if any(a.type in (5, 10) for n in case.model.graph.node for a in n.attribute):
            notrun += 1
            continue
        for inputs, outputs in case.data_sets:
            try:
                why = compare(case, run_graph(case.model, inputs), outputs)
            except Exception as e:
                why = f"{type(e).__name__}: {e}"
                if args.verbose:
                    traceback.print_exc()
            if why:
                fail += 1
                print(f"FAIL {case.name}: {why}")
                break
        else:
            ok += 1
            if args.verbose:
                print(f"ok   {case.name}")
    print(f"{ok} passed, {fail} failed ({notrun} with graph attributes not run)")
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
