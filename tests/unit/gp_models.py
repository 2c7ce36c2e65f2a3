"""Small seeded ONNX models and CLI helpers shared by the unit tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def _model(nodes, inputs, outputs, inits=(), opset=17, extra_opsets=()):
    g = h.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset), *[h.make_opsetid(d, v) for d, v in extra_opsets]])
    m.ir_version = 8
    return m


def vi(name, shape, elem=T.FLOAT):
    return h.make_tensor_value_info(name, elem, shape)


def cnn_model(seed: int = 0) -> onnx.ModelProto:
    """Conv -> Relu -> Reshape(constant shape) -> Gemm."""
    rng = np.random.default_rng(seed)
    inits = [
        nh.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w"),
        nh.from_array(rng.standard_normal((3,)).astype(np.float32), "b"),
        nh.from_array(np.array([1, -1], np.int64), "shp"),
        nh.from_array(rng.standard_normal((4, 48)).astype(np.float32), "gw"),
        nh.from_array(rng.standard_normal((4,)).astype(np.float32), "gb"),
    ]
    nodes = [
        h.make_node("Conv", ["x", "w", "b"], ["c"], name="conv1"),
        h.make_node("Relu", ["c"], ["r"], name="relu1"),
        h.make_node("Reshape", ["r", "shp"], ["f"], name="flat"),
        h.make_node("Gemm", ["f", "gw", "gb"], ["y"], name="fc", transB=1),
    ]
    return _model(nodes, [vi("x", [1, 2, 6, 6])], [vi("y", [1, 4])], inits)


def two_output_model() -> onnx.ModelProto:
    """Inputs a, b; outputs (total = a + b, act = relu(a)); the Relu node comes first so
    graph output order differs from node order."""
    nodes = [h.make_node("Relu", ["a"], ["act"], name="relu1"), h.make_node("Add", ["a", "b"], ["total"], name="add1")]
    return _model(nodes, [vi("a", [2, 3]), vi("b", [2, 3])], [vi("total", [2, 3]), vi("act", [2, 3])])


def dynamic_model() -> onnx.ModelProto:
    nodes = [h.make_node("Relu", ["x"], ["y"], name="relu1")]
    return _model(nodes, [vi("x", ["N", 8])], [vi("y", ["N", 8])])


def custom_domain_model() -> onnx.ModelProto:
    nodes = [h.make_node("Frobnicate", ["x"], ["y"], name="frob1", domain="com.example")]
    return _model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], extra_opsets=[("com.example", 1)])


def training_op_model() -> onnx.ModelProto:
    """A valid ai.onnx.preview.training Momentum node (graphopt compiles inference graphs)."""
    node = h.make_node("Momentum", ["R", "T", "X", "G", "V"], ["XN", "VN"], name="mom1",
                       domain="ai.onnx.preview.training", alpha=0.9, beta=0.1, mode="standard", norm_coefficient=0.0)
    ins = [vi("R", []), vi("T", [], T.INT64), vi("X", [3]), vi("G", [3]), vi("V", [3])]
    return _model([node], ins, [vi("XN", [3]), vi("VN", [3])], extra_opsets=[("ai.onnx.preview.training", 1)])


def escaping_external_data_model() -> onnx.ModelProto:
    t = nh.from_array(np.ones((2, 3), np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "24")):
        e = t.external_data.add()
        e.key, e.value = k, v
    nodes = [h.make_node("Add", ["x", "w"], ["y"], name="add1")]
    return _model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], [t])


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


# -- CLI ---------------------------------------------------------------------------------

def cli_in_process(capsys, *argv) -> tuple[int, str, str]:
    """``graphopt ARGV`` in this process (so monkeypatches apply): (exit code, stdout, stderr)."""
    from graphopt.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def cli(*args: str | os.PathLike[str], cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GRAPHOPT_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "graphopt.cli", *map(str, args)],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The CLI failed with ``code``, one ``graphopt: error:`` line on stderr, no traceback."""
    detail = f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == code, detail
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, detail
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, detail
    assert lines[0].startswith("graphopt: error:"), detail
    return lines[0]


def assert_no_output_folder(out: Path) -> None:
    assert not out.exists(), f"{out} was left behind"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, f"temporary folders left behind: {leftovers}"
