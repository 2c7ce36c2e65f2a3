"""``graphopt train-sim``: the subcommand (imported at every CLI start: argparse only here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> Any:
    t = sub.add_parser("train-sim", help="simulate a training step of a transformers config on an Ascend cluster, "
                       "from ascend-sim's kernel times")
    t.add_argument("model", help="a transformers config.json (llama, mistral, mixtral, qwen2, qwen2_moe, deepseek_v3)")
    t.add_argument("--cluster", default=None, help="a bundled cluster (default atlas-800t-a2) or a cluster .toml")
    t.add_argument("--chips", type=int, required=True, help="chips in the job")
    t.add_argument("--parallel", default="tp=1", metavar="tp=8,pp=4,vpp=1,dp=..,ep=1,cp=1",
                   help="the parallel plan (dp defaults to what the chips leave); auto: search the plans "
                   "(micro-batch, recompute, sequence parallelism and the distributed optimizer too)")
    t.add_argument("--seq", type=int, default=4096, help="sequence length")
    t.add_argument("--micro-batch", type=int, default=1)
    t.add_argument("--global-batch", type=int, required=True, help="sequences per optimizer step")
    t.add_argument("--sequence-parallel", action="store_true")
    t.add_argument("--recompute", choices=("none", "selective", "full"), default="none")
    t.add_argument("--distributed-optimizer", action="store_true")
    t.add_argument("--precision", choices=("bf16", "fp16"), default="bf16")
    t.add_argument("-o", "--output", type=Path, help="output folder: report.json (key `training`)")
    t.add_argument("--trace", type=Path, help="a Perfetto / chrome://tracing file of the step's pipeline")
    t.add_argument("--no-cache", action="store_true", help="recompile every layer (the cache: $GRAPHOPT_CACHE_DIR)")
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    return run


def run(args: argparse.Namespace) -> int:
    from graphopt.errors import GraphoptError
    from graphopt.targets.ascend.cluster import DEFAULT_CLUSTER, load_cluster
    from graphopt.targets.ascend.training.config import load_config
    from graphopt.targets.ascend.training.plan import Plan, check_plan, parse_plan
    from graphopt.targets.ascend.training.step import Setup, check_memory, simulate

    # bounds far past any real job, so a typo is an error, not an hour of compiling
    for name, most in (("chips", 1 << 20), ("seq", 1 << 20), ("micro_batch", 1024), ("global_batch", 1 << 24)):
        if not 1 <= getattr(args, name) <= most:
            raise GraphoptError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be from 1 to {most}")
    _check_outputs(args)
    model = load_config(args.model)
    cluster = load_cluster(args.cluster or DEFAULT_CLUSTER)
    dtype = "bfloat16" if args.precision == "bf16" else "float16"
    if args.parallel.strip().lower() == "auto":
        return _auto(args, Setup(model, Plan(dp=args.chips), cluster, args.seq, args.global_batch, dtype,
                                 use_cache=not args.no_cache))
    sizes = parse_plan(args.parallel, args.chips)
    plan = Plan(**sizes, micro_batch=args.micro_batch, sequence_parallel=args.sequence_parallel,
                recompute=args.recompute, distributed_optimizer=args.distributed_optimizer)
    check_plan(plan, model, args.chips, args.seq, args.global_batch, cluster.chips_per_server)
    setup = Setup(model, plan, cluster, args.seq, args.global_batch, dtype, use_cache=not args.no_cache)
    report = simulate(setup, progress=_progress())
    report["plan_text"] = plan.text()
    check_memory(report)
    events = report.pop("events")
    _save(args, {"training": report})
    if args.trace:
        _write_trace(args.trace, events, plan.pp)
    print(json.dumps(report, indent=1) if args.json else "\n".join(table(report)))
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Before any work: -o is a new folder or one graphopt wrote; --trace a new file or a
    trace graphopt wrote (never the config, the cluster file, or another .json)."""
    from graphopt import outputs

    keep = [p for p in (args.model, args.cluster) if p is not None and Path(p).exists()]
    if args.output:
        outputs.check_output_folder(args.output, f"output folder {args.output}", keep)
    if args.trace:
        outputs.check_output_file(args.trace, f"--trace {args.trace}", _is_trace, "a trace graphopt wrote", keep)


def _is_trace(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b'{"traceEvents": '


def _save(args: argparse.Namespace, content: dict[str, Any]) -> None:
    if args.output:
        from graphopt import outputs

        def fill(tmp: Path) -> None:
            (tmp / "report.json").write_text(json.dumps(content, indent=1) + "\n")

        outputs.write_folder(args.output, f"output folder {args.output}", fill, [])


def _auto(args: argparse.Namespace, base: Any) -> int:
    """--parallel auto: the best plans, the first in full (report.json: `training` the
    best, `search` every plan printed)."""
    from graphopt.targets.ascend.training.search import search

    best = search(base, progress=_progress())
    events = best[0]["events"]
    for r in best:
        del r["events"]
    if args.trace:
        _write_trace(args.trace, events, best[0]["plan"]["pp"])
    summary = [{"plan": r["plan_text"], "tokens_per_s_per_chip": r["tokens_per_s_per_chip"], "mfu": r["mfu"],
                "step_time_s": r["step_time_s"], "memory_gb": r["memory_per_chip_gb"]["total"],
                "breakdown_s": r["breakdown_s"]} for r in best]
    _save(args, {"training": best[0], "search": summary})
    if args.json:
        print(json.dumps({"training": best[0], "search": summary}, indent=1))
        return 0
    s = best[0]["searched"]
    print(f"train-sim --parallel auto: {s['candidates']} plans fit the weights and optimizer states, {s['estimated']} "
          f"scored with estimated layers, the best {s['compiled']} compiled; best first:")
    for k, r in enumerate(summary):
        b = r["breakdown_s"]
        parts = ", ".join(f"{n} {100 * v / r['step_time_s']:.0f}%" for n, v in b.items() if v > 0.005 * r["step_time_s"])
        print(f"  {k + 1}. {r['plan']}: {r['tokens_per_s_per_chip']:,.1f} tokens/s per chip, MFU {100 * r['mfu']:.1f} %, "
              f"{r['memory_gb']:.1f} GB; {parts}")
    print("\n".join(table(best[0])))
    return 0


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None
    return lambda message: print(f"  {message} ...", file=sys.stderr)


def table(r: dict[str, Any]) -> list[str]:
    b, mem = r["breakdown_s"], r["memory_per_chip_gb"]
    step = r["step_time_s"]
    lines = [
        f"train-sim: {r['model']} on {r['chips']} x {r['chip']} ({r['cluster']}), {r['plan_text']}",
        f"  seq {r['seq']}, global batch {r['global_batch']} ({r['micro_batches']} micro-batches per pipeline)",
        f"  step {step:.3f} s, {r['tokens_per_s']:,.0f} tokens/s, {r['tokens_per_s_per_chip']:,.1f} tokens/s per chip",
        f"  MFU {100 * r['mfu']:.1f} %, HFU {100 * r['hfu']:.1f} % (peak {r['peak_tflops']:.1f} TFLOPS; "
        f"{r['model_flops_per_token'] / 1e9:.1f} GFLOP per token: {r['model_flops_counted_as']})",
        "  breakdown of the step:",
    ]
    for k, v in b.items():
        lines.append(f"    {k:<18} {v:10.3f} s {100 * v / step:6.1f} %")
    lines.append("  memory per chip (stage {}): ".format(mem["stage"]) + ", ".join(
        f"{k} {v:.1f} GB" for k, v in mem.items() if k not in ("stage",)) + f" of {r['hbm_gb']:.1f}")
    lines.append("  layers (one micro-batch, one chip):")
    for k, s in r["shards"].items():
        how = "cached" if s["cached"] else f"compiled in {s['compile_s']:.0f} s"
        lines.append(f"    {k:<6} forward {s['forward_us'] / 1e3:8.2f} ms  backward {s['backward_us'] / 1e3:8.2f} ms  "
                     f"saved {s['saved_mb']:8.1f} MB  AI CPU kernels {s['aicpu_kernels']}  {how}")
    return lines


def _write_trace(path: Path, events: list[Any], pp: int) -> None:
    """Chrome trace events: two lanes per pipeline stage (compute, and the communication the
    plan leaves exposed), F/B per micro-batch."""
    from graphopt import outputs

    trace: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "pipeline"}}]
    for s in range(pp):  # per stage: its compute stream, then its exposed communication
        trace += [{"name": "thread_name", "ph": "M", "pid": 0, "tid": 2 * s, "args": {"name": f"stage {s} compute"}},
                  {"name": "thread_name", "ph": "M", "pid": 0, "tid": 2 * s + 1,
                   "args": {"name": f"stage {s} exposed communication"}}]
    for s, kind, i, start, dur, comm in events:
        cat = "forward" if kind == "F" else "backward"
        trace.append({"name": f"{kind}{i}", "cat": cat, "ph": "X", "pid": 0, "tid": 2 * s, "ts": start, "dur": dur - comm})
        if comm > 0:
            trace.append({"name": f"{kind}{i} comm", "cat": cat, "ph": "X", "pid": 0, "tid": 2 * s + 1,
                          "ts": start + dur - comm, "dur": comm})
    text = json.dumps({"traceEvents": trace, "displayTimeUnit": "ms"}).encode()
    outputs.write_output_file(path, f"--trace {path}", lambda f: f.write(text))
