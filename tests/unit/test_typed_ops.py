"""Typed core ops: named operands, arity checked, the same IR text, dispatchable by class."""

from __future__ import annotations

import pytest
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern

from graphopt.dialects import graph as g
from graphopt.dialects.graph import ONNX_OPS, Conv, Neg
from graphopt.ir import make_context, parse_module, print_module
from graphopt.rewrite import build

T = "tensor<1x2x4x4xf32>"
CONV = f"""builtin.module {{
  func.func @main(%x: {T}, %w: tensor<3x2x1x1xf32>, %b: tensor<3xf32>) -> (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) {{
    %y = "graph.conv"(%x, %w, %b) <{{group = 1 : i64}}> {{src = ["c1"]}} : ({T}, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
    %z = "graph.conv"(%x, %w) {{src = ["c2"]}} : ({T}, tensor<3x2x1x1xf32>) -> tensor<1x3x4x4xf32>
    func.return %y, %z : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>
  }}
}}
"""


def test_typed_ops_are_the_table_s_classes():
    for name in ("MatMul", "Gemm", "Conv", "Add", "Transpose", "Reshape", "ReduceMean", "Softmax", "LayerNormalization"):
        cls = getattr(g, name)
        assert ONNX_OPS[name] is cls
        assert "inputs" not in dict(cls.get_irdl_definition().operands)


def test_named_operands_and_unchanged_text():
    module = parse_module(make_context(), CONV)
    y, z = [op for op in module.walk() if isinstance(op, Conv)]
    assert (y.x, y.w, y.b) == tuple(y.operands)
    assert z.b is None and z.w is z.operands[1]
    assert y.onnx_attrs() == {"group": 1}
    assert print_module(module) == print_module(parse_module(make_context(), print_module(module)))
    assert '"graph.conv"(%x, %w, %b) <{group = 1 : i64}>' in print_module(module)


def test_arity_is_checked():
    bad = CONV.replace('"graph.conv"(%x, %w) {src = ["c2"]} : (' + T + ", tensor<3x2x1x1xf32>)",
                       '"graph.conv"(%x) {src = ["c2"]} : (' + T + ")")
    module = parse_module(make_context(), bad)
    with pytest.raises(Exception, match="operand"):
        module.verify()


def test_a_rewrite_dispatches_on_the_class():
    class NegNeg(RewritePattern):
        @op_type_rewrite_pattern
        def match_and_rewrite(self, op: Neg, rewriter: PatternRewriter) -> None:
            inner = op.x.owner
            if isinstance(inner, Neg):
                rewriter.replace_op(op, [], [inner.x])

    t = "tensor<2xf32>"
    text = (f'builtin.module {{\n func.func @main(%a: {t}) -> {t} {{\n'
            f'  %n = "graph.neg"(%a) : ({t}) -> {t}\n  %m = "graph.neg"(%n) : ({t}) -> {t}\n'
            f'  %e = "graph.exp"(%m) : ({t}) -> {t}\n  func.return %e : {t}\n }}\n}}')
    module = parse_module(make_context(), text)
    PatternRewriteWalker(NegNeg()).rewrite_module(module)
    out = print_module(module)
    assert '"graph.exp"(%a)' in out


def test_build_makes_typed_ops():
    module = parse_module(make_context(), CONV)
    y = next(op for op in module.walk() if isinstance(op, Conv))
    made = build("Relu", [y.results[0]])
    assert isinstance(made, g.Relu) and made.x is y.results[0]
