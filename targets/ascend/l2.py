"""L2 in the timing model: which GM tensors L2 holds across kernels (``L2State``), and per
copy of a kernel the fraction of its GM bytes that miss L2 and come from HBM (a tiled
matmul's panel re-reads: ``matmul_kernel.l2_traffic``)."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue

from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import CopyOp, ForOp, KernelOp, MoveOp, space_of
from graphopt.targets.ascend.kernel_facts import elem_bytes, matmul_tiling_of, tensor_bytes


@dataclass
class L2State:
    """Which GM tensors L2 holds across kernels: LRU by tensor, up to the chip's L2 bytes."""

    capacity: int
    held: OrderedDict[int, int] = field(default_factory=OrderedDict)

    def resident(self, value: SSAValue) -> bool:
        return id(value) in self.held

    def touch(self, value: SSAValue, nbytes: int) -> None:
        """`value` was just read or written: most recently used, evicting the oldest."""
        if nbytes > self.capacity:
            self.held.pop(id(value), None)
            return
        self.held[id(value)] = nbytes
        self.held.move_to_end(id(value))
        while sum(self.held.values()) > self.capacity:
            self.held.popitem(last=False)


def hbm_fractions(chip: Chip, kernel: KernelOp, l2: L2State | None) -> tuple[dict[int, float], float]:
    """Per copy op, the fraction of its GM bytes that miss L2; and the kernel's HBM read bytes."""
    from graphopt.targets.ascend.matmul_kernel import l2_traffic

    fractions: dict[int, float] = {}
    hbm_in = 0.0
    t = matmul_tiling_of(kernel)
    gm_copies = [op for op in kernel.body.block.walk() if isinstance(op, CopyOp | MoveOp)]
    args = list(kernel.body.block.args)
    handled: set[int] = set()
    if t is not None:
        a_reads, b_reads, a_miss, b_miss = l2_traffic(chip, t)
        l1_loads = [op for op in gm_copies if isinstance(op, CopyOp) and space_of(op.dest.type) == "L1"
                    and isinstance(op.source.type, TensorType)][:2]
        for op, (reads, miss) in zip(l1_loads, ((a_reads, a_miss), (b_reads, b_miss))):
            held = l2 is not None and l2.resident(kernel.inputs[args.index(op.source)]) if op.source in args else False
            fractions[id(op)] = 0.0 if held else miss / max(reads, 1.0)
            hbm_in += 0.0 if held else miss
            handled.add(id(op.source))
    for op in gm_copies:
        srcs = [op.source] if isinstance(op, CopyOp) else list(op.ins)
        for src in srcs:
            if id(op) in fractions or src not in args or args.index(src) >= len(kernel.inputs):
                continue
            outer = kernel.inputs[args.index(src)]
            held = l2 is not None and l2.resident(outer)
            if id(src) not in handled:
                hbm_in += 0.0 if held else _bytes_read(op, src, outer)
                handled.add(id(src))
            # Re-reads of one tensor inside a kernel hit L2 when it fits; the first touch misses.
            fractions[id(op)] = 0.0 if held else (1.0 if isinstance(op, MoveOp) else _first_touch(chip, kernel, op, outer))
    return fractions, hbm_in


def _bytes_read(op: CopyOp | MoveOp, src: SSAValue, outer: SSAValue) -> float:
    """The bytes a copy reads of ``outer``: all of it, except a gather's table, of which it
    reads the rows it picks (an embedding lookup reads 512 rows, not a 47 MB vocabulary)."""
    from graphopt.targets.ascend.vector import GATHERS

    if isinstance(op, MoveOp) and op.op.data in GATHERS and op.ins and src is op.ins[0]:
        picked = sum(tensor_bytes(v) for v in op.outs if isinstance(v.type, TensorType))
        return min(tensor_bytes(outer), picked)
    return tensor_bytes(outer)


def _first_touch(chip: Chip, kernel: KernelOp, op: CopyOp, outer: SSAValue) -> float:
    """Fraction of a copy's reads that come from HBM: unique bytes / bytes read, when they fit L2."""
    reads = _reads_of(kernel, op)
    size = tensor_bytes(outer)
    if size > chip.l2_bytes:
        return 1.0
    return min(1.0, size / max(reads, 1))


def _reads_of(kernel: KernelOp, op: CopyOp) -> float:
    """Bytes `op` reads over the whole kernel: its tile times the trips of the loops around it."""
    trips = 1
    parent = op.parent_op()
    while isinstance(parent, ForOp):
        trips *= parent.trip_count
        parent = parent.parent_op()
    shape = op.view_spec.logical_shape(op.source.type.get_shape())  # pyright: ignore[reportAttributeAccessIssue]
    tile = list(shape)
    for d, t in zip(op.dims.get_values(), op.tile.get_values()):
        if int(d) < len(tile):
            tile[int(d)] = min(tile[int(d)], int(t))
    return trips * math.prod(tile) * elem_bytes(op.source)
