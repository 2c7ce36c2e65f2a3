"""recognize-layernorm: the decomposed layer norm older exporters write becomes one op.

    m = ReduceMean(x, axes)   d = x - m   v = ReduceMean(d^2, axes)
    y = d / Sqrt(v + eps)  [* gamma]  [+ beta]
  becomes
    y = LayerNormalization(x, gamma, beta) {axis = axes[0], epsilon = eps}

axes must be the trailing axes; d^2 may be Pow(d, 2) or d * d; the division may be a
multiplication by Reciprocal. A missing gamma becomes ones.
"""

from __future__ import annotations

from graphopt.passes.recognize_norms import affine, build_norm, mean, square, trailing_axes
from graphopt.patterns import Op, Pattern, PatternPass, Var

x = Var("x")
d = Op("Sub", x, mean(x, "mean"), name="d")
LAYER_NORM = Pattern(
    "layer-norm",
    affine(d, mean(square(d), "var", one_use=True), with_bias=True),
    lambda m: build_norm("LayerNormalization", m, m["x"], trailing_axes(m.op("mean"), m.weights)),
    where=lambda m: trailing_axes(m.op("var"), m.weights) == trailing_axes(m.op("mean"), m.weights),
)


class RecognizeLayerNorm(PatternPass):
    """Rewrite decomposed layer normalization into graph.layer_normalization."""

    name = "recognize-layernorm"
    phases = ((LAYER_NORM,),)
    walk_reverse = True  # the bias Add before the scale Mul before the division: the largest match
