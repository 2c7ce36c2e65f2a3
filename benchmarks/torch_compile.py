"""torch.compile(backend="graphopt") against inductor and eager on a 12-layer BERT-base
(hidden 768, sequence 128, batch 1, random weights), in one run. Measured, not asserted.

- first-call compile time: ``torch.compile(model, backend=...)`` and the first call of the
  compiled model (the backend's lookup and imports, capture, compile, one run), graphopt
  against inductor, each the median of --runs fresh processes (so neither inherits the other's warm
  torch: dynamo's and aot_autograd's one-time setup is paid by whichever backend runs first
  in a process), inductor's caches disabled; and of it, torch's own "backend_compile" phase
  (OutputGraph.call_user_compiler: aot_autograd and the backend's compiler, without dynamo's
  capture and the run);
- with --floor, the same for two backends that compile nothing: dynamo's capture alone (the
  graph runs eagerly), and aot_autograd with the core ATen decompositions, which graphopt's
  backend starts from: what no backend built on them can go below;
- steady state: median of repeated calls, graphopt against eager, on one thread
  (torch.set_num_threads(1), and numpy's BLAS limited to one thread before it loads).

    .venv/bin/python benchmarks/torch_compile.py [--layers 12] [--seq 128] [--repeat 10] [--runs 3] [--floor]
"""

from __future__ import annotations

import os

# One thread for numpy's BLAS too: set before numpy (through torch or graphopt) loads it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# A first call compiles from scratch: inductor's on-disk caches would make a second run of
# this script measure cache hits instead.
os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import torch


def bert(layers: int) -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=768, num_hidden_layers=layers, num_attention_heads=12,
                                  intermediate_size=3072, attn_implementation="eager")
    return transformers.BertModel(cfg).eval()


def first_call(model: torch.nn.Module, ids: torch.Tensor, backend: Any) -> tuple[float, float, torch.Tensor, object]:
    """(torch.compile() and the first call s, of which torch's backend_compile phase s,
    output, the compiled model). torch.compile() is inside: it loads the backend's entry
    point, and what a backend imports there it need not import on the first call."""
    from torch._dynamo.utils import compilation_time_metrics

    torch._dynamo.reset()
    compilation_time_metrics.clear()
    t0 = time.perf_counter()
    compiled = torch.compile(model, backend=backend)
    with torch.no_grad():
        out = compiled(ids).last_hidden_state
    total = time.perf_counter() - t0
    return total, sum(compilation_time_metrics.get("OutputGraph.call_user_compiler", [])), out, compiled


def _dynamo_only(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> object:
    return gm.forward


def _aot_only(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> object:
    from torch._decomp import core_aten_decompositions
    from torch._functorch.aot_autograd import aot_module_simplified

    return aot_module_simplified(gm, example_inputs, fw_compiler=lambda g, _: g, decompositions=core_aten_decompositions())


def steady(fn: object, ids: torch.Tensor, repeat: int) -> float:
    times = []
    with torch.no_grad():
        fn(ids)  # warm
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(ids)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


FIRST_CALL_BACKENDS = {"graphopt": "graphopt", "inductor": "inductor", "dynamo-only": _dynamo_only, "aot-only": _aot_only}


def first_call_in_fresh_process(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """``first_call`` of ``backend``, each of ``args.runs`` times in a new Python process
    (this script with --first-call): the medians, and the totals of every run."""
    cmd = [sys.executable, __file__, "--first-call", backend, "--layers", str(args.layers), "--seq", str(args.seq)]
    runs = []
    for _ in range(args.runs):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return {**median, "runs": [r["total"] for r in runs]}


def _runs(figures: dict[str, Any]) -> str:
    return f"(median of {len(figures['runs'])}: {', '.join(f'{t:.2f}' for t in figures['runs'])})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per first-call figure (median)")
    ap.add_argument("--skip-inductor", action="store_true")
    ap.add_argument("--floor", action="store_true", help="also time backends that compile nothing")
    ap.add_argument("--first-call", choices=sorted(FIRST_CALL_BACKENDS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = bert(args.layers)
    ids = torch.randint(0, 30522, (1, args.seq), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(ids).last_hidden_state
    if args.first_call:  # the child process: one first call, its figures as JSON
        total, backend_s, out, _ = first_call(model, ids, FIRST_CALL_BACKENDS[args.first_call])
        print(json.dumps({"total": total, "backend": backend_s, "err": (out - expected).abs().max().item()}))
        return

    print(f"BERT-base: {args.layers} layers, hidden 768, seq {args.seq}, batch 1, {torch.get_num_threads()} thread")
    g = first_call_in_fresh_process("graphopt", args)
    print(f"torch.compile + first call  graphopt  {g['total']:8.2f} s   {_runs(g)}, max abs err vs eager {g['err']:.2e}")
    print(f"  of which backend_compile   graphopt  {g['backend']:8.2f} s")
    if not args.skip_inductor:
        i = first_call_in_fresh_process("inductor", args)
        print(f"torch.compile + first call  inductor  {i['total']:8.2f} s   {_runs(i)}, graphopt/inductor = {g['total'] / i['total']:.2f}")
        print(f"  of which backend_compile   inductor  {i['backend']:8.2f} s   graphopt/inductor = {g['backend'] / i['backend']:.2f}")
    if args.floor:
        for name in ("dynamo-only", "aot-only"):
            f = first_call_in_fresh_process(name, args)
            ratio = "" if args.skip_inductor else f"   / inductor = {f['total'] / i['total']:.2f}"
            print(f"torch.compile + first call  {name:9s} {f['total']:8.2f} s   {_runs(f)}{ratio}")
    _, _, _, compiled = first_call(model, ids, "graphopt")
    run_graphopt = steady(compiled, ids, args.repeat)
    run_eager = steady(model, ids, args.repeat)
    print(f"steady state (median of {args.repeat})  graphopt  {run_graphopt * 1e3:8.1f} ms")
    print(f"steady state (median of {args.repeat})  eager     {run_eager * 1e3:8.1f} ms   graphopt/eager = {run_graphopt / run_eager:.2f}")


if __name__ == "__main__":
    main()
