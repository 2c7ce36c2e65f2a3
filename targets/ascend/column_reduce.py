"""ascend-column-reduce: a sum across rows as a matmul with a ones row.

    y = ReduceSum(x [B..., R..., C...], axes = the R block)       (keepdims either way)
  becomes
    y = Reshape(MatMul(ones [1, R], Reshape(x, [B, R, C])), y's shape)     (no B: [R, C])

The vector kernels tile by leading rows, so a sum across them (a norm's or a bias's weight
gradient, reducing the batch and sequence axes) would be one tile, which does not fit UB
past a few thousand elements and went to the AI CPU. CANN reduces such a column sum on the
AI Core; here the cube does it, reading x once from HBM and accumulating in float32,
which is what bounds the time of either. The same holds for a block in the middle (sequence
parallelism's gradient of a gather, [b, tp, s / tp, h] summed over tp). Only floating-point
sums the cube takes, only with a kept axis after the block, and only where one row of
the vector kernel (R x C) would not fit in a quarter of UB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import provenance
from graphopt.dtypes import from_ir
from graphopt.rewrite import NewOps, constant_value, weights_of
from graphopt.targets.ascend.chip import Chip, pass_target
from graphopt.weights import WeightStore

_CUBE_FLOATS = {"float16": "fp16", "bfloat16": "bf16", "float": "fp32"}  # ONNX's name -> the chip file's


@dataclass
class ColumnSumOnCube(RewritePattern):
    weights: WeightStore | None
    chip: Chip

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if getattr(op, "ONNX_TYPE", None) != "ReduceSum" or len(op.operands) != 2:
            return
        x, out = op.operands[0], op.results[0]
        if not isinstance(x.type, TensorType) or not isinstance(out.type, TensorType):
            return
        shape = x.type.get_shape()
        axes = constant_value(op.operands[1], self.weights)
        if axes is None or -1 in shape or not shape:
            return
        p = len(shape)
        axes = sorted(int(a) % p for a in np.asarray(axes).reshape(-1))
        dt = from_ir(x.type.element_type)
        if not axes or axes != list(range(axes[0], axes[-1] + 1)) or axes[-1] == p - 1:
            return  # not one block of axes with a kept axis after it
        if _CUBE_FLOATS.get(dt.name) not in self.chip.cube_dtypes:
            return
        batch = math.prod(shape[: axes[0]])
        rows, cols = math.prod(shape[axes[0]: axes[-1] + 1]), math.prod(shape[axes[-1] + 1:])
        if rows * cols * dt.numpy.itemsize <= self.chip.buffers["ub"] // 4:
            return  # a vector kernel's row holds it
        new = NewOps(provenance(op), self.weights)
        flat = new.ints([batch, rows, cols] if batch > 1 else [rows, cols], "column_sum.shape")
        summed = new.op("MatMul", [new.const(np.ones((1, rows), dt.numpy), "column_sum.ones"), new.op("Reshape", [x, flat])])
        y = new.op("Reshape", [summed, new.ints(out.type.get_shape(), "column_sum.out")])
        rewriter.replace_op(op, new.ops, [y])


@dataclass(frozen=True)
class ColumnReducePass(ModulePass):
    """Sums over leading axes too large for one UB tile -> a ones-row MatMul on the cube."""

    name = "ascend-column-reduce"
    chip: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, _ = pass_target(ctx, self.chip)
        PatternRewriteWalker(ColumnSumOnCube(weights_of(ctx), chip)).rewrite_module(op)
