"""recognize-attention: scaled dot-product attention becomes one graph.attention.

1. The core (all 4-D, [batch, heads, seq, dim]):
       s = MatMul(q, kT) [* c | / c] [+ mask]     p = Softmax(s, axis=-1)     y = MatMul(p, v)
   p may pass through Where(IsNaN(p), 0, p) first (fully masked rows give zeros, as in
   ONNX's Attention).
   becomes  y = Attention(q, Transpose(kT), v, mask) {scale = c or 1/c}
   A scalar multiplier on q or on kT (exporters split sqrt(scale) over both) joins the scale.
2. The multi-head plumbing around it: when q, k and v are each
   Transpose(Reshape(x, [B, S, H, D]), [0, 2, 1, 3]) and y goes through
   Transpose([0, 2, 1, 3]) and Reshape([B, S, H*D]), the whole becomes the 3-D form
       Attention(xq, xk, xv, mask) {q_num_heads = H, kv_num_heads = Hkv}
   whose input and output are [B, S, H*D].

The mask is kept as the additive (or boolean) attn_mask input; its shape broadcasts as
ONNX's Attention requires.
"""

from __future__ import annotations

from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue

from graphopt.passes.simplify_transpose_reshape import MovementChainToTranspose, TransposeOfTranspose
from graphopt.patterns import Const, Match, OneOf, Op, Pattern, PatternPass, Var
from graphopt.rewrite import build, src_of

_HEADS_PERM = [0, 2, 1, 3]


def _rank(v: SSAValue) -> int:
    return len(v.type.get_shape()) if isinstance(v.type, TensorType) else -1


def _rank4(name: str) -> Var:
    return Var(name, where=lambda m: _rank(m[name]) == 4)


def _scaled(name: str, c: str) -> OneOf:
    """v * c with c a scalar (only v's user), else v."""
    return OneOf(Op("Mul", _rank4(name), Const(name=c), one_use=True), _rank4(name))


def _mask_fits(m: Match) -> bool:
    """Attention's attn_mask must end in [q_seq or 1, kv_seq]: a shorter last axis would
    be padded (as masked), not broadcast."""
    mask, scores = m["mask"].type, m["qk"].type
    if not isinstance(mask, TensorType) or not isinstance(scores, TensorType):
        return False
    ms, s = mask.get_shape(), scores.get_shape()
    return 2 <= len(ms) <= len(s) and ms[-1] == s[-1] and ms[-2] in (1, s[-2])


qk = Op("MatMul", _scaled("q", "cq"), _scaled("kt", "ck"), name="qk")
scaled_qk = OneOf(Op("Mul", qk, Const(name="c")), Op("Div", qk, Const(name="inv_c")), qk)
scores = OneOf(Op("Add", scaled_qk, Var("mask"), where=_mask_fits), scaled_qk)


def _softmax(one_use: bool) -> Op:
    return Op("Softmax", scores, name="p", attrs={"axis": lambda a: a in (-1, 3)}, one_use=one_use)


def _only_nan_guard(m: Match) -> bool:
    return len({u.operation for u in m["p"].uses}) == 2  # the IsNaN and the Where


# p, or Where(IsNaN(p), 0, p) when p has no other user; the result feeds only the second MatMul
probs = OneOf(Op("Where", Op("IsNaN", _softmax(False), one_use=True), Const(0.0, rel=0.0), _softmax(False),
                 one_use=True, where=_only_nan_guard), _softmax(True))


def _attention(m: Match):
    c = m.consts["c"] if "c" in m.consts else 1.0 / m.consts.get("inv_c", 1.0)
    scale = c * m.consts.get("cq", 1.0) * m.consts.get("ck", 1.0)
    k = build("Transpose", [m["kt"]], {"perm": [0, 1, 3, 2]}, src_of(m.op("qk")))
    mask = [m["mask"]] if m.get("mask") is not None else []
    return [k, build("Attention", [m["q"], k.results[0], m["v"], *mask], {"scale": scale}, m.src)]


ATTENTION_CORE = Pattern("attention-core", Op("MatMul", probs, _rank4("v")), _attention)


def _heads(v: str) -> Op:
    """Transpose(Reshape(x [B,S,H*D] -> [B,S,H,D]), [0,2,1,3]); binds x as ``v``."""
    flat = Var(v, where=lambda m: _rank(m[v]) == 3)
    return Op("Transpose", Op("Reshape", flat, Var(), name=f"{v}_split"), attrs={"perm": _HEADS_PERM})


def _merged_heads(m: Match):
    attrs = {**m.op("attn").onnx_attrs(),
             "q_num_heads": m["xq_split"].type.get_shape()[2], "kv_num_heads": m["xk_split"].type.get_shape()[2]}
    return build("Attention", [m["xq"], m["xk"], m["xv"], *m.rest["mask"]], attrs, m.src)


attn4 = Op("Attention", _heads("xq"), _heads("xk"), _heads("xv"), name="attn", rest="mask", one_use=True,
           where=lambda m: len(m.op("attn").results) == 1 and len(m.rest["mask"]) <= 1)
ATTENTION_HEADS = Pattern("attention-heads",
                          Op("Reshape", Op("Transpose", attn4, attrs={"perm": _HEADS_PERM}, one_use=True), Var(),
                             where=lambda m: _rank(m.ops[0].results[0]) == 3),
                          _merged_heads)


class RecognizeAttention(PatternPass):
    """Rewrite MatMul-scale-mask-Softmax-MatMul (and its multi-head plumbing) into graph.attention."""

    name = "recognize-attention"
    phases = ((ATTENTION_CORE, TransposeOfTranspose(), MovementChainToTranspose()), (ATTENTION_HEADS,))
