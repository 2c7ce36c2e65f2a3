"""recognize-rmsnorm: x / sqrt(mean(x^2) + eps) * w becomes one RMSNormalization.

    ms = ReduceMean(x^2, axes)   y = x / Sqrt(ms + eps)   [* w]
  becomes
    y = RMSNormalization(x, w) {axis = axes[0], epsilon = eps}

The division may be x * Reciprocal(Sqrt(...)) (how exporters write rsqrt); x^2 may be
Pow(x, 2) or x * x; a missing w becomes ones. x - mean(x) is a layer norm's, not this.
"""

from __future__ import annotations

from graphopt.dialects.graph import GraphOp
from graphopt.passes.recognize_norms import affine, build_norm, mean, square, trailing_axes
from graphopt.patterns import Match, Pattern, PatternPass, Var


def _not_centered(m: Match) -> bool:
    sub = m["x"].owner
    return not (isinstance(sub, GraphOp) and sub.ONNX_TYPE == "Sub" and isinstance(sub.operands[1].owner, GraphOp)
                and sub.operands[1].owner.ONNX_TYPE == "ReduceMean")


x = Var("x", where=_not_centered)
RMS_NORM = Pattern(
    "rms-norm",
    affine(x, mean(square(x), "mean", one_use=True), with_bias=False),
    lambda m: build_norm("RMSNormalization", m, m["x"], trailing_axes(m.op("mean"), m.weights)),
)


class RecognizeRMSNorm(PatternPass):
    """Rewrite x / sqrt(mean(x^2) + eps) * w into graph.rms_normalization."""

    name = "recognize-rmsnorm"
    phases = ((RMS_NORM,),)
    walk_reverse = True  # the scale Mul before the division: the largest match
