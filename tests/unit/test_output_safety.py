"""Output is written beside, never over: -o, --dump-dir and --trace refuse (exit 2, one
line) any place where writing would lose something graphopt did not write, and change
nothing there; an earlier output of graphopt's own is replaced."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gp_models import assert_one_line_error, cli, cnn_model, save

import graphopt
from graphopt import outputs
from graphopt.errors import GraphoptError

MARKER = ".graphopt-output"


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under root (hidden ones too): file bytes, link targets, folders."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                found[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                found[rel] = "folder"
            else:
                found[rel] = p.read_bytes()
    return found


def model_in(folder: Path) -> Path:
    return save(cnn_model(), folder / "m.onnx")


def refused(proc, root: Path, before: dict[str, object], *words: str) -> str:
    line = assert_one_line_error(proc)
    assert snapshot(root) == before, "files were changed"
    for w in words:
        assert w in line, line
    return line


# -- compile -o ------------------------------------------------------------------------------

def test_compile_o_dot_keeps_the_current_folder(tmp_path):
    model_in(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.bin").write_bytes(b"\0\1")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", ".", cwd=tmp_path), tmp_path, before, "-o .", "m.onnx")
    # the model elsewhere: the current folder is refused as such
    refused(cli("compile", tmp_path / "m.onnx", "-o", ".", cwd=tmp_path / "sub"), tmp_path, before, "current folder")
    refused(cli("compile", tmp_path / "m.onnx", "-o", "", cwd=tmp_path / "sub"), tmp_path, before, "current folder")


def test_compile_o_models_own_folder(tmp_path):
    folder = tmp_path / "models"
    model_in(folder)
    (folder / "readme.txt").write_text("keep")
    before = snapshot(tmp_path)
    refused(cli("compile", folder / "m.onnx", "-o", folder, cwd=tmp_path), tmp_path, before, "m.onnx")


def test_compile_o_parent_of_the_current_folder(tmp_path):
    model_in(tmp_path)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    before = snapshot(tmp_path)
    refused(cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "a", cwd=work), tmp_path, before, "parent")


def test_compile_o_folder_without_marker(tmp_path):
    model_in(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "out", cwd=tmp_path), tmp_path, before, "-o out", MARKER)


def test_compile_o_output_folder_with_an_extra_file(tmp_path):
    model_in(tmp_path)
    assert cli("compile", "m.onnx", "-o", "out", "--no-validate", cwd=tmp_path).returncode == 0
    (tmp_path / "out" / "analysis.ipynb").write_text("{}")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "out", "--no-validate", cwd=tmp_path), tmp_path, before, "analysis.ipynb")


def test_compile_o_listed_file_replaced_by_a_link(tmp_path):
    model_in(tmp_path)
    assert cli("compile", "m.onnx", "-o", "out", "--no-validate", cwd=tmp_path).returncode == 0
    (tmp_path / "precious").write_text("x")
    (tmp_path / "out" / "report.json").unlink()
    (tmp_path / "out" / "report.json").symlink_to(tmp_path / "precious")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "out", "--no-validate", cwd=tmp_path), tmp_path, before, "report.json")


def test_compile_o_unreadable_marker(tmp_path):
    model_in(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MARKER).write_text("not json")
    (tmp_path / "out" / "model.mlir").write_text("mine")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "out", cwd=tmp_path), tmp_path, before, "-o out")


def test_compile_o_symlink_to_an_output_folder(tmp_path):
    model_in(tmp_path)
    assert cli("compile", "m.onnx", "-o", "real", "--no-validate", cwd=tmp_path).returncode == 0
    (tmp_path / "link").symlink_to(tmp_path / "real")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "link", cwd=tmp_path), tmp_path, before, "-o link", "symbolic link")


def test_compile_o_is_a_file(tmp_path):
    model_in(tmp_path)
    (tmp_path / "taken").write_text("keep me")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "taken", cwd=tmp_path), tmp_path, before, "-o taken")


def test_compile_o_under_a_file(tmp_path):
    model_in(tmp_path)
    (tmp_path / "plain").write_text("keep me")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-o", "plain/out", cwd=tmp_path), tmp_path, before, "plain")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_compile_o_permission_denied(tmp_path):
    model_in(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        before = snapshot(tmp_path)
        refused(cli("compile", "m.onnx", "-o", "locked/out", cwd=tmp_path), tmp_path, before, "locked")
    finally:
        locked.chmod(0o755)


def test_compile_o_is_checked_before_the_compile(tmp_path):
    # The model is not even there: the refusal of -o comes first.
    (tmp_path / "a.txt").write_text("a")
    before = snapshot(tmp_path)
    refused(cli("compile", "absent.onnx", "-o", ".", cwd=tmp_path), tmp_path, before, "-o .")


def test_compile_replaces_its_own_output(tmp_path):
    model_in(tmp_path)
    (tmp_path / "out").mkdir()  # an empty folder is taken
    first = cli("compile", "m.onnx", "-o", "out", "--no-validate", "--emit", "dot", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert "model.dot" in marker["files"] and "model.mlir" in marker["files"]
    assert set(marker["files"]) == {p.name for p in (tmp_path / "out").iterdir()} - {MARKER}
    second = cli("compile", "m.onnx", "-o", "out", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert not (tmp_path / "out" / "model.dot").exists()
    assert "validation" in json.loads((tmp_path / "out" / "report.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out"]  # nothing left aside


def test_compile_ascend_output_with_kernels_is_replaced(tmp_path):
    model_in(tmp_path)
    for _ in range(2):
        proc = cli("compile", "m.onnx", "-t", "ascend-sim", "-o", "out", "--no-validate", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert "kernels" in marker["folders"] and any(f.startswith("kernels/") for f in marker["files"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out"]


def test_trace_never_over_the_model(tmp_path):
    model_in(tmp_path)
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "-t", "ascend-sim", "--trace", "m.onnx", cwd=tmp_path), tmp_path, before, "--trace")


# -- Compiled.save -----------------------------------------------------------------------------

def test_save_refuses_a_foreign_folder(tmp_path):
    c = graphopt.compile(cnn_model())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.mlir").write_text("not graphopt's")
    before = snapshot(tmp_path)
    with pytest.raises(GraphoptError, match="not a graphopt output folder"):
        c.save(tmp_path / "out")
    assert snapshot(tmp_path) == before


def test_save_refuses_the_current_folder(tmp_path, monkeypatch):
    c = graphopt.compile(cnn_model())
    (tmp_path / "a.txt").write_text("a")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(GraphoptError, match="current folder"):
        c.save(".")
    assert snapshot(tmp_path) == before


def test_save_refuses_the_models_folder(tmp_path):
    path = model_in(tmp_path / "m")
    c = graphopt.compile(path)
    before = snapshot(tmp_path)
    with pytest.raises(GraphoptError, match=r"m\.onnx"):
        c.save(tmp_path / "m")
    assert snapshot(tmp_path) == before


def test_save_replaces_its_own_output_and_only_that(tmp_path):
    c = graphopt.compile(cnn_model(), "ascend-sim")
    c.save(tmp_path / "out")
    assert (tmp_path / "out" / "kernels").is_dir()
    cpu = graphopt.compile(cnn_model())
    cpu.save(tmp_path / "out")
    assert not (tmp_path / "out" / "kernels").exists()
    assert (tmp_path / "out" / "model.mlir").read_text() == cpu.ir
    assert json.loads((tmp_path / "out" / "report.json").read_text())["target"] == "cpu"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_old_output_keeps_what_was_added_after_the_check(tmp_path):
    # Deleting an output moved aside removes its listed files only: a file that appears
    # there between the check and the deletion stays.
    c = graphopt.compile(cnn_model())
    old = c.save(tmp_path / "old")
    (old / "late.txt").write_text("late")
    outputs.remove_listed(old, MARKER, remove_folder=True)
    assert snapshot(old) == {"late.txt": b"late"}


# -- run -o ----------------------------------------------------------------------------------

def _run(tmp_path, out, *extra):
    np.save(tmp_path / "x.npy", np.ones((1, 2, 6, 6), np.float32))
    return cli("run", "m.onnx", "--input", "x=x.npy", "-o", out, *extra, cwd=tmp_path)


@pytest.mark.parametrize("out", ["m.onnx", "x.npy", "notes.txt", "folder", "archive.npz"])
def test_run_o_refuses(tmp_path, out):
    model_in(tmp_path)
    np.save(tmp_path / "x.npy", np.ones((1, 2, 6, 6), np.float32))
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "folder").mkdir()
    with zipfile.ZipFile(tmp_path / "archive.npz", "w") as z:  # a zip, but not of arrays
        z.writestr("photo.jpg", b"\xff\xd8")
    before = snapshot(tmp_path)
    refused(_run(tmp_path, out), tmp_path, before, f"-o {out}")


def test_run_o_replaces_an_earlier_result_and_writes_the_name_given(tmp_path):
    model_in(tmp_path)
    assert _run(tmp_path, "res").returncode == 0
    assert not (tmp_path / "res.npz").exists()
    first = np.load(tmp_path / "res", allow_pickle=False)["y"]
    proc = _run(tmp_path, "res")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "res", allow_pickle=False)["y"], first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "res", "x.npy"]


def test_run_o_is_checked_before_the_compile(tmp_path):
    (tmp_path / "notes.txt").write_text("notes")
    before = snapshot(tmp_path)
    refused(cli("run", "absent.onnx", "-o", "notes.txt", cwd=tmp_path), tmp_path, before, "-o notes.txt")


# -- opt -o ----------------------------------------------------------------------------------

def _ir(tmp_path) -> Path:
    path = tmp_path / "m.mlir"
    path.write_text(graphopt.compile(cnn_model(), pipeline="").ir)
    return path


@pytest.mark.parametrize("out, emit", [("notes.txt", "mlir"), ("folder", "mlir"), ("m.mlir", "dot")])
def test_opt_o_refuses(tmp_path, out, emit):
    _ir(tmp_path)
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "folder").mkdir()
    before = snapshot(tmp_path)
    refused(cli("opt", "m.mlir", "--emit", emit, "-o", out, cwd=tmp_path), tmp_path, before, f"-o {out}")


def test_opt_o_rewrites_an_mlir_file_in_place(tmp_path):
    path = _ir(tmp_path)
    proc = cli("opt", "m.mlir", "-p", "fuse", "-o", "m.mlir", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "graph.fused" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlir"]


# -- --dump-dir ------------------------------------------------------------------------------

def test_dump_dir_refuses_a_folder_with_other_files(tmp_path):
    model_in(tmp_path)
    _ir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "01_cse.mlir").write_text("mine")
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "--dump-dir", "d", cwd=tmp_path), tmp_path, before, "--dump-dir d")
    refused(cli("opt", "m.mlir", "-p", "cse", "--dump-dir", "d", cwd=tmp_path), tmp_path, before, "--dump-dir d")


def test_dump_dir_refuses_the_folder_of_the_input(tmp_path):
    _ir(tmp_path)
    before = snapshot(tmp_path)
    refused(cli("opt", "m.mlir", "-p", "cse", "--dump-dir", ".", cwd=tmp_path), tmp_path, before, "m.mlir")


def test_dump_dir_under_a_file(tmp_path):
    model_in(tmp_path)
    before = snapshot(tmp_path)
    refused(cli("compile", "m.onnx", "--dump-dir", "m.onnx/d", cwd=tmp_path), tmp_path, before, "--dump-dir")


def test_dump_dir_is_reused_and_numbers_every_pass(tmp_path):
    model_in(tmp_path)
    proc = cli("compile", "m.onnx", "-t", "ascend-sim", "--no-validate", "--dump-dir", "d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dumped = sorted(p.name for p in (tmp_path / "d").iterdir() if p.name.endswith(".mlir"))
    assert cli("compile", "m.onnx", "-t", "ascend-sim", "--no-validate", "-o", "o", cwd=tmp_path).returncode == 0
    passes = json.loads((tmp_path / "o" / "report.json").read_text())["passes"]
    names = [p["name"] for p in passes[1:-1]]  # without import and build
    assert "ascend-lower" in names
    assert dumped == [f"{k + 1:02d}_{n}.mlir" for k, n in enumerate(names)]  # the lowering passes numbered on
    # again with a shorter pipeline: the earlier dump's files go, the new ones are listed
    proc = cli("compile", "m.onnx", "--no-validate", "-p", "cse", "--dump-dir", "d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [".graphopt-dump", "01_cse.mlir"]
    assert json.loads((tmp_path / "d" / ".graphopt-dump").read_text())["files"] == ["01_cse.mlir"]
