"""Rules of the collectives (graph dialect, domain "graphopt"): torch.distributed does them.

A compiled graph inside a ``torchrun`` job is a participant like any other: each
collective runs on the live process group it names (torch's group name; the default group
when none), through torch.distributed's own calls, with no algorithm or transport of
graphopt's. They run synchronously: the collective's rule returns its result complete, and
graph.wait is the identity. torch is imported here only, when a collective runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphopt.errors import GraphoptError
from graphopt.semantics import rule


def process_group(group: str = "") -> Any:
    """The live torch process group a collective names (None: the default group); a clear
    error when torch.distributed is not there or not initialized."""
    try:
        import torch.distributed as dist
    except ImportError:
        raise GraphoptError("a graph with collectives runs on torch.distributed: install torch "
                            "(pip install 'graphopt[torch]')") from None
    if not dist.is_available() or not dist.is_initialized():
        raise GraphoptError("a graph with collectives needs an initialized torch.distributed process group "
                            "(run it under torchrun, after torch.distributed.init_process_group)")
    if not group:
        return None
    from torch.distributed.distributed_c10d import _resolve_process_group

    try:
        return _resolve_process_group(group)
    except (ValueError, RuntimeError, KeyError) as e:
        raise GraphoptError(f"collective on process group {group!r}: torch.distributed has no such group ({e})") from None


def _tensor(x: np.ndarray) -> Any:
    """A torch tensor of its own memory holding ``x`` (a collective writes in place)."""
    import torch

    return torch.from_numpy(np.array(x, order="C", copy=True))


def _reduce_op(name: str) -> tuple[Any, bool]:
    """torch's ReduceOp for ``name``, and whether to divide by the group size after a sum
    (avg: gloo has no AVG)."""
    import torch.distributed as dist

    ops = {"sum": dist.ReduceOp.SUM, "avg": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN,
           "product": dist.ReduceOp.PRODUCT, "prod": dist.ReduceOp.PRODUCT}
    if name.lower() not in ops:
        raise GraphoptError(f"collective reduce_op {name!r}: use one of {', '.join(ops)}")
    return ops[name.lower()], name.lower() == "avg"


def _finish(t: Any, average: bool, group: Any) -> np.ndarray:
    import torch.distributed as dist

    if average:
        t = t / dist.get_world_size(group)
    return t.numpy()


@rule("graphopt::AllReduce")
def all_reduce(x: np.ndarray, *, reduce_op: str = "sum", group: str = "", ranks: Sequence[int] = (),
               mesh_dim: str = "") -> np.ndarray:
    import torch.distributed as dist

    g = process_group(group)
    op, average = _reduce_op(reduce_op)
    t = _tensor(x)
    dist.all_reduce(t, op=op, group=g)
    return _finish(t, average, g)


@rule("graphopt::AllGather")
def all_gather(x: np.ndarray, *, group_size: int = 0, group: str = "", ranks: Sequence[int] = (),
               mesh_dim: str = "") -> np.ndarray:
    import torch
    import torch.distributed as dist

    g = process_group(group)
    size = dist.get_world_size(g)
    if group_size and group_size != size:
        raise GraphoptError(f"AllGather over {group_size} ranks, but process group {group or 'default'} has {size}")
    out = torch.empty((x.shape[0] * size, *x.shape[1:]), dtype=_tensor(x[:0]).dtype)
    dist.all_gather_into_tensor(out, _tensor(x), group=g)
    return out.numpy()


@rule("graphopt::ReduceScatter")
def reduce_scatter(x: np.ndarray, *, reduce_op: str = "sum", group_size: int = 0, group: str = "",
                   ranks: Sequence[int] = (), mesh_dim: str = "") -> np.ndarray:
    import torch
    import torch.distributed as dist

    g = process_group(group)
    size = dist.get_world_size(g)
    op, average = _reduce_op(reduce_op)
    out = torch.empty((x.shape[0] // size, *x.shape[1:]), dtype=_tensor(x[:0]).dtype)
    dist.reduce_scatter_tensor(out, _tensor(x), op=op, group=g)
    return _finish(out, average, g)


@rule("graphopt::AllToAll")
def all_to_all(x: np.ndarray, *, input_split_sizes: Sequence[int] = (), output_split_sizes: Sequence[int] = (),
               group: str = "", ranks: Sequence[int] = (), mesh_dim: str = "") -> np.ndarray:
    import torch
    import torch.distributed as dist

    g = process_group(group)
    rows = sum(output_split_sizes) if output_split_sizes else x.shape[0]
    out = torch.empty((rows, *x.shape[1:]), dtype=_tensor(x[:0]).dtype)
    dist.all_to_all_single(out, _tensor(x), list(output_split_sizes) or None, list(input_split_sizes) or None, group=g)
    return out.numpy()


@rule("graphopt::Broadcast")
def broadcast(x: np.ndarray, *, src: int = 0, group: str = "", ranks: Sequence[int] = (),
              mesh_dim: str = "") -> np.ndarray:
    import torch.distributed as dist

    g = process_group(group)
    t = _tensor(x)
    dist.broadcast(t, src=src, group=g)
    return t.numpy()


@rule("graphopt::Wait")
def wait(x: np.ndarray) -> np.ndarray:
    return x  # the collectives above return complete results


@rule("graphopt::Send")
def send(x: np.ndarray, *, peer: int = 0, group: str = "", ranks: Sequence[int] = (), mesh_dim: str = "") -> np.ndarray:
    import torch.distributed as dist

    dist.send(_tensor(x), dst=peer, group=process_group(group))
    return x


@rule("graphopt::Recv")
def recv(*, peer: int = 0, shape: Sequence[int] = (), dtype: int = 1, group: str = "", ranks: Sequence[int] = (),
         mesh_dim: str = "") -> np.ndarray:
    import torch.distributed as dist

    from graphopt import dtypes

    g = process_group(group)
    t = _tensor(np.empty(tuple(shape), dtype=dtypes.from_onnx(dtype).numpy))
    dist.recv(t, src=peer, group=g)
    return t.numpy()
