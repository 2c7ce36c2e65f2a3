"""ascend-depthwise-blocks: a depthwise convolution as a grouped one over blocks of channels.

    y = Conv(x, W [C, 1, kh, kw], b; group = C)
  becomes
    y = Conv(x, W' [C, c0, kh, kw], b; group = C / c0)
  with W' block-diagonal: W'[g * c0 + i, j] = W[g * c0 + i] when i == j, else 0.

The two are the same function (the added taps multiply zeros). The cube computes 16 x 16
fractals, so a depthwise convolution run as C independent matmuls of one output channel
pays a fractal, a DMA and an instruction for every channel; CANN's DepthwiseConv2D instead
loads a C0 block of channels at once with its weights block-diagonal in FRACTAL_Z (TBE
depthwise_conv2d). Blocks of c0 channels (the largest divisor of C up to 16) do the same:
C / c0 matmuls of c0 output channels each. EfficientNet's 3x3 over 3840 channels of 7 x 7
went from 169.5 to 50.6 us on the 910B. MFU counts the depthwise FLOPs (``model_flops``),
not the zeros'.

Only constant weights: torch.compile feeds parameters as graph inputs, and their conversion
to FRACTAL_Z is counted once per update (as torch_npu keeps parameters converted), which a
block-diagonal form computed from them each call would not be; such a convolution stays one
matmul per channel, with a remark. Only 2-D convolutions with one output channel per input
channel (a channel multiplier of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, NoneType, TensorType
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern

from graphopt.dialects.graph import Conv, provenance
from graphopt.rewrite import NewOps, constant_value, remarks_of, weights_of
from graphopt.targets.ascend.conv_transpose import MODEL_FLOPS
from graphopt.weights import WeightStore

C0 = 16  # channels per NC1HWC0 block in fp16, the cube's fractal edge


def block(c: int) -> int:
    """Channels per block: the largest divisor of ``c`` up to C0."""
    return max(d for d in range(1, min(c, C0) + 1) if c % d == 0)


@dataclass
class DepthwiseToBlocks(RewritePattern):
    weights: WeightStore | None
    remarks: list[dict[str, object]]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: Conv, rewriter: PatternRewriter) -> None:
        w_type, y_type = op.w.type, op.results[0].type
        if not (isinstance(w_type, TensorType) and isinstance(y_type, TensorType) and isinstance(op.x.type, TensorType)):
            return
        c, cg, kh, kw = (list(w_type.get_shape()) + [0, 0, 0, 0])[:4]
        group = int(op.onnx_attrs().get("group", 1))
        if len(w_type.get_shape()) != 4 or group != c or cg != 1 or op.x.type.get_shape()[1] != c or c < 2:
            return
        b = block(c)
        if b == 1:
            self.remarks.append({"pass": "ascend-depthwise-blocks", "ops": provenance(op),
                                 "reason": f"{c} channels have no divisor up to {C0}: one matmul per channel"})
            return
        w = constant_value(op.w, self.weights)
        if w is None:
            self.remarks.append({"pass": "ascend-depthwise-blocks", "ops": provenance(op),
                                 "reason": "weights given at run time: one matmul per channel"})
            return
        new = NewOps(provenance(op), self.weights)
        blocks = w.reshape(c // b, b, 1, kh, kw) * np.eye(b, dtype=w.dtype)[None, :, :, None, None]
        wb = new.const(np.ascontiguousarray(blocks.reshape(c, b, kh, kw)), "depthwise.w")
        bias = [op.b] if op.b is not None and not isinstance(op.b.type, NoneType) else []
        attrs = {**op.onnx_attrs(), "group": c // b}
        y = new.op("Conv", [op.x, wb, *bias], attrs)
        n, _, oh, ow = y_type.get_shape()
        new.ops[-1].attributes[MODEL_FLOPS] = IntegerAttr(2 * n * c * oh * ow * kh * kw, 64)
        if y.type != y_type:  # the op's own rule disagrees with the original: leave it
            return
        rewriter.replace(op, new.ops, [y])


@dataclass(frozen=True)
class DepthwiseBlocksPass(ModulePass):
    """Depthwise convolutions as grouped ones over C0 blocks of channels (block-diagonal weights)."""

    name = "ascend-depthwise-blocks"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(DepthwiseToBlocks(weights_of(ctx), remarks_of(ctx))).rewrite_module(op)
