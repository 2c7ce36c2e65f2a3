"""`graphopt bisect`: the first pass and rewrite that change a model's answer, and a reproducer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gp_models import assert_one_line_error, cli, save
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

PLUGIN = Path(__file__).with_name("miscompile_pass.py")
PIPELINE = "fold-constants,cse,fold-sub-neg,fuse,dce"


def buggy_model():
    """Three places fold-sub-neg rewrites (unneg, center, unneg2, in that order); its bug
    hits only center, a Sub of a constant."""
    w = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32) * 0.3
    nodes = [h.make_node("MatMul", ["x", "W"], ["a"], name="lin"), h.make_node("Neg", ["a"], ["na"], name="negate"),
             h.make_node("Sub", ["x", "na"], ["s"], name="unneg"), h.make_node("Relu", ["s"], ["r"], name="relu"),
             h.make_node("Sub", ["r", "c"], ["y"], name="center"), h.make_node("Neg", ["y"], ["ny"], name="negate2"),
             h.make_node("Sub", ["r", "ny"], ["z"], name="unneg2"), h.make_node("Tanh", ["z"], ["out"], name="squash")]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [4, 8])],
                     [h.make_tensor_value_info("out", T.FLOAT, [4, 8])],
                     [nh.from_array(w, "W"), h.make_tensor("c", T.FLOAT, [], [0.5])])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


@pytest.fixture
def plugin():
    from graphopt.registry import load_pass_plugin

    load_pass_plugin(str(PLUGIN))


def test_finds_the_pass_the_pattern_and_the_node(tmp_path, plugin):
    from graphopt.bisect import bisect_model

    r = bisect_model(buggy_model(), pipeline=PIPELINE, output=tmp_path / "repro", plugins=[str(PLUGIN)])
    assert r["pass"] == "fold-sub-neg"
    assert (r["pattern"], r["nodes"], r["rewrite"], r["rewrites"]) == ("sub-of-constant", ["center"], 2, 3)
    assert [p["passed"] for p in r["passes"]] == [True, True, False]
    folder = Path(r["reproducer"])
    assert {"before.mlir", "after.mlir", "subgraph.onnx", "README.txt", "bisect.json", "weights.json"} <= {
        p.name for p in folder.iterdir()}
    assert json.loads((folder / "bisect.json").read_text())["pattern"] == "sub-of-constant"


def test_the_reproducer_reproduces(tmp_path, plugin):
    from graphopt.bisect import bisect_model

    r = bisect_model(buggy_model(), pipeline=PIPELINE, output=tmp_path / "repro", plugins=[str(PLUGIN)])
    folder = Path(r["reproducer"])
    # The subgraph alone fails validation with the pipeline up to the pass ...
    proc = cli("compile", folder / "subgraph.onnx", "-p", "fold-constants,cse,fold-sub-neg", "--load-pass-plugin", PLUGIN)
    assert proc.returncode == 1 and "validation against onnxruntime" in proc.stderr, proc.stderr
    assert r["subgraph_nodes"] == ["center"]
    # ... and passes without it.
    assert cli("compile", folder / "subgraph.onnx", "-p", "fold-constants,cse").returncode == 0
    # `graphopt opt` on before.mlir gives after.mlir.
    proc = cli("opt", folder / "before.mlir", "-p", "fold-sub-neg", "--load-pass-plugin", PLUGIN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (folder / "after.mlir").read_text()


def test_cli_json_and_exit_code(tmp_path):
    path = save(buggy_model(), tmp_path / "buggy.onnx")
    proc = cli("bisect", path, "-p", PIPELINE, "--load-pass-plugin", PLUGIN, "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == {"pass": "fold-sub-neg", "pattern": "sub-of-constant", "nodes": ["center"], "reproducer": "buggy.bisect"}
    assert (tmp_path / "buggy.bisect" / "subgraph.onnx").is_file()


@pytest.mark.parametrize("target", ["cpu", "ascend-sim"])
def test_our_own_pipeline_keeps_the_answer(tmp_path, target):
    from graphopt.bisect import bisect_model

    path = Path(__file__).resolve().parents[2] / "examples" / "models" / "bert_dynamo.onnx"
    r = bisect_model(str(path), target, output=tmp_path / "repro")
    assert r["pass"] is None and len(r["passes"]) > 10
    assert not (tmp_path / "repro").exists()


def test_a_target_pass_that_changes_the_answer_is_named(tmp_path):
    # force_fp16 overflows where float32 does not: no graph pass is at fault, the target's are.
    from test_compare import overflow_model

    from graphopt.bisect import bisect_model

    r = bisect_model(overflow_model(), "ascend-sim")
    assert r.get("target_passes") and "ascend-lower" in r["pass"]
    assert all(p["passed"] for p in r["passes"][:-1]) and not r["passes"][-1]["passed"]


def test_bad_input_is_one_line(tmp_path):
    assert_one_line_error(cli("bisect", tmp_path / "missing.onnx"))
    path = save(buggy_model(), tmp_path / "m.onnx")
    assert_one_line_error(cli("bisect", path, "-p", "no-such-pass"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("not graphopt's")
    assert_one_line_error(cli("bisect", path, "-o", tmp_path / "taken"))
    assert (tmp_path / "taken" / "mine.txt").read_text() == "not graphopt's"
