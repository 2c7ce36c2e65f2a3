"""remove-identity: drop ops that pass their input through unchanged.

    %y = "graph.identity"(%x)          -> uses of %y become %x
    %y, %m = "graph.dropout"(%x)       -> %y is %x; %m is a constant all-true mask
    %y = "graph.cast"(%x) <{to = 1}>   -> %x, when %x is already float32
    %y = "graph.reshape"(%x, %s)       -> %x, when the shape does not change
       (likewise Expand, Flatten, Squeeze, Unsqueeze, Transpose with the identity
        permutation, a one-input Concat, a Pad or Slice that changes nothing)

Dropout is only removed in inference mode (no training_mode input, or a constant false).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NoneType, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import constant_value, make_constant, src_of, weights_of
from graphopt.weights import WeightStore

# Ops that are the identity whenever their result type equals their first input's type.
_KEEP_SHAPE = frozenset({"Identity", "Cast", "CastLike"})
_SAME_TYPE_IS_IDENTITY = frozenset(
    {"Identity", "Cast", "CastLike", "Reshape", "Expand", "Flatten", "Squeeze", "Unsqueeze", "Concat"}
)


def _is_noop_transpose(op: GraphOp) -> bool:
    perm = op.onnx_attrs().get("perm")
    rank = len(op.operands[0].type.get_shape()) if isinstance(op.operands[0].type, TensorType) else -1
    return perm is not None and list(perm) == list(range(rank))


def _all_zero(op: GraphOp, index: int, weights: WeightStore | None) -> bool:
    if len(op.operands) <= index:
        return False
    value = constant_value(op.operands[index], weights)
    return value is not None and not np.any(value)


def _static(v: SSAValue) -> bool:
    t = v.type
    return not isinstance(t, TensorType) or all(d >= 0 for d in t.get_shape())


def _unit_steps(op: GraphOp, weights: WeightStore | None) -> bool:
    """Slice steps absent or all 1 (a step of -1 reverses without changing the shape)."""
    if len(op.operands) <= 4 or isinstance(op.operands[4].type, NoneType):
        return True
    steps = constant_value(op.operands[4], weights)
    return steps is not None and bool(np.all(steps == 1))


@dataclass
class RemoveIdentity(RewritePattern):
    weights: WeightStore | None

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or not op.operands or not op.results:
            return
        x = op.operands[0]
        kind = op.ONNX_TYPE
        if kind == "Dropout":
            self._dropout(op, rewriter)
            return
        if kind == "Concat" and len(op.operands) != 1:
            return
        # Equal types prove equal shapes only when every dimension is known: two tensor<?xf32>
        # may differ (a Slice whose bounds are run-time values). Identity and Cast keep the shape.
        same = op.results[0].type == x.type and (kind in _KEEP_SHAPE or _static(x))
        if kind in _SAME_TYPE_IS_IDENTITY and same and len(op.results) == 1:
            rewriter.replace(op, [], [x])
        elif kind == "Transpose" and _is_noop_transpose(op):
            rewriter.replace(op, [], [x])
        elif kind == "Pad" and same and _all_zero(op, 1, self.weights):
            rewriter.replace(op, [], [x])
        elif kind == "Slice" and same and _unit_steps(op, self.weights):
            rewriter.replace(op, [], [x])  # same shape with steps of 1: every element, in order

    def _dropout(self, op: GraphOp, rewriter: PatternRewriter) -> None:
        if len(op.operands) >= 3 and not isinstance(op.operands[2].type, NoneType):
            training = constant_value(op.operands[2], self.weights)
            if training is None or bool(training):
                return  # training mode (or unknown): random, keep it
        if len(op.results) == 1 or not op.results[1].uses:
            rewriter.replace(op, [], [op.operands[0], *([None] * (len(op.results) - 1))])
            return
        # The mask is used: in inference it is all true.
        t = op.results[1].type
        assert isinstance(t, TensorType)
        mask = make_constant(np.ones(t.get_shape(), dtype=np.bool_), src_of(op), self.weights, "dropout.mask")
        rewriter.replace(op, [mask], [op.operands[0], mask.results[0]])


@dataclass(frozen=True)
class RemoveIdentityPass(ModulePass):
    """Remove Identity, inference-mode Dropout and ops that change nothing."""

    name = "remove-identity"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(RemoveIdentity(weights_of(ctx))).rewrite_module(op)
