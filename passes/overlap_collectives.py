"""overlap-collectives: issue each collective as early, and wait for it as late, as its
dependencies allow, so the communication runs behind the compute in between (what
inductor's comms reordering does for its graphs).

A whole-block walk, not a pattern: an op's position is what changes. In each function
body, in order:
- a collective (graph.all_reduce, all_gather, ...) moves up to just after the op that
  produces its operand (or the block's start), but never above the collective before it:
  every rank must issue its collectives in one order, and this keeps the graph's order;
- a graph.wait moves down to just before the first op that reads its result.
Nothing else moves, so the compute keeps its order. Values stay defined before their uses:
a collective only rises to its operand, and a wait only sinks to its first reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass

from graphopt.dialects.graph import is_collective


@dataclass(frozen=True)
class OverlapCollectives(ModulePass):
    """Issue collectives early and wait for them late, so communication overlaps compute."""

    name = "overlap-collectives"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in op.ops:
            if isinstance(fn, func.FuncOp):
                _hoist_collectives(fn.body.block)
                _sink_waits(fn.body.block)


def _hoist_collectives(block: Block) -> None:
    previous: Operation | None = None  # the collective issued before (kept first)
    for op in list(block.ops):
        if not is_collective(op, wait=False):
            continue
        ops = list(block.ops)
        position = {o: k for k, o in enumerate(ops)}
        anchors = [v.owner for v in op.operands if isinstance(v.owner, Operation) and v.owner.parent_block() is block]
        if previous is not None:
            anchors.append(previous)
        after = max(anchors, key=lambda o: position[o], default=None)
        if after is None:
            if ops[0] is not op:
                op.detach()
                block.insert_op_before(op, ops[0])
        elif position[after] + 1 < position[op]:
            op.detach()
            block.insert_op_after(op, after)
        previous = op


def _sink_waits(block: Block) -> None:
    for op in reversed(list(block.ops)):
        if not is_collective(op) or op.ONNX_TYPE != "Wait":  # pyright: ignore[reportAttributeAccessIssue]
            continue
        position = {o: k for k, o in enumerate(block.ops)}
        readers = [_in_block(use.operation, block) for r in op.results for use in r.uses]
        first = min((u for u in readers if u is not None), key=lambda o: position[o], default=None)
        if first is not None and position[first] > position[op] + 1:
            op.detach()
            block.insert_op_before(op, first)


def _in_block(op: Operation, block: Block) -> Operation | None:
    """``op`` or the op of ``block`` that holds it (a reader inside a fused group's region)."""
    while op is not None and op.parent_block() is not block:
        op = op.parent_op()  # type: ignore[assignment]
    return op
