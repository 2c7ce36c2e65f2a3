"""`graphopt compare`: every intermediate against the reference, the first bad node named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gp_models import assert_one_line_error, cli, cli_in_process, save
from onnx import TensorProto as T
from onnx import helper as h

from graphopt.compare import compare_model, node_values, predecessors


def _model(nodes, constants, shape=(4, 8)):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, list(shape))],
                     [h.make_tensor_value_info("y", T.FLOAT, list(shape))],
                     [h.make_tensor(n, T.FLOAT, [], [v]) for n, v in constants.items()])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


def overflow_model():
    """x*25 -> Exp overflows float16 (e^25 = 7e10) -> Log brings it back in range."""
    return _model([h.make_node("Mul", ["x", "k"], ["a"], name="scale"), h.make_node("Exp", ["a"], ["b"], name="exp"),
                   h.make_node("Log", ["b"], ["y"], name="log")], {"k": 25.0})


def cancellation_model():
    """(x + 1000) - 1000: float16 keeps x to 0.25 of 1000's step (cancellation), then x*that."""
    return _model([h.make_node("Add", ["x", "c"], ["a"], name="shift"), h.make_node("Sub", ["a", "c"], ["d"], name="cancel"),
                   h.make_node("Mul", ["d", "x"], ["y"], name="square")], {"c": 1000.0})


@pytest.mark.parametrize("opt_level", [0, 2])
def test_overflow_node_is_first(opt_level):
    # At -O2 the three nodes are one vector kernel: its row is `log`'s, and the origin inside it is named.
    r = compare_model(overflow_model(), "ascend-sim", opt_level=opt_level)
    assert r["first_bad"] == "exp"
    assert r["overflow"]["kind"] == "overflow" and r["overflow"]["node"] == "exp"
    assert r["overflow"]["magnitude"] > 65504
    marked = [row["node"] for row in r["rows"] if row.get("first_bad")]
    assert marked == (["exp"] if opt_level == 0 else ["log"])
    if opt_level == 0:
        assert [row["node"] for row in r["rows"]] == ["scale", "exp", "log"]
        assert r["rows"][0]["ok"] and not r["rows"][1]["ok"]


@pytest.mark.parametrize("opt_level", [0, 2])
def test_cancellation_marks_the_subtraction(opt_level):
    r = compare_model(cancellation_model(), "ascend-sim", opt_level=opt_level)
    assert r["first_bad"] == "cancel"
    c = r["cancellation"]
    assert c["node"] == "cancel" and c["op"] == "Sub" and c["amplification"] > 500
    if opt_level == 0:  # shift (x + 1000) is within float16's tolerance: the error starts at the subtraction
        ok = {row["node"]: row["ok"] for row in r["rows"]}
        assert ok == {"shift": True, "cancel": False, "square": False}


def test_float32_is_within_tolerance_everywhere():
    r = compare_model(cancellation_model(), "ascend-sim", opt_level=0, target_options={"precision": "must_keep_origin_dtype"})
    assert r["first_bad"] is None and r["cancellation"] is None and all(row["ok"] for row in r["rows"])
    assert r["reference_check"]["passed"]


def test_cpu_target_fused_groups_line_up_with_the_reference(tmp_path):
    # The cpu target at -O2 runs graph.fused groups: each group's output is its last node's value.
    r = compare_model(cancellation_model(), "cpu")
    assert [row["node"] for row in r["rows"]] == ["square"] and r["rows"][0]["max_abs_err"] < 1e-5
    assert r["first_bad"] is None


def test_node_values_skip_a_decomposed_nodes_inner_steps():
    # LayerNormalization at -O0 on cpu: whatever ops it is, only its result is the node's value.
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 8])
    y = h.make_tensor_value_info("y", T.FLOAT, [2, 8])
    nodes = [h.make_node("LayerNormalization", ["x", "g", "b"], ["y"], name="ln", axis=-1)]
    inits = [h.make_tensor("g", T.FLOAT, [8], [1.0] * 8), h.make_tensor("b", T.FLOAT, [8], [0.0] * 8)]
    model = h.make_model(h.make_graph(nodes, "g", [x], [y], inits), opset_imports=[h.make_opsetid("", 17)])
    import graphopt

    c = graphopt.compile(model, "cpu", opt_level=0)
    keys = list(node_values(c.module).values())
    assert keys == [("ln", 0)]
    assert predecessors(c.module) == {("ln", 0): set()}


def test_cli_table_and_exit_codes(tmp_path, capsys):
    path = save(overflow_model(), tmp_path / "explog.onnx")
    rc, out, err = cli_in_process(capsys, "compare", path, "--target", "ascend-sim", "-O0")
    assert rc == 1, err
    lines = out.splitlines()
    assert any(line.startswith("exp ") and "first out of tolerance" in line for line in lines), out
    assert "float16 overflow at node exp" in out
    rc, out, err = cli_in_process(capsys, "compare", path, "--target", "ascend-sim", "--precision", "must_keep_origin_dtype")
    assert rc == 0, err
    assert "within tolerance" in out


def test_cli_json(tmp_path, capsys):
    path = save(cancellation_model(), tmp_path / "cancel.onnx")
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
    np.save(tmp_path / "x.npy", x)
    rc, out, err = cli_in_process(capsys, "compare", path, "--target", "ascend-sim", "-O0", "--input", f"x={tmp_path / 'x.npy'}", "--json")
    assert rc == 1, err
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert doc["first_bad"] == "cancel"
    assert [r["node"] for r in doc["rows"]] == ["shift", "cancel", "square"]
    for row in doc["rows"]:
        assert {"node", "op", "max_abs_err", "max_rel_err", "cosine", "tolerance", "ok"} <= set(row)


def test_json_is_strict_with_infinities(tmp_path, capsys):
    path = save(overflow_model(), tmp_path / "explog.onnx")
    rc, out, _ = cli_in_process(capsys, "compare", path, "--target", "ascend-sim", "--json")
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert rc == 1 and doc["first_bad"] == "exp" and doc["rows"][-1]["max_abs_err"] == "inf"


def test_bad_input_is_one_line(tmp_path):
    assert_one_line_error(cli("compare", tmp_path / "missing.onnx", "--target", "ascend-sim"))
    path = save(overflow_model(), tmp_path / "m.onnx")
    assert_one_line_error(cli("compare", path, "--target", "nosuch"))
    assert_one_line_error(cli("compare", path, "--input", "nosuch=" + str(tmp_path / "none.npy")))
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert_one_line_error(cli("compare", tmp_path / "bad.onnx"))
