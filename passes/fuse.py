"""fuse: group ops into graph.fused regions, each of which a target compiles as one kernel.

    %m = "graph.matmul_bias"(%x, %w, %b)        %y = "graph.fused"(%x, %w, %b) <{kind = "cube"}> ({
    %g = "graph.gelu"(%m)                 ->      ^0(...): matmul_bias, gelu, yield
                                                })

Algorithm (a greedy walk over one block, in program order):
1. An op not yet grouped that is a cube op, a reduction or an elementwise op seeds a group.
   A reduction first takes in its elementwise prologue: producers of its input that are
   elementwise and used only by the group (repeatedly, nearest first).
2. The group grows forward along its tail: while the tail's value has exactly one user,
   that user is elementwise, and (for cube and reduce groups) it keeps the tail's shape,
   the user joins and becomes the tail. ``max-ops`` caps a group's size.
3. A group of two or more ops becomes one graph.fused op at the place of its tail: its
   operands are the values the group reads from outside (small constants are cloned
   inside instead, so the region is isolated from above), its result the tail's value.
   Only the tail is used outside the group (step 2 follows single-use values only), so
   moving the group to the tail's position keeps every use dominated.
4. Every place where a group could have grown but did not gets a remark with the reason
   (another user, a broadcast, the size cap), collected in the report as missed fusions.

kind: "attention" if the group holds an attention op, else "cube" for matmul-like,
"reduce" for reductions, "elementwise" otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.traits import Pure

from graphopt.dialects.graph import ConstantOp, FusedOp, GraphOp, NoneOp, YieldOp, provenance_attr
from graphopt.dialects.traits import Cube, Elementwise, Reduction
from graphopt.dialects.types import shape_of  # unknown dims as -1
from graphopt.rewrite import remarks_of, src_of

_CLONED = (ConstantOp, NoneOp)  # cloned into regions rather than passed in


def _static(op: Operation) -> bool:
    return all(isinstance(r.type, TensorType) and -1 not in shape_of(r.type) for r in op.results)


def _fusible(op: Operation) -> bool:
    return (
        isinstance(op, GraphOp)
        and op.has_trait(Pure)
        and len(op.results) == 1
        and _static(op)
        and (op.has_trait(Elementwise) or op.has_trait(Reduction) or op.has_trait(Cube))
    )


def _label(op: Operation) -> str:
    src = src_of(op)
    return src[0] if src else op.name


@dataclass
class _Group:
    ops: list[GraphOp]
    kind: str

    @property
    def tail(self) -> GraphOp:
        return self.ops[-1]


@dataclass
class _Fuser:
    max_ops: int
    remarks: list[dict[str, Any]]
    grouped: set[Operation] = field(default_factory=set)

    def remark(self, ops: list[Operation], reason: str) -> None:
        self.remarks.append({"pass": "fuse", "ops": [_label(o) for o in ops], "reason": reason})

    def groups(self, block: Block) -> list[_Group]:
        found = []
        for op in list(block.ops):
            if op in self.grouped or not _fusible(op):
                continue
            assert isinstance(op, GraphOp)
            kind = "attention" if op.ONNX_TYPE == "Attention" else (
                "cube" if op.has_trait(Cube) else "reduce" if op.has_trait(Reduction) else "elementwise"
            )
            group = _Group([op], kind)
            self.grouped.add(op)
            if kind == "reduce":
                self._prologue(group)
            self._grow(group)
            if len(group.ops) > 1:
                found.append(group)
            else:  # a lone op stays free to join a later group (as a reduction's prologue)
                self.grouped.discard(op)
        return found

    def _prologue(self, group: _Group) -> None:
        frontier = [group.ops[0]]
        while frontier and len(group.ops) < self.max_ops:
            op = frontier.pop()
            for v in op.operands:
                p = v.owner
                if not (isinstance(p, GraphOp) and _fusible(p) and p.has_trait(Elementwise)) or p in self.grouped:
                    continue
                if not v.has_one_use():
                    self.remark([p, op], "not fused as a prologue: its result has other users")
                    continue
                group.ops.insert(0, p)
                self.grouped.add(p)
                frontier.append(p)

    def _grow(self, group: _Group) -> None:
        while True:
            tail = group.tail
            value = tail.results[0]
            users = {u.operation for u in value.uses}
            if len(users) != 1:
                if any(_fusible(u) and u.has_trait(Elementwise) for u in users):
                    self.remark([tail, *users], f"not fused: the result of {_label(tail)} has {len(users)} users")
                return
            user = users.pop()
            if not (_fusible(user) and user.has_trait(Elementwise)) or user in self.grouped:
                return
            assert isinstance(user, GraphOp)
            if group.kind != "elementwise" and user.results[0].type.get_shape() != value.type.get_shape():  # type: ignore[union-attr]
                self.remark([tail, user], "not fused: the epilogue broadcasts to a larger shape")
                return
            if len(group.ops) >= self.max_ops:
                self.remark([tail, user], f"not fused: the group reached max-ops={self.max_ops}")
                return
            group.ops.append(user)
            self.grouped.add(user)


def _outline(group: _Group) -> FusedOp:
    """Move the group's ops into a new graph.fused op placed before its tail."""
    members = set(group.ops)
    outside: list[SSAValue] = []
    for op in group.ops:
        for v in op.operands:
            if v.owner not in members and not isinstance(v.owner, _CLONED) and v not in outside:
                outside.append(v)
    block = Block(arg_types=[v.type for v in outside])
    mapping: dict[SSAValue, SSAValue] = dict(zip(outside, block.args))
    cloned: dict[Operation, Operation] = {}
    for op in group.ops:
        for v in op.operands:
            owner = v.owner
            if isinstance(owner, _CLONED) and v not in mapping:
                copy = cloned.setdefault(owner, owner.clone())
                if copy.parent is None:
                    block.add_op(copy)
                mapping[v] = copy.results[0]
        new = op.clone(value_mapper=mapping)
        block.add_op(new)
        for old_r, new_r in zip(op.results, new.results):
            mapping[old_r] = new_r
    block.add_op(YieldOp(mapping[group.tail.results[0]]))
    return FusedOp.create(
        operands=outside,
        result_types=[group.tail.results[0].type],
        properties={"kind": StringAttr(group.kind)},
        attributes=provenance_attr(src_of(*group.ops)),
        regions=[Region(block)],
    )


@dataclass(frozen=True)
class Fuse(ModulePass):
    """Group elementwise chains, reductions and cube ops with their epilogues into graph.fused kernels."""

    name = "fuse"
    max_ops: int = 16

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuser = _Fuser(self.max_ops, remarks_of(ctx))
        for fn in op.ops:
            if not isinstance(fn, func.FuncOp):
                continue
            block = fn.body.block
            for group in fuser.groups(block):
                fused = _outline(group)
                Rewriter.insert_op(fused, InsertPoint.before(group.tail))
                group.tail.results[0].replace_all_uses_with(fused.results[0])
                for member in reversed(group.ops):
                    Rewriter.erase_op(member)
