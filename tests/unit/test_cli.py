"""CLI happy paths: compile, run, targets, passes, --shape, -O0, --print-ir-after-all, validation mismatch."""

from __future__ import annotations

import json
import textwrap

import numpy as np
from gp_models import assert_one_line_error, cli, cnn_model, dynamic_model, save, two_output_model

import graphopt


def test_compile_writes_output_folder(tmp_path):
    model = save(cnn_model(), tmp_path / "cnn.onnx")
    out = tmp_path / "OUT"
    proc = cli("compile", model, "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("model.mlir", "weights.bin", "weights.json", "report.json"):
        assert (out / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".OUT.")]
    assert "graph.conv" in (out / "model.mlir").read_text()

    rep = json.loads((out / "report.json").read_text())
    for key in ("target", "model", "passes", "ops", "validation"):
        assert key in rep, key
    assert rep["target"] == "cpu"
    assert "cnn.onnx" in rep["model"]
    assert isinstance(rep["passes"], list) and rep["passes"]
    for p in rep["passes"]:
        assert set(p) >= {"name", "seconds"}
        assert isinstance(p["name"], str) and p["seconds"] >= 0
    names = [p["name"] for p in rep["passes"]]
    assert {"fold-constants", "cse", "dce", "fuse"} <= set(names)
    assert rep["ops"]["imported"] == {"Conv": 1, "Gemm": 1, "Relu": 1, "Reshape": 1}
    # Conv and its Relu run as one kernel at -O2.
    assert rep["ops"]["final"]["graph.fused"] == 1 and rep["fusion"]["by_kind"] == {"cube": 1}
    val = rep["validation"]
    assert val["passed"] is True
    assert [o["name"] for o in val["outputs"]] == ["y"]
    for o in val["outputs"]:
        assert set(o) >= {"name", "max_abs_err", "max_rel_err", "cosine"}
        assert o["max_abs_err"] < 1e-4 and o["cosine"] > 0.9999

    # stdout carries the summary
    assert "compiled" in proc.stdout and "cnn.onnx" in proc.stdout
    assert "ops: 4 imported" in proc.stdout
    assert "PASSED" in proc.stdout
    assert str(out) in proc.stdout


def test_compile_replaces_existing_output_folder(tmp_path):
    model = save(cnn_model(), tmp_path / "cnn.onnx")
    out = tmp_path / "OUT"
    assert cli("compile", model, "-o", out, "--emit", "dot", cwd=tmp_path).returncode == 0
    assert (out / "model.dot").is_file()
    proc = cli("compile", model, "-o", out, "--no-validate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "model.dot").exists()  # the earlier output's files, not kept
    assert (out / "model.mlir").is_file()
    assert "validation" not in json.loads((out / "report.json").read_text())


def test_run_prints_outputs(tmp_path):
    model = save(cnn_model(), tmp_path / "cnn.onnx")
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = cli("run", model, "--input", "x=x.npy", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "y: float32[1, 4]" in proc.stdout


def test_run_writes_npz_equal_to_python_api(tmp_path):
    model = save(two_output_model(), tmp_path / "m.onnx")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "res.npz"
    proc = cli("run", model, "--input", "a=a.npy", "--input", "b=b.npy", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = np.load(out)
    want = graphopt.compile(str(model)).run({"a": a, "b": b})
    assert sorted(got.files) == sorted(want)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)
    np.testing.assert_allclose(got["total"], a + b, rtol=1e-6)
    np.testing.assert_array_equal(got["act"], np.maximum(a, 0))


def test_targets_lists_targets_and_chips(tmp_path):
    proc = cli("targets", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines if line and not line.startswith(" ")] == ["ascend-sim", "cpu"]
    assert {"ascend-sim:ascend910b", "ascend-sim:ascend310p"} <= {line.split()[0] for line in lines if line.startswith(" ")}


def test_passes_lists_builtin_passes(tmp_path):
    proc = cli("passes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"canonicalize", "cse", "dce"} <= names


def test_shape_binds_dynamic_dimension(tmp_path):
    model = save(dynamic_model(), tmp_path / "dyn.onnx")
    out = tmp_path / "OUT"
    proc = cli("compile", model, "--shape", "x=2x8", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (out / "model.mlir").read_text()
    assert "tensor<2x8xf32>" in text and "?" not in text


def test_run_input_binds_dynamic_dimension(tmp_path):
    model = save(dynamic_model(), tmp_path / "dyn.onnx")
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(3, 8)
    np.save(tmp_path / "x.npy", x)
    proc = cli("run", model, "--input", "x=x.npy", "-o", tmp_path / "o.npz", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["y"], np.maximum(x, 0))


def test_O0_runs_no_passes(tmp_path):
    model = save(cnn_model(), tmp_path / "cnn.onnx")
    out0, out2 = tmp_path / "o0", tmp_path / "o2"
    p0 = cli("compile", model, "-O0", "-o", out0, "--no-validate", cwd=tmp_path)
    p2 = cli("compile", model, "-O2", "-o", out2, "--no-validate", cwd=tmp_path)
    assert p0.returncode == 0 and p2.returncode == 0, p0.stderr + p2.stderr
    names0 = [p["name"] for p in json.loads((out0 / "report.json").read_text())["passes"]]
    names2 = [p["name"] for p in json.loads((out2 / "report.json").read_text())["passes"]]
    assert not {"fold-constants", "cse", "dce"} & set(names0)
    assert set(names0) <= {"import", "build-cpu"}
    assert {"fold-constants", "cse", "dce", "fuse"} <= set(names2)


def test_print_ir_after_all_goes_to_stderr(tmp_path):
    model = save(cnn_model(), tmp_path / "cnn.onnx")
    proc = cli("compile", model, "-p", "canonicalize,cse", "--print-ir-after-all", "--no-validate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("IR after") == 2
    assert "IR after canonicalize" in proc.stderr and "IR after cse" in proc.stderr
    assert "graph.conv" in proc.stderr
    assert "graph.conv" not in proc.stdout and "IR after" not in proc.stdout
    assert "compiled" in proc.stdout


BREAK_NUMERICS = textwrap.dedent('''
    from dataclasses import dataclass

    from xdsl.passes import ModulePass
    from xdsl.pattern_rewriter import (
        PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern,
    )

    from graphopt.dialects.graph import ONNX_OPS

    AddOp, SubOp = ONNX_OPS["Add"], ONNX_OPS["Sub"]


    class _AddToSub(RewritePattern):
        @op_type_rewrite_pattern
        def match_and_rewrite(self, op: AddOp, rewriter: PatternRewriter) -> None:
            new = SubOp.create(operands=list(op.operands), result_types=[r.type for r in op.results],
                               attributes=dict(op.attributes))
            rewriter.replace_matched_op(new)


    @dataclass(frozen=True)
    class BreakNumerics(ModulePass):
        """Turns every graph.add into graph.sub."""

        name = "break-numerics"

        def apply(self, ctx, op):
            PatternRewriteWalker(_AddToSub()).rewrite_module(op)
''')


def test_validation_mismatch_exits_1_and_names_output(tmp_path):
    model = save(two_output_model(), tmp_path / "m.onnx")
    (tmp_path / "bad.py").write_text(BREAK_NUMERICS)
    proc = cli("compile", model, "--load-pass-plugin", "bad.py", "-p", "break-numerics", cwd=tmp_path)
    line = assert_one_line_error(proc, code=1)
    assert "total" in line and "act" not in line
    assert "FAILED" in proc.stdout


def test_plugin_pass_is_listed_and_correct_pipeline_validates(tmp_path):
    (tmp_path / "bad.py").write_text(BREAK_NUMERICS)
    proc = cli("passes", "--load-pass-plugin", "bad.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "break-numerics" in proc.stdout
    # the same model without the plugin validates (so the mismatch above is the pass's doing)
    model = save(two_output_model(), tmp_path / "m.onnx")
    ok = cli("compile", model, "--load-pass-plugin", "bad.py", "-p", "canonicalize", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
