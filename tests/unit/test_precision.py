"""`graphopt precision`: a small keep set that makes a float16 compile validate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gp_models import assert_one_line_error, cli, save
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graphopt.precision import advise, ddmin


def deep_model(blocks: int = 8):
    """x*25 -> Exp -> Log (float16 overflows at exp) in front of ``blocks`` MatMul+Add+Tanh layers."""
    rng = np.random.default_rng(0)
    nodes = [h.make_node("Mul", ["x", "k"], ["a"], name="scale"), h.make_node("Exp", ["a"], ["b"], name="exp"),
             h.make_node("Log", ["b"], ["t"], name="log")]
    inits = [h.make_tensor("k", T.FLOAT, [], [25.0])]
    x = "t"
    for i in range(blocks):
        inits += [nh.from_array((rng.standard_normal((16, 16)) * 0.25).astype(np.float32), f"w{i}"),
                  nh.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), f"b{i}")]
        nodes += [h.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"fc{i}"),
                  h.make_node("Add", [f"m{i}", f"b{i}"], [f"h{i}"], name=f"bias{i}"),
                  h.make_node("Tanh", [f"h{i}"], [f"r{i}"], name=f"act{i}")]
        x = f"r{i}"
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [4, 16])],
                     [h.make_tensor_value_info(x, T.FLOAT, [4, 16])], inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


@pytest.mark.parametrize("opt_level", [0, 2])
def test_keeps_at_most_a_tenth_and_validates(opt_level):
    import graphopt
    from graphopt.errors import ValidationError

    model = deep_model()
    with pytest.raises(ValidationError):
        graphopt.compile(model, "ascend-sim", opt_level=opt_level, validate=True)
    r = advise(model, "ascend-sim", opt_level=opt_level)
    assert r["passed"] and r["nodes"] == 27
    assert 1 <= len(r["keep"]) <= r["nodes"] // 10, r["keep"]
    assert set(r["keep"]) <= {"scale", "exp", "log"}
    graphopt.compile(model, "ascend-sim", opt_level=opt_level, target_options={"keep_dtype": r["keep"]}, validate=True)
    assert r["time_us"] is not None and r["time_us_all_fp16"] is not None and r["time_us_all_fp32"] is not None


def test_a_model_that_validates_keeps_nothing():
    r = advise(_no_overflow(), "ascend-sim")
    assert r["passed"] and r["keep"] == [] and r["time_us"] == r["time_us_all_fp16"]


def _no_overflow():
    m = deep_model(blocks=2)
    m.graph.initializer[0].CopyFrom(h.make_tensor("k", T.FLOAT, [], [2.0]))
    return m


def test_ddmin_finds_a_one_minimal_subset():
    needed = {"c", "f"}
    calls = []

    def passes(s):
        calls.append(list(s))
        return needed <= set(s)

    got = ddmin(list("abcdefgh"), passes, budget=100)
    assert set(got) == needed
    calls.clear()
    partial = ddmin(list("abcdefgh"), passes, budget=3)  # stops early: what it returns still passes
    assert len(calls) <= 3 and needed <= set(partial)


def test_cli_writes_the_keep_file(tmp_path):
    path = save(deep_model(), tmp_path / "deep.onnx")
    out = tmp_path / "keep.txt"
    proc = cli("precision", path, "--target", "ascend-sim", "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"keep", "time_us", "time_us_all_fp16", "time_us_all_fp32"}
    assert out.read_text().split() == doc["keep"]
    proc = cli("compile", path, "--target", "ascend-sim", "--keep-dtype", out)
    assert proc.returncode == 0, proc.stderr


def test_bad_input_is_one_line(tmp_path):
    path = save(deep_model(blocks=1), tmp_path / "m.onnx")
    assert_one_line_error(cli("precision", path, "--target", "ascend-sim", "--rtol", "1e-2"))
    assert_one_line_error(cli("precision", path, "--target", "ascend-sim", "--precision", "must_keep_origin_dtype"))
    (tmp_path / "notes.md").write_text("mine")
    assert_one_line_error(cli("precision", path, "--target", "ascend-sim", "-o", tmp_path / "notes.md"))
    assert (tmp_path / "notes.md").read_text() == "mine"
    assert_one_line_error(cli("precision", tmp_path / "missing.onnx", "--target", "ascend-sim"))
