"""A graphopt pass plugin: recognize x * sigmoid(x) as SiLU (ONNX Swish, alpha = 1).

Load it from the command line:

    graphopt compile model.onnx --load-pass-plugin examples/silu_pass.py -p "recognize-silu,fuse"

or from Python (see examples/custom_pass.py). The same rule written as text, which loads
without running code, is examples/silu.patterns (`--load-patterns`).
"""

from __future__ import annotations

from graphopt.patterns import Op, Pattern, PatternPass, Var
from graphopt.rewrite import build

x = Var("x")  # a name bound twice must bind the same value: Mul(x, Sigmoid(x)), either operand order

# build() infers the new op's result type from its shape rule; m.src carries the
# provenance of the matched ops (the Mul and the Sigmoid), which are erased once unused.
SILU = Pattern("silu", Op("Mul", x, Op("Sigmoid", x)), lambda m: build("Swish", [m["x"]], {}, m.src))


class RecognizeSiLU(PatternPass):
    """Rewrite x * sigmoid(x) into graph.swish (SiLU), which the fuser treats as elementwise."""

    name = "recognize-silu"
    phases = ((SILU,),)
