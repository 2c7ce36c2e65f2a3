"""torch.compile(backend="graphopt") against inductor and eager on a 12-layer BERT-base
(hidden 768, sequence 128, batch 1, random weights), in one run. Measured, not asserted.

- first-call compile time: the first call of the compiled model (capture + compile + one run),
  graphopt against inductor (each after torch._dynamo.reset(), inductor's caches disabled);
  and of it, torch's own "backend_compile" phase (OutputGraph.call_user_compiler: aot_autograd
  and the backend's compiler, without dynamo's capture and the run);
- steady state: median of repeated calls, graphopt against eager, on one thread
  (torch.set_num_threads(1), and numpy's BLAS limited to one thread before it loads).

    .venv/bin/python benchmarks/torch_compile.py [--layers 12] [--seq 128] [--repeat 10]
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
import statistics
import time

import torch


def bert(layers: int) -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=768, num_hidden_layers=layers, num_attention_heads=12,
                                  intermediate_size=3072, attn_implementation="eager")
    return transformers.BertModel(cfg).eval()


def first_call(model: torch.nn.Module, ids: torch.Tensor, backend: str) -> tuple[float, float, torch.Tensor, object]:
    """(first call s, of which torch's backend_compile phase s, output, the compiled model)."""
    from torch._dynamo.utils import compilation_time_metrics

    torch._dynamo.reset()
    compilation_time_metrics.clear()
    compiled = torch.compile(model, backend=backend)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = compiled(ids).last_hidden_state
    total = time.perf_counter() - t0
    return total, sum(compilation_time_metrics.get("OutputGraph.call_user_compiler", [])), out, compiled


def steady(fn: object, ids: torch.Tensor, repeat: int) -> float:
    times = []
    with torch.no_grad():
        fn(ids)  # warm
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(ids)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--skip-inductor", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = bert(args.layers)
    ids = torch.randint(0, 30522, (1, args.seq), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(ids).last_hidden_state

    t_graphopt, b_graphopt, out, compiled = first_call(model, ids, "graphopt")
    err = (out - expected).abs().max().item()
    print(f"BERT-base: {args.layers} layers, hidden 768, seq {args.seq}, batch 1, {torch.get_num_threads()} thread")
    print(f"first call (compile + run)  graphopt  {t_graphopt:8.2f} s   (max abs err vs eager {err:.2e})")
    print(f"  of which backend_compile  graphopt  {b_graphopt:8.2f} s")
    run_graphopt = steady(compiled, ids, args.repeat)
    if not args.skip_inductor:
        t_inductor, b_inductor, _, _ = first_call(model, ids, "inductor")
        print(f"first call (compile + run)  inductor  {t_inductor:8.2f} s   graphopt/inductor = {t_graphopt / t_inductor:.2f}")
        print(f"  of which backend_compile  inductor  {b_inductor:8.2f} s   graphopt/inductor = {b_graphopt / b_inductor:.2f}")
    run_eager = steady(model, ids, args.repeat)
    print(f"steady state (median of {args.repeat})  graphopt  {run_graphopt * 1e3:8.1f} ms")
    print(f"steady state (median of {args.repeat})  eager     {run_eager * 1e3:8.1f} ms   graphopt/eager = {run_graphopt / run_eager:.2f}")


if __name__ == "__main__":
    main()
