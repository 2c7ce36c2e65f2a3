"""The Python API: compile, Compiled.run/report/save, WeightStore round trip."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gp_models import cnn_model, dynamic_model, save, two_output_model

import graphopt
from graphopt import GraphoptError, ValidationError
from graphopt.weights import WeightStore


def _ort(model: onnx.ModelProto, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


@pytest.fixture(scope="module")
def two_out():
    return graphopt.compile(two_output_model())


def _ab(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)


def test_compile_from_path_and_proto_agree(tmp_path):
    model = cnn_model()
    path = save(model, tmp_path / "cnn.onnx")
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    from_path = graphopt.compile(str(path), target="cpu", opt_level=2, pipeline=None, shapes=None, validate=False)
    from_proto = graphopt.compile(model, target="cpu")
    a, b = from_path.run({"x": x}), from_proto.run({"x": x})
    np.testing.assert_array_equal(a["y"], b["y"])
    np.testing.assert_allclose(a["y"], _ort(model, {"x": x})["y"], rtol=1e-4, atol=1e-5)
    assert from_path.report["model"] == str(path)


def test_compile_accepts_pathlike(tmp_path):
    path = save(cnn_model(), tmp_path / "cnn.onnx")
    assert graphopt.compile(path).output_names == ["y"]


def test_run_dict_and_list_outputs_in_graph_order(two_out):
    a, b = _ab()
    by_dict = two_out.run({"b": b, "a": a})
    by_list = two_out.run([a, b])
    assert list(by_dict) == ["total", "act"]
    assert list(by_list) == ["total", "act"]
    np.testing.assert_allclose(by_dict["total"], a + b, rtol=1e-6)
    np.testing.assert_array_equal(by_dict["act"], np.maximum(a, 0))
    for k in by_dict:
        np.testing.assert_array_equal(by_dict[k], by_list[k])


def test_run_list_is_in_input_order(two_out):
    a, b = _ab()
    # swapped: act = relu(first input)
    np.testing.assert_array_equal(two_out.run([b, a])["act"], np.maximum(b, 0))


def test_run_wrong_input_name(two_out):
    a, b = _ab()
    with pytest.raises(GraphoptError, match="nosuch"):
        two_out.run({"a": a, "nosuch": b})


def test_run_missing_input(two_out):
    a, _ = _ab()
    with pytest.raises(GraphoptError, match="b"):
        two_out.run({"a": a})


def test_run_wrong_number_of_list_inputs(two_out):
    a, _ = _ab()
    with pytest.raises(GraphoptError):
        two_out.run([a])


def test_run_wrong_shape_and_dtype(two_out):
    a, b = _ab()
    with pytest.raises(GraphoptError, match="input a"):
        two_out.run({"a": a[:1], "b": b})
    with pytest.raises(GraphoptError, match="input b"):
        two_out.run({"a": a, "b": b.astype(np.float64)})


def test_report(two_out):
    rep = two_out.report
    assert rep["target"] == "cpu"
    assert rep["ops"]["imported"] == {"Add": 1, "Relu": 1}
    assert rep["ops"]["final"] == {"graph.add": 1, "graph.relu": 1}
    from graphopt.targets.cpu import CpuTarget

    assert rep["pipeline"] == CpuTarget().pipeline(2)
    assert [p["name"] for p in rep["passes"]][1:-1] == [s.split("{")[0] for s in rep["pipeline"].split(",")]
    assert "validation" not in rep


def test_validate_true_records_validation():
    c = graphopt.compile(cnn_model(), validate=True)
    val = c.report["validation"]
    assert val["passed"] is True and [o["name"] for o in val["outputs"]] == ["y"]


def test_opt_level_zero_and_explicit_pipeline():
    c0 = graphopt.compile(two_output_model(), opt_level=0)
    assert c0.report["pipeline"] == "" and [p["name"] for p in c0.report["passes"]] == ["import", "build-cpu"]
    cp = graphopt.compile(two_output_model(), pipeline="dce")
    assert [p["name"] for p in cp.report["passes"]] == ["import", "dce", "build-cpu"]


@pytest.mark.parametrize("kwargs", [{"opt_level": 7}, {"target": "nosuchtarget"}, {"pipeline": "nosuchpass"}, {"pipeline": "canonicalize{"}])
def test_compile_bad_arguments(kwargs):
    with pytest.raises(GraphoptError):
        graphopt.compile(two_output_model(), **kwargs)


def test_compile_bad_model_type():
    with pytest.raises(GraphoptError):
        graphopt.compile(12345)


def test_shapes_bind_dynamic_dims():
    c = graphopt.compile(dynamic_model(), shapes={"x": (3, 8)})
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(3, 8)
    np.testing.assert_array_equal(c.run({"x": x})["y"], np.maximum(x, 0))
    with pytest.raises(GraphoptError, match="x"):
        graphopt.compile(dynamic_model())


def test_validation_error_is_a_graphopt_error_with_exit_1():
    assert issubclass(ValidationError, GraphoptError)
    assert ValidationError.exit_code == 1 and GraphoptError.exit_code == 2


def test_save(tmp_path):
    c = graphopt.compile(cnn_model())
    folder = c.save(tmp_path / "nested" / "OUT")
    assert folder == tmp_path / "nested" / "OUT"
    assert sorted(p.name for p in folder.iterdir()) == [".graphopt-output", "model.mlir", "report.json", "weights.bin", "weights.json"]
    assert (folder / "model.mlir").read_text() == c.ir
    assert json.loads((folder / "report.json").read_text())["target"] == "cpu"
    loaded = WeightStore.load(folder)
    assert sorted(loaded) == sorted(c.weights) and len(loaded) >= 1
    for name in c.weights:
        np.testing.assert_array_equal(loaded[name], c.weights[name])
    # saving again over the folder works
    c.save(folder)
    assert not [p for p in (tmp_path / "nested").iterdir() if p.name.startswith(".OUT.")]


def test_save_onto_a_file_refuses(tmp_path):
    c = graphopt.compile(two_output_model())
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(GraphoptError):
        c.save(target)
    assert target.read_text() == "x"


def test_weight_store_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    arrays = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((7,)).astype(np.float16),
        "i64": rng.integers(-9, 9, (2, 3, 4)).astype(np.int64),
        "u8": rng.integers(0, 255, (13,)).astype(np.uint8),
        "b": rng.random((4, 1)) < 0.5,
        "scalar": np.asarray(2.5, np.float64),
        "empty": np.zeros((0, 3), np.float32),
        "strided": rng.standard_normal((4, 6)).astype(np.float32)[:, ::2],
    }
    store = WeightStore()
    for name, arr in arrays.items():
        assert store.add(name, arr) == name
    assert store.add("f32", arrays["u8"]) == "f32_1"  # names are made unique
    arrays["f32_1"] = arrays["u8"]
    store.save(tmp_path)
    index = json.loads((tmp_path / "weights.json").read_text())
    assert all(entry["offset"] % 64 == 0 for entry in index.values())
    loaded = WeightStore.load(tmp_path)
    assert list(loaded) == list(arrays)
    for name, arr in arrays.items():
        got = loaded[name]
        assert isinstance(got, np.memmap), name
        assert got.dtype == arr.dtype and got.shape == arr.shape, name
        np.testing.assert_array_equal(got, arr)


def test_weight_store_load_refuses_truncated_bin(tmp_path):
    store = WeightStore()
    store.add("w", np.arange(100, dtype=np.float32))
    store.save(tmp_path)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[:200])
    with pytest.raises(GraphoptError, match="w"):
        WeightStore.load(tmp_path)
