"""A pass plugin with a bug, for `graphopt bisect`'s tests (loaded with --load-pass-plugin).

``fold-sub-neg`` rewrites a - (-b) into a + b (right), and a - c for a constant c into
a + c where it meant a + (-c) (wrong): a model with one Sub of a constant is miscompiled in
exactly that place, while the other pattern rewrites elsewhere correctly."""

from graphopt.patterns import Const, Op, Pattern, PatternPass, Var
from graphopt.rewrite import build

a, b = Var("a"), Var("b")

SUB_NEG = Pattern("sub-of-neg", Op("Sub", a, Op("Neg", b)), lambda m: build("Add", [m["a"], m["b"]], {}, m.src))
SUB_CONST = Pattern("sub-of-constant", Op("Sub", a, Const(name="c")),  # the bug: forgot to negate c
                    lambda m: build("Add", [m["a"], m["c"]], {}, m.src))


class FoldSubNeg(PatternPass):
    """a - (-b) -> a + b; a - c -> a + c (wrong)."""

    name = "fold-sub-neg"
    phases = ((SUB_NEG, SUB_CONST),)
