"""ONNX frontend: old opsets legalized to the newest form, Constant nodes, provenance."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gp_models import _model, cnn_model, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

import graphopt
from graphopt.frontends.onnx import import_model


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], exact=False):
    """Compile with validate=True (raises on mismatch) and compare with onnxruntime ourselves too."""
    compiled = graphopt.compile(model, validate=True, inputs=feeds)
    assert compiled.report["validation"]["passed"] is True
    got = compiled.run(feeds)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert list(got) == names
    for name, ref in zip(names, sess.run(names, feeds)):
        assert got[name].shape == ref.shape and got[name].dtype == ref.dtype, name
        if exact:
            np.testing.assert_array_equal(got[name], ref)
        else:
            np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-6)
    return compiled


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_opset8_softmax_flattens_at_axis():
    node = h.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)
    model = _model([node], [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4])], opset=8)
    x = _x(2, 3, 4)
    c = _check(model, {"x": x})
    # old semantics: softmax over the flattened 3*4 trailing elements, not over axis 1 alone
    y = c.run({"x": x})["y"]
    np.testing.assert_allclose(y.reshape(2, -1).sum(axis=1), [1, 1], rtol=1e-5)
    assert not np.allclose(y.sum(axis=1), 1)


def test_opset8_softmax_last_axis():
    node = h.make_node("Softmax", ["x"], ["y"], name="sm", axis=2)
    _check(_model([node], [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4])], opset=8), {"x": _x(2, 3, 4)})


@pytest.mark.parametrize("b_shape, axis", [((3, 4), 1), ((5,), -1), ((2, 3, 4, 5), None), ((4,), 2)])
def test_opset6_binary_broadcast_along_axis(b_shape, axis):
    """Add-6 broadcasts B only with broadcast=1, its axes lined up with A's from ``axis``
    (pytorch-operator's add_broadcast). onnxruntime 1.32 has no Add-6 kernel: the expected
    value is numpy's, B given the trailing unit axes the axis implies."""
    attrs = {"broadcast": 1} | ({"axis": axis} if axis is not None else {})
    node = h.make_node("Add", ["a", "b"], ["y"], name="add", **attrs)
    model = _model([node], [vi("a", [2, 3, 4, 5]), vi("b", list(b_shape))], [vi("y", [2, 3, 4, 5])], opset=6)
    a, b = _x(2, 3, 4, 5), _x(*b_shape, seed=1)
    trailing = 0 if axis is None else 4 - axis % 4 - len(b_shape)
    got = graphopt.compile(model, validate=False).run({"a": a, "b": b})["y"]
    np.testing.assert_array_equal(got, a + b.reshape(*b_shape, *(1,) * trailing))


def test_opset6_gemm_broadcast_and_prelu_slope_per_channel():
    w = nh.from_array(_x(4, 3, seed=2), "w")
    c = nh.from_array(_x(3, seed=3), "c")
    slope = nh.from_array(np.array([0.1, 0.2, 0.3], np.float32), "slope")
    nodes = [h.make_node("Gemm", ["x", "w", "c"], ["g"], name="gemm", broadcast=1),
             h.make_node("Reshape", ["g", "shape"], ["g4"], name="r"),
             h.make_node("PRelu", ["g4", "slope"], ["y"], name="prelu")]
    shape = nh.from_array(np.array([2, 3, 1, 1], np.int64), "shape")
    model = _model(nodes, [vi("x", [2, 4])], [vi("y", [2, 3, 1, 1])], inits=[w, c, slope, shape], opset=6)
    x = _x(2, 4)
    g = (x @ nh.to_array(w) + nh.to_array(c)).reshape(2, 3, 1, 1)
    want = np.where(g < 0, g * np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1), g)
    np.testing.assert_allclose(graphopt.compile(model, validate=False).run({"x": x})["y"], want, rtol=1e-6)


def test_opset9_slice_attributes():
    node = h.make_node("Slice", ["x"], ["y"], name="sl", starts=[1, 0], ends=[3, 100], axes=[0, 2])
    _check(_model([node], [vi("x", [4, 3, 5])], [vi("y", [2, 3, 5])], opset=9), {"x": _x(4, 3, 5)})


def test_opset9_slice_without_axes():
    node = h.make_node("Slice", ["x"], ["y"], name="sl", starts=[1, -2], ends=[3, 1000])
    _check(_model([node], [vi("x", [4, 5])], [vi("y", [2, 2])], opset=9), {"x": _x(4, 5)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_opset10_pad_attributes(mode):
    attrs = {"pads": [0, 1, 2, 0, 2, 1], "mode": mode}
    if mode == "constant":
        attrs["value"] = 1.5
    node = h.make_node("Pad", ["x"], ["y"], name="pad", **attrs)
    _check(_model([node], [vi("x", [2, 3, 4])], [vi("y", [2, 6, 7])], opset=10), {"x": _x(2, 3, 4)}, exact=True)


@pytest.mark.parametrize("bounds", [{"min": -0.5, "max": 0.25}, {"min": 0.0}, {"max": 0.1}, {}])
def test_opset10_clip_attributes(bounds):
    node = h.make_node("Clip", ["x"], ["y"], name="clip", **bounds)
    _check(_model([node], [vi("x", [3, 4])], [vi("y", [3, 4])], opset=10), {"x": _x(3, 4)}, exact=True)


@pytest.mark.parametrize("keepdims", [0, 1])
def test_opset11_reduce_sum_axes_attribute(keepdims):
    node = h.make_node("ReduceSum", ["x"], ["y"], name="rs", axes=[0, 2], keepdims=keepdims)
    out = [1, 3, 1] if keepdims else [3]
    _check(_model([node], [vi("x", [2, 3, 4])], [vi("y", out)], opset=11), {"x": _x(2, 3, 4)})


def test_opset11_squeeze_unsqueeze_axes_attribute():
    nodes = [
        h.make_node("Squeeze", ["x"], ["s"], name="sq", axes=[1, 3]),
        h.make_node("Unsqueeze", ["s"], ["y"], name="unsq", axes=[0, 3]),
    ]
    _check(_model(nodes, [vi("x", [2, 1, 3, 1])], [vi("y", [1, 2, 3, 1])], opset=11), {"x": _x(2, 1, 3, 1)}, exact=True)


def test_opset11_split_attribute():
    node = h.make_node("Split", ["x"], ["a", "b"], name="split", axis=1, split=[1, 3])
    _check(_model([node], [vi("x", [2, 4])], [vi("a", [2, 1]), vi("b", [2, 3])], opset=11), {"x": _x(2, 4)}, exact=True)


def test_opset9_topk_k_attribute():
    node = h.make_node("TopK", ["x"], ["v", "i"], name="topk", k=2, axis=1)
    model = _model([node], [vi("x", [3, 5])], [vi("v", [3, 2]), vi("i", [3, 2], T.INT64)], opset=9)
    _check(model, {"x": _x(3, 5)}, exact=True)


def test_opset9_upsample_nearest():
    scales = nh.from_array(np.array([1, 1, 2, 3], np.float32), "scales")
    node = h.make_node("Upsample", ["x", "scales"], ["y"], name="up", mode="nearest")
    model = _model([node], [vi("x", [1, 2, 3, 2])], [vi("y", [1, 2, 6, 6])], [scales], opset=9)
    _check(model, {"x": _x(1, 2, 3, 2)}, exact=True)


def test_opset7_upsample_scales_attribute():
    node = h.make_node("Upsample", ["x"], ["y"], name="up", mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])
    model = _model([node], [vi("x", [1, 1, 2, 3])], [vi("y", [1, 1, 4, 6])], opset=7)
    _check(model, {"x": _x(1, 1, 2, 3)}, exact=True)


def test_constant_nodes():
    tensor = nh.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "t")
    nodes = [
        h.make_node("Constant", [], ["c_t"], name="c_value", value=tensor),
        h.make_node("Constant", [], ["c_f"], name="c_float", value_float=0.5),
        h.make_node("Constant", [], ["c_i"], name="c_ints", value_ints=[3, 2]),
        h.make_node("Add", ["x", "c_t"], ["s"], name="add"),
        h.make_node("Mul", ["s", "c_f"], ["m"], name="mul"),
        h.make_node("Transpose", ["m"], ["tr"], name="tr"),
        h.make_node("Reshape", ["tr", "c_i"], ["y"], name="reshape"),
    ]
    model = _model(nodes, [vi("x", [2, 3])], [vi("y", [3, 2])], opset=17)
    x = _x(2, 3)
    c = _check(model, {"x": x})
    np.testing.assert_allclose(c.run({"x": x})["y"], ((x + np.arange(6).reshape(2, 3)) * 0.5).T, rtol=1e-6)


def test_large_constant_becomes_weight():
    big = nh.from_array(np.arange(200, dtype=np.float32).reshape(10, 20), "t")
    nodes = [h.make_node("Constant", [], ["c"], name="cbig", value=big), h.make_node("Add", ["x", "c"], ["y"], name="add")]
    c = _check(_model(nodes, [vi("x", [10, 20])], [vi("y", [10, 20])]), {"x": _x(10, 20)})
    assert "graph.weight" in c.ir and len(c.weights) == 1


def _node_ops(module: ModuleOp):
    skip = {"builtin.module", "func.func", "func.return"}
    return [op for op in module.walk() if op.name not in skip and not isinstance(op, func.ReturnOp)]


def _assert_provenance(model: onnx.ModelProto):
    from graphopt.dialects.graph import provenance

    g = model.graph
    known = {n.name for n in g.node} | {t.name for t in g.initializer}
    imported = import_model(model)
    ops = _node_ops(imported.module)
    assert ops
    for op in ops:
        if op.name == "graph.none":
            continue
        src = provenance(op)
        assert src, f"{op.name} has no src"
        assert set(src) <= known, f"{op.name} src={src} names no ONNX node (nodes: {sorted(known)})"
    # every ONNX node shows up in some op's src
    named = {s for op in ops for s in provenance(op)}
    assert {n.name for n in g.node} <= named


def test_provenance_cnn():
    _assert_provenance(cnn_model())


def test_provenance_legalized_old_opsets():
    nodes = [
        h.make_node("Slice", ["x"], ["s"], name="slice_node", starts=[0], ends=[2], axes=[0]),
        h.make_node("Clip", ["s"], ["c"], name="clip_node", min=-0.5, max=0.5),
        h.make_node("Softmax", ["c"], ["y"], name="softmax_node", axis=1),
    ]
    _assert_provenance(_model(nodes, [vi("x", [3, 3, 4])], [vi("y", [2, 3, 4])], opset=9))
