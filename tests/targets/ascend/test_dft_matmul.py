"""ascend-dft-matmul: a DFT of moderate length runs on the cube as a matmul by its Fourier
matrix (FNet mixes tokens with two DFTs a layer; they ran on the AI CPU). Checked against
the cpu target (numpy's FFT) over the op's attributes, and for what stays on the AI CPU."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphopt
from graphopt.targets.ascend.dft_matmul import MAX_LENGTH, fourier_matrix

EXACT = {"precision": "must_keep_origin_dtype"}
# Every DFT the matmul form can express, whatever the cost estimates say (small test shapes
# would stay on the AI CPU, whose one kernel beats the launches of the matmul form's).
ALWAYS = "ascend-dft-matmul{by-cost=false},dce,ascend-layout,ascend-lower"


def _dft(xshape, axis, inverse=0, onesided=0, length=None, opset=17):
    inputs, inits = ["x", "L" if length else ""], []
    if length:
        inits.append(numpy_helper.from_array(np.array(length, np.int64), "L"))
    attrs = {"inverse": inverse, "onesided": onesided}
    if opset >= 20:  # the axis is an input
        inputs.append("axis")
        inits.append(numpy_helper.from_array(np.array(axis, np.int64), "axis"))
    else:
        attrs["axis"] = axis
    graph = helper.make_graph([helper.make_node("DFT", inputs, ["y"], **attrs)], "dft",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(xshape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _agree(model, x, target="ascend-sim", options=EXACT, tol=1e-5, pipeline=None):
    want = graphopt.compile(model).run({"x": x})
    compiled = graphopt.compile(model, target, target_options=options, pipeline=pipeline)
    got = compiled.run({"x": x})
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, rtol=tol, atol=tol * float(np.abs(w).max()))
    return compiled


def _placed(compiled):
    return [k["kind"] for k in compiled.report["kernels"]]


@pytest.mark.parametrize(("xshape", "axis", "inverse", "onesided", "length", "opset"), [
    ((2, 16, 8, 2), 1, 0, 0, None, 17),  # complex, axis second to last: W from the left
    ((2, 16, 8, 2), 2, 0, 0, None, 17),  # the last signal axis: W^T from the right
    ((2, 16, 8, 1), 1, 0, 1, None, 17),  # real, one-sided
    ((2, 16, 8, 2), 1, 1, 0, None, 17),  # inverse
    ((2, 16, 8, 1), 2, 0, 0, 12, 17),  # dft_length past the signal: zero padded
    ((2, 16, 8, 2), 1, 0, 0, 10, 17),  # dft_length short of it: truncated
    ((3, 5, 7, 6, 2), 1, 1, 0, None, 20),  # opset 20's axis input; an axis moved by Transposes
    ((3, 5, 7, 6, 1), 0, 0, 1, None, 20),
    ((3, 5, 7, 6, 2), -2, 0, 0, None, 20),  # negative, counting from the end of x
    ((4, 40, 2), 0, 1, 0, 48, 17),
])
def test_dft_as_a_matmul_agrees_with_the_fft(xshape, axis, inverse, onesided, length, opset):
    x = np.random.default_rng(0).standard_normal(xshape).astype(np.float32)
    compiled = _agree(_dft(xshape, axis, inverse, onesided, length, opset), x, pipeline=ALWAYS)
    assert "aicpu" not in _placed(compiled) and "cube" in _placed(compiled)


def _fnet_mixing(b, s, h):
    """FNet's token mixing as torch's dynamo exporter writes fftn(x, dim=(1, 2)).real."""
    nodes = [helper.make_node("Unsqueeze", ["x", "m1"], ["u"]), helper.make_node("Concat", ["u", "z"], ["c"], axis=-1),
             helper.make_node("DFT", ["c"], ["d1"], axis=2), helper.make_node("DFT", ["d1"], ["d2"], axis=1),
             helper.make_node("Gather", ["d2", "i0"], ["y"], axis=3)]
    inits = [numpy_helper.from_array(np.array([-1], np.int64), "m1"),
             numpy_helper.from_array(np.zeros((b, s, h, 1), np.float32), "z"),
             numpy_helper.from_array(np.array(0, np.int64), "i0")]
    graph = helper.make_graph(nodes, "fnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [b, s, h])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("target", ["ascend-sim", "ascend-sim:ascend310p"])
def test_fnet_token_mixing_is_two_matmuls(target):
    """FNet-base's mixing (sequence 512, hidden 768): the complex input built from a zero
    imaginary half is a real one, the first DFT's halves feed the second without a Split of
    [..., 2], and only the real part the Gather keeps is computed: two matmuls (and the
    [re; im] join between them), nothing on the AI CPU, where the two DFTs took 833 us on the
    910B against 73 us now; float16 on the cube within float16's tolerance of numpy's FFT."""
    x = np.random.default_rng(1).standard_normal((1, 512, 768)).astype(np.float32)
    compiled = _agree(_fnet_mixing(1, 512, 768), x, target, {"precision": "force_fp16"}, tol=3e-3)
    assert _placed(compiled).count("cube") == 2 and "aicpu" not in _placed(compiled)
    want = np.fft.fftn(x, axes=(1, 2)).real
    np.testing.assert_allclose(compiled.run({"x": x})["y"], want, atol=3e-3 * np.abs(want).max())
    reasons = [r["reason"] for r in compiled.report["remarks"] if r.get("pass") == "ascend-dft-matmul"]
    assert len(reasons) == 2 and all("on the AI CPU" in r for r in reasons)


def test_a_small_dft_stays_on_the_ai_cpu():
    """The node suite's DFTs (10 x 10): the AI CPU's one kernel costs less than the matmul
    form's launches, by the timing model's own numbers."""
    x = np.random.default_rng(6).standard_normal((1, 10, 10, 2)).astype(np.float32)
    compiled = _agree(_dft(x.shape, 1), x)
    assert _placed(compiled) == ["aicpu"]


def test_what_stays_on_the_ai_cpu():
    """Longer than MAX_LENGTH, and the inverse of a one-sided spectrum (a real signal out),
    whatever the cost."""
    x = np.random.default_rng(2).standard_normal((1, MAX_LENGTH + 16, 2)).astype(np.float32)
    assert "aicpu" in _placed(_agree(_dft(x.shape, 1), x, tol=1e-4, pipeline=ALWAYS))
    x = np.random.default_rng(3).standard_normal((2, 9, 2)).astype(np.float32)
    assert "aicpu" in _placed(_agree(_dft(x.shape, 1, inverse=1, onesided=1), x, pipeline=ALWAYS))


@pytest.mark.parametrize("complex_input", [False, True])
@pytest.mark.parametrize("inverse", [False, True])
def test_fourier_matrix_is_the_dft(complex_input, inverse):
    n, length = 6, 8
    z = np.random.default_rng(4).standard_normal(n) + (1j * np.random.default_rng(5).standard_normal(n) if complex_input else 0)
    w = fourier_matrix(n, length, inverse=inverse, onesided=False, complex_input=complex_input)
    stacked = np.concatenate([z.real, z.imag]) if complex_input else z.real
    y = w @ stacked
    want = np.fft.ifft(z, n=length) if inverse else np.fft.fft(z, n=length)
    np.testing.assert_allclose(y[:length] + 1j * y[length:], want, atol=1e-12)
