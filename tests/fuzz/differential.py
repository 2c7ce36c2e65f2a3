"""Differential runs of one generated case over every target (benchmarks/fuzz.py and
tests/fuzz/test_targets_fuzz.py share this).

Each configuration compiles the case and runs it on the case's inputs; its outputs are
judged:
- cpu at -O0 to -O3: against onnxruntime, with validation's float32 tolerance
  (``graphopt.validate.compare``; the depth of the deepest reduction widens it);
- ascend-sim (910B and 310P) with ``precision=must_keep_origin_dtype``: against the cpu
  target's -O2 result, nearly exactly (``FP32_RTOL``, ``FP32_ATOL`` times the output's
  largest magnitude); against onnxruntime with validation's float32 tolerance when the cpu
  target has no result;
- ascend-sim (both chips) with the default ``force_fp16``: against onnxruntime with
  validation's tolerance for a float16-computing target (``compare(..., compute_dtype)``,
  then within 2x of the float16 rounding floor, ``validate.rounding_floor``);
- the ``graphopt opt`` round trip: the cpu -O2 module and the lowered ascend-sim module
  printed, parsed back and printed again give the same text.

An outcome is one of: ``pass``; ``refused`` (a GraphoptError: graphopt declined the model
with a message, which is not a wrong answer; but a GraphoptError that passes on a kernel's
Python exception is a crash, since the generated inputs are always valid); ``mismatch`` (outputs beyond tolerance, or a
round trip that changed the text); ``crash`` (any other exception: a graphopt bug); and
``nojudge`` (onnxruntime itself cannot run the case: a generator problem).
"""

from __future__ import annotations

import re
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.fuzz.graphs import Case

# ascend-sim with must_keep_origin_dtype against the cpu target's float32 result: what is
# achievable. Tiled reductions and the cube's fp32 accumulation sum in another order than
# numpy, so the last bits differ: over ~5,000 cases the worst absolute error was 1.4e-6 of
# the output's largest magnitude, and relative errors above 1e-5 (up to 3.5e-4) occur only
# on elements far below that magnitude (a sum that nearly cancels). Every case passed
# |ours - cpu| <= 1e-5 |cpu| + 1e-6 max(1, peak); 1e-6 alone would not hold.
FP32_RTOL = 1e-5
FP32_ATOL = 1e-6  # times max(1, the output's largest magnitude)
# An output far smaller than the values it was computed from (a sum of normalised values,
# which cancels to ~1e-6: seed 26588) carries their rounding error, not its own: when the
# output's own peak fails, the judge retries with the largest magnitude of any value in the
# reference run (onnxruntime with every node's result exposed).

WRAPPED = re.compile(r"\b(?:[A-Z][A-Za-z]*Error|Exception|IndexError|KeyError): "
                     # an op of the target's own dialect reaching the cpu kernels (an AI CPU kernel)
                     r"|the cpu target has no kernel for ascend\.")

STATUSES = ("pass", "refused", "mismatch", "crash", "nojudge")


@dataclass(frozen=True)
class Config:
    name: str
    target: str = "cpu"
    opt_level: int = 2
    target_options: tuple[tuple[str, Any], ...] = ()
    judge: str = "onnxruntime"  # or "cpu -O2": the cpu target's result
    roundtrip_of: str | None = None  # a round trip of that configuration's module

    @property
    def fp16(self) -> bool:
        return self.target.startswith("ascend") and dict(self.target_options).get("precision", "force_fp16") != "must_keep_origin_dtype"


FP32 = (("precision", "must_keep_origin_dtype"),)
CONFIGS: tuple[Config, ...] = (
    Config("cpu -O0", opt_level=0),
    Config("cpu -O1", opt_level=1),
    Config("cpu -O2", opt_level=2),
    Config("cpu -O3", opt_level=3),
    Config("910b fp32", "ascend-sim", target_options=FP32, judge="cpu -O2"),
    Config("910b fp16", "ascend-sim"),
    Config("310p fp32", "ascend-sim:ascend310p", target_options=FP32, judge="cpu -O2"),
    Config("310p fp16", "ascend-sim:ascend310p"),
    Config("roundtrip cpu", roundtrip_of="cpu -O2"),
    Config("roundtrip 910b", roundtrip_of="910b fp16"),
)


@dataclass
class Outcome:
    config: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    trace: str = ""  # the traceback of a crash
    errors: dict[str, float] = field(default_factory=dict)  # fp32 configs: the measured error


class Timeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float | None):
    """Raise Timeout in the main thread after ``seconds`` (no limit elsewhere)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Timeout(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def refusal_reason(message: str) -> str:
    """A refusal's message with the model's names and numbers blanked, so that refusals
    for one reason group together."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    text = re.sub(r"\b(?:[A-Za-z]+_)?[a-z]{1,6}\d+(?:_[a-z]+\d*)*\b", "<name>", first)
    text = re.sub(r"\d+(?:\.\d+)?(?:e-?\d+)?", "#", text)
    return text[:140]


def onnxruntime_outputs(case: Case) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Basic level, as validation runs it: the judge follows the ONNX spec.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(case.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in case.model.graph.output]
    return [np.asarray(v) for v in session.run(names, case.feeds)]


def value_peak(case: Case) -> float:
    """The largest finite magnitude of any float value the case computes (its inputs and
    every node's result, as onnxruntime computes them); 1.0 when onnxruntime cannot say."""
    from graphopt.errors import GraphoptError
    from graphopt.validate import node_values

    try:
        values = list(node_values(case.model, case.feeds).values())
    except GraphoptError:
        return 1.0
    peak = 1.0
    for v in [*values, *case.feeds.values()]:
        a = np.asarray(v)
        if a.dtype.kind == "f" and a.size:
            finite = np.abs(a[np.isfinite(a)].astype(np.float64))
            peak = max(peak, float(finite.max()) if finite.size else 0.0)
    return peak


def _judge(outs: dict[str, np.ndarray], refs: Sequence[np.ndarray], names: Sequence[str], depth: int,
           fp16: bool, exact: bool, peak_of_values: float | None = None,
           floors: Sequence[float | None] | None = None) -> tuple[bool, str, dict[str, float]]:
    from graphopt.validate import compare, judge_by_floor

    if list(outs) != list(names):
        return False, f"outputs {list(outs)}, expected {list(names)}", {}
    problems: list[str] = []
    errors = {"abs": 0.0, "rel": 0.0} if exact else {}
    for name, ref in zip(names, refs):
        ours = np.asarray(outs[name])
        tol = None
        if exact:
            peak = float(np.nanmax(np.abs(ref))) if ref.size and np.isfinite(ref).any() else 1.0
            tol = (FP32_RTOL, FP32_ATOL * max(1.0, peak, peak_of_values or 0.0))
            if ours.shape == ref.shape and ref.size:
                diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
                errors["abs"] = max(errors["abs"], float(np.nanmax(diff)) / max(1.0, peak))
                big = np.abs(ref) > 1e-3 * max(1.0, peak)
                if big.any():
                    errors["rel"] = max(errors["rel"], float(np.nanmax(diff[big] / np.abs(ref[big]))))
        entry = compare(name, ours, np.asarray(ref), depth, np.dtype(np.float16) if fp16 else None, tol=tol)
        if floors is not None:  # float16: what float16 costs the case, as validation judges it
            judge_by_floor(entry, floors[names.index(name)])
        if not entry["passed"]:
            why = entry.get("why") or (f"max abs err {entry['max_abs_err']:.3g}, max rel err {entry['max_rel_err']:.3g} "
                                       f"(rtol {entry.get('rtol', 0):.3g}, atol {entry.get('atol', 0):.3g}), "
                                       f"worst at {entry.get('worst_index')}")
            problems.append(f"{name}: {why}")
    return not problems, "; ".join(problems), errors


def _roundtrip(compiled: Any) -> tuple[bool, str]:
    from graphopt.ir import make_context, parse_module, print_module

    text = print_module(compiled.module)
    again = parse_module(make_context(compiled.weights), text, "<roundtrip>")
    again.verify()
    second = print_module(again)
    if second == text:
        return True, ""
    a, b = text.splitlines(), second.splitlines()
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return False, f"line {k + 1} printed {a[k].strip()[:160] if k < len(a) else '<end>'!r}, reparsed {b[k].strip()[:160] if k < len(b) else '<end>'!r}"


def run_case(case: Case, configs: Sequence[Config] = CONFIGS, time_limit: float | None = 120.0) -> list[Outcome]:
    """Every configuration on ``case``; one Outcome each, in ``configs`` order."""
    import graphopt
    from graphopt.errors import GraphoptError
    from graphopt.validate import reduction_depth

    names = [o.name for o in case.model.graph.output]
    try:
        refs: list[np.ndarray] | None = onnxruntime_outputs(case)
        judge_error = ""
    except Exception as e:
        refs, judge_error = None, f"onnxruntime cannot run the case: {str(e).strip().splitlines()[0][:300]}"
    compiled: dict[str, Any] = {}
    results: dict[str, dict[str, np.ndarray]] = {}
    outcomes: list[Outcome] = []
    depth = 1
    for cfg in configs:
        t0 = time.perf_counter()
        try:
            with _time_limit(time_limit):
                if cfg.roundtrip_of is not None:
                    if cfg.roundtrip_of not in compiled:
                        outcomes.append(Outcome(cfg.name, "refused", f"{cfg.roundtrip_of} did not compile"))
                        continue
                    ok, why = _roundtrip(compiled[cfg.roundtrip_of])
                    outcomes.append(Outcome(cfg.name, "pass" if ok else "mismatch", why, time.perf_counter() - t0))
                    continue
                c = graphopt.compile(case.model, cfg.target, opt_level=cfg.opt_level, shapes=case.shapes or None,
                                     target_options=dict(cfg.target_options) or None)
                compiled[cfg.name] = c
                if cfg.name == "cpu -O0" or depth == 1:
                    depth = max(depth, reduction_depth(c.module))
                outs = c.run(case.feeds)
                results[cfg.name] = outs
        except GraphoptError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            # A kernel's exception passed on as a GraphoptError ("graph.conv (node c1):
            # ValueError: ..."): the runners' wrapping for data a kernel refuses (an index
            # out of range). The generator's data is always valid, so here it is a bug; so
            # is an AI CPU kernel holding an op of the ascend dialect.
            status = "crash" if WRAPPED.search(first) else "refused"
            outcomes.append(Outcome(cfg.name, status, first, time.perf_counter() - t0,
                                    traceback.format_exc() if status == "crash" else ""))
            continue
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            outcomes.append(Outcome(cfg.name, "crash", f"{type(e).__name__}: {first[:300]}", time.perf_counter() - t0,
                                    traceback.format_exc()))
            continue
        seconds = time.perf_counter() - t0
        exact = cfg.judge == "cpu -O2" and "cpu -O2" in results
        if exact:
            ref_list = [results["cpu -O2"][n] for n in names]
        elif refs is not None:
            ref_list = refs
        else:
            outcomes.append(Outcome(cfg.name, "nojudge", judge_error, seconds))
            continue
        ok, why, errors = _judge(outs, ref_list, names, depth, cfg.fp16, exact)
        if exact and not ok:  # an output far below the values it came from (see FP32_ATOL)
            ok, why, errors = _judge(outs, ref_list, names, depth, cfg.fp16, exact, value_peak(case))
        if cfg.fp16 and not ok and refs is not None:  # past the fixed tolerance: validation's float16 floor
            from graphopt.validate import rounding_floor

            floors = rounding_floor(case.model, names, case.feeds, refs, np.dtype(np.float16))
            ok, why, errors = _judge(outs, ref_list, names, depth, cfg.fp16, exact, floors=floors)
        if not exact and not ok and cfg.judge == "cpu -O2":
            why = f"(judged by onnxruntime: the cpu target has no result) {why}"
        outcomes.append(Outcome(cfg.name, "pass" if ok else "mismatch", why, seconds, errors=errors))
    return outcomes
