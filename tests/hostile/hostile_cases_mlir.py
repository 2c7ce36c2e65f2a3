"""Hostile input to `graphopt opt`: IR text that is not text, nests too deep or names ops
nobody defines, and a saved folder's weights.json / weights.bin that lie."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hostile_harness import Case
from hostile_models import floats, sparse_file

ONE_TIB = 1 << 40

IR = """builtin.module {
  func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %0 = "graph.weight"() <{name = "w_saved"}> {src = ["w_saved"]} : () -> tensor<2x3xf32>
    %1 = "graph.relu"(%0) {src = ["relu1"]} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %2 = "graph.add"(%x, %1) {src = ["add1"]} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %2 : tensor<2x3xf32>
  }
}
"""

GOOD_INDEX = {"w_saved": {"dtype": "float", "shape": [2, 3], "offset": 0}}


def text_case(id: str, data, name: str = "m.mlir", extra=(), **kw) -> Case:
    def build(folder: Path) -> list[str]:
        path = folder / name
        payload = data(folder) if callable(data) else data
        if payload is not None:
            path.write_bytes(payload.encode() if isinstance(payload, str) else payload)
        return ["opt", name, *extra]

    kw.setdefault("names", (name,))
    return Case(id, build, **kw)


def weights_case(id: str, index, bin_data: bytes | None = b"", ir: str = IR, extra=("-p", "fold-constants"), **kw) -> Case:
    """saved/model.mlir beside saved/weights.json (``index``: an object dumped as JSON, or
    the raw bytes) and saved/weights.bin (``bin_data``; None: no file; default 24 bytes)."""

    def build(folder: Path) -> list[str]:
        saved = folder / "saved"
        saved.mkdir()
        (saved / "model.mlir").write_text(ir)
        if callable(index):
            index(saved)
        else:
            raw = index if isinstance(index, bytes) else json.dumps(index).encode()
            (saved / "weights.json").write_bytes(raw)
        if bin_data is not None:
            (saved / "weights.bin").write_bytes(bin_data or floats(6))
        return ["opt", "saved/model.mlir", *extra]

    return Case(id, build, **kw)


def _entry(**changes):
    entry = dict(GOOD_INDEX["w_saved"], **changes)
    return {"w_saved": entry}


def _without(key):
    entry = dict(GOOD_INDEX["w_saved"])
    del entry[key]
    return {"w_saved": entry}


def _nested_modules(n):
    return "builtin.module {\n" * n + "}\n" * n


def _nested_regions(n):
    """Modules in generic form: each a region holding the next."""
    return '"builtin.module"() ({\n' * n + "}) : () -> ()\n" * n


def _nested_attr(n):
    return 'builtin.module attributes {deep = ' + "[" * n + "]" * n + "} {\n}\n"


def _nested_type(n):
    return "builtin.module {\n  func.func private @f(" + "tuple<" * n + "i32" + ">" * n + ")\n}\n"


def _sparse_json(saved: Path) -> None:
    sparse_file(saved / "weights.json", ONE_TIB)


def _bad_weight_index(saved: Path) -> None:
    (saved / "weights.json").write_text(json.dumps({"\x1b[31mevilw\x1b[0m": {"dtype": "nosuch", "shape": [2, 3],
                                                                           "offset": 0}}))


def _fifo_case(folder: Path) -> list[str]:
    os.mkfifo(folder / "pipe.mlir")
    return ["opt", "pipe.mlir"]


def _opt_output(target_setup, out: str):
    def build(folder: Path) -> list[str]:
        (folder / "m.mlir").write_text(IR.replace('"graph.weight"() <{name = "w_saved"}> {src = ["w_saved"]}', '"graph.relu"(%x)')
                                       .replace(": () -> tensor<2x3xf32>", ": (tensor<2x3xf32>) -> tensor<2x3xf32>", 1))
        target_setup(folder)
        return ["opt", "m.mlir", "-o", out]
    return build


def _mk(rel, kind="dir"):
    def setup(folder: Path) -> None:
        p = folder / rel
        if kind == "dir":
            p.mkdir()
            (p / "keep.txt").write_text("user data\n")
        else:
            p.write_text("user data\n")
    return setup


CASES: list[Case] = [
    text_case("mlir-not-utf8", b"builtin.module {\n}\n\xff\xfe\xfd\n"),
    text_case("mlir-latin1-name", 'builtin.module {\n  "caf\xe9.op"() : () -> ()\n}\n'.encode("latin-1")),
    text_case("mlir-nul-bytes", b"builtin.module {\n\x00\x00\n}\n"),
    text_case("mlir-garbage", b"%%%% this is not IR @@@@ {{{{\n"),
    text_case("mlir-binary-noise", bytes(range(256)) * 16),
    text_case("mlir-modules-nested-3000", _nested_modules(3000)),
    text_case("mlir-regions-nested-3000", _nested_regions(3000)),
    text_case("mlir-attribute-nested-3000", _nested_attr(3000)),
    text_case("mlir-type-nested-3000", _nested_type(3000)),
    text_case("mlir-unknown-op", 'builtin.module {\n  "foo.bar"() : () -> ()\n}\n', names=("foo.bar",)),
    text_case("mlir-unknown-graph-op", 'builtin.module {\n  "graph.nosuch"() : () -> ()\n}\n', names=("graph.nosuch",)),
    text_case("mlir-unknown-op-ansi-name", 'builtin.module {\n  "evil.\\1b[31mop"() : () -> ()\n}\n', names=("evil.",)),
    text_case("mlir-verifier-error",
              'builtin.module {\n  func.func @f(%a: tensor<2xf32>, %b: tensor<3xf32>) -> tensor<2xf32> {\n'
              '    %0 = "graph.add"(%a, %b) : (tensor<2xf32>, tensor<3xf32>) -> tensor<2xf32>\n'
              '    func.return %0 : tensor<2xf32>\n  }\n}\n', names=("m.mlir",)),
    text_case("mlir-empty-file", ""),
    text_case("mlir-valid-unknown-pass", IR.replace('"graph.weight"() <{name = "w_saved"}> {src = ["w_saved"]} : () -> tensor<2x3xf32>',
                                                    '"graph.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>'),
              extra=("-p", "nosuchpass"), names=("nosuchpass",)),
    text_case("mlir-missing-file", None, name="nothere.mlir"),
    text_case("mlir-is-folder", lambda f: (f / "dir.mlir").mkdir(), name="dir.mlir"),
    Case("mlir-is-fifo", _fifo_case, names=("pipe.mlir",), max_seconds=30),
    text_case("mlir-sparse-1tib", lambda f: sparse_file(f / "big.mlir", ONE_TIB), name="big.mlir", max_seconds=30,
              max_rss_growth_mb=300),
    Case("mlir-stdin-garbage", lambda f: ((f / "in.txt").write_bytes(b"\xff\x00 nope {{{"), ["opt", "-"])[1],
         stdin="in.txt", names=("<stdin>",)),
    # weights.json / weights.bin beside the IR
    weights_case("mlir-weights-valid", GOOD_INDEX, exit=0),
    weights_case("mlir-weights-dtype-string", _entry(dtype="string"), names=("w_saved",)),
    weights_case("mlir-weights-dtype-object", _entry(dtype="object"), names=("w_saved",)),
    weights_case("mlir-weights-dtype-unknown", _entry(dtype="nosuch"), names=("w_saved",)),
    weights_case("mlir-weights-dtype-not-text", _entry(dtype=7), names=("w_saved",)),
    weights_case("mlir-weights-negative-offset", _entry(offset=-24), names=("w_saved",)),
    weights_case("mlir-weights-offset-past-end", _entry(offset=4096), names=("w_saved",)),
    weights_case("mlir-weights-offset-2e63", _entry(offset=2**63 - 1), names=("w_saved",)),
    weights_case("mlir-weights-offset-float", _entry(offset=1.5), names=("w_saved",)),
    weights_case("mlir-weights-offset-string", _entry(offset="0"), names=("w_saved",)),
    weights_case("mlir-weights-offset-bool", _entry(offset=True), names=("w_saved",)),
    weights_case("mlir-weights-shape-negative", _entry(shape=[-2, -3]), names=("w_saved",)),
    weights_case("mlir-weights-shape-1e15", _entry(shape=[10**5, 10**5, 10**5]), names=("w_saved",), max_rss_growth_mb=300),
    weights_case("mlir-weights-shape-string", _entry(shape="2x3"), names=("w_saved",)),
    weights_case("mlir-weights-shape-nested", _entry(shape=[[2], [3]]), names=("w_saved",)),
    weights_case("mlir-weights-missing-key", _without("offset"), names=("w_saved",)),
    weights_case("mlir-weights-entry-not-object", {"w_saved": "float32"}, names=("w_saved",)),
    weights_case("mlir-weights-top-level-list", [GOOD_INDEX], names=("weights.json",)),
    weights_case("mlir-weights-invalid-json", b'{"w": {"dtype": "float",', names=("weights.json",)),
    weights_case("mlir-weights-not-utf8", b'{"w\xff": 1}', names=("weights.json",)),
    weights_case("mlir-weights-nested-100000", b"[" * 100_000 + b"]" * 100_000, names=("weights.json",)),
    weights_case("mlir-weights-duplicate-name", b'{"w_saved": {"dtype": "float", "shape": [2, 3], "offset": 0}, '
                                                b'"w_saved": {"dtype": "int64", "shape": [9], "offset": 0}}', names=("w_saved",)),
    weights_case("mlir-weights-sparse-1tib-json", _sparse_json, names=("weights.json",), max_seconds=30,
                 max_rss_growth_mb=300),
    weights_case("mlir-weights-bin-missing", GOOD_INDEX, bin_data=None, names=("weights.bin",)),
    weights_case("mlir-weights-bin-short", GOOD_INDEX, bin_data=b"\0" * 8, names=("w_saved",)),
    weights_case("mlir-weights-name-ansi", _bad_weight_index, names=("evilw",)),
    weights_case("mlir-weight-shape-disagrees-with-ir", _entry(shape=[3, 2]), names=("w_saved",)),
    # where opt writes
    Case("mlir-opt-output-existing-folder", _opt_output(_mk("outdir"), "outdir"), names=("outdir",)),
    Case("mlir-opt-output-parent-is-file", _opt_output(_mk("afile", "file"), "afile/out.mlir"), names=("afile",)),
    Case("mlir-opt-output-over-foreign-file", _opt_output(_mk("notes.txt", "file"), "notes.txt"), names=("notes.txt",)),
    Case("mlir-opt-output-new-file", _opt_output(lambda f: None, "new.mlir"), exit=0, creates=("new.mlir",)),
    Case("mlir-opt-output-over-input", _opt_output(lambda f: None, "m.mlir"), exit=0, modifies=("m.mlir",)),
]
