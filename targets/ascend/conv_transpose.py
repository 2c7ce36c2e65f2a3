"""ascend-conv-transpose: a 2-D ConvTranspose as a Conv the cube runs.

    y = ConvTranspose(x, W, b; strides s, pads p, dilations d, output_padding q, group g)
  becomes
    z = x with s-1 zeros inserted between neighbours along H and W
        (Reshape to [N, C, H, 1, W, 1], Pad the unit axes to s, Reshape, Slice the tail)
    z = z padded by d*(k-1) - p_begin before and d*(k-1) - p_end + q after (Pad, or Slice
        where that is negative)
    y = Conv(z, W', b; strides 1, dilations d, group g)
  with W' the kernel flipped in space and its in/out channels swapped within each group,
  W'[g*cog + o, i] = W[g*cig + i, o, ::-1, ::-1]: computed at compile time when W is a
  constant, else by data movement kernels (a Slice with negative steps, a Transpose).

That is the gradient of a convolution with respect to its input, which is how CANN runs
a transposed convolution on the cube (Conv2DBackpropInput over the dilated output
gradient); the inserted zeros are real cube work (s*s times the MACs of the dense
formulation), which the timing model then shows, while MFU counts the transposed
convolution's own FLOPs (the Conv's ``model_flops`` attribute). Only 2-D, static shapes,
and auto_pad/output_shape not set; otherwise the op stays as it is (the AI CPU runs it)
with a remark saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, NoneType, TensorType
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern

from graphopt.dialects.graph import ConvTranspose, provenance
from graphopt.rewrite import NewOps, constant_value, remarks_of, weights_of
from graphopt.weights import WeightStore

MODEL_FLOPS = "model_flops"
"""A cube op's attribute: the FLOPs of the model's op it stands for, where the cube does
more (the zeros a ConvTranspose's Conv multiplies); the timing report's MFU uses it."""


@dataclass
class ConvTransposeToConv(RewritePattern):
    weights: WeightStore | None
    remarks: list[dict[str, object]]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ConvTranspose, rewriter: PatternRewriter) -> None:
        why = self._why_not(op)
        if why:
            self.remarks.append({"pass": "ascend-conv-transpose", "ops": provenance(op), "reason": why})
            return
        x, src = op.x, provenance(op)
        w_type = op.w.type
        assert isinstance(x.type, TensorType) and isinstance(w_type, TensorType)
        w = constant_value(op.w, self.weights)
        at = op.onnx_attrs()
        g = int(at.get("group", 1))
        s = [int(v) for v in at.get("strides") or [1, 1]]
        d = [int(v) for v in at.get("dilations") or [1, 1]]
        p = [int(v) for v in at.get("pads") or [0, 0, 0, 0]]
        q = [int(v) for v in at.get("output_padding") or [0, 0]]
        c_in, cog, *k = w_type.get_shape()
        cig = c_in // g
        n, c, h, wd = x.type.get_shape()
        new = NewOps(src, self.weights)
        add = new.op

        def ints(values: list[int]) -> SSAValue:
            return new.ints(values, "conv_transpose.shape")

        z = x
        zs = [(h - 1) * s[0] + 1, (wd - 1) * s[1] + 1]  # H and W with the zeros inserted
        if s != [1, 1]:  # zeros between neighbours
            z = add("Reshape", [z, ints([n, c, h, 1, wd, 1])])
            z = add("Pad", [z, ints([0] * 6 + [0, 0, 0, s[0] - 1, 0, s[1] - 1])])
            z = add("Reshape", [z, ints([n, c, h * s[0], wd * s[1]])])
            z = add("Slice", [z, ints([0, 0]), ints(zs), ints([2, 3])])
        before = [d[i] * (k[i] - 1) - p[i] for i in range(2)]
        after = [d[i] * (k[i] - 1) - p[i + 2] + q[i] for i in range(2)]
        if any(v < 0 for v in before + after):  # pads beyond the kernel's reach crop instead
            starts = [max(0, -v) for v in before]
            ends = [zs[i] - max(0, -after[i]) for i in range(2)]
            z = add("Slice", [z, ints(starts), ints(ends), ints([2, 3])])
        if any(v > 0 for v in before + after):
            z = add("Pad", [z, ints([0, 0, max(0, before[0]), max(0, before[1]), 0, 0, max(0, after[0]), max(0, after[1])])])
        if w is not None:  # flipped and regrouped at compile time
            flipped = w.reshape(g, cig, cog, *k).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1].reshape(g * cog, cig, *k)
            wk = new.const(np.ascontiguousarray(flipped), "conv_transpose.w")
        else:  # weights fed at run time (torch.compile's parameters): data movement kernels
            end = np.iinfo(np.int64).min
            wk = add("Slice", [op.w, ints([-1, -1]), ints([end, end]), ints([2, 3]), ints([-1, -1])])
            if g == 1:
                wk = add("Transpose", [wk], {"perm": [1, 0, 2, 3]})
            else:
                wk = add("Reshape", [wk, ints([g, cig, cog, *k])])
                wk = add("Transpose", [wk], {"perm": [0, 2, 1, 3, 4]})
                wk = add("Reshape", [wk, ints([g * cog, cig, *k])])
        bias = [op.b] if op.b is not None and not isinstance(op.b.type, NoneType) else []
        y = add("Conv", [z, wk, *bias], {"group": g, "dilations": d, "kernel_shape": k})
        # The model's work is the transposed convolution's, not the zeros': MFU counts that.
        new.ops[-1].attributes[MODEL_FLOPS] = IntegerAttr(2 * n * c * h * wd * cog * k[0] * k[1], 64)
        if y.type != op.results[0].type:  # the arithmetic above disagrees with the op's own rule
            self.remarks.append({"pass": "ascend-conv-transpose", "ops": src,
                                 "reason": f"not rewritten: the Conv gives {y.type}, the op {op.results[0].type}"})
            return
        rewriter.replace(op, new.ops, [y])

    def _why_not(self, op: ConvTranspose) -> str | None:
        x = op.x.type
        if not isinstance(x, TensorType) or len(x.get_shape()) != 4 or -1 in x.get_shape():
            return "ConvTranspose stays on the AI CPU: only a 2-D one of static shape becomes a Conv"
        at = op.onnx_attrs()
        if at.get("auto_pad", "NOTSET") != "NOTSET" or at.get("output_shape") is not None:
            return "ConvTranspose stays on the AI CPU: auto_pad and output_shape are not rewritten"
        w = op.w.type
        if not isinstance(w, TensorType) or len(w.get_shape()) != 4 or -1 in w.get_shape():
            return "ConvTranspose stays on the AI CPU: its weights are not a 4-D tensor of static shape"
        return None


@dataclass(frozen=True)
class ConvTransposeToConvPass(ModulePass):
    """2-D ConvTranspose with constant weights -> zero insertion, padding and a Conv."""

    name = "ascend-conv-transpose"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(ConvTransposeToConv(weights_of(ctx), remarks_of(ctx))).rewrite_module(op)
