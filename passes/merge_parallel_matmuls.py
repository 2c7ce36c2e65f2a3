"""merge-parallel-matmuls: matmuls that read the same input with constant weights become
one wider matmul and a Split (horizontal fusion: the Q, K, V projections of attention).

    %q = "graph.matmul_bias"(%x, %wq, %bq)           %w = concat(wq, wk, wv), %b = concat(bq, bk, bv)
    %k = "graph.matmul_bias"(%x, %wk, %bk)     ->    %qkv = "graph.matmul_bias"(%x, %w, %b)
    %v = "graph.matmul_bias"(%x, %wv, %bv)           %q, %k, %v = "graph.split"(%qkv, [nq, nk, nv]) {axis = -1}

One matmul of width nq + nk + nv keeps a matrix unit busier than three narrow ones, and
reads x once. Weights must be 2-D constants of the same dtype and K; a MatMul without a
bias joins with zeros as its bias when another member has one. The new weights are built
at compile time (the old ones are dropped once unused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from graphopt.dialects.graph import ConstantOp, GraphOp
from graphopt.rewrite import build, constant_value, discard, make_constant, src_of, weights_of
from graphopt.weights import WeightStore

_LINEAR = ("MatMul", "MatMulBias")


def _members(x: SSAValue, weights: WeightStore | None) -> list[tuple[GraphOp, np.ndarray, np.ndarray | None]]:
    """The linear ops reading x as their left operand, with their constant weight and bias."""
    found = []
    for use in x.uses:
        op = use.operation
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in _LINEAR or use.index != 0 or op in (m[0] for m in found):
            continue
        w = constant_value(op.operands[1], weights)
        b = constant_value(op.operands[2], weights) if len(op.operands) > 2 else None
        if w is None or w.ndim != 2 or (len(op.operands) > 2 and (b is None or b.ndim != 1)):
            continue
        found.append((op, w, b))
    return found


def _merge(x: SSAValue, group: list[tuple[GraphOp, np.ndarray, np.ndarray | None]], weights: WeightStore | None) -> None:
    ops = [m[0] for m in group]
    first = min(ops, key=lambda o: o.parent.get_operation_index(o))  # type: ignore[union-attr]
    src = src_of(*ops)
    w = np.concatenate([m[1] for m in group], axis=1)
    # A bias of shape [1] broadcasts over the columns: widen it before concatenating.
    b = np.concatenate(
        [np.broadcast_to(m[2], (m[1].shape[1],)) if m[2] is not None else np.zeros(m[1].shape[1], m[1].dtype) for m in group]
    )
    w_op = make_constant(w, src, weights, "merged.w")
    b_op = make_constant(b, src, weights, "merged.b")
    linear = build("graphopt::MatMulBias", [x, w_op.results[0], b_op.results[0]], {}, src)
    sizes = ConstantOp(np.asarray([m[1].shape[1] for m in group], np.int64), src)
    rank = len(linear.results[0].type.get_shape())  # type: ignore[union-attr]
    split = build("Split", [linear.results[0], sizes.result], {"axis": rank - 1}, src, n_results=len(group))
    if any(op.results[0].type != r.type for op, r in zip(ops, split.results)):
        # A member typed more precisely than its operands give (x has a dynamic dim, its
        # result a static one that import took from the model): the Split's results would
        # change the type of what reads them. Leave the group unmerged.
        discard(split, linear)
        return
    for new in (w_op, b_op, sizes, linear, split):
        Rewriter.insert_op(new, InsertPoint.before(first))
    for op, result in zip(ops, split.results):
        op.results[0].replace_all_uses_with(result)
        Rewriter.erase_op(op)


@dataclass(frozen=True)
class MergeParallelMatMuls(ModulePass):
    """Merge matmuls that share their input and have constant weights into one (plus a Split)."""

    name = "merge-parallel-matmuls"
    min_width: int = 0  # merge only when every member has at least this many columns

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        weights = weights_of(ctx)
        values = [r for o in op.walk() for r in o.results] + [a for b in op.walk_blocks() for a in b.args]
        for x in values:
            if not isinstance(x.type, TensorType) or not x.has_more_than_one_use():
                continue
            members = _members(x, weights)
            by_kind: dict[tuple[object, int], list[tuple[GraphOp, np.ndarray, np.ndarray | None]]] = {}
            for m in members:
                if m[1].shape[1] >= self.min_width:
                    by_kind.setdefault((m[1].dtype, m[1].shape[0]), []).append(m)
            for group in by_kind.values():
                if len(group) > 1 and all(_same_parent(g[0], group[0][0]) for g in group):
                    _merge(x, group, weights)


def _same_parent(a: Operation, b: Operation) -> bool:
    return a.parent is b.parent
