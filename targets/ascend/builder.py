"""Building an ``ascend.kernel`` body: buffers, copies, loops and flags, in program order.

A small helper the lowerings share, so each kernel template reads as its program:

    kb = KernelBuilder("k0_matmul", "cube", ins, outs)
    a = kb.buffer("L1", [128, 64], f16, 2)
    with kb.loop(4, cores=4) as i:
        kb.copy(kb.arg(0), a, "MTE2", [i], dims=[0], tile=[128])
    kernel = kb.finish(block_dim=4, tiling={...})
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    DenseArrayBase,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    f64,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from graphopt import dtypes
from graphopt.targets.ascend.dialect import BufferOp, CopyOp, ForOp, KernelOp, MmadOp, SyncOp, VecOp


def ir_value(v: Any) -> Attribute:
    """A Python tiling/view value as an attribute (ints, floats, strings, int lists)."""
    if isinstance(v, Attribute):
        return v
    if isinstance(v, bool | int | np.integer):
        return IntegerAttr(int(v), i64)
    if isinstance(v, float):
        return FloatAttr(v, f64)
    if isinstance(v, str):
        return StringAttr(v)
    return DenseArrayBase.from_list(i64, [int(x) for x in v])


def ir_dict(d: dict[str, Any]) -> dict[str, Attribute]:
    return {k: ir_value(v) for k, v in d.items() if v is not None}


def elem(dtype: np.dtype | type) -> Attribute:
    return dtypes.from_numpy(np.dtype(dtype)).ir


class KernelBuilder:
    def __init__(self, name: str, kind: str, ins: Sequence[SSAValue], out_types: Sequence[Attribute]):
        self.name, self.kind = name, kind
        self.ins = list(ins)
        self.out_types = list(out_types)
        args = [v.type for v in ins] + (list(out_types) if kind not in ("aicpu", "comm") else [])
        self.block = Block(arg_types=args)
        self._stack: list[Block] = [self.block]
        self._events: dict[tuple[str, str], int] = {}
        self._last_buffer: Operation | None = None

    def arg(self, k: int) -> SSAValue:
        return self.block.args[k]

    def out(self, k: int) -> SSAValue:
        return self.block.args[len(self.ins) + k]

    def add(self, op: Operation) -> Operation:
        self._stack[-1].add_op(op)
        return op

    def buffer(self, space: str, shape: Sequence[int], dtype: np.dtype | type, buffers: int = 1) -> SSAValue:
        # Buffers are declared at the top of the kernel (TPipe::InitBuffer), whatever the nesting.
        op = BufferOp(space, [int(s) for s in shape], elem(dtype), buffers)
        if self._last_buffer is not None:
            self.block.insert_op_after(op, self._last_buffer)
        elif self.block.first_op is not None:
            self.block.insert_op_before(op, self.block.first_op)
        else:
            self.block.add_op(op)
        self._last_buffer = op
        return op.result

    def copy(
        self,
        src: SSAValue,
        dst: SSAValue,
        pipe: str,
        index: Sequence[SSAValue] = (),
        dims: Sequence[int] = (),
        tile: Sequence[int] = (),
        view: dict[str, Any] | None = None,
        im2col: dict[str, Any] | None = None,
    ) -> None:
        self.add(CopyOp(src, dst, pipe, index, dims, tile, ir_dict(view) if view else None, ir_dict(im2col) if im2col else None))

    def vec(self, op: str, ins: Sequence[SSAValue], outs: Sequence[SSAValue], attrs: dict[str, Attribute] | None = None) -> None:
        self.add(VecOp(op, ins, outs, attrs))

    def mmad(self, acc: SSAValue, lhs: SSAValue, rhs: SSAValue, init_when: Sequence[SSAValue]) -> None:
        self.add(MmadOp(acc, lhs, rhs, init_when))

    def flag(self, src: str, dst: str, cross_core: bool = False) -> None:
        """A SetFlag/WaitFlag pair: ``dst`` waits for ``src``'s prior work (event ids per pipe pair)."""
        event = self._events.setdefault((src, dst), len(self._events) % 6)  # ids 6, 7 are reserved [OFF]
        self.add(SyncOp("set", src, dst, event, cross_core))
        self.add(SyncOp("wait", src, dst, event, cross_core))

    @contextmanager
    def loop(self, trip: int, cores: int = 1, guard: SSAValue | None = None, below: int = 0) -> Iterator[SSAValue]:
        op = ForOp(trip, cores, guard, below)
        self.add(op)
        self._stack.append(op.body.block)
        try:
            yield op.index
        finally:
            self._stack.pop()

    def finish(self, block_dim: int, tiling: dict[str, Any], attributes: dict[str, Attribute] | None = None) -> KernelOp:
        return KernelOp.create(
            operands=self.ins,
            result_types=self.out_types,
            properties={
                "sym_name": StringAttr(self.name),
                "kind": StringAttr(self.kind),
                "block_dim": IntegerAttr(block_dim, i64),
                "tiling": DictionaryAttr(ir_dict(tiling)),
            },
            attributes=attributes or {},
            regions=[Region(self.block)],
        )
