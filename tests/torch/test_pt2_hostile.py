"""A hostile .pt2 is data, never code: every route by which ``torch.export.load`` would
unpickle, eval or resolve something from the file is either never read or refused with
one line, and a payload planted in it never runs.

Each payload, if it ran, would create ``tmp_path/pwned``; every test checks it did not.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import graphopt
from graphopt.errors import GraphoptError
from graphopt.frontends.fx.pt2 import load_pt2


class _Payload:
    """Unpickling this creates a folder: the visible trace of code run from a model file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


class _Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("scale", torch.full((3,), 2.0))

    def forward(self, x):
        return torch.relu(self.lin(x)) * self.scale


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "good.pt2"
    torch.export.save(torch.export.export(_Small(), (torch.randn(2, 4),)), str(path))
    return path


def _rewrite(src: Path, dst: Path, edit=None, add=None) -> Path:
    """Copy a .pt2, passing each member (name without the archive folder, bytes) through
    ``edit`` (return bytes, or None to drop it) and appending ``add`` {name: bytes}."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            rest = info.filename.split("/", 1)[1]
            data = zin.read(info.filename)
            data = edit(rest, data) if edit else data
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(f"{prefix}/{name}", data)
    return dst


def _edit_json(member: str, change):
    def edit(rest, data):
        if rest != member:
            return data
        doc = json.loads(data)
        change(doc)
        return json.dumps(doc).encode()

    return edit


def _refused(path: Path, match: str, pwned: Path | None = None) -> str:
    with pytest.raises(GraphoptError, match=match) as info:
        graphopt.compile(str(path))
    message = str(info.value)
    assert "\n" not in message
    if pwned is not None:
        assert not pwned.exists(), "the file's payload ran"
    return message


def test_a_clean_file_loads_and_validates(good):
    compiled = graphopt.compile(str(good), validate=True)
    assert compiled.report["validation"]["passed"]


def test_sample_inputs_are_never_unpickled(good, tmp_path):
    """torch.export.load unpickles sample_inputs (retrying with weights_only=False): this
    file compiled with exit 0 after running its payload."""
    pwned = tmp_path / "pwned"
    bad = _rewrite(good, tmp_path / "bad.pt2",
                   edit=lambda rest, data: pickle.dumps(_Payload(pwned)) if rest.startswith("data/sample_inputs/") else data)
    compiled = graphopt.compile(str(bad), validate=True)
    assert compiled.report["validation"]["passed"]
    assert not pwned.exists()


@pytest.mark.parametrize("member", ["data/weights/model.pt", "data/constants/model.pt"])
def test_legacy_pickled_members_are_refused(good, tmp_path, member):
    """A legacy weights/constants .pt member took precedence over the configs."""
    pwned = tmp_path / "pwned"
    bad = _rewrite(good, tmp_path / "bad.pt2", add={member: pickle.dumps(_Payload(pwned))})
    assert member in _refused(bad, "pickled", pwned)


@pytest.mark.parametrize("kind", ["weights", "constants"])
def test_use_pickle_payloads_are_refused(tmp_path, kind):
    class WithConstant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(3))
            self.c = torch.tensor([1.0, 2.0, 3.0])

        def forward(self, x):
            return x * self.w + self.c

    good = tmp_path / "c.pt2"
    torch.export.save(torch.export.export(WithConstant(), (torch.randn(3),)), str(good))
    pwned = tmp_path / "pwned"

    def edit(rest, data):
        if rest == f"data/{kind}/model_{kind}_config.json":
            doc = json.loads(data)
            entry = next(iter(doc["config"].values()))
            entry["use_pickle"] = True
            return json.dumps(doc).encode()
        if rest.startswith(f"data/{kind}/") and not rest.endswith(".json"):
            return pickle.dumps(_Payload(pwned))
        return data

    _refused(_rewrite(good, tmp_path / "bad.pt2", edit=edit), "pickled", pwned)


@pytest.mark.parametrize("member", ["data/constants/custom_obj_0", "data/constants/opaque_obj_0"])
def test_object_members_are_refused(good, tmp_path, member):
    _refused(_rewrite(good, tmp_path / "bad.pt2", add={member: pickle.dumps(_Payload(tmp_path / "pwned"))}), "pickled")


def test_a_node_calling_outside_aten_is_refused(good, tmp_path):
    """torch resolves a target by walking attributes from the torch module."""
    def change(doc):
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    bad = _rewrite(good, tmp_path / "bad.pt2", edit=_edit_json("models/model.json", change))
    assert "torch.os.system" in _refused(bad, "calls")


def test_a_symbolic_expression_that_is_code_is_refused(good, tmp_path):
    """torch parses symbolic expressions with sympy.sympify, which evaluates them."""
    pwned = tmp_path / "pwned"

    def change(doc):
        doc["graph_module"]["graph"]["sym_int_values"] = {
            "s0": {"as_expr": {"expr_str": f"__import__('os').mkdir({str(pwned)!r})", "hint": None}}}

    bad = _rewrite(good, tmp_path / "bad.pt2", edit=_edit_json("models/model.json", change))
    _refused(bad, "symbolic expression", pwned)


def test_guards_code_is_not_run(good, tmp_path):
    """ExportedProgram.module() compiles and runs the program's guards as Python."""
    pwned = tmp_path / "pwned"

    def change(doc):
        doc["guards_code"] = [f"__import__('os').mkdir({str(pwned)!r}) or True"]

    bad = _rewrite(good, tmp_path / "bad.pt2", edit=_edit_json("models/model.json", change))
    compiled = graphopt.compile(str(bad), validate=True)
    assert compiled.report["validation"]["passed"] and not pwned.exists()


def test_a_state_dict_name_that_injects_code_is_refused(good, tmp_path):
    """A parameter's name is written into the source of the module torch generates."""
    pwned = tmp_path / "pwned"
    evil = f'x") or __import__("os").mkdir({str(pwned)!r}) or ("'

    def edit(rest, data):
        if rest in ("models/model.json", "data/weights/model_weights_config.json"):
            return data.replace(b'"lin.weight"', json.dumps(evil).encode())
        return data

    _refused(_rewrite(good, tmp_path / "bad.pt2", edit=edit), "not a plain name|malformed", pwned)


def test_a_zip_bomb_is_refused_before_reading(good, tmp_path):
    """A config member of 2 GiB deflated to a few MB is refused without reading: torch stores
    members uncompressed, so a compressed one is refused (and a stored one costs its size on disk)."""
    bomb = tmp_path / "bomb.pt2"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename.endswith("model_weights_config.json"):
                with zout.open(info.filename, "w", force_zip64=True) as f:
                    chunk = b" " * (1 << 24)
                    for _ in range(128):
                        f.write(chunk)
            else:
                zout.writestr(info.filename, zin.read(info.filename))
    assert bomb.stat().st_size < 8 << 20
    code = ("import resource, sys\nfrom graphopt.frontends.fx.pt2 import load_pt2\nfrom graphopt.errors import GraphoptError\n"
            f"try:\n    load_pt2({str(bomb)!r})\nexcept GraphoptError as e:\n    print('refused', e)\n"
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "refused" in out and "compressed" in out, out
    assert int(out.split("maxrss_kb")[1]) < 1_500_000, out  # torch's import is ~0.5 GB; the member is 2 GiB


@pytest.mark.parametrize("name", ["../escape", "m/../../escape", "/abs/path"])
def test_unsafe_member_names_are_refused(good, tmp_path, name):
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr(name, b"x")
    _refused(bad, "unsafe name|outside the archive")


def test_a_tensor_larger_than_its_payload_is_refused(good, tmp_path):
    def change(doc):
        entry = doc["config"]["lin.weight"]["tensor_meta"]
        entry["sizes"] = [{"as_int": 3000}, {"as_int": 4}]

    bad = _rewrite(good, tmp_path / "bad.pt2", edit=_edit_json("data/weights/model_weights_config.json", change))
    _refused(bad, "needs 12000 elements")


def test_an_unknown_member_is_refused(good, tmp_path):
    _refused(_rewrite(good, tmp_path / "bad.pt2", add={"data/aotinductor/model.so": b"\x7fELF"}), "not part of")


def test_an_oversized_stored_member_is_refused_by_its_declared_size(good, tmp_path, monkeypatch):
    import graphopt.frontends.fx.pt2 as pt2

    monkeypatch.setattr(pt2, "JSON_MAX", 100)
    _refused(good, "declares")


def test_an_unknown_archive_version_is_refused(good, tmp_path):
    bad = _rewrite(good, tmp_path / "bad.pt2", edit=lambda rest, data: b"999" if rest == "archive_version" else data)
    _refused(bad, "archive_version")


def test_not_a_zip(tmp_path):
    bad = tmp_path / "junk.pt2"
    bad.write_bytes(b"PK\x03\x04 not really")
    _refused(bad, "not a torch.export archive")


def test_cli_refuses_with_one_line_and_exit_2(good, tmp_path):
    bad = _rewrite(good, tmp_path / "bad.pt2", add={"data/weights/model.pt": pickle.dumps(_Payload(tmp_path / "pwned"))})
    script = os.path.join(os.path.dirname(sys.executable), "graphopt")
    proc = subprocess.run([script, "compile", str(bad), "-o", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("graphopt: error:") and "pickled" in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "pwned").exists()


def test_load_pt2_gives_an_exported_program(good):
    ep = load_pt2(good)
    x = torch.randn(2, 4)
    trusted = torch.export.load(str(good))  # our own file: torch's loader is the judge here
    torch.testing.assert_close(ep.module()(x), trusted.module()(x), rtol=0, atol=0)
    assert ep.example_inputs is None  # pickled in the file: never read
    assert {"lin.weight", "lin.bias", "scale"} <= set(ep.state_dict)
