"""ascend-long-rows: softmax and reductions over rows too long for a UB tile, in two levels.

The vector kernels hold whole rows of the axis an op reduces along; a row of 32000 float32
logits (a language model's vocabulary) and its double buffers do not fit UB, and such an op
went to the AI CPU. CANN splits the row. Here, for a last axis of C elements too long:

    Reduce(x [..., C], axis -1)   ->  Reduce(Reduce(Reshape(x, [..., k, C/k]), -1), -1)
    Softmax(x)                    ->  e = Exp(x - ReduceMax(x)),  e / ReduceSum(e)
    LogSoftmax(x)                 ->  (x - ReduceMax(x)) - Log(ReduceSum(Exp(x - ReduceMax(x))))
    InstanceNormalization, GroupNormalization over rows (a plane, a group) too long
                                  ->  mean and variance as ReduceMean over [N, G, -1],
                                      (x - mean) / Sqrt(var + eps) * scale + bias

and the new reductions split in turn (ReduceMean as a mean of equal chunks' means; a
float16 or bfloat16 softmax is computed in float32 and cast back, as the fused one is).
k is the smallest divisor of C whose chunks fit (and which fits itself); an op over a C with
no such divisor is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import provenance
from graphopt.dtypes import from_ir
from graphopt.rewrite import NewOps, constant_value, discard, weights_of
from graphopt.targets.ascend.chip import Chip, pass_target
from graphopt.weights import WeightStore

_NORMS = ("InstanceNormalization", "GroupNormalization")
_SPLIT = {"ReduceSum": "ReduceSum", "ReduceMean": "ReduceMean", "ReduceMax": "ReduceMax", "ReduceMin": "ReduceMin",
          "ReduceSumSquare": "ReduceSum"}  # the first level's op -> the second level's


@dataclass
class SplitLongRows(RewritePattern):
    weights: WeightStore | None
    chip: Chip

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        kind = getattr(op, "ONNX_TYPE", None)
        if kind in _NORMS and not getattr(op, "ONNX_DOMAIN", ""):
            self._norm(op, kind, rewriter)
            return
        if kind not in _SPLIT and kind not in ("Softmax", "LogSoftmax"):
            return
        x = op.operands[0]
        if not isinstance(x.type, TensorType) or -1 in x.type.get_shape() or not x.type.get_shape():
            return
        shape = list(x.type.get_shape())
        if not self._last_axis(op, kind, len(shape)) or shape[-1] * 4 <= self.chip.buffers["ub"] // 8:
            return
        k = _chunks(shape[-1], self.chip.buffers["ub"] // 16 // 4)
        if k is None:
            return
        new = NewOps(provenance(op), self.weights)
        if kind in _SPLIT:
            y = _two_level(new, kind, x, shape, k, int(op.onnx_attrs().get("keepdims", 1)))
        else:
            y = _softmax(new, kind == "LogSoftmax", x)
        if y.type != op.results[0].type:
            discard(*new.ops)
            return
        rewriter.replace_op(op, new.ops, [y])

    def _norm(self, op: Any, kind: str, rewriter: PatternRewriter) -> None:
        """InstanceNormalization over planes, GroupNormalization over groups, too long for
        UB as one row: their mean and variance as reductions of the last axis (which split
        in turn), the rest elementwise."""
        x = op.operands[0]
        if not isinstance(x.type, TensorType) or len(x.type.get_shape()) < 3 or min(x.type.get_shape()) < 1:
            return
        shape = list(x.type.get_shape())
        attrs = op.onnx_attrs()
        groups = int(attrs.get("num_groups", 1)) if kind == "GroupNormalization" else shape[1]
        if groups < 1 or shape[1] % groups or int(attrs.get("stash_type", 1)) != 1:
            return
        row = int(np.prod(shape[1:])) // groups
        if row * 4 <= self.chip.buffers["ub"] // 8:
            return  # a row fits: the vector kernel holds it whole
        new = NewOps(provenance(op), self.weights)
        params = [self._per_channel(new, v, shape[1], groups) for v in op.operands[1:3]]
        if any(p is None for p in params):
            discard(*new.ops)
            return
        y = _normalized(new, x, shape, groups, float(attrs.get("epsilon", 1e-5)), params)  # pyright: ignore[reportArgumentType]
        if y.type != op.results[0].type:
            discard(*new.ops)
            return
        rewriter.replace_op(op, new.ops, [y])

    def _per_channel(self, new: NewOps, v: SSAValue, c: int, groups: int) -> SSAValue | None:
        """A norm's scale or bias as [C, 1, ...] broadcasting over a plane: opset 18's
        GroupNormalization gave one per group, a constant repeated here."""
        if not isinstance(v.type, TensorType) or len(v.type.get_shape()) != 1:
            return None
        n = v.type.get_shape()[0]
        if n == c:
            return v
        a = constant_value(v, self.weights)
        if n != groups or a is None:
            return None
        return new.const(np.repeat(a, c // groups), "long_rows.per_channel")

    def _last_axis(self, op: Any, kind: str, rank: int) -> bool:
        attrs = op.onnx_attrs()
        if kind in ("Softmax", "LogSoftmax"):
            return int(attrs.get("axis", -1)) % rank == rank - 1
        if len(op.operands) < 2:
            return False
        axes = constant_value(op.operands[1], self.weights)
        return axes is not None and [int(a) % rank for a in np.asarray(axes).reshape(-1)] == [rank - 1]


def _two_level(new: NewOps, kind: str, x: SSAValue, shape: list[int], k: int, keepdims: int) -> SSAValue:
    last = new.ints([-1], "long_rows.shape")
    split = new.op("Reshape", [x, new.ints([*shape[:-1], k, shape[-1] // k], "long_rows.shape")])
    part = new.op(kind, [split, last], {"keepdims": 0})
    return new.op(_SPLIT[kind], [part, last], {"keepdims": keepdims})


def _softmax(new: NewOps, log: bool, x: SSAValue) -> SSAValue:
    dt = from_ir(x.type.element_type)
    cast = dt.name != "float"  # float16 and bfloat16 are computed in float32, as the fused op is
    v = new.op("Cast", [x], {"to": 1}) if cast else x
    last = new.ints([-1], "long_rows.shape")
    shifted = new.op("Sub", [v, new.op("ReduceMax", [v, last], {"keepdims": 1})])
    e = new.op("Exp", [shifted])
    total = new.op("ReduceSum", [e, last], {"keepdims": 1})
    y = new.op("Sub", [shifted, new.op("Log", [total])]) if log else new.op("Div", [e, total])
    return new.op("Cast", [y], {"to": dt.onnx}) if cast else y


def _normalized(new: NewOps, x: SSAValue, shape: list[int], groups: int, eps: float,
                params: list[SSAValue]) -> SSAValue:
    """(x - mean) / sqrt(var + eps) over rows of [N, groups, -1], times scale plus bias per
    channel; a float16 or bfloat16 x is computed in float32 and cast back, as the fused op is."""
    dt = from_ir(x.type.element_type)  # pyright: ignore[reportAttributeAccessIssue]
    cast = dt.name != "float"
    v = new.op("Cast", [x], {"to": 1}) if cast else x
    last = new.ints([-1], "long_rows.shape")
    rows = new.op("Reshape", [v, new.ints([shape[0], groups, -1], "long_rows.shape")])
    d = new.op("Sub", [rows, new.op("ReduceMean", [rows, last], {"keepdims": 1})])
    var = new.op("ReduceMean", [new.op("Mul", [d, d]), last], {"keepdims": 1})
    std = new.op("Sqrt", [new.op("Add", [var, new.const(np.array(eps, np.float32), "long_rows.epsilon")])])
    y = new.op("Reshape", [new.op("Div", [d, std]), new.ints(shape, "long_rows.shape")])
    lanes = new.ints([shape[1]] + [1] * (len(shape) - 2), "long_rows.shape")
    for p, kind in zip(params, ("Mul", "Add")):
        p = new.op("Cast", [p], {"to": 1}) if from_ir(p.type.element_type).name != "float" else p  # pyright: ignore[reportAttributeAccessIssue]
        y = new.op(kind, [y, new.op("Reshape", [p, lanes])])
    return new.op("Cast", [y], {"to": dt.onnx}) if cast else y


def _chunks(c: int, most: int) -> int | None:
    """The smallest k dividing c into k chunks of at most ``most`` elements each, where the
    second level's row (k elements) fits too and a chunk holds more than one element."""
    for k in range(2, min(c // 2, most) + 1):
        if c % k == 0 and c // k <= most:
            return k
    return None


@dataclass(frozen=True)
class LongRowsPass(ModulePass):
    """Softmax, LogSoftmax and last-axis reductions over rows too long for UB -> two levels."""

    name = "ascend-long-rows"
    chip: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, _ = pass_target(ctx, self.chip)
        PatternRewriteWalker(SplitLongRows(weights_of(ctx), chip)).rewrite_module(op)
