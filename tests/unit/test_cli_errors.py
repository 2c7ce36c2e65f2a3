"""CLI error paths: exit 2, exactly one `graphopt: error:` line, no traceback, no output left."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gp_models import (
    assert_no_output_folder,
    assert_one_line_error,
    cli,
    cnn_model,
    custom_domain_model,
    dynamic_model,
    escaping_external_data_model,
    save,
    training_op_model,
)


def _compile_fails(tmp_path, model_path, *extra):
    out = tmp_path / "out"
    proc = cli("compile", model_path, "-o", out, *extra, cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert_no_output_folder(out)
    return line


def test_missing_file(tmp_path):
    line = _compile_fails(tmp_path, tmp_path / "nope.onnx")
    assert "nope.onnx" in line


def test_truncated_model(tmp_path):
    data = cnn_model().SerializeToString()
    path = tmp_path / "trunc.onnx"
    path.write_bytes(data[: len(data) // 2])
    line = _compile_fails(tmp_path, path)
    assert "trunc.onnx" in line


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    line = _compile_fails(tmp_path, path)
    assert "noise.onnx" in line


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    _compile_fails(tmp_path, path)


def test_unknown_domain_op_names_the_node(tmp_path):
    line = _compile_fails(tmp_path, save(custom_domain_model(), tmp_path / "m.onnx"))
    assert "frob1" in line


def test_training_op_names_the_node(tmp_path):
    line = _compile_fails(tmp_path, save(training_op_model(), tmp_path / "m.onnx"), "--no-validate")
    assert "mom1" in line


@pytest.mark.parametrize("pipeline", ["nosuchpass", "canonicalize{"])
def test_invalid_pipeline(tmp_path, pipeline):
    line = _compile_fails(tmp_path, save(cnn_model(), tmp_path / "m.onnx"), "-p", pipeline)
    assert "pipeline" in line


def test_opt_invalid_pipeline(tmp_path):
    mlir = tmp_path / "m.mlir"
    mlir.write_text("builtin.module {\n}\n")
    assert_one_line_error(cli("opt", mlir, "-p", "canonicalize{", cwd=tmp_path))


def test_dynamic_dimension_unbound(tmp_path):
    line = _compile_fails(tmp_path, save(dynamic_model(), tmp_path / "m.onnx"))
    assert "input x" in line and "--shape" in line


def test_shape_for_nonexistent_input(tmp_path):
    line = _compile_fails(tmp_path, save(dynamic_model(), tmp_path / "m.onnx"), "--shape", "nosuch=2x8")
    assert "nosuch" in line


def test_shape_of_wrong_rank(tmp_path):
    line = _compile_fails(tmp_path, save(dynamic_model(), tmp_path / "m.onnx"), "--shape", "x=2x8x1")
    assert "x" in line


def test_external_data_outside_model_folder(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(6, np.float32).tobytes())
    path = save(escaping_external_data_model(), tmp_path / "model" / "m.onnx")
    line = _compile_fails(tmp_path, path)
    assert "secret.bin" in line and "outside" in line


def _run_fails(tmp_path, array):
    model = save(cnn_model(), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", array)
    out = tmp_path / "out.npz"
    proc = cli("run", model, "--input", "x=x.npy", "-o", out, cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out.npz")]
    return line


def test_run_input_of_wrong_shape(tmp_path):
    line = _run_fails(tmp_path, np.zeros((1, 2, 5, 5), np.float32))
    assert " x" in line or "x:" in line or "x=" in line


def test_run_input_of_wrong_rank(tmp_path):
    line = _run_fails(tmp_path, np.zeros((2, 6, 6), np.float32))
    assert " x" in line or "x:" in line or "x=" in line


def test_run_input_of_wrong_dtype(tmp_path):
    line = _run_fails(tmp_path, np.zeros((1, 2, 6, 6), np.float64))
    assert "input x" in line and "float64" in line


def test_run_input_file_missing(tmp_path):
    model = save(cnn_model(), tmp_path / "m.onnx")
    line = assert_one_line_error(cli("run", model, "--input", "x=absent.npy", cwd=tmp_path))
    assert "absent.npy" in line


def test_run_input_name_not_in_model(tmp_path):
    model = save(cnn_model(), tmp_path / "m.onnx")
    np.save(tmp_path / "z.npy", np.zeros((1, 2, 6, 6), np.float32))
    line = assert_one_line_error(cli("run", model, "--input", "z=z.npy", cwd=tmp_path))
    assert "z" in line.removeprefix("graphopt: error:")
    assert "--shape" not in line  # it named the flag the user did not give


def test_compile_input_name_not_in_model(tmp_path):
    """A TorchScript export drops an input the model does not read (RWKV's attention_mask):
    validating on the saved inputs then names the extra one, and the model's inputs."""
    model = save(cnn_model(), tmp_path / "m.onnx")
    np.save(tmp_path / "z.npy", np.zeros((1, 2, 6, 6), np.float32))
    line = _compile_fails(tmp_path, model, "--input", "z=z.npy")
    assert "'z'" in line and "inputs: x" in line and "--shape" not in line


def test_unknown_target(tmp_path):
    line = _compile_fails(tmp_path, save(cnn_model(), tmp_path / "m.onnx"), "-t", "nosuchtarget")
    assert "nosuchtarget" in line


def test_missing_pass_plugin(tmp_path):
    line = _compile_fails(tmp_path, save(cnn_model(), tmp_path / "m.onnx"), "--load-pass-plugin", "nothere.py")
    assert "nothere.py" in line


def test_output_path_is_a_file(tmp_path):
    model = save(cnn_model(), tmp_path / "m.onnx")
    target = tmp_path / "taken"
    target.write_text("keep me")
    line = assert_one_line_error(cli("compile", model, "-o", target, "--no-validate", cwd=tmp_path))
    assert "taken" in line
    assert target.read_text() == "keep me"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".taken.")]
