"""`graphopt check`: op types, opsets, dtypes and per-target support, before compiling;
and the refused-op list it shares with the frontend."""

from __future__ import annotations

import onnx
import onnx.helper as h
from gp_models import _model, assert_one_line_error, cli, cnn_model, custom_domain_model, save, training_op_model, vi

import graphopt
from graphopt.check import check_model, survey
from graphopt.errors import GraphoptError
from graphopt.refused import REFUSED, refusal
from graphopt.registry import get_target

T = onnx.TensorProto


def _random_model() -> onnx.ModelProto:
    nodes = [
        h.make_node("Relu", ["x"], ["r"], name="relu1"),
        h.make_node("Bernoulli", ["r"], ["y"], name="coin1"),
    ]
    return _model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])])


def test_supported_model_lists_ops_and_exits_0(tmp_path):
    proc = cli("check", save(cnn_model(), tmp_path / "cnn.onnx"), "--target", "cpu")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:-1]}
    assert set(rows) == {"Conv", "Relu", "Reshape", "Gemm"}
    assert rows["Conv"][1:] == ["11", "float", "ok"]  # since_version of Conv at opset 17
    assert "supported on cpu" in proc.stdout.splitlines()[-1]


def test_unsupported_op_names_nodes_and_exits_1(tmp_path):
    proc = cli("check", save(_random_model(), tmp_path / "m.onnx"), "--target", "cpu")
    assert proc.returncode == 1, proc.stderr
    bad = [line for line in proc.stdout.splitlines() if line.startswith("unsupported on cpu")]
    assert len(bad) == 1
    assert "Bernoulli" in bad[0] and "coin1" in bad[0] and "random" in bad[0]
    relu = next(line for line in proc.stdout.splitlines() if line.startswith("Relu"))
    assert relu.split()[-1] == "ok"


def test_unknown_domain_and_training_op_are_unsupported():
    uses = {u.label: u for u in check_model(custom_domain_model(), [get_target("cpu")]).uses}
    assert uses["com.example::Frobnicate"].verdicts["cpu"] is not None
    report = check_model(training_op_model(), [get_target("cpu")])
    (use,) = report.uses
    assert use.version == 1 and "training-only" in (use.verdicts["cpu"] or "")
    assert use.nodes == ["mom1"]


def test_survey_collects_dtypes_per_op():
    nodes = [h.make_node("Cast", ["x"], ["c"], to=T.INT64, name="cast1"), h.make_node("Neg", ["c"], ["y"], name="neg1")]
    model = _model(nodes, [vi("x", [4])], [vi("y", [4], T.INT64)])
    uses = {u.op_type: u for u in survey(model)}
    assert uses["Cast"].dtypes == {"float", "int64"}
    assert uses["Neg"].dtypes == {"int64"}


def test_bad_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert_one_line_error(cli("check", bad))
    assert_one_line_error(cli("check", tmp_path / "missing.onnx"))


def test_unknown_target_is_one_line_exit_2(tmp_path):
    assert_one_line_error(cli("check", save(cnn_model(), tmp_path / "cnn.onnx"), "--target", "nope"))


def test_frontend_refuses_listed_ops_naming_the_node():
    assert "Bernoulli" in REFUSED and refusal("Adam", "ai.onnx.preview.training") is not None
    try:
        graphopt.compile(_random_model(), "cpu", validate=False)
    except GraphoptError as e:
        assert "coin1" in str(e) and "Bernoulli" in str(e) and "refuses" in str(e)
    else:
        raise AssertionError("Bernoulli compiled")


def test_dropout_refused_only_when_training_mode_is_a_true_constant():
    import numpy as np

    assert refusal("Dropout", "", [None, None, np.array(True)]) is not None
    assert refusal("Dropout", "", [None, np.array(0.0, np.float32), np.array(True)]) is None
    assert refusal("Dropout", "", [None, None, np.array(False)]) is None
    assert refusal("Dropout", "", [None, None, None]) is None
