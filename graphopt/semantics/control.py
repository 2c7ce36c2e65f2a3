"""Control flow: If, Loop, Scan.

Their bodies arrive as Python callables (see the contract in ``__init__.py``):
``body(*inputs) -> list`` runs the op's region on the given block arguments and returns
what its ``graph.yield`` yields. The rules only decide which body runs, how often, and
how the results are gathered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphopt.semantics import rule

Body = Callable[..., list[Any]]


def _truth(x: Any) -> bool:
    return bool(np.asarray(x).reshape(-1)[0])


@rule("If")
def if_(cond: np.ndarray, *, then_branch: Body, else_branch: Body) -> tuple[Any, ...]:
    return tuple((then_branch if _truth(cond) else else_branch)())


@rule("Loop")
def loop(trip_count: np.ndarray | None, cond: np.ndarray | None, *initial: Any, body: Body) -> tuple[Any, ...]:
    """``for i in range(M) while cond``; either bound may be absent (None)."""
    limit = None if trip_count is None else int(np.asarray(trip_count).reshape(-1)[0])
    keep = True if cond is None else _truth(cond)
    carried = list(initial)
    scans: list[list[Any]] = []
    i = 0
    while keep and (limit is None or i < limit):
        outs = body(np.array(i, dtype=np.int64), np.array(keep), *carried)
        keep = _truth(outs[0])
        carried = list(outs[1 : 1 + len(initial)])
        scans.append(list(outs[1 + len(initial) :]))
        i += 1
    if not scans:
        # No iteration ran: the body's outputs are not known, so neither are empty scans.
        return tuple(carried)
    stacked = [np.stack([step[j] for step in scans]) for j in range(len(scans[0]))]
    return (*carried, *stacked)


def _axes(values: Sequence[int] | None, count: int) -> list[int]:
    return list(values) if values else [0] * count


@rule("Scan")
def scan(
    *inputs: np.ndarray,
    body: Body,
    num_scan_inputs: int,
    scan_input_axes: Sequence[int] | None = None,
    scan_input_directions: Sequence[int] | None = None,
    scan_output_axes: Sequence[int] | None = None,
    scan_output_directions: Sequence[int] | None = None,
    directions: Sequence[int] | None = None,  # opset 8's name; not set on legalized ops
) -> tuple[np.ndarray, ...]:
    """Run ``body`` over slices of the scan inputs, carrying the states; stack what it yields."""
    n = len(inputs) - num_scan_inputs
    states = list(inputs[:n])
    in_dirs = _axes(scan_input_directions, num_scan_inputs)
    xs = [np.moveaxis(x, a % x.ndim, 0) for x, a in zip(inputs[n:], _axes(scan_input_axes, num_scan_inputs))]
    xs = [x[::-1] if d else x for x, d in zip(xs, in_dirs)]
    length = xs[0].shape[0] if xs else 0
    per_step: list[list[np.ndarray]] = []
    for t in range(length):
        outs = body(*states, *[x[t] for x in xs])
        states = list(outs[:n])
        per_step.append(list(outs[n:]))
    n_out = len(per_step[0]) if per_step else 0
    out_axes = _axes(scan_output_axes, n_out)
    out_dirs = _axes(scan_output_directions, n_out)
    results = []
    for j in range(n_out):
        stacked = np.stack([step[j] for step in per_step])
        if out_dirs[j]:
            stacked = stacked[::-1]
        results.append(np.ascontiguousarray(np.moveaxis(stacked, 0, out_axes[j] % stacked.ndim)))
    return (*states, *results)
