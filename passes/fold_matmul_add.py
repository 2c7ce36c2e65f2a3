"""fold-matmul-add: MatMul followed by the Add of a bias becomes one matmul-with-bias.

    %m = "graph.matmul"(%x, %w)
    %y = "graph.add"(%m, %b)          (%b broadcasting along the last axis only)
  becomes
    %y = "graph.matmul_bias"(%x, %w, %b)

so the bias is the matmul's epilogue on every target. Needs the MatMul's result to have
no other user, and the Add's result the MatMul's shape (a bias that broadcasts the product
to a larger shape is no epilogue).
"""

from __future__ import annotations

from xdsl.dialects.builtin import TensorType

from graphopt.patterns import Match, Op, Pattern, PatternPass, Var
from graphopt.rewrite import build


def _bias_like(m: Match) -> bool:
    """Broadcasts along the last axis only: [N] or [1, ..., 1, N]."""
    t = m["b"].type
    return isinstance(t, TensorType) and all(d == 1 for d in t.get_shape()[:-1])


MATMUL_ADD = Pattern(
    "matmul-add",
    Op("Add", Op("MatMul", Var("x"), Var("w"), name="mm", one_use=True), Var("b", where=_bias_like), name="y"),
    lambda m: build("graphopt::MatMulBias", [m["x"], m["w"], m["b"]], {}, m.src),
    where=lambda m: m["y"].type == m["mm"].type,  # the Add does not broadcast the product up
)


class FoldMatMulAdd(PatternPass):
    """Fold MatMul + Add(bias) into graph.matmul_bias."""

    name = "fold-matmul-add"
    phases = ((MATMUL_ADD,),)
