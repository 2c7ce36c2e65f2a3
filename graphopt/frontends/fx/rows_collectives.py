"""``FX_TO_GRAPH`` rows for torch's functional collectives (``torch.ops._c10d_functional``):
what DDP's compiled buckets, FSDP2 and tensor parallelism (DTensor's redistributions) put
in a captured graph. Each becomes the graph dialect's collective of the same name, with its
process group by torch's group name and the global ranks in it (read from the live group at
capture: a collective belongs to a job), and ``wait_tensor`` becomes graph.wait."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from xdsl.ir import SSAValue

from graphopt.frontends.fx.lowering import Lowering, row

funcol = torch.ops._c10d_functional


def _group(L: Lowering, group_name: Any) -> dict[str, Any]:
    """The group attributes: its name, and its global ranks when the group is live."""
    import torch.distributed as dist

    name = str(group_name)
    ranks: list[int] = []
    if dist.is_available() and dist.is_initialized():
        from torch.distributed.distributed_c10d import _resolve_process_group

        try:
            ranks = list(dist.get_process_group_ranks(_resolve_process_group(name)))
        except (ValueError, RuntimeError, KeyError):
            ranks = []
    return {"group": name, **({"ranks": ranks} if ranks else {})}


def _reduce_op(op: Any) -> str:
    return str(op).lower().rsplit(".", 1)[-1]


@row(funcol.all_reduce.default)
def _all_reduce(L: Lowering, x: SSAValue, reduce_op: Any, group_name: Any) -> SSAValue:
    return L.op("graphopt::AllReduce", [x], {"reduce_op": _reduce_op(reduce_op), **_group(L, group_name)},
                specs=[L.out_spec()])


@row(funcol.all_gather_into_tensor.default)
def _all_gather(L: Lowering, x: SSAValue, group_size: int, group_name: Any) -> SSAValue:
    return L.op("graphopt::AllGather", [x], {"group_size": int(group_size), **_group(L, group_name)},
                specs=[L.out_spec()])


@row(funcol.reduce_scatter_tensor.default)
def _reduce_scatter(L: Lowering, x: SSAValue, reduce_op: Any, group_size: int, group_name: Any) -> SSAValue:
    return L.op("graphopt::ReduceScatter", [x], {"reduce_op": _reduce_op(reduce_op), "group_size": int(group_size),
                                                 **_group(L, group_name)}, specs=[L.out_spec()])


@row(funcol.all_to_all_single.default)
def _all_to_all(L: Lowering, x: SSAValue, output_split_sizes: Sequence[int] | None,
                input_split_sizes: Sequence[int] | None, group_name: Any) -> SSAValue:
    attrs = {"output_split_sizes": [int(s) for s in output_split_sizes or ()],
             "input_split_sizes": [int(s) for s in input_split_sizes or ()], **_group(L, group_name)}
    return L.op("graphopt::AllToAll", [x], attrs, specs=[L.out_spec()])


@row(funcol.broadcast.default)
def _broadcast(L: Lowering, x: SSAValue, src: int, group_name: Any) -> SSAValue:
    return L.op("graphopt::Broadcast", [x], {"src": int(src), **_group(L, group_name)}, specs=[L.out_spec()])


@row(funcol.wait_tensor.default)
def _wait(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("graphopt::Wait", [x], {}, specs=[L.out_spec()])
