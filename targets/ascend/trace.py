"""Chrome / Perfetto trace of the timing simulation (`--trace FILE`).

Layout: one process (pid) per kernel, placed one after another on the time axis as the
kernels run; inside it, one lane (tid) per pipe per simulated core ("core0 AIC M",
"core1 AIV V", ...). Every instruction is a complete event (ph "X") named after its kernel,
operation and tile indices. Perfetto needs the events of one lane to nest perfectly; pipes
are in-order queues, so a lane's events never overlap, and `check_nesting` proves it before
anything is written. Times are microseconds (the format's unit).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.comm_timing import Schedule
from graphopt.targets.ascend.timing import SimResult

_PIPE_ORDER = ("S", "MTE2", "MTE1", "M", "FIX", "V", "MTE3")


def trace_events(chip: Chip, results: list[SimResult], steps: Schedule | None = None) -> list[dict[str, Any]]:
    """Metadata and complete events for every kernel, back to back from t = 0 (or where
    ``steps``, the two streams' schedule, starts them), and the collectives on a lane of
    their own ("HCCL")."""
    events: list[dict[str, Any]] = []
    t0 = 0.0
    if steps is not None and steps.collectives:
        pid = len(results) + 1
        events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": "HCCL (collectives)"}})
        events.append({"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": 0}})
        events.append({"ph": "M", "pid": pid, "tid": 0, "name": "thread_name", "args": {"name": "communication stream"}})
        for c in steps.collectives:
            events.append({"ph": "X", "pid": pid, "tid": 0, "name": f"{c.name} {c.op} {c.nbytes / 1e6:.2f} MB x {c.ranks}",
                           "cat": "comm", "ts": c.start_us, "dur": c.us,
                           "args": {"algorithm": c.algorithm, "formula": c.formula, "exposed_us": c.exposed_us}})
    for pid, r in enumerate(results, start=1):
        if steps is not None and r.name in steps.starts:
            t0 = steps.starts[r.name]
        events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": f"{r.name} ({r.kind}, {r.bound}-bound)"}})
        events.append({"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}})
        launch_us = chip.cycles_to_us(r.launch_cycles)
        events.append({"ph": "X", "pid": pid, "tid": 0, "name": f"{r.name} launch", "ts": t0, "dur": launch_us, "cat": "launch"})
        events.append({"ph": "M", "pid": pid, "tid": 0, "name": "thread_name", "args": {"name": "launch"}})
        lanes: dict[tuple[int, str], int] = {}
        for ev in r.trace:
            key = (ev.core, ev.pipe)
            if key not in lanes:
                tid = lanes[key] = 1 + ev.core * len(_PIPE_ORDER) + _PIPE_ORDER.index(ev.pipe)
                unit = "AIV" if ev.core % 2 else "AIC" if r.kind == "cube" else "core"
                events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                               "args": {"name": f"core{ev.core // 2} {unit} {ev.pipe}"}})
                events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
            start = t0 + launch_us + chip.cycles_to_us(ev.start)
            events.append({"ph": "X", "pid": pid, "tid": lanes[key], "name": ev.name, "cat": ev.pipe,
                           "ts": start, "dur": chip.cycles_to_us(ev.end - ev.start)})
        t0 += r.time_us
    return events


def check_nesting(events: list[dict[str, Any]]) -> None:
    """Raise unless the complete events of every (pid, tid) lane nest perfectly."""
    lanes: dict[tuple[int, int], list[tuple[float, float, str]]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            lanes[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"], e["name"]))
    eps = 1e-6
    for lane, spans in lanes.items():
        stack: list[tuple[float, float, str]] = []
        for start, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start + eps:
                stack.pop()
            if stack and end > stack[-1][1] + eps:
                raise GraphoptError(f"trace lane {lane}: '{name}' overlaps '{stack[-1][2]}' without nesting")
            stack.append((start, end, name))


def write_trace(chip: Chip, results: list[SimResult], path: str | Path, steps: Schedule | None = None) -> Path:
    """Validate, then write the trace JSON object."""
    events = trace_events(chip, results, steps)
    check_nesting(events)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"displayTimeUnit": "ns", "traceEvents": events}) + "\n")
    return out
