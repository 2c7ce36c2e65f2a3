"""The validation judge's comparison (graphopt.validate.compare)."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.validate import compare

F16 = np.dtype(np.float16)


def test_fp16_overflow_is_the_value_to_expect():
    """A float32 value beyond float16's range is +-inf when computed in float16 (an attention
    mask's float32 minimum): that matches; any other value there does not."""
    ref = np.array([1.0, np.finfo(np.float32).min, 3e5], np.float32)
    ours = np.array([1.0, -np.inf, np.inf], np.float32)
    assert compare("y", ours, ref, depth=1, compute_dtype=F16)["passed"]
    wrong = np.array([1.0, -65504.0, np.inf], np.float32)
    assert not compare("y", wrong, ref, depth=1, compute_dtype=F16)["passed"]
    assert not compare("y", -ours, ref, depth=1, compute_dtype=F16)["passed"]


def test_overflowed_values_do_not_widen_the_tolerance():
    """The absolute tolerance scales with the largest magnitude float16 holds, not with a
    mask value it cannot: an error of 0.5 on values of 1 is still an error."""
    ref = np.array([1.0, np.finfo(np.float32).min], np.float32)
    ours = np.array([1.5, np.finfo(np.float32).min], np.float32)
    assert not compare("y", ours, ref, depth=1, compute_dtype=F16)["passed"]


def test_float32_targets_keep_exact_infinities():
    ref = np.array([np.finfo(np.float32).min], np.float32)
    assert not compare("y", np.array([-np.inf], np.float32), ref, depth=1)["passed"]


def _chain(layers: int, width: int = 64, seed: int = 0):
    """x -> (x + tanh(x @ W_k)) repeated: each step's rounding feeds the next."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], [], "x"
    for k in range(layers):
        w = (rng.standard_normal((width, width)) * 1.5 / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{k}"))
        nodes += [helper.make_node("MatMul", [cur, f"w{k}"], [f"m{k}"]), helper.make_node("Tanh", [f"m{k}"], [f"t{k}"]),
                  helper.make_node("Add", [cur, f"t{k}"], [f"h{k}"])]
        cur = f"h{k}"
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, width])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, width])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_rounding_floor_is_the_judge_with_every_value_rounded():
    """The floor is onnxruntime's float32 result against the same model with inputs, weights
    and each node's result rounded to float16: checked here against numpy doing that."""
    from onnx import TensorProto, helper, numpy_helper

    from graphopt.validate import rounding_floor, run_onnxruntime

    a = numpy_helper.from_array(np.float32([1.0001, 3.14159]), "a")
    nodes = [helper.make_node("Mul", ["x", "a"], ["p"]), helper.make_node("Exp", ["p"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [a])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = np.float32([0.3337, 1.2345])
    ref = run_onnxruntime(model, ["y"], {"x": x})
    r16 = lambda v: np.asarray(v, np.float32).astype(np.float16).astype(np.float32)  # noqa: E731
    want = r16(np.exp(r16(r16(x) * r16(np.float32([1.0001, 3.14159])))))
    (floor,) = rounding_floor(model, ["y"], {"x": x}, ref, F16)
    assert floor == pytest.approx(float(np.abs(want - ref[0]).max()), rel=1e-6)
    assert floor > 0


def test_a_float16_target_is_judged_by_what_float16_costs_the_model():
    """Ten residual steps in float16 lose more than the fixed float16 tolerance: within twice
    the judge's own float16 rounding, the output passes and says so; an error three times
    that fails, naming the floor."""
    import graphopt
    from graphopt.errors import ValidationError
    from graphopt.validate import check, summary_lines, validate_against_onnxruntime

    model = _chain(10)
    compiled = graphopt.compile(model, "ascend-sim", validate=False)
    result = validate_against_onnxruntime(compiled, model)
    out = result["outputs"][0]
    assert result["passed"] and out["judged_by"] == "rounding_floor"
    assert out["max_abs_err"] > out["atol"]  # the fixed tolerance alone would fail it
    assert any("float16 storage costs this model" in line for line in summary_lines(result))

    run = compiled.run

    def off(feeds):
        got = dict(run(feeds))
        got["y"] = got["y"].copy()
        got["y"][0, 0] += 3 * out["rounding_floor"]
        return got

    compiled.run = off  # type: ignore[method-assign]
    bad = validate_against_onnxruntime(compiled, model)
    assert not bad["passed"]
    with pytest.raises(ValidationError, match="float16 rounding alone costs"):
        check(bad)


def test_float32_absolute_tolerance_scales_with_the_outputs_magnitude():
    """An element near zero computed from values of magnitude 5 carries their absolute
    rounding error (data2vec-audio: onnxruntime and torch eager differ by 2.2e-5 there), but
    an error at the 1e-4 level of the outputs' scale is still an error."""
    ref = np.array([5.47, 1e-3, -2.0], np.float32)
    assert compare("y", ref + np.float32([0, 2.5e-5, 0]), ref, depth=1)["passed"]
    assert not compare("y", ref + np.float32([0, 6e-4, 0]), ref, depth=1)["passed"]
    small = np.array([0.547, 1e-3, -0.2], np.float32)  # the same error on outputs below 1 is one
    assert not compare("y", small + np.float32([0, 2.5e-5, 0]), small, depth=1)["passed"]


def test_nan_on_both_sides_matches():
    """NaN where the reference has NaN is the expected value (a cast of NaN); the tolerance
    arithmetic (atol + rtol * |NaN|) must not turn it into a mismatch."""
    ref = np.array([np.nan, 1.0, -np.inf], np.float32)
    assert compare("y", ref.copy(), ref, depth=1)["passed"]
    assert compare("y", ref.copy(), ref, depth=1, compute_dtype=F16)["passed"]
    assert not compare("y", np.array([0.0, 1.0, -np.inf], np.float32), ref, depth=1)["passed"]


def _amplifier(gain: float):
    """y = ((x * gain) - x * gain') with gain' one float32 step from gain: a difference of
    two nearly equal products, which turns the rounding of x into a large share of y."""
    from onnx import TensorProto, helper, numpy_helper

    g1 = numpy_helper.from_array(np.array(gain, np.float32), "g1")
    g2 = numpy_helper.from_array(np.nextafter(np.float32(gain), np.float32(np.inf)), "g2")
    nodes = [helper.make_node("Mul", ["x", "g1"], ["a"]), helper.make_node("Mul", ["x", "g2"], ["b"]),
             helper.make_node("Sub", ["a", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [g1, g2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_float32_model_that_amplifies_rounding_is_judged_by_its_conditioning():
    """timm's ConvMixer amplifies float32 rounding 1000-fold (onnxruntime and torch differ by
    2e-4 at its logits) and graphopt's cpu target failed the fixed tolerance by as much. An
    output within twice how far one rounding of the inputs and initializers moves the judge's
    own output passes, and says why; three times that floor fails."""
    import graphopt
    from graphopt.validate import conditioning_floor, run_onnxruntime, summary_lines, validate_against_onnxruntime

    model = _amplifier(1000.0)
    feeds = {"x": np.random.default_rng(0).uniform(1, 2, (4, 16)).astype(np.float32)}
    ref = run_onnxruntime(model, ["y"], feeds)
    (floor,) = conditioning_floor(model, ["y"], feeds, ref)
    assert floor > 1e-4  # a gain of 1000 on values near 1: many float32 steps of y
    compiled = graphopt.compile(model, "cpu")
    run = compiled.run

    def off(by):
        def shifted(f):
            got = dict(run(f))
            got["y"] = got["y"] + np.float32(by)
            return got
        return shifted

    compiled.run = off(1.5 * floor)  # type: ignore[method-assign]
    result = validate_against_onnxruntime(compiled, model, feeds)
    assert result["passed"] and result["outputs"][0]["judged_by"] == "conditioning_floor"
    assert any("amplifies rounding" in line for line in summary_lines(result))
    compiled.run = off(3 * floor)  # type: ignore[method-assign]
    assert not validate_against_onnxruntime(compiled, model, feeds)["passed"]
