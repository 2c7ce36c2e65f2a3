"""The graph dialect: the verifier checks result types against shape rules; ops carry traits."""

from __future__ import annotations

import pytest
from xdsl.utils.exceptions import VerifyException

from graphopt.dialects.graph import ONNX_OPS, op_name
from graphopt.dialects.traits import Broadcasting, Cube, Elementwise, Movement, Reduction
from graphopt.errors import GraphoptError
from graphopt.ir import make_context, parse_module, print_module


def _module(body: str, args: str, ret_type: str) -> str:
    return (
        "builtin.module {\n"
        f"  func.func @main({args}) -> {ret_type} {{\n"
        f"{body}"
        f"    func.return %0 : {ret_type}\n"
        "  }\n"
        "}\n"
    )


ADD = '    %0 = "graph.add"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> {t}\n'
ARGS = "%a: tensor<2x3xf32>, %b: tensor<3xf32>"


def test_verifier_accepts_correct_add():
    text = _module(ADD.format(t="tensor<2x3xf32>"), ARGS, "tensor<2x3xf32>")
    module = parse_module(make_context(), text)
    module.verify()
    assert print_module(module) == text


@pytest.mark.parametrize("wrong", ["tensor<3x3xf32>", "tensor<2x3x1xf32>", "tensor<2x3xf16>", "tensor<3xf32>"])
def test_verifier_rejects_add_with_wrong_result_type(wrong):
    text = _module(ADD.format(t=wrong), ARGS, wrong)
    module = parse_module(make_context(), text)
    with pytest.raises(VerifyException, match=r"graph\.add"):
        module.verify()


def test_verifier_rejects_matmul_with_wrong_result_shape():
    body = '    %0 = "graph.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>\n'
    module = parse_module(make_context(), _module(body, "%a: tensor<2x3xf32>, %b: tensor<3x4xf32>", "tensor<2x3xf32>"))
    with pytest.raises(VerifyException, match=r"graph\.matmul"):
        module.verify()


def test_verifier_rejects_reshape_disagreeing_with_constant_shape():
    body = (
        '    %s = "graph.constant"() <{value = dense<[3, 2]> : tensor<2xi64>}> : () -> tensor<2xi64>\n'
        '    %0 = "graph.reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<6xf32>\n'
    )
    module = parse_module(make_context(), _module(body, "%a: tensor<2x3xf32>", "tensor<6xf32>"))
    with pytest.raises(VerifyException, match=r"graph\.reshape"):
        module.verify()
    good = parse_module(make_context(), _module(body.replace("tensor<6xf32>", "tensor<3x2xf32>"), "%a: tensor<2x3xf32>", "tensor<3x2xf32>"))
    good.verify()


def test_verifier_rejects_unknown_attribute():
    body = '    %0 = "graph.relu"(%a) <{bogus = 1 : i64}> : (tensor<2x3xf32>) -> tensor<2x3xf32>\n'
    module = parse_module(make_context(), _module(body, "%a: tensor<2x3xf32>", "tensor<2x3xf32>"))
    with pytest.raises(VerifyException, match="bogus"):
        module.verify()


def test_parse_error_is_graphopt_error():
    with pytest.raises(GraphoptError, match="cannot parse"):
        parse_module(make_context(), 'builtin.module { %0 = "graph.add"(', "x.mlir")


def test_traits():
    add, relu, matmul, conv = ONNX_OPS["Add"], ONNX_OPS["Relu"], ONNX_OPS["MatMul"], ONNX_OPS["Conv"]
    reduce_sum, reshape = ONNX_OPS["ReduceSum"], ONNX_OPS["Reshape"]
    assert add.name == "graph.add" and matmul.name == "graph.matmul" and reduce_sum.name == "graph.reduce_sum"
    assert add.has_trait(Elementwise) and add.has_trait(Broadcasting)
    assert relu.has_trait(Elementwise) and not relu.has_trait(Broadcasting)
    assert matmul.has_trait(Cube) and conv.has_trait(Cube)
    assert not matmul.has_trait(Elementwise)
    assert reduce_sum.has_trait(Reduction) and not reduce_sum.has_trait(Elementwise)
    assert reshape.has_trait(Movement) and not add.has_trait(Movement)


def test_op_names():
    assert op_name("GlobalAveragePool") == "graph.global_average_pool"
    assert op_name("MatMul") == "graph.matmul"
    assert op_name("Conv") == "graph.conv"
    assert ONNX_OPS["LayerNormalization"].name == "graph.layer_normalization"


def test_memoized_onnx_inference_keys_attributes_and_constants():
    """Ops typed by ONNX's inference are memoized by signature: a repeat of a signature
    must still fail when it is wrong, and a different attribute or constant must not hit."""
    transpose = '    %0 = "graph.transpose"(%a) <{{perm = array<i64: {perm}>}}> : (tensor<2x3xf32>) -> {t}\n'
    for _ in range(2):  # the second round answers from the memo
        good = parse_module(make_context(), _module(transpose.format(perm="1, 0", t="tensor<3x2xf32>"), "%a: tensor<2x3xf32>", "tensor<3x2xf32>"))
        good.verify()
        bad = parse_module(make_context(), _module(transpose.format(perm="0, 1", t="tensor<3x2xf32>"), "%a: tensor<2x3xf32>", "tensor<3x2xf32>"))
        with pytest.raises(VerifyException, match=r"graph\.transpose"):
            bad.verify()
    reshape = (
        '    %s = "graph.constant"() <{{value = dense<[{shape}]> : tensor<2xi64>}}> : () -> tensor<2xi64>\n'
        '    %0 = "graph.reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>\n'
    )
    parse_module(make_context(), _module(reshape.format(shape="3, 2"), "%a: tensor<2x3xf32>", "tensor<3x2xf32>")).verify()
    other = parse_module(make_context(), _module(reshape.format(shape="1, 6"), "%a: tensor<2x3xf32>", "tensor<3x2xf32>"))
    with pytest.raises(VerifyException, match=r"graph\.reshape"):
        other.verify()


def test_verified_module_is_freed():
    """The verifier remembers what each op was checked against on the op, so a module
    nobody holds any more is garbage (a module-level cache once kept them all alive)."""
    import gc
    import weakref

    module = parse_module(make_context(), _module(ADD.format(t="tensor<2x3xf32>"), ARGS, "tensor<2x3xf32>"))
    module.verify()
    ref = weakref.ref(module)
    del module
    gc.collect()
    assert ref() is None


def test_onnx_op_table_matches_installed_onnx():
    """onnx_ops.py, the schema data the dialect reads instead of importing onnx, is what
    onnx_ops_gen makes from the installed onnx (regenerate it after bumping onnx)."""
    from graphopt.dialects.onnx_ops_gen import main

    assert main(["--check"]) == 0


def test_op_classes_are_defined_on_first_use():
    from graphopt.dialects.graph import Graph

    assert "Conv" in ONNX_OPS and "NoSuchOp" not in ONNX_OPS
    assert ONNX_OPS["Conv"] is ONNX_OPS["Conv"]
    assert ONNX_OPS["Conv"].__module__ == "graphopt.dialects.graph"
    with pytest.raises(KeyError):
        ONNX_OPS["NoSuchOp"]
    assert len(list(Graph.operations)) == len(ONNX_OPS) + 5  # + weight, constant, none, yield, fused
