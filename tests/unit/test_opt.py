"""`graphopt opt`: IR text round-trips exactly; broken IR is a one-line error."""

from __future__ import annotations

import pytest
from gp_models import assert_one_line_error, cli, cnn_model, save


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("opt")
    model = save(cnn_model(), tmp / "cnn.onnx")
    out = tmp / "OUT"
    proc = cli("compile", model, "-O0", "-o", out, "--no-validate", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return out


def test_opt_prints_back_compiled_model(compiled_dir):
    path = compiled_dir / "model.mlir"
    text = path.read_text()
    assert "graph.conv" in text and "graph.gemm" in text and "graph.reshape" in text
    proc = cli("opt", path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text


def test_opt_after_canonicalize_cse_round_trips(compiled_dir, tmp_path):
    proc = cli("opt", compiled_dir / "model.mlir", "-p", "canonicalize,cse")
    assert proc.returncode == 0, proc.stderr
    assert "graph.gemm" in proc.stdout
    after = tmp_path / "after.mlir"
    after.write_text(proc.stdout)
    again = cli("opt", after)
    assert again.returncode == 0, again.stderr
    assert again.stdout == proc.stdout


def test_opt_reads_stdin_and_writes_file(compiled_dir, tmp_path):
    text = (compiled_dir / "model.mlir").read_text()
    out = tmp_path / "o.mlir"
    proc = cli("opt", "-", "-o", out, stdin=text)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert out.read_text() == text


def test_opt_broken_ir(tmp_path):
    path = tmp_path / "broken.mlir"
    path.write_text('builtin.module {\n  %0 = "graph.add"(\n')
    line = assert_one_line_error(cli("opt", path))
    assert "broken.mlir" in line


def test_opt_ill_typed_ir(tmp_path):
    path = tmp_path / "bad.mlir"
    path.write_text(
        "builtin.module {\n"
        "  func.func @main(%x: tensor<2xf32>) -> tensor<3xf32> {\n"
        '    %0 = "graph.add"(%x, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<3xf32>\n'
        "    func.return %0 : tensor<3xf32>\n"
        "  }\n"
        "}\n"
    )
    line = assert_one_line_error(cli("opt", path))
    assert "graph.add" in line


def test_opt_missing_file(tmp_path):
    line = assert_one_line_error(cli("opt", tmp_path / "absent.mlir"))
    assert "absent.mlir" in line


def test_opt_parse_error_says_why(tmp_path):
    # the one line must carry the parser's reason, not only the file:line:col
    path = tmp_path / "unknown.mlir"
    path.write_text('builtin.module {\n  %0 = "test.op"() : () -> tensor<2xf32>\n}\n')
    line = assert_one_line_error(cli("opt", path))
    assert "unknown.mlir:2" in line
    assert "test.op" in line and "not registered" in line
