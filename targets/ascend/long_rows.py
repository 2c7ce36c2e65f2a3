"""ascend-long-rows: softmax and reductions over rows too long for a UB tile, in two levels.

The vector kernels hold whole rows of the axis an op reduces along; a row of 32000 float32
logits (a language model's vocabulary) and its double buffers do not fit UB, and such an op
went to the AI CPU. CANN splits the row. Here, for a last axis of C elements too long:

    Reduce(x [..., C], axis -1)   ->  Reduce(Reduce(Reshape(x, [..., k, C/k]), -1), -1)
    Softmax(x)                    ->  e = Exp(x - ReduceMax(x)),  e / ReduceSum(e)
    LogSoftmax(x)                 ->  (x - ReduceMax(x)) - Log(ReduceSum(Exp(x - ReduceMax(x))))

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

_SPLIT = {"ReduceSum": "ReduceSum", "ReduceMean": "ReduceMean", "ReduceMax": "ReduceMax", "ReduceMin": "ReduceMin",
          "ReduceSumSquare": "ReduceSum"}  # the first level's op -> the second level's


@dataclass
class SplitLongRows(RewritePattern):
    weights: WeightStore | None
    chip: Chip

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        kind = getattr(op, "ONNX_TYPE", None)
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
