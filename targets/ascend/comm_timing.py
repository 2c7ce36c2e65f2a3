"""Collectives on their own stream, beside the compute kernels: the step's time with overlap.

A graph's kernels run in program order on one compute stream; its collectives (``comm``
kernels) on a communication stream, as HCCL runs them. A collective starts when the
compute stream has done everything issued before it (the event HCCL waits on) and the
communication stream is free, and lasts what the cluster's link model says
(``cluster.collective_time``). Its graph.wait holds the compute stream until it ends. So a
collective issued early and waited for late hides behind the compute in between; the part
of it the wait holds the compute stream for is *exposed*, the rest *hidden*.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.ir import SSAValue

from graphopt.dialects.graph import provenance
from graphopt.errors import GraphoptError
from graphopt.targets.ascend.cluster import Cluster, collective_time, layout
from graphopt.targets.ascend.dialect import KernelOp
from graphopt.targets.ascend.group import np_dtype, shape
from graphopt.targets.ascend.timing import SimResult
from graphopt.targets.ascend.vector import Numerics


@dataclass
class CommEvent:
    name: str  # the kernel's
    op: str
    nbytes: float
    ranks: int
    servers: int
    algorithm: str
    formula: str
    us: float
    start_us: float = 0.0
    end_us: float = 0.0
    exposed_us: float = 0.0  # how long its wait held the compute stream


@dataclass
class Schedule:
    starts: dict[str, float]  # compute kernel name -> start time on the compute stream
    collectives: list[CommEvent]
    total_us: float  # the last of the two streams to finish


def collective_of(kernel: KernelOp) -> Any:
    """The graph op a comm kernel holds (its body: the op, then a yield)."""
    return next(o for o in kernel.body.block.ops if not o.name.endswith("yield"))


def _ranks(op: Any, world: int) -> list[int]:
    """The global ranks of a collective's group: its ``ranks``, else ``group_size`` ranks
    from 0 (a group of the first servers), else the cluster world ``world`` given."""
    attrs = op.onnx_attrs()
    if op.ONNX_TYPE in ("Send", "Recv"):  # the pair; without the sender's rank, rank 0's view
        return [int(r) for r in attrs.get("ranks") or [0, int(attrs.get("peer", 0))]]
    if attrs.get("ranks"):
        return [int(r) for r in attrs["ranks"]]
    size = int(attrs.get("group_size") or world or 0)
    if size < 1:
        raise GraphoptError(f"collective {op.name} (node {', '.join(provenance(op)) or '?'}): "
                            "its group's ranks are unknown (a graph captured outside a torch.distributed job); "
                            "give the ranks or group_size")
    return list(range(size))


def comm_cost(cluster: Cluster, kernel: KernelOp, num: Numerics | None = None, world: int = 0) -> CommEvent:
    """What one collective costs; ``num``: the precision mode's numerics, whose storage
    dtype the tensor has on the device (float16 under force_fp16)."""
    op = collective_of(kernel)
    kind = op.ONNX_TYPE
    ranks = _ranks(op, world)
    # What moves: an all-gather's whole output, every other collective's input.
    v = kernel.outputs[0] if kind in ("AllGather", "Recv") else kernel.inputs[0]
    stored = num.store(np_dtype(v)) if num is not None else np_dtype(v)
    nbytes = float(math.prod(shape(v)) * stored.itemsize)
    cost = collective_time(cluster, kind, nbytes, ranks)
    servers, _ = layout(cluster, ranks)
    return CommEvent(kernel.sym_name.data, kind, nbytes, len(ranks), servers, cost.algorithm, cost.formula, cost.us)


def schedule(cluster: Cluster | None, kernels: Sequence[KernelOp], results: Sequence[SimResult],
             skip: Collection[str] = (), num: Numerics | None = None) -> Schedule:
    """The two streams over ``kernels`` in program order; ``results`` are the compute
    kernels' simulated times (a kernel without one, such as one with run-time sizes, takes
    none); ``skip``: kernels left out of the step (parameter conversions)."""
    time_of = {r.name: r.time_us for r in results}
    t = comm_free = 0.0
    starts: dict[str, float] = {}
    events: list[CommEvent] = []
    ends: dict[SSAValue, tuple[float, CommEvent]] = {}  # a collective's result -> when it is complete
    for k in kernels:
        name = k.sym_name.data
        if name in skip:
            continue
        if k.kind.data != "comm":
            starts[name] = t
            t += time_of.get(name, 0.0)
            continue
        op = collective_of(k)
        if op.ONNX_TYPE == "Wait":
            done = ends.get(k.inputs[0])
            if done is not None:
                end, event = done
                event.exposed_us += max(0.0, end - t)
                t = max(t, end)
            continue
        if cluster is None:
            raise GraphoptError(f"kernel {name}: a collective needs a cluster description to be timed (--cluster)")
        event = comm_cost(cluster, k, num)
        event.start_us = max(t, comm_free)
        event.end_us = comm_free = event.start_us + event.us
        ends[k.outputs[0]] = (event.end_us, event)
        events.append(event)
    return Schedule(starts, events, max(t, comm_free))


def collectives_section(s: Schedule) -> dict[str, Any]:
    """report.json's timing keys for the collectives (none without any)."""
    if not s.collectives:
        return {}
    total = sum(e.us for e in s.collectives)
    exposed = sum(e.exposed_us for e in s.collectives)
    return {
        "collective_us": round(total, 3),
        "collective_exposed_us": round(exposed, 3),
        "collective_hidden_us": round(total - exposed, 3),
        "collectives": [{"name": e.name, "op": e.op, "bytes": e.nbytes, "ranks": e.ranks, "servers": e.servers,
                         "algorithm": e.algorithm, "formula": e.formula, "us": round(e.us, 3),
                         "start_us": round(e.start_us, 3), "end_us": round(e.end_us, 3),
                         "exposed_us": round(e.exposed_us, 3)} for e in s.collectives],
    }
