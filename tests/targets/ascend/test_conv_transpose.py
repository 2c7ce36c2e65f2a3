"""ConvTranspose on the cube (ascend-conv-transpose: zero insertion, padding and a Conv
with the flipped kernel) against the cpu target's ConvTranspose, on both chips."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt

# (c_in, c_out, group, kernel, strides, pads, dilations, output_padding, bias)
CASES = [
    (4, 6, 1, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], [1, 1], True),  # the usual 2x upsampling
    (4, 6, 1, [3, 3], [1, 1], [0, 0, 0, 0], [1, 1], [0, 0], False),
    (4, 4, 2, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], [0, 0], True),  # grouped
    (8, 8, 8, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], [1, 1], True),  # depthwise
    (3, 5, 1, [3, 2], [3, 2], [2, 0, 1, 1], [2, 1], [1, 0], True),  # uneven everything, dilated
    (4, 6, 1, [4, 4], [2, 2], [3, 3, 3, 3], [1, 1], [0, 0], False),  # pads beyond the kernel: a crop
]


def _model(c_in, c_out, group, kernel, strides, pads, dilations, output_padding, bias, weights_as_input=False):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((c_in, c_out // group, *kernel)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), "b")
    node = helper.make_node("ConvTranspose", ["x", "w", "b"] if bias else ["x", "w"], ["y"], group=group,
                            kernel_shape=kernel, strides=strides, pads=pads, dilations=dilations,
                            output_padding=output_padding)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c_in, 5, 6])]
    if weights_as_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.dims)))
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [b] + ([] if weights_as_input else [w]))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("chip", ["ascend910b", "ascend310p"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{k}" for k in range(len(CASES))])
def test_conv_transpose_runs_on_the_cube(case, chip):
    model = _model(*case)
    x = np.random.default_rng(1).standard_normal((2, case[0], 5, 6)).astype(np.float32)
    ref = graphopt.compile(model).run({"x": x})["y"]
    # float32 end to end: the rewrite itself is exact up to rounding.
    exact = graphopt.compile(model, target=f"ascend-sim:{chip}", target_options={"precision": "must_keep_origin_dtype"})
    assert {k["kind"] for k in exact.report["kernels"]} >= {"cube"}
    assert "aicpu" not in {k["kind"] for k in exact.report["kernels"]}
    np.testing.assert_allclose(exact.run({"x": x})["y"], ref, rtol=1e-5, atol=1e-5)
    fp16 = graphopt.compile(model, target=f"ascend-sim:{chip}")
    np.testing.assert_allclose(fp16.run({"x": x})["y"], ref, rtol=1e-2, atol=1e-2 * float(np.abs(ref).max()))


@pytest.mark.parametrize("case", [CASES[0], CASES[2]], ids=["dense", "grouped"])
def test_weights_fed_at_run_time(case):
    """torch.compile passes parameters as inputs: the kernel is flipped and regrouped by data
    movement kernels (a Slice with negative steps, a Transpose) and still runs on the cube."""
    model = _model(*case, weights_as_input=True)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((2, case[0], 5, 6)).astype(np.float32),
             "w": rng.standard_normal((case[0], case[1] // case[2], *case[3])).astype(np.float32)}
    ref = graphopt.compile(model).run(feeds)["y"]
    exact = graphopt.compile(model, target="ascend-sim", target_options={"precision": "must_keep_origin_dtype"})
    assert "aicpu" not in {k["kind"] for k in exact.report["kernels"]}
    np.testing.assert_allclose(exact.run(feeds)["y"], ref, rtol=1e-5, atol=1e-5)


def test_auto_pad_stays_on_the_ai_cpu_with_a_remark():
    model = _model(*CASES[1])
    model.graph.node[0].attribute.append(helper.make_attribute("auto_pad", "SAME_UPPER"))
    for a in [a for a in model.graph.node[0].attribute if a.name == "pads"]:
        model.graph.node[0].attribute.remove(a)
    compiled = graphopt.compile(model, target="ascend-sim")
    assert "aicpu" in {k["kind"] for k in compiled.report["kernels"]}
    reasons = [r["reason"] for r in compiled.report["remarks"] if r.get("pass") == "ascend-conv-transpose"]
    assert reasons and "auto_pad" in reasons[0]


def test_mfu_counts_the_transposed_convolutions_flops():
    """The Conv multiplies the inserted zeros too (4x the MACs at stride 2); the report's
    FLOPs, and so MFU, are the ConvTranspose's own: 2 N C_in H W (C_out / g) kh kw."""
    c_in, c_out, group, kernel = CASES[0][:4]
    compiled = graphopt.compile(_model(*CASES[0]), target="ascend-sim")
    assert compiled.report["timing"]["flops"] == 2 * 2 * c_in * 5 * 6 * (c_out // group) * kernel[0] * kernel[1]
