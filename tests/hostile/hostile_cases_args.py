"""Hostile command lines (flags, --shape, -O, -p, targets, chips, pass plugins) and output
paths that would overwrite what graphopt did not write."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hostile_harness import Case
from hostile_models import np, relu, sparse_file, write

CHIPS = Path(__file__).resolve().parents[2] / "targets" / "ascend" / "chips"
ONE_TIB = 1 << 40


def _models(folder: Path) -> None:
    write(folder, "m.onnx", relu((2, 3), x="pix", y="out"))
    write(folder, "dyn.onnx", relu(("N", 3), x="dyn_in", y="out"))
    write(folder, "ab.onnx", _two_inputs())


def _two_inputs():
    from gp_models import two_output_model

    return two_output_model()


def arg_case(id: str, *argv: str, prepare=None, **kw) -> Case:
    """``graphopt argv...`` in a folder holding m.onnx (pix: 2x3), dyn.onnx (dyn_in: Nx3),
    ab.onnx (inputs a, b); ``prepare(folder)`` adds files."""

    def build(folder: Path) -> list[str]:
        _models(folder)
        if prepare is not None:
            prepare(folder)
        return list(argv)

    return Case(id, build, **kw)


def _file(rel, data):
    def prepare(folder: Path) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return prepare


def _chip(edit):
    """my_chip.toml: the bundled 910B description with ``edit(text) -> text`` applied."""
    def prepare(folder: Path) -> None:
        text = (CHIPS / "ascend910b.toml").read_text()
        new = edit(text)
        assert new != text, "the chip edit changed nothing"
        (folder / "my_chip.toml").write_text(new)
    return prepare


def _sparse(rel):
    def prepare(folder: Path) -> None:
        sparse_file(folder / rel, ONE_TIB)
    return prepare


def _dir(rel, with_file=True):
    def prepare(folder: Path) -> None:
        (folder / rel).mkdir(parents=True)
        if with_file:
            (folder / rel / "keep.txt").write_text("user data\n")
    return prepare


def _npy(rel="x.npy"):
    def prepare(folder: Path) -> None:
        np.save(folder / rel, np.arange(6, dtype=np.float32).reshape(2, 3))
    return prepare


def _config():
    """Transformers configs for train-sim: llama.json (a 7B), llama70b.json, and broken ones;
    data/ (a folder of the user's) and notes.json (a file of the user's)."""
    import shutil

    configs = Path(__file__).resolve().parents[2] / "examples" / "configs"
    seven = json.loads((configs / "llama2-7b.json").read_text())
    broken = {"nohidden.json": {"model_type": "llama"}, "negative.json": {**seven, "hidden_size": -4096},
              "huge.json": {**seven, "num_hidden_layers": 1e30}, "gpt9.json": {"model_type": "gpt9"}}

    def prepare(folder: Path) -> None:
        shutil.copy(configs / "llama2-7b.json", folder / "llama.json")
        shutil.copy(configs / "llama2-70b.json", folder / "llama70b.json")
        for name, content in broken.items():
            (folder / name).write_text(json.dumps(content))
        (folder / "bad.json").write_text("not json")
        (folder / "list.json").write_text("[1, 2]")
        (folder / "notes.json").write_text('{"mine": 1}')
        _dir("data")(folder)
    return prepare


def _all(*preps):
    def prepare(folder: Path) -> None:
        for p in preps:
            p(folder)
    return prepare


PLUGIN_OK = '''
from dataclasses import dataclass
from xdsl.passes import ModulePass

@dataclass(frozen=True)
class Nothing(ModulePass):
    """Does nothing."""
    name = "hostile-nothing"

    def apply(self, ctx, op):
        pass
'''

COMPILE = ("compile", "m.onnx")
ASCEND = ("--target", "ascend-sim")

CASES: list[Case] = [
    # argparse
    arg_case("args-unknown-flag", *COMPILE, "--frobnicate", names=("--frobnicate",)),
    arg_case("args-no-command"),
    arg_case("args-unknown-command", "frob", "m.onnx", names=("frob",)),
    arg_case("args-missing-model", "compile"),
    arg_case("args-opt-unknown-flag", "opt", "x.mlir", "--frobnicate", names=("--frobnicate",)),
    arg_case("args-flag-ansi", *COMPILE, "--\x1b[31mred", names=("red",)),
    arg_case("args-shape-negative", "compile", "dyn.onnx", "--shape", "dyn_in=-1x3", names=("dyn_in=-1x3",)),
    arg_case("args-shape-letters", "compile", "dyn.onnx", "--shape", "dyn_in=abc", names=("dyn_in=abc",)),
    arg_case("args-shape-no-name", "compile", "dyn.onnx", "--shape", "=1x3", names=("=1x3",)),
    arg_case("args-shape-no-equals", "compile", "dyn.onnx", "--shape", "1x3", names=("1x3",)),
    arg_case("args-shape-trailing-x", "compile", "dyn.onnx", "--shape", "dyn_in=2x", names=("dyn_in=2x",)),
    arg_case("args-shape-int-overflow", "compile", "dyn.onnx", "--shape", "dyn_in=99999999999999999999999x3",
             names=("dyn_in",)),
    arg_case("args-shape-newline", "compile", "dyn.onnx", "--shape", "dyn\n_in=abc", names=("dyn",)),
    arg_case("args-shape-unknown-input", "compile", "ab.onnx", "--shape", "x=1x2", any_of=("'x'", "x=1x2", "input x")),
    arg_case("args-shape-wrong-rank", "compile", "dyn.onnx", "--shape", "dyn_in=2x3x4", names=("dyn_in",)),
    arg_case("args-shape-scalar-for-matrix", "compile", "dyn.onnx", "--shape", "dyn_in=", names=("dyn_in",)),
    arg_case("args-shape-fixed-dim-conflict", *COMPILE, "--shape", "pix=4x3", names=("pix",)),
    arg_case("args-shape-1e12-elements", "compile", "dyn.onnx", "--shape", "dyn_in=333333333333x3", names=("dyn_in",),
             max_rss_growth_mb=300),
    arg_case("args-shape-valid", "compile", "dyn.onnx", "--shape", "dyn_in=5x3", exit=0),
    arg_case("args-O-9", *COMPILE, "-O", "9", names=("-O",)),
    arg_case("args-O-negative", *COMPILE, "-O", "-1", names=("-O",)),
    arg_case("args-O-letters", *COMPILE, "-O", "fast", names=("fast",)),
    arg_case("args-pipeline-unknown-pass", *COMPILE, "-p", "nosuchpass", names=("nosuchpass",)),
    arg_case("args-pipeline-unclosed-brace", *COMPILE, "-p", "fuse{", names=("pipeline",)),
    arg_case("args-pipeline-bad-option-value", *COMPILE, "-p", "fuse{max-ops=abc}", names=("pipeline",)),
    arg_case("args-pipeline-unknown-option", *COMPILE, "-p", "fuse{nosuch=1}", names=("nosuch",)),
    arg_case("args-pipeline-10000-braces", *COMPILE, "-p", "fuse" + "{" * 10000, names=("pipeline",)),
    arg_case("args-pipeline-ansi", *COMPILE, "-p", "\x1b[31mred", names=("red",)),
    arg_case("args-pipeline-valid", *COMPILE, "-p", "cse,dce", exit=0),
    arg_case("args-opt-pipeline-unknown-pass", "opt", "x.mlir", "-p", "nosuchpass", names=("nosuchpass",),
             prepare=_file("x.mlir", "builtin.module {\n}\n")),
    arg_case("args-target-nosuch", *COMPILE, "--target", "nosuch", names=("nosuch",)),
    arg_case("args-target-empty", *COMPILE, "--target", "", names=("--target",)),
    arg_case("args-target-ansi", *COMPILE, "--target", "\x1b[2Jred", names=("red",)),
    arg_case("args-target-cpu-variant", *COMPILE, "--target", "cpu:fast", names=("cpu:fast",)),
    arg_case("args-target-unknown-chip", *COMPILE, "--target", "ascend-sim:nosuchchip", names=("nosuchchip",)),
    arg_case("args-precision-bogus", *COMPILE, *ASCEND, "--precision", "bogus", names=("bogus",)),
    arg_case("args-precision-on-cpu", *COMPILE, "--precision", "force_fp16", names=("--precision",)),
    arg_case("args-tiling-bogus", *COMPILE, *ASCEND, "--tiling", "bogus", names=("bogus",)),
    arg_case("args-seed-letters", *COMPILE, "--seed", "abc", names=("abc",)),
    arg_case("args-emit-png", *COMPILE, "--emit", "png", names=("png",)),
    arg_case("args-input-no-equals", *COMPILE, "--input", "x.npy", names=("x.npy",)),
    arg_case("args-run-input-missing", "run", "m.onnx", names=("pix",)),
    arg_case("args-model-dash", "compile", "-", names=("-",)),
    arg_case("args-max-memory-letters", *COMPILE, "--max-memory", "lots", names=("lots",)),
    arg_case("args-max-memory-zero", *COMPILE, "--max-memory", "0", names=("--max-memory",)),
    arg_case("args-max-memory-refuses-big-input", "compile", "dyn.onnx", "--shape", "dyn_in=100000000x3", "--max-memory",
             "64M", names=("dyn_in",), max_rss_growth_mb=100),
    arg_case("args-max-memory-allows-small-model", *COMPILE, "--max-memory", "64M", exit=0),
    arg_case("args-check-target-nosuch", "check", "m.onnx", "--target", "nosuch", names=("nosuch",)),
    # chips
    arg_case("args-chip-missing", *COMPILE, *ASCEND, "--chip", "nothere.toml", names=("nothere.toml",)),
    arg_case("args-chip-malformed-toml", *COMPILE, *ASCEND, "--chip", "bad.toml", names=("bad.toml",),
             prepare=_file("bad.toml", "[chip\nname = = 3\n")),
    arg_case("args-chip-not-utf8", *COMPILE, *ASCEND, "--chip", "bin.toml", names=("bin.toml",),
             prepare=_file("bin.toml", b"[chip]\nname = \"\xff\xfe\"\n")),
    arg_case("args-chip-sparse-1tib", *COMPILE, *ASCEND, "--chip", "huge.toml", names=("huge.toml",),
             prepare=_sparse("huge.toml"), max_seconds=30, max_rss_growth_mb=300),
    arg_case("args-chip-nested-100000", *COMPILE, *ASCEND, "--chip", "deep.toml", names=("deep.toml",),
             prepare=_file("deep.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n")),
    arg_case("args-chip-is-folder", *COMPILE, *ASCEND, "--chip", "dir.toml", names=("dir.toml",), prepare=_dir("dir.toml")),
    arg_case("args-chip-empty", *COMPILE, *ASCEND, "--chip", "empty.toml", names=("empty.toml",),
             prepare=_file("empty.toml", "")),
    arg_case("args-chip-wrong-type", *COMPILE, *ASCEND, "--chip", "my_chip.toml", names=("cube_cores",),
             prepare=_chip(lambda t: t.replace("cube_cores = { value = 24,", 'cube_cores = { value = "many",'))),
    arg_case("args-chip-zero-cores", *COMPILE, *ASCEND, "--chip", "my_chip.toml", names=("cube_cores",),
             prepare=_chip(lambda t: t.replace("cube_cores = { value = 24,", "cube_cores = { value = 0,"))),
    arg_case("args-chip-negative-buffer", *COMPILE, *ASCEND, "--chip", "my_chip.toml", names=("ub",),
             prepare=_chip(lambda t: t.replace("ub = { value = 196608,", "ub = { value = -1,"))),
    arg_case("args-chip-nan-clock", *COMPILE, *ASCEND, "--chip", "my_chip.toml", names=("clock_ghz",),
             prepare=_chip(lambda t: t.replace("clock_ghz = { value = 1.8,", "clock_ghz = { value = nan,"))),
    arg_case("args-chip-inf-clock", *COMPILE, *ASCEND, "--chip", "my_chip.toml", names=("clock_ghz",),
             prepare=_chip(lambda t: t.replace("clock_ghz = { value = 1.8,", "clock_ghz = { value = inf,"))),
    arg_case("args-chip-valid-copy", *COMPILE, *ASCEND, "--chip", "my_chip.toml", exit=0,
             prepare=_chip(lambda t: t.replace('name = "ascend910b"', 'name = "mine"'))),
    # pass plugins: trusted code by design; a missing or broken file is still one line
    arg_case("args-plugin-missing", *COMPILE, "--load-pass-plugin", "nothere.py", names=("nothere.py",)),
    arg_case("args-plugin-syntax-error", *COMPILE, "--load-pass-plugin", "broken.py", names=("broken.py",),
             prepare=_file("broken.py", "def oops(:\n")),
    arg_case("args-plugin-raises", *COMPILE, "--load-pass-plugin", "raises.py", names=("raises.py",),
             prepare=_file("raises.py", "raise RuntimeError('plugin failed\\nsecond line')\n")),
    arg_case("args-plugin-no-passes", *COMPILE, "--load-pass-plugin", "empty.py", names=("empty.py",),
             prepare=_file("empty.py", "X = 1\n")),
    arg_case("args-plugin-is-folder", *COMPILE, "--load-pass-plugin", "plug", names=("plug",), prepare=_dir("plug")),
    arg_case("args-plugin-not-utf8", *COMPILE, "--load-pass-plugin", "bin.py", names=("bin.py",),
             prepare=_file("bin.py", b"X = '\xff\xfe'\n")),
    arg_case("args-passes-plugin-missing", "passes", "--load-pass-plugin", "nothere.py", names=("nothere.py",)),
    arg_case("args-plugin-valid", *COMPILE, "--load-pass-plugin", "ok.py", "-p", "hostile-nothing", exit=0,
             prepare=_file("ok.py", PLUGIN_OK)),
    # patterns files: text, never run; every defect is one line naming the file and line
    arg_case("args-patterns-missing", *COMPILE, "--load-patterns", "nothere.patterns", names=("nothere.patterns",)),
    arg_case("args-patterns-is-folder", *COMPILE, "--load-patterns", "pat", names=("pat",), prepare=_dir("pat")),
    arg_case("args-patterns-not-utf8", *COMPILE, "--load-patterns", "bin.patterns", names=("bin.patterns",),
             prepare=_file("bin.patterns", b"r: Neg(\xff) -> x\n")),
    arg_case("args-patterns-python", *COMPILE, "--load-patterns", "evil.patterns", names=("evil.patterns:1",),
             prepare=_file("evil.patterns", "r: __import__('os').system('touch pwned') -> x\n")),
    arg_case("args-patterns-unknown-op", *COMPILE, "--load-patterns", "u.patterns", names=("u.patterns:2", "Frob"),
             prepare=_file("u.patterns", "# one rule\nr: Frob(x) -> x\n")),
    arg_case("args-patterns-deep", *COMPILE, "--load-patterns", "d.patterns", names=("d.patterns:1",),
             prepare=_file("d.patterns", "r: " + "Neg(" * 100000 + "x" + ")" * 100000 + " -> x\n")),
    arg_case("args-patterns-huge", *COMPILE, "--load-patterns", "h.patterns", names=("h.patterns",),
             prepare=_file("h.patterns", "# " + "x" * (2 << 20) + "\n")),
    arg_case("args-patterns-valid", *COMPILE, "--load-patterns", "ok.patterns", "-p", "ok", exit=0,
             prepare=_file("ok.patterns", "nn: Neg(Neg(x)) -> x\n")),
    # train-sim: every case is refused before a layer is compiled
    *[arg_case(f"train-sim-{id}", "train-sim", cfg, "--chips", "8", "--parallel", par, "--global-batch", "8", *extra,
               names=names, prepare=_config(), max_seconds=20)
      for id, cfg, par, extra, names in [
          ("config-missing", "nothere.json", "tp=8", (), ("nothere.json",)),
          ("config-not-json", "bad.json", "tp=8", (), ("bad.json",)),
          ("config-a-list", "list.json", "tp=8", (), ("list.json",)),
          ("config-no-hidden-size", "nohidden.json", "tp=8", (), ("hidden_size",)),
          ("config-negative-size", "negative.json", "tp=8", (), ("hidden_size", "-4096")),
          ("config-1e30-layers", "huge.json", "tp=8", (), ("num_hidden_layers",)),
          ("config-unknown-type", "gpt9.json", "tp=8", (), ("gpt9",)),
          ("plan-unknown-axis", "llama.json", "tp=8,zz=2", (), ("zz=2",)),
          ("plan-negative", "llama.json", "tp=2,dp=-1", (), ("dp",)),
          ("plan-does-not-divide", "llama.json", "tp=3", (), ("tp",)),
          ("seq-zero", "llama.json", "tp=8", ("--seq", "0"), ("--seq",)),
          ("cluster-not-toml", "llama.json", "tp=8", ("--cluster", "llama.json"), ("llama.json",)),
          ("out-foreign-folder", "llama.json", "tp=8", ("-o", "data"), ("data",)),
          ("trace-over-the-config", "llama.json", "tp=8", ("--trace", "llama.json"), ("llama.json",)),
          ("trace-over-a-json", "llama.json", "tp=8", ("--trace", "notes.json"), ("notes.json",)),
          ("does-not-fit", "llama70b.json", "tp=8", (), ("GB",)),
      ]],
]


# -- output paths ----------------------------------------------------------------------------------

def out_case(id: str, *argv: str, prepare=None, **kw) -> Case:
    return arg_case(id, *argv, prepare=prepare, **kw)


def _readonly(folder: Path) -> None:
    ro = folder / "ro"
    ro.mkdir()
    os.chmod(folder, 0o755)
    os.chmod(ro, 0o555)


def _forged_marker(folder: Path) -> None:
    (folder / "victim.txt").write_text("keep me\n")
    (folder / "out").mkdir()
    marker = {"graphopt": "0.1.0", "kind": "compile", "files": ["../victim.txt", "/etc/hostname"], "folders": [".."]}
    (folder / "out" / ".graphopt-output").write_text(json.dumps(marker))


def _marker_symlink(folder: Path) -> None:
    (folder / "elsewhere.json").write_text(json.dumps({"files": [], "folders": []}))
    (folder / "out").mkdir()
    (folder / "out" / "model.mlir").write_text("user's own file\n")
    os.symlink(folder / "elsewhere.json", folder / "out" / ".graphopt-output")


def _link_to_foreign(folder: Path) -> None:
    _dir("data")(folder)
    os.symlink("data", folder / "out")


def _previous_plus_user_file(folder: Path) -> None:
    (folder / "out" / "notes.txt").write_text("user data\n")


OUT = ("-o",)
PREV = [["compile", "m.onnx", "-o", "out", "--no-validate"]]

OUTPUT_CASES: list[Case] = [
    out_case("out-cwd", *COMPILE, "-o", ".", prepare=_file("notes.txt", "user data\n"), names=("-o",)),
    out_case("out-model-folder", "compile", "models/m.onnx", "-o", "models", names=("models",),
             prepare=lambda f: (_file("models/readme.txt", "user data\n")(f),
                                write(f / "models", "m.onnx", relu((2, 3), x="pix")))),
    out_case("out-model-folder-via-dotdot", "compile", "models/m.onnx", "-o", "models/sub/..", names=("models",),
             prepare=lambda f: ((f / "models" / "sub").mkdir(parents=True), write(f / "models", "m.onnx", relu()))),
    out_case("out-foreign-folder", *COMPILE, "-o", "data", names=("data",), prepare=_dir("data")),
    out_case("out-existing-file", *COMPILE, "-o", "result.bin", names=("result.bin",),
             prepare=_file("result.bin", b"\x00user data")),
    out_case("out-is-the-model", *COMPILE, "-o", "m.onnx", names=("m.onnx",)),
    out_case("out-parent-is-a-file", *COMPILE, "-o", "afile/out", names=("afile",), prepare=_file("afile", "user data\n")),
    out_case("out-read-only-parent", *COMPILE, "-o", "ro/out", names=("ro",), prepare=_readonly, as_nobody=True),
    out_case("out-symlink-to-foreign-folder", *COMPILE, "-o", "out", names=("out",), prepare=_link_to_foreign),
    out_case("out-empty-string", *COMPILE, "-o", "", names=("-o",)),
    out_case("out-marker-is-symlink", *COMPILE, "-o", "out", names=("out",), prepare=_marker_symlink),
    out_case("out-empty-folder", *COMPILE, "-o", "out", prepare=_dir("out", with_file=False), exit=0, modifies=("out",)),
    out_case("out-new-nested-folder", *COMPILE, "-o", "a/b/out", exit=0, creates=("a",)),
    out_case("out-replaces-previous-output", *COMPILE, "-o", "out", setup=PREV, exit=0, modifies=("out",)),
    out_case("out-previous-output-plus-user-file", *COMPILE, "-o", "out", setup=PREV, after_setup=_previous_plus_user_file,
             names=("notes.txt",)),
    out_case("out-forged-marker-lists-outside-files", *COMPILE, "-o", "out", prepare=_forged_marker, exit=0,
             modifies=("out",)),
    out_case("run-o-is-the-model", "run", "m.onnx", "--input", "pix=x.npy", "-o", "m.onnx", names=("m.onnx",),
             prepare=_npy()),
    out_case("run-o-is-the-input", "run", "m.onnx", "--input", "pix=x.npy", "-o", "x.npy", names=("x.npy",),
             prepare=_npy()),
    out_case("run-o-existing-folder", "run", "m.onnx", "--input", "pix=x.npy", "-o", "data", names=("data",),
             prepare=_all(_npy(), _dir("data"))),
    out_case("run-o-parent-is-a-file", "run", "m.onnx", "--input", "pix=x.npy", "-o", "afile/y.npz", names=("afile",),
             prepare=_all(_npy(), _file("afile", "user data\n"))),
    out_case("run-o-foreign-file", "run", "m.onnx", "--input", "pix=x.npy", "-o", "notes.txt", names=("notes.txt",),
             prepare=_all(_npy(), _file("notes.txt", "user data\n"))),
    out_case("run-o-new-npz", "run", "m.onnx", "--input", "pix=x.npy", "-o", "y.npz", prepare=_npy(), exit=0,
             creates=("y.npz",)),
    out_case("run-o-name-without-npz", "run", "m.onnx", "--input", "pix=x.npy", "-o", "y.out", prepare=_npy(), exit=0,
             creates=("y.out",)),
    out_case("dump-dir-non-empty-foreign", *COMPILE, "--dump-dir", "dumps", names=("dumps",), prepare=_dir("dumps")),
    out_case("dump-dir-is-a-file", *COMPILE, "--dump-dir", "dumps", names=("dumps",), prepare=_file("dumps", "data\n")),
    out_case("dump-dir-is-cwd", *COMPILE, "--dump-dir", ".", names=("--dump-dir",), prepare=_file("notes.txt", "x\n")),
    out_case("dump-dir-new", *COMPILE, "--dump-dir", "dumps", "-O1", exit=0, creates=("dumps",)),
    out_case("trace-over-the-model", *COMPILE, *ASCEND, "--trace", "m.onnx", names=("m.onnx",)),
    out_case("trace-is-a-folder", *COMPILE, *ASCEND, "--trace", "data", names=("data",), prepare=_dir("data")),
]
