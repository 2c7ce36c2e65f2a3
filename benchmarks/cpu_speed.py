"""The cpu target beside onnxruntime, in one run: compile time against session creation, run
time against run time, as ratios (graphopt / onnxruntime; under 1 graphopt is faster).

    .venv/bin/python benchmarks/cpu_speed.py                     # every model, 1 thread and all cores
    .venv/bin/python benchmarks/cpu_speed.py --threads 1 --only zoo/resnet50 --only hf/bert@dynamo

Models: the CNNs of onnx's own light model zoo (full size, seeded random weights) and
transformers models (random weights, tiny configs) as benchmarks/model_corpus.py builds them
(its cache is shared), plus BERT-base (12 layers, seq 128) with --bert-base. Each thread
count runs in a subprocess of its own, with OMP/OpenBLAS/MKL threads set before numpy loads:
onnxruntime gets ``intra_op_num_threads`` = the same count. Times are medians of --repeat
runs after one warm-up, the same inputs for both; compile and session creation are the
best of three (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DEFAULT_MODELS = ["zoo/bvlc_alexnet", "zoo/squeezenet", "zoo/resnet50", "zoo/inception_v1", "zoo/inception_v2",
                  "zoo/densenet121", "zoo/shufflenet", "zoo/vgg19", "zoo/zfnet512", "hf/bert@dynamo",
                  "hf/gpt2@dynamo", "hf/llama@dynamo"]


def _feeds(path: Path, compiled: Any) -> dict[str, Any]:
    """The model's saved inputs (transformers exports), else seeded random ones."""
    import numpy as np

    from graphopt.validate import compiled_inputs

    saved = path.with_suffix(".npz")
    if saved.exists():
        with np.load(saved) as z:
            return {k: z[k] for k in z.files}
    return compiled_inputs(compiled)


def measure(path: Path, threads: int, repeat: int) -> dict[str, float]:
    """One model at one thread count (threads already pinned for this process)."""
    import onnxruntime as ort

    import graphopt

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.log_severity_level = 3
    session_s, compile_s = [], []
    for _ in range(3):
        t = time.perf_counter()
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        session_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        compiled = graphopt.compile(str(path), "cpu")
        compile_s.append(time.perf_counter() - t)
    feeds = _feeds(path, compiled)
    ort_run, go_run = [], []
    sess.run(None, feeds)
    compiled.run(feeds)
    for _ in range(repeat):  # interleaved, so a noisy stretch of the machine hits both
        t = time.perf_counter()
        sess.run(None, feeds)
        ort_run.append(time.perf_counter() - t)
        t = time.perf_counter()
        compiled.run(feeds)
        go_run.append(time.perf_counter() - t)
    return {"session_ms": 1e3 * min(session_s), "compile_ms": 1e3 * min(compile_s),
            "ort_run_ms": 1e3 * statistics.median(ort_run), "run_ms": 1e3 * statistics.median(go_run)}


def _pinned_worker(models: list[str], threads: int, repeat: int, cache: Path) -> list[dict[str, Any]]:
    env = {**os.environ, **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    args = [sys.executable, __file__, "--worker", "--threads", str(threads), "--repeat", str(repeat), "--cache", str(cache)]
    for m in models:
        args += ["--only", m]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"worker for {threads} thread(s) failed")
    return json.loads(out.stdout.splitlines()[-1])


def _path(name: str, cache: Path) -> Path:
    import model_corpus

    entry = model_corpus.entry_named(name)
    path = model_corpus._file(cache, entry)
    if not path.exists():
        built = model_corpus.build(entry, cache)
        if not built.get("ok"):
            raise SystemExit(f"{name}: could not build it: {built}")
    return path


def _geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], help="a corpus model name (repeatable)")
    ap.add_argument("--threads", type=int, action="append", default=[], help="thread counts (default: 1 and all cores)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=None, help="model_corpus's cache (built models)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    import model_corpus

    cache = a.cache or model_corpus.DEFAULT_CACHE
    models = a.only or DEFAULT_MODELS
    if a.worker:
        rows = [{"model": m, **measure(_path(m, cache), a.threads[0], a.repeat)} for m in models]
        print(json.dumps(rows))
        return 0
    for m in models:
        _path(m, cache)  # build first, outside the timed workers
    rows: list[dict[str, Any]] = []
    for threads in a.threads or sorted({1, os.cpu_count() or 1}):
        for row in _pinned_worker(models, threads, a.repeat, cache):
            rows.append({**row, "threads": threads})
    print("| model | threads | ORT session ms | graphopt compile ms | compile ratio | ORT run ms | graphopt run ms | run ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r["compile_ratio"], r["run_ratio"] = r["compile_ms"] / r["session_ms"], r["run_ms"] / r["ort_run_ms"]
        print(f"| {r['model']} | {r['threads']} | {r['session_ms']:.1f} | {r['compile_ms']:.1f} | {r['compile_ratio']:.2f} "
              f"| {r['ort_run_ms']:.2f} | {r['run_ms']:.2f} | {r['run_ratio']:.2f} |")
    for threads in sorted({r["threads"] for r in rows}):
        mine = [r for r in rows if r["threads"] == threads]
        print(f"geometric mean, {threads} thread(s): run {_geomean([r['run_ratio'] for r in mine]):.2f}x onnxruntime, "
              f"compile {_geomean([r['compile_ratio'] for r in mine]):.2f}x its session creation")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
