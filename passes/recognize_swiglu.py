"""recognize-swiglu: the gated FFN activation becomes one graph.swiglu.

    Mul(Mul(a, Sigmoid(a)), b)     (SiLU(a) * b)       -> SwiGLU(a, b)
    Mul(Swish(a), b)               (Swish with alpha)   -> SwiGLU(a, b) {alpha}

a and b must have the same type (SwiGLU does not broadcast).
"""

from __future__ import annotations

from graphopt.patterns import Match, OneOf, Op, Pattern, PatternPass, Var
from graphopt.rewrite import build

a = Var("a")
silu = OneOf(Op("Swish", a, name="swish", one_use=True), Op("Mul", a, Op("Sigmoid", a), one_use=True))


def _swiglu(m: Match):
    alpha = m.op("swish").onnx_attrs().get("alpha", 1.0) if "swish" in m.ops_by_name else 1.0
    return build("SwiGLU", [m["a"], m["b"]], {"alpha": alpha} if alpha != 1.0 else {}, m.src)


SWIGLU = Pattern("swiglu", Op("Mul", silu, Var("b")), _swiglu, where=lambda m: m["a"].type == m["b"].type)


class RecognizeSwiGLU(PatternPass):
    """Rewrite SiLU(a) * b into graph.swiglu."""

    name = "recognize-swiglu"
    phases = ((SWIGLU,),)
