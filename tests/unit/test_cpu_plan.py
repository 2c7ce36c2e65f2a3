"""The cpu target's execution plan: each step's results are checked against their planned
types on the first call; once a step with fully static types has passed, later calls of a
plan whose inputs are static too skip the check (the same kernel on the same shapes gives
the same shapes). Data-dependent shapes are checked every time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnx import TensorProto, helper

import graphopt


def _model(nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "m", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _plan(compiled):
    return compiled.executable if hasattr(compiled, "executable") else compiled._executable


def test_static_steps_are_proven_after_one_call_and_give_the_same_results():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    compiled = graphopt.compile(_model([helper.make_node("Tanh", ["x"], ["t"]), helper.make_node("Softmax", ["t"], ["y"])],
                                       [x], [y]))
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)}
    first = compiled.run(feeds)["y"]
    assert all(_plan(compiled).proven)
    np.testing.assert_array_equal(compiled.run(feeds)["y"], first)


def test_data_dependent_shapes_are_checked_on_every_call():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    compiled = graphopt.compile(_model([helper.make_node("NonZero", ["x"], ["y"])], [x], [y]))
    for k in range(3):
        got = compiled.run({"x": np.array([0, 1, 0, 2, 0, 3][: 6 - k] + [0] * k, np.float32)})["y"]
        assert got.shape == (1, 3 - (k > 0) - (k > 2))
    assert not any(_plan(compiled).proven)


def test_a_kernel_disagreeing_with_its_type_rule_is_caught_on_the_first_call():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    compiled = graphopt.compile(_model([helper.make_node("Tanh", ["x"], ["y"])], [x], [y]))
    plan = _plan(compiled)
    plan.steps[0] = dataclasses.replace(plan.steps[0], kernel=lambda a: a.astype(np.float64))
    with pytest.raises(RuntimeError, match="kernel gave float64"):
        compiled.run({"x": np.zeros((2, 3), np.float32)})
