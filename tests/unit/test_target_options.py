"""Targets declare their options (``Target.options``): the CLI's flags are made from them, the
Python APIs take the same names, and an option the chosen target lacks is a one-line error."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from gp_models import cli_in_process
from onnx import TensorProto, helper

from graphopt import registry
from graphopt.errors import GraphoptError
from graphopt.target import TargetOption
from graphopt.targets.cpu import CpuTarget


class _ToyTarget(CpuTarget):
    """The cpu target under another name, with an option of its own."""

    name = "toy"
    description = "the cpu target with a --speed option"
    options: ClassVar[tuple[TargetOption, ...]] = (TargetOption("speed", "how fast to pretend to be", metavar="N"),)

    def __init__(self, speed: str | None = None):
        self.speed = speed

    def report(self, executable: Any) -> dict[str, Any]:
        return {**super().report(executable), "speed": self.speed}


@pytest.fixture
def model_file(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    path = tmp_path / "relu.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    return path


def test_an_option_the_target_lacks_is_refused(capsys, model_file, tmp_path):
    rc, _, err = cli_in_process(capsys, "compile", model_file, "-t", "cpu", "--chip", "ascend310p", "-o", tmp_path / "out")
    assert rc == 2 and err.strip() == "graphopt: error: --chip: target cpu has no such option", err
    with pytest.raises(GraphoptError, match=r"--colour: target ascend-sim has no such option \(it takes chip, cluster, keep_dtype"):
        registry.get_target("ascend-sim", keep_dtype=None, colour="red")


def test_a_new_target_gets_its_flags_without_touching_thecli_in_process(capsys, monkeypatch, model_file, tmp_path):
    targets = {**registry.all_targets(), "toy": lambda: _ToyTarget}
    monkeypatch.setattr(registry, "all_targets", lambda: targets)
    rc, out, _ = cli_in_process(capsys, "compile", "--help")
    assert rc == 0 and "toy options:" in out and "--speed N" in out and "ascend-sim options:" in out
    rc, _, err = cli_in_process(capsys, "compile", model_file, "-t", "toy", "--speed", "3", "--no-validate", "-o", tmp_path / "out")
    assert rc == 0, err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["speed"] == "3"
    y = registry.get_target("toy", speed="5")
    assert isinstance(y, _ToyTarget) and y.speed == "5"
