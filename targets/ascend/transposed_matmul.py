"""ascend-transposed-matmul: a 2-D MatMul of a transposed operand reads it transposed.

    MatMul(Transpose(a, perm [1, 0]), b)  ->  Gemm(a, b, transA = 1)     (and b: transB)

The cube loads an operand either way round (the ND -> fractal load transposes as it
copies), so the Transpose kernel, a full pass over the operand through HBM, goes away. A
training step's weight gradients are all of this form (x^T dy, dy W^T). Only when the
Transpose has no other reader, and only 2-D (Gemm is); other matmuls stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from graphopt.dialects.graph import provenance
from graphopt.rewrite import build


def _transposed(v: SSAValue) -> SSAValue | None:
    """x when ``v`` is Transpose(x, [1, 0]) of a 2-D x read by nothing else, else None."""
    op = v.owner
    if getattr(op, "ONNX_TYPE", None) != "Transpose" or len({u.operation for u in v.uses}) != 1:
        return None
    x = op.operands[0]
    if not isinstance(x.type, TensorType) or len(x.type.get_shape()) != 2:
        return None
    perm = op.onnx_attrs().get("perm")
    return x if perm is None or list(perm) == [1, 0] else None


@dataclass
class TransposeIntoGemm(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if getattr(op, "ONNX_TYPE", None) != "MatMul":
            return
        a, b = op.operands
        if not all(isinstance(v.type, TensorType) and len(v.type.get_shape()) == 2 for v in (a, b)):
            return
        ta, tb = _transposed(a), _transposed(b)
        if ta is None and tb is None:
            return
        attrs = {"transA": int(ta is not None), "transB": int(tb is not None)}
        gemm = build("Gemm", [ta if ta is not None else a, tb if tb is not None else b], attrs, provenance(op))
        if gemm.results[0].type != op.results[0].type:
            return
        old = [v.owner for v in (a, b) if _transposed(v) is not None]
        rewriter.replace_op(op, gemm)
        for t in old:
            if isinstance(t, Operation) and not any(r.uses for r in t.results):
                rewriter.erase_op(t)


@dataclass(frozen=True)
class TransposedMatmulPass(ModulePass):
    """2-D MatMul of a transposed operand -> Gemm with transA / transB."""

    name = "ascend-transposed-matmul"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(TransposeIntoGemm()).rewrite_module(op)
