"""Shared helpers for the numbered walkthrough scripts (not part of graphopt)."""

from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if ROOT not in sys.path:        # run from anywhere: `python examples/01_mlp.py`
    sys.path.append(ROOT)

from models import sample_inputs  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def model_path(name: str) -> str:
    """Path of a bundled model (examples/models/<name>.onnx)."""
    path = os.path.join(HERE, "models", f"{name}.onnx")
    if not os.path.exists(path):
        raise SystemExit(f"{path} missing: run `python examples/bundle.py` first")
    return path


def inputs_for(path: str, seed: int = 0) -> dict[str, np.ndarray]:
    import onnx

    return sample_inputs(onnx.load(path), seed=seed)


def onnxruntime_reference(path: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def compare(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> list[str]:
    """Elementwise |a-b| <= ATOL + RTOL*|b| for float outputs, equality otherwise.
    Prints one line per output and returns a list of failure messages."""
    failures = []
    if list(got) != list(ref):
        failures.append(f"output names/order differ: graphopt {list(got)} vs onnxruntime {list(ref)}")
    for name, b in ref.items():
        if name not in got:
            continue
        a = np.asarray(got[name])
        if a.shape != b.shape or a.dtype != b.dtype:
            failures.append(f"{name}: graphopt {a.dtype}{list(a.shape)} vs onnxruntime {b.dtype}{list(b.shape)}")
            continue
        if np.issubdtype(b.dtype, np.floating):
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            err = np.abs(a64 - b64)
            ok = bool(np.all(err <= ATOL + RTOL * np.abs(b64)))   # False if any NaN
            ok = ok and bool(np.array_equal(np.isnan(a64), np.isnan(b64)))
            max_abs = float(np.nanmax(err)) if err.size else 0.0
            rel = err / np.maximum(np.abs(b64), 1e-30)
            max_rel = float(np.nanmax(rel[np.abs(b64) > ATOL])) if np.any(np.abs(b64) > ATOL) else 0.0
            print(f"  check {name:20s} {b.dtype}{list(b.shape)}  max_abs_err {max_abs:.2e}  "
                  f"max_rel_err {max_rel:.2e}  {'ok' if ok else 'MISMATCH'}")
            if not ok:
                bad = int(np.sum(~(err <= ATOL + RTOL * np.abs(b64))))
                failures.append(f"{name}: {bad}/{b.size} elements outside |a-b| <= {ATOL} + {RTOL}*|b| "
                                f"(max_abs_err {max_abs:.3e})")
        else:
            ok = bool(np.array_equal(a, b))
            print(f"  check {name:20s} {b.dtype}{list(b.shape)}  exact {'ok' if ok else 'MISMATCH'}")
            if not ok:
                failures.append(f"{name}: integer/bool output differs")
    return failures


def _count(ops) -> str:
    if isinstance(ops, dict):
        return f"{sum(ops.values())} nodes ({len(ops)} op types)"
    if isinstance(ops, (list, tuple)):
        return f"{len(ops)} nodes"
    return str(ops)


def summarize(title: str, compiled) -> None:
    rep = getattr(compiled, "report", None) or {}
    print(f"== {title}")
    ops = rep.get("ops", {})
    if ops:
        print(f"  ops: imported {_count(ops.get('imported'))} -> final {_count(ops.get('final'))}")
        if isinstance(ops.get("final"), dict):
            top = sorted(ops["final"].items(), key=lambda kv: -kv[1])[:8]
            print("  final ops: " + ", ".join(f"{k} {v}" for k, v in top))
    passes = rep.get("passes")
    if passes:
        names = [p.get("name", str(p)) if isinstance(p, dict) else str(p) for p in passes]
        print(f"  passes ({len(names)}): {', '.join(names)}")
    val = rep.get("validation")
    if val:
        print(f"  graphopt validation: {'passed' if val.get('passed') else 'FAILED'}")
        for o in val.get("outputs", []):
            print(f"    {o.get('name')}: max_abs_err {o.get('max_abs_err')}, cosine {o.get('cosine')}")


def check_model(title: str, path: str, feeds=None, **compile_kwargs) -> list[str]:
    """Compile `path` with graphopt (validate=True), run it, compare with onnxruntime."""
    import graphopt

    feeds = inputs_for(path) if feeds is None else feeds
    kwargs = dict(target="cpu", opt_level=2, validate=True)
    kwargs.update(compile_kwargs)
    try:
        compiled = graphopt.compile(path, **kwargs)
    except graphopt.GraphoptError as e:
        print(f"== {title}\n  graphopt.compile failed: {e}")
        return [f"{title}: graphopt.compile raised GraphoptError: {e}"]
    summarize(title, compiled)
    got = compiled.run(feeds)
    ref = onnxruntime_reference(path, feeds)
    return [f"{title}: {f}" for f in compare(got, ref)]


def finish(failures: list[str]) -> int:
    if failures:
        print("FAILED:")
        for f in failures:
            print("  " + f)
        return 1
    print("OK: graphopt matches onnxruntime")
    return 0
