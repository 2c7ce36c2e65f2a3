"""fold-conv-bn: fold an inference BatchNormalization into the Conv before it.

    y = BatchNormalization(Conv(x, W, b), scale, B, mean, var, epsilon)
  becomes
    y = Conv(x, W * s[:, None, ...], (b - mean) * s + B)   with s = scale / sqrt(var + eps)

Needs W, b, scale, B, mean and var to be constants, the Conv's result to have no other
user, and BatchNormalization in inference mode (training_mode = 0, one output used).
The folded weights are computed in float64 and stored in the Conv's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import GraphOp
from graphopt.rewrite import build, constant_value, make_constant, producer, remarks_of, src_of, weights_of
from graphopt.weights import WeightStore


@dataclass
class ConvBatchNorm(RewritePattern):
    weights: WeightStore | None
    remarks: list[dict[str, object]]

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "BatchNormalization":
            return
        conv = producer(op.operands[0], "Conv")
        if conv is None:
            return
        why = self._why_not(op, conv)
        if why:
            self.remarks.append({"ops": src_of(conv, op), "reason": why})
            return
        w = constant_value(conv.operands[1], self.weights)
        consts = [constant_value(v, self.weights) for v in op.operands[1:5]]
        assert w is not None and all(c is not None for c in consts)
        scale, shift, mean, var = (np.asarray(c, np.float64) for c in consts)  # type: ignore[arg-type]
        eps = op.onnx_attrs().get("epsilon", 1e-5)
        s = scale / np.sqrt(var + eps)
        b = constant_value(conv.operands[2], self.weights) if len(conv.operands) > 2 else None
        bias = np.zeros_like(s) if b is None else np.asarray(b, np.float64)
        new_w = (w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        new_b = ((bias - mean) * s + shift).astype(w.dtype)
        src = src_of(conv, op)
        w_op = make_constant(new_w, src, self.weights, "conv_bn.w")
        b_op = make_constant(new_b, src, self.weights, "conv_bn.b")
        new = build("Conv", [conv.operands[0], w_op.results[0], b_op.results[0]], conv.onnx_attrs(), src)
        rewriter.replace(op, [w_op, b_op, new], [new.results[0]])
        rewriter.erase(conv)

    def _why_not(self, bn: GraphOp, conv: GraphOp) -> str | None:
        if not conv.results[0].has_one_use():
            return "not folded: the Conv's output has other users"
        if bn.onnx_attrs().get("training_mode", 0) or any(r.uses for r in bn.results[1:]):
            return "not folded: BatchNormalization is in training mode"
        operands = [conv.operands[1], *(conv.operands[2:3]), *bn.operands[1:5]]
        if any(constant_value(v, self.weights) is None for v in operands):
            return "not folded: the Conv weights or the BatchNormalization statistics are not constants"
        return None


@dataclass(frozen=True)
class FoldConvBN(ModulePass):
    """Fold inference BatchNormalization into the preceding Conv's weights and bias."""

    name = "fold-conv-bn"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(ConvBatchNorm(weights_of(ctx), remarks_of(ctx))).rewrite_module(op)
