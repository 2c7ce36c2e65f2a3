"""Bugs the differential fuzzer (benchmarks/fuzz.py) found, each as its minimal graph.

Each test names the seed that found it; the graph is the reduction of that case
(``benchmarks/fuzz.py --seed S --cases 1 --reduce``), written out by hand.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt
from graphopt.validate import compare

OPSET = 18


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "regression", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _ort(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _assert_matches(model, feeds, target="cpu", fp16=False, **kwargs):
    compiled = graphopt.compile(model, target, **kwargs)
    got = compiled.run(feeds)
    for (name, ours), ref in zip(got.items(), _ort(model, feeds)):
        entry = compare(name, np.asarray(ours), np.asarray(ref), 64, np.dtype(np.float16) if fp16 else None)
        assert entry["passed"], entry
    return compiled


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_ceil_mode_drops_a_last_window_that_starts_past_the_input(op):
    """Seeds 5 and 14: with ceil_mode, a last window starting past the input and its begin
    padding is dropped (the ONNX spec, onnxruntime, onnx.reference), but onnx's shape
    inference keeps it: 6x8 with kernel 1 and strides (3, 2) gives 2x4, onnx infers 3x5.
    The import took onnx's types, and the verifier failed on the pool and on every op after
    it ("graph.average_pool result 0 is declared tensor<1x1x3x5xf32>, but its inputs give
    tensor<1x1x2x4xf32>"), an internal error on every target."""
    nodes = [
        helper.make_node(op, ["x"], ["p"], kernel_shape=[1, 1], strides=[3, 2], ceil_mode=1),
        helper.make_node("Relu", ["p"], ["r"]),  # the ops after the pool: typed by their rules too
        helper.make_node("Mul", ["r", "p"], ["y"]),
    ]
    model = _model(nodes, [_vi("x", (1, 1, 6, 8))], [_vi("y", None)])
    x = np.arange(48, dtype=np.float32).reshape(1, 1, 6, 8) / 48
    compiled = _assert_matches(model, {"x": x})
    assert compiled.run({"x": x})["y"].shape == (1, 1, 2, 4)


@pytest.mark.parametrize("precision", ["force_fp16", "must_keep_origin_dtype"])
def test_small_conv_weight_inside_a_fused_group_is_the_cubes_operand(precision):
    """Seed 10: a conv weight small enough to be a constant (5x4x1x2) is cloned into the
    fused conv+relu region, and ascend-layout stores it there as a FRACTAL_Z weight. The
    lowering took only constants as kernel inputs, so the group went to the AI CPU ("the
    cube operands are computed inside the group"), whose conv kernel then read the
    FRACTAL_Z bytes as an OIHW array: "graph.conv: ValueError: matmul: ... size 1024 is
    different from 256"."""
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (5, 4, 1, 2)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[2, 1, 0, 1]), helper.make_node("Relu", ["c"], ["y"])]
    model = _model(nodes, [_vi("x", (3, 4, 2, 1))], [_vi("y", None)], [_const("w", w)])
    x = rng.uniform(-1, 1, (3, 4, 2, 1)).astype(np.float32)
    compiled = _assert_matches(model, {"x": x}, "ascend-sim", fp16=precision == "force_fp16",
                               target_options={"precision": precision})
    kinds = [k["kind"] for k in compiled.report["kernels"]]
    assert "cube" in kinds and "aicpu" not in kinds, kinds
