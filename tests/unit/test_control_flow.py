"""Control flow (If, Loop, Scan as regions), sequences and optionals: import, the IR's
types and text, the cpu plan's nested plans, validated against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from xdsl.dialects.builtin import TensorType, UnrankedTensorType, f32

import graphopt
from graphopt.dialects.types import OptionalType, SequenceType, join, tensor
from graphopt.ir import make_context, parse_module, print_module

F = TensorProto.FLOAT
I64 = TensorProto.INT64
B = TensorProto.BOOL


def _model(nodes, inputs, outputs, opset=18, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def if_model() -> onnx.ModelProto:
    """y = x + w if sum(x) > 0 else x * w, where both branches read outer values."""
    then = helper.make_graph([helper.make_node("Add", ["x", "w"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", F, [2, 3])])
    other = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", F, [2, 3])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"]),
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
    ]
    inits = [helper.make_tensor("zero", F, [], [0.0]), helper.make_tensor("w", F, [2, 3], [1, 2, 3, 4, 5, 6])]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [2, 3])],
                  [helper.make_tensor_value_info("y", F, [2, 3])], inits=inits)


def loop_model() -> onnx.ModelProto:
    """acc = acc * 2 + x, M times; also stacks each acc (a scan output)."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Mul", ["acc_in", "two"], ["m"]),
            helper.make_node("Add", ["m", "x"], ["acc_out"]),
            helper.make_node("Identity", ["acc_out"], ["scan_out"]),
        ],
        "body",
        [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond_in", B, []),
         helper.make_tensor_value_info("acc_in", F, [3])],
        [helper.make_tensor_value_info("cond_out", B, []), helper.make_tensor_value_info("acc_out", F, [3]),
         helper.make_tensor_value_info("scan_out", F, [3])],
    )
    nodes = [helper.make_node("Loop", ["M", "", "acc0"], ["acc", "stack"], body=body)]
    inits = [helper.make_tensor("M", I64, [], [4]), helper.make_tensor("two", F, [], [2.0]),
             helper.make_tensor("acc0", F, [3], [0, 0, 0])]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [3])],
                  [helper.make_tensor_value_info("acc", F, [3]), helper.make_tensor_value_info("stack", F, [4, 3])],
                  inits=inits)


def scan_model() -> onnx.ModelProto:
    """A running sum over the rows of x (state) and each partial sum (scan output)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "row"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["y"])],
        "body",
        [helper.make_tensor_value_info("s_in", F, [2]), helper.make_tensor_value_info("row", F, [2])],
        [helper.make_tensor_value_info("s_out", F, [2]), helper.make_tensor_value_info("y", F, [2])],
    )
    nodes = [helper.make_node("Scan", ["s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1)]
    return _model(nodes, [helper.make_tensor_value_info("s0", F, [2]), helper.make_tensor_value_info("x", F, [5, 2])],
                  [helper.make_tensor_value_info("s", F, [2]), helper.make_tensor_value_info("ys", F, [5, 2])])


def growing_loop_model() -> onnx.ModelProto:
    """A loop whose carried tensor grows each iteration (its type widens to tensor<?xf32>)."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Concat", ["v", "one"], ["v_out"], axis=0)],
        "body",
        [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("c", B, []),
         helper.make_tensor_value_info("v", F, [1])],
        [helper.make_tensor_value_info("c_out", B, []), helper.make_tensor_value_info("v_out", F, None)],
    )
    nodes = [helper.make_node("Loop", ["M", "", "x"], ["v"], body=body)]
    inits = [helper.make_tensor("M", I64, [], [3]), helper.make_tensor("one", F, [1], [1.0])]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [1])], [helper.make_tensor_value_info("v", F, None)],
                  inits=inits)


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("make", [if_model, loop_model, scan_model], ids=["if", "loop", "scan"])
def test_compiles_and_validates(make, opt_level):
    compiled = graphopt.compile(make(), opt_level=opt_level, validate=True)
    assert compiled.report["validation"]
    compiled.module.verify()


def test_if_takes_both_branches():
    compiled = graphopt.compile(if_model())
    w = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(compiled.run({"x": x})["y"], x + w)
    np.testing.assert_array_equal(compiled.run({"x": -x})["y"], -x * w)


def test_if_is_a_region_op_reading_outer_values():
    ir = graphopt.compile(if_model(), opt_level=0).ir
    assert '"graph.if"' in ir and '"graph.yield"' in ir
    assert "^bb" not in ir.split('"graph.if"')[1].split("\n")[0]  # branches take no arguments


def test_loop_runs_and_stacks():
    out = graphopt.compile(loop_model()).run({"x": np.array([1, 2, 3], np.float32)})
    np.testing.assert_array_equal(out["acc"], np.array([15, 30, 45], np.float32))
    assert out["stack"].shape == (4, 3)


def test_growing_loop_widens_carried_type():
    compiled = graphopt.compile(growing_loop_model())
    assert "tensor<?xf32>" in compiled.ir
    np.testing.assert_array_equal(compiled.run({"x": np.zeros(1, np.float32)})["v"], [0, 1, 1, 1])


@pytest.mark.parametrize("make", [if_model, loop_model, scan_model, growing_loop_model])
def test_ir_text_round_trips(make):
    compiled = graphopt.compile(make(), opt_level=0)
    text = compiled.ir
    again = parse_module(make_context(compiled.weights), text)
    again.verify()
    assert print_module(again) == text


def test_types_print_and_parse():
    seq = SequenceType(tensor(f32, [-1, 3]))
    opt = OptionalType(SequenceType(UnrankedTensorType(f32)))
    for t in (seq, opt, OptionalType(TensorType(f32, [2]))):
        text = f"builtin.module {{\n  func.func @f(%a: {t}) -> {t} {{\n    func.return %a : {t}\n  }}\n}}\n"
        module = parse_module(make_context(), text)
        assert print_module(module) == text
    assert str(seq) == "!graph.seq<tensor<?x3xf32>>"
    assert str(opt) == "!graph.opt<!graph.seq<tensor<*xf32>>>"


def test_join():
    a, b = TensorType(f32, [2, 3]), TensorType(f32, [4, 3])
    assert join(a, b) == tensor(f32, [-1, 3])
    assert join(a, TensorType(f32, [3])) == UnrankedTensorType(f32)
    assert join(OptionalType(SequenceType(a)), SequenceType(b)) == OptionalType(SequenceType(tensor(f32, [-1, 3])))


def test_sequences_and_optionals_run():
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["seq"], axis=0),
        helper.make_node("SequenceInsert", ["seq", "x"], ["seq2"]),
        helper.make_node("SequenceLength", ["seq2"], ["n"]),
        helper.make_node("ConcatFromSequence", ["seq2"], ["cat"], axis=0),
        helper.make_node("Optional", ["x"], ["o"]),
        helper.make_node("OptionalHasElement", ["o"], ["has"]),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [2, 3])],
                   [helper.make_tensor_value_info("n", I64, []), helper.make_tensor_value_info("cat", F, None),
                    helper.make_tensor_value_info("has", B, [])])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = graphopt.compile(model, opt_level=2).run({"x": x})
    assert int(out["n"]) == 3 and bool(out["has"])
    np.testing.assert_array_equal(out["cat"], np.concatenate([x, x]))
