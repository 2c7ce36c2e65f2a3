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
from graphopt.rewrite import build, constant_value, make_constant, weights_of
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
        new: list[Operation] = []
        src = provenance(op)
        k = _chunks(shape[-1], self.chip.buffers["ub"] // 16 // 4)
        if k is None:
            return
        if kind in _SPLIT:
            y = self._two_level(kind, x, shape, k, int(op.onnx_attrs().get("keepdims", 1)), src, new)
        else:
            y = self._softmax(kind == "LogSoftmax", x, src, new)
        if y.type != op.results[0].type:
            return
        rewriter.replace_op(op, new, [y])

    def _last_axis(self, op: Any, kind: str, rank: int) -> bool:
        attrs = op.onnx_attrs()
        if kind in ("Softmax", "LogSoftmax"):
            return int(attrs.get("axis", -1)) % rank == rank - 1
        if len(op.operands) < 2:
            return False
        axes = constant_value(op.operands[1], self.weights)
        return axes is not None and [int(a) % rank for a in np.asarray(axes).reshape(-1)] == [rank - 1]

    def _add(self, new: list[Operation], kind: str, operands: list[SSAValue], attrs: dict[str, Any] | None,
             src: list[str]) -> SSAValue:
        built = build(kind, operands, attrs, src)
        new.append(built)
        return built.results[0]

    def _ints(self, new: list[Operation], values: list[int], src: list[str]) -> SSAValue:
        c = make_constant(np.asarray(values, np.int64), src, self.weights, "long_rows.shape")
        new.append(c)
        return c.results[0]

    def _two_level(self, kind: str, x: SSAValue, shape: list[int], k: int, keepdims: int, src: list[str],
                   new: list[Operation]) -> SSAValue:
        last = self._ints(new, [-1], src)
        split = self._add(new, "Reshape", [x, self._ints(new, [*shape[:-1], k, shape[-1] // k], src)], None, src)
        part = self._add(new, kind, [split, last], {"keepdims": 0}, src)
        return self._add(new, _SPLIT[kind], [part, last], {"keepdims": keepdims}, src)

    def _softmax(self, log: bool, x: SSAValue, src: list[str], new: list[Operation]) -> SSAValue:
        dt = from_ir(x.type.element_type)
        f32 = from_ir(x.type.element_type).name != "float"
        v = self._add(new, "Cast", [x], {"to": 1}, src) if f32 else x
        last = self._ints(new, [-1], src)
        shifted = self._add(new, "Sub", [v, self._add(new, "ReduceMax", [v, last], {"keepdims": 1}, src)], None, src)
        e = self._add(new, "Exp", [shifted], None, src)
        total = self._add(new, "ReduceSum", [e, last], {"keepdims": 1}, src)
        y = (self._add(new, "Sub", [shifted, self._add(new, "Log", [total], None, src)], None, src) if log
             else self._add(new, "Div", [e, total], None, src))
        return self._add(new, "Cast", [y], {"to": dt.onnx}, src) if f32 else y


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
