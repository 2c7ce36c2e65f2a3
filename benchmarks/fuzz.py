"""Differential fuzzing across targets: random ONNX graphs through every target.

    .venv/bin/python benchmarks/fuzz.py --cases 200                 # seeds 0..199
    .venv/bin/python benchmarks/fuzz.py --minutes 30 --seed 1000 --out fuzz-out
    .venv/bin/python benchmarks/fuzz.py --seed 137 --cases 1 -v      # one case, with its graph
    .venv/bin/python benchmarks/fuzz.py --model fuzz-out/seed137.onnx -v   # a saved (or reduced) case

Each case (tests/fuzz/graphs.py: ``make_case(seed)``) is compiled for the cpu target at
-O0 to -O3 (judged by onnxruntime), for ascend-sim on the 910B and the 310P with
must_keep_origin_dtype (judged by the cpu target's float32 result, nearly exactly) and
with the default force_fp16 (judged by onnxruntime with float16 tolerances), and its -O2
IR (cpu) and lowered IR (910B) are printed, parsed back and printed again
(tests/fuzz/differential.py says how each is judged). A GraphoptError is a refusal,
counted by reason, not a mismatch; any other exception is a crash (a bug).

The summary gives, per configuration: pass / refused / mismatch / crash (/ nojudge: cases
onnxruntime cannot run) and the time spent. With ``--out DIR`` every case that failed
somewhere is written as DIR/seed<S>.onnx (a standalone model; its metadata holds the
seed, the shape bindings and the generator features) and DIR/seed<S>.txt (what failed
where, with tracebacks, and the command that reruns it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fuzz: the generator

from tests.fuzz.differential import CONFIGS, STATUSES, Config, Outcome, refusal_reason, run_case
from tests.fuzz.graphs import FEATURES, Case, case_from_model, make_case


def _one(seed: int, exclude: tuple[str, ...], configs: tuple[str, ...], time_limit: float) -> tuple[int, list[Outcome], float, str]:
    t0 = time.perf_counter()
    try:
        case = make_case(seed, exclude)
    except Exception as e:  # a generator bug: say so, keep going
        return seed, [], time.perf_counter() - t0, f"generator: {type(e).__name__}: {e}"
    chosen = [c for c in CONFIGS if not configs or c.name in configs]
    return seed, run_case(case, chosen, time_limit), time.perf_counter() - t0, ""


def _write_failure(out: Path, case: Case, outcomes: list[Outcome]) -> None:
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    onnx.save(case.model, str(out / f"seed{case.seed}.onnx"))
    lines = [f"seed {case.seed}", f"features: {', '.join(sorted(case.features))}",
             f"shapes: {case.shapes or '(static)'}",
             f"rerun: .venv/bin/python benchmarks/fuzz.py --model {out / f'seed{case.seed}.onnx'} -v", ""]
    for o in outcomes:
        lines.append(f"{o.config}: {o.status} {o.detail}")
    for o in outcomes:
        if o.trace:
            lines += ["", f"--- {o.config} ---", o.trace.rstrip()]
    lines += ["", case.describe()]
    (out / f"seed{case.seed}.txt").write_text("\n".join(lines) + "\n")


def _needs(name: str) -> list[Config]:
    """A configuration with the ones it is judged by or round-trips (run before it)."""
    cfg = next(c for c in CONFIGS if c.name == name)
    first = [c for c in CONFIGS if c.name in (cfg.roundtrip_of, cfg.judge)]
    return [*first, cfg]


def _signature(o: Outcome) -> str:
    return o.status if o.status == "mismatch" else f"{o.status}: {refusal_reason(o.detail)[:60]}"


def _reduce(args: argparse.Namespace, names: list[str], exclude: tuple[str, ...]) -> int:
    import onnx

    from tests.fuzz.reduce import reduce_case

    if args.model is not None:
        case = case_from_model(onnx.load(str(args.model)))
    elif args.cases == 1:
        case = make_case(args.seed, exclude)
    else:
        print("--reduce needs --model FILE, or --seed S --cases 1", file=sys.stderr)
        return 2
    outcomes = run_case(case, [c for c in CONFIGS if c.name in names], args.time_limit)
    failed = [o for o in outcomes if o.status in ("mismatch", "crash")
              or (args.reduce_refusal and o.status == "refused" and args.reduce_refusal in o.detail)]
    if not failed:
        print(f"seed {case.seed}: nothing fails")
        return 0
    out = args.out or Path(".")
    done: set[str] = set()
    for o in failed:
        sig = _signature(o)
        if sig in done:  # one reduction per distinct failure
            continue
        done.add(sig)
        chain = _needs(o.config)
        print(f"seed {case.seed} {o.config}: {o.status} {o.detail[:200]}")

        def still_fails(trial: Case, config: str = o.config, chain: list[Config] = chain, sig: str = sig) -> bool:
            got = next(r for r in run_case(trial, chain, args.time_limit) if r.config == config)
            return _signature(got) == sig

        small = reduce_case(case, still_fails, log=print if args.verbose else None)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"seed{case.seed}.{o.config.replace(' ', '_')}.min.onnx"
        onnx.save(small.model, str(path))
        final = next(r for r in run_case(small, chain, args.time_limit) if r.config == o.config)
        print(f"reduced to {len(small.model.graph.node)} nodes: {path}\n{final.status} {final.detail[:300]}")
        print(small.describe())
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=None, help="run until this much time has passed")
    ap.add_argument("--cases", type=int, default=None, help="run this many cases (default 200 without --minutes)")
    ap.add_argument("--seed", type=int, default=0, help="the first seed (cases use seed, seed+1, ...)")
    ap.add_argument("--out", type=Path, default=None, help="write failing cases here (.onnx and .txt per seed)")
    ap.add_argument("--exclude", default="", help=f"generator features to leave out, comma-separated ({', '.join(FEATURES)})")
    ap.add_argument("--configs", default="", help="only these configurations, comma-separated: " + ", ".join(c.name for c in CONFIGS))
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (the machine is shared: default 1)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per configuration of a case before it counts as a crash")
    ap.add_argument("--model", type=Path, default=None, help="run this saved case (an .onnx written by --out, or a reduction of one)")
    ap.add_argument("--reduce", action="store_true",
                    help="with --model, or --seed and --cases 1: reduce each failure to a small graph (written to --out)")
    ap.add_argument("--reduce-refusal", default="", metavar="TEXT",
                    help="with --reduce: also reduce a refusal whose message holds TEXT (one that looks like a bug)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each failure as it happens (and the graph of a single case)")
    args = ap.parse_args(argv)

    exclude = tuple(f for f in args.exclude.split(",") if f)
    unknown = set(exclude) - set(FEATURES)
    if unknown:
        ap.error(f"--exclude {','.join(sorted(unknown))}: not generator features; known: {', '.join(FEATURES)}")
    configs = tuple(c for c in args.configs.split(",") if c)
    if set(configs) - {c.name for c in CONFIGS}:
        ap.error(f"--configs: known configurations are {', '.join(c.name for c in CONFIGS)}")
    names = [c.name for c in CONFIGS if not configs or c.name in configs]

    if args.reduce:
        return _reduce(args, names, exclude)

    if args.model is not None:
        import onnx

        case = case_from_model(onnx.load(str(args.model)))
        if args.verbose:
            print(case.describe())
        t0 = time.perf_counter()
        outcomes = run_case(case, [c for c in CONFIGS if c.name in names], args.time_limit)
        for o in outcomes:
            print(f"{o.config:>15}: {o.status:<8} {o.seconds:6.2f}s {o.detail}")
            if args.verbose and o.trace:
                print(o.trace)
        print(f"{time.perf_counter() - t0:.1f} s")
        return 1 if any(o.status in ("mismatch", "crash") for o in outcomes) else 0

    cases = args.cases if args.cases is not None else (None if args.minutes else 200)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    counts: dict[str, Counter[str]] = {n: Counter() for n in names}
    seconds: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    reason_seeds: dict[tuple[str, str], list[int]] = defaultdict(list)
    failures: dict[tuple[str, str], list[int]] = defaultdict(list)  # (config, status: detail) -> seeds
    fp32_err: dict[str, list[float]] = defaultdict(list)
    generator_errors: list[str] = []
    done, t_start = 0, time.perf_counter()

    def seeds():
        s = args.seed
        while (cases is None or s < args.seed + cases) and (deadline is None or time.monotonic() < deadline):
            yield s
            s += 1

    def record(seed: int, outcomes: list[Outcome], case_seconds: float, gen_error: str) -> None:
        nonlocal done
        done += 1
        if gen_error:
            generator_errors.append(f"seed {seed}: {gen_error}")
            print(f"seed {seed}: {gen_error}", flush=True)
            return
        bad = [o for o in outcomes if o.status in ("mismatch", "crash")]
        for o in outcomes:
            counts[o.config][o.status] += 1
            seconds[o.config] += o.seconds
            if o.status == "refused":
                reasons[o.config][refusal_reason(o.detail)] += 1
                reason_seeds[(o.config, refusal_reason(o.detail))].append(seed)
            if o.status in ("mismatch", "crash"):
                failures[(o.config, f"{o.status}: {refusal_reason(o.detail)[:120]}")].append(seed)
            if "rel" in o.errors:
                fp32_err[o.config].append(o.errors["rel"])
                fp32_err[o.config + " abs"].append(o.errors["abs"])
        if bad:
            if args.verbose or cases == 1:
                for o in bad:
                    print(f"seed {seed} {o.config}: {o.status} {o.detail}", flush=True)
            if args.out is not None:
                _write_failure(args.out, make_case(seed, exclude), outcomes)
        if done % 10 == 0 or cases == 1:
            mism = sum(c["mismatch"] for c in counts.values())
            crash = sum(c["crash"] for c in counts.values())
            print(f"[{done} cases, {time.perf_counter() - t_start:.0f} s] {mism} mismatches, {crash} crashes", flush=True)

    if cases == 1 and args.verbose:
        print(make_case(args.seed, exclude).describe())
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            pending = set()
            it = iter(seeds())
            for seed in it:
                pending.add(pool.submit(_one, seed, exclude, configs, args.time_limit))
                if len(pending) >= 2 * args.jobs:
                    finished = next(f for f in pending if f.done()) if any(f.done() for f in pending) else None
                    while finished is None:
                        time.sleep(0.05)
                        finished = next((f for f in pending if f.done()), None)
                    pending.discard(finished)
                    record(*finished.result())
            for f in pending:
                record(*f.result())
    else:
        for seed in seeds():
            record(*_one(seed, exclude, configs, args.time_limit))

    wall = time.perf_counter() - t_start
    print()
    print(f"{done} cases (seeds {args.seed}..{args.seed + done - 1}), {wall:.0f} s wall, {args.jobs} job(s)"
          + (f", excluding {', '.join(exclude)}" if exclude else ""))
    width = max(len(n) for n in names)
    print(f"{'configuration':<{width}}  " + "  ".join(f"{s:>8}" for s in STATUSES) + f"  {'time (s)':>9}")
    for n in names:
        print(f"{n:<{width}}  " + "  ".join(f"{counts[n][s]:>8}" for s in STATUSES) + f"  {seconds[n]:>9.1f}")
    for n in names:
        if fp32_err.get(n):
            rel, ab = np.asarray(fp32_err[n]), np.asarray(fp32_err[n + " abs"])
            print(f"{n} vs cpu -O2: max rel err {rel.max():.2e} (99th pct {np.percentile(rel, 99):.2e}), "
                  f"max abs err / max(1, peak) {ab.max():.2e}")
    if any(reasons.values()):
        print("\nrefused, by reason:")
        for n in names:
            for why, k in reasons[n].most_common():
                some = reason_seeds[(n, why)]
                print(f"  {n}: {k} x {why}  [seeds {', '.join(map(str, some[:5]))}{' ...' if len(some) > 5 else ''}]")
    if failures:
        print("\nmismatches and crashes:")
        for (n, what), seeds_ in sorted(failures.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
            shown = ", ".join(map(str, seeds_[:8])) + (" ..." if len(seeds_) > 8 else "")
            print(f"  {n}: {len(seeds_)} x {what}  [seeds {shown}]")
    if generator_errors:
        print(f"\ngenerator errors: {len(generator_errors)}")
        for line in generator_errors[:10]:
            print(f"  {line}")
    if args.out is not None and failures:
        print(f"\nfailing cases written to {args.out}/")
    return 1 if failures or generator_errors else 0


if __name__ == "__main__":
    sys.exit(main())
