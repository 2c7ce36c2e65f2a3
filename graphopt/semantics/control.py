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
    """``for i in range(M) while cond``; either bound may be absent (None).

    Only the scan outputs are kept across iterations (a loop without them runs in
    constant memory, however long); they are refused once they outgrow the memory limit."""
    from graphopt import limits

    limit = None if trip_count is None else int(np.asarray(trip_count).reshape(-1)[0])
    keep = True if cond is None else _truth(cond)
    n = len(initial)
    carried = list(initial)
    scans: list[list[Any]] | None = None  # per scan output, its values so far
    held, budget = 0, limits.max_memory()
    i = 0
    while keep and (limit is None or i < limit):
        outs = body(np.array(i, dtype=np.int64), np.array(keep), *carried)
        keep = _truth(outs[0])
        carried = list(outs[1 : 1 + n])
        if len(outs) > 1 + n:
            if scans is None:
                scans = [[] for _ in outs[1 + n :]]
            for column, value in zip(scans, outs[1 + n :]):
                column.append(value)
                held += np.asarray(value).nbytes
            if held > budget:
                raise ValueError(f"its scan outputs take {limits.human(held)} after {i + 1} iterations, more than the "
                                 f"memory limit of {limits.human(budget)}; bound the loop, or raise the limit with --max-memory")
        i += 1
    if scans is None:
        # No scan outputs, or no iteration ran: each scan output is empty, (0, *the shape
        # the body yields); a caller that cannot say those shapes gets the carried values.
        return (*carried, *(_empty_scans(body, 1 + n) or ()))
    stacked = [np.stack(column) for column in scans]
    return (*carried, *stacked)


def _empty_scans(body: Body, first: int) -> list[np.ndarray] | None:
    """Empty scan outputs (no iteration ran), from the types of what ``body`` yields from
    position ``first`` on: a body that tells them (``body.yields``: (shape, dtype) pairs,
    as the cpu target's bodies do) shapes them; otherwise None."""
    wants = getattr(body, "yields", None)
    if wants is None:
        return None
    empty = []
    for want in list(wants)[first:]:
        if not isinstance(want, tuple):  # a sequence: no empty value to stack
            return None
        shape, dtype = want
        empty.append(np.zeros((0, *(max(d, 0) for d in shape)), dtype))
    return empty


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
    # A scan of length 0: empty scan outputs, shaped by the body's types where it tells them.
    columns = [np.stack(column) for column in zip(*per_step)] if per_step else _empty_scans(body, n) or []
    n_out = len(columns)
    out_axes = _axes(scan_output_axes, n_out)
    out_dirs = _axes(scan_output_directions, n_out)
    results = []
    for j, stacked in enumerate(columns):
        if out_dirs[j]:
            stacked = stacked[::-1]
        results.append(np.ascontiguousarray(np.moveaxis(stacked, 0, out_axes[j] % stacked.ndim)))
    return (*states, *results)
