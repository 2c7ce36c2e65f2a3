"""recognize-gelu: the decomposed GELU forms exporters write become one graph.gelu.

    erf form:   0.5 * x * (1 + erf(x / sqrt(2)))                     -> gelu(x)
    tanh form:  0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))  -> gelu(x) {approximate = "tanh"}

The 0.5 may multiply x, the product, or (1 + ...); x / sqrt(2) may be written
x * (1/sqrt(2)); x^3 may be Pow(x, 3) or x * x * x. Constants match to 1e-3 relative.
"""

from __future__ import annotations

import math

from graphopt.patterns import Const, Matcher, OneOf, Op, Pattern, PatternPass, Var
from graphopt.rewrite import build

x = Var("x")


def _half(v: Matcher, one_use: bool = False) -> Matcher:
    """v * 0.5 or v / 2."""
    return OneOf(Op("Mul", v, Const(0.5), one_use=one_use), Op("Div", v, Const(2.0), one_use=one_use))


def _gelu(fn: Matcher) -> Matcher:
    """0.5 * x * (1 + fn), with the 0.5 on x, on the product or on (1 + fn)."""
    one_plus = Op("Add", fn, Const(1.0), one_use=True)
    return OneOf(
        Op("Mul", _half(x), one_plus),
        _half(Op("Mul", x, one_plus, one_use=True)),
        Op("Mul", Op("Mul", one_plus, Const(0.5), one_use=True), x),
    )


erf = Op("Erf", OneOf(Op("Div", x, Const(math.sqrt(2))), Op("Mul", x, Const(1 / math.sqrt(2)))), one_use=True)
cube = OneOf(Op("Pow", x, Const(3.0)), Op("Mul", x, Op("Mul", x, x)))
tanh = Op("Tanh", Op("Mul", Op("Add", x, Op("Mul", cube, Const(0.044715))), Const(math.sqrt(2 / math.pi))), one_use=True)

GELU_ERF = Pattern("gelu-erf", _gelu(erf), lambda m: build("Gelu", [m["x"]], {}, m.src))
GELU_TANH = Pattern("gelu-tanh", _gelu(tanh), lambda m: build("Gelu", [m["x"]], {"approximate": "tanh"}, m.src))


class RecognizeGelu(PatternPass):
    """Rewrite the erf and tanh decompositions of GELU into graph.gelu."""

    name = "recognize-gelu"
    phases = ((GELU_ERF, GELU_TANH),)
