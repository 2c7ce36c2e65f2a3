"""Hostile calls of the Python API: wrong types where a model, shapes, inputs, a target or
an optimisation level belong, and saving over a folder graphopt did not write. Each must
raise GraphoptError with one line naming what is wrong, or succeed where the call is valid."""

from __future__ import annotations

from pathlib import Path

from hostile_harness import ApiCase
from hostile_models import nested_if, np, onnx, relu, write


def _compile(folder: Path, **kw):
    import graphopt

    path = folder / write(folder, "m.onnx", relu((2, 3), x="pix", y="out"))
    return graphopt.compile(str(path), **kw)


def call(fn, prepare=None):
    """A builder: ``fn(folder, graphopt)`` is the call under test; ``prepare(folder)`` adds
    files first."""
    def build(folder: Path):
        import graphopt

        write(folder, "m.onnx", relu((2, 3), x="pix", y="out"))
        write(folder, "dyn.onnx", relu(("N", 3), x="dyn_in", y="out"))
        if prepare is not None:
            prepare(folder)
        return lambda: fn(folder, graphopt)
    return build


def run_with(inputs):
    """Compile m.onnx (pix: float32 2x3) first; the call under test is run(inputs)."""
    def build(folder: Path):
        compiled = _compile(folder)
        value = inputs() if callable(inputs) else inputs
        return lambda: compiled.run(value)
    return build


def save_to(rel, prepare=None):
    def build(folder: Path):
        compiled = _compile(folder)
        if prepare is not None:
            prepare(folder)
        return lambda: compiled.save(folder / rel)
    return build


def _foreign(folder: Path) -> None:
    (folder / "data").mkdir()
    (folder / "data" / "keep.txt").write_text("user data\n")


def _cycle_proto():
    from hostile_models import model, vi
    from onnx import helper as h

    nodes = [h.make_node("Relu", ["cyc_b"], ["cyc_a"], name="cyc1"), h.make_node("Neg", ["cyc_a"], ["cyc_b"], name="cyc2")]
    return model(nodes, [vi("x", [2])], [vi("cyc_b", [2])])


F32 = np.zeros((2, 3), np.float32)


def _obj():
    a = np.empty((2, 3), dtype=object)
    a[:] = 1.0
    return a


CASES: list[ApiCase] = [
    ApiCase("api-compile-int", call(lambda f, g: g.compile(42)), names=("int",)),
    ApiCase("api-compile-none", call(lambda f, g: g.compile(None)), names=("NoneType",)),
    ApiCase("api-compile-bytes", call(lambda f, g: g.compile(b"\x08\x07")), names=("bytes",)),
    ApiCase("api-compile-missing-path", call(lambda f, g: g.compile(str(f / "nothere.onnx"))), names=("nothere.onnx",)),
    ApiCase("api-compile-folder", call(lambda f, g: g.compile(f / "sub.onnx"), lambda f: (f / "sub.onnx").mkdir()),
            names=("sub.onnx",)),
    ApiCase("api-compile-unknown-suffix-garbage",
            call(lambda f, g: g.compile(f / "model.txt"), lambda f: (f / "model.txt").write_bytes(b"\xff" * 64)),
            names=("model.txt",)),
    ApiCase("api-compile-empty-modelproto", call(lambda f, g: g.compile(onnx.ModelProto()))),
    ApiCase("api-compile-cycle-modelproto", call(lambda f, g: g.compile(_cycle_proto())), any_of=("cyc1", "cyc2", "cyc_a",
                                                                                                    "cyc_b")),
    ApiCase("api-compile-nested-if-3000-modelproto", call(lambda f, g: g.compile(nested_if(3000))),
            any_of=("if3000", "if1", "nest", "deep")),
    ApiCase("api-compile-huge-input-modelproto", call(lambda f, g: g.compile(relu((10**6, 10**6), x="huge_in"))),
            names=("huge_in",)),
    ApiCase("api-node-name-newline-modelproto",
            call(lambda f, g: g.compile(__import__("hostile_models").unknown_op("evil\nline2"))), names=("evil", "line2")),
    ApiCase("api-input-name-newline-modelproto", call(lambda f, g: g.compile(relu(("N", 3), x="in\nput"))),
            names=("in", "put")),
    ApiCase("api-shapes-negative", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": (-1, 3)})),
            names=("dyn_in",)),
    ApiCase("api-shapes-string", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": "abc"})),
            names=("dyn_in",)),
    ApiCase("api-shapes-int", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": 5})), names=("dyn_in",)),
    ApiCase("api-shapes-float-dims", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": (1.5, 3)})),
            names=("dyn_in",)),
    ApiCase("api-shapes-none-dim", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": (None, 3)})),
            names=("dyn_in",)),
    ApiCase("api-shapes-key-not-text", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={42: (1, 3)})),
            names=("42",)),
    ApiCase("api-shapes-unknown-input", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"nosuch": (1, 3)})),
            names=("nosuch",)),
    ApiCase("api-shapes-1e12-elements",
            call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": (333_333_333_333, 3)})),
            names=("dyn_in",)),
    ApiCase("api-shapes-valid", call(lambda f, g: g.compile(str(f / "dyn.onnx"), shapes={"dyn_in": (4, 3)})), raises=False),
    ApiCase("api-target-nosuch", call(lambda f, g: g.compile(str(f / "m.onnx"), target="nosuch")), names=("nosuch",)),
    ApiCase("api-target-int", call(lambda f, g: g.compile(str(f / "m.onnx"), target=42)), names=("42",)),
    ApiCase("api-target-options-unknown",
            call(lambda f, g: g.compile(str(f / "m.onnx"), target_options={"nosuch": 1})), names=("nosuch",)),
    ApiCase("api-opt-level-string", call(lambda f, g: g.compile(str(f / "m.onnx"), opt_level="2")), names=("2",)),
    ApiCase("api-opt-level-9", call(lambda f, g: g.compile(str(f / "m.onnx"), opt_level=9)), names=("9",)),
    ApiCase("api-pipeline-int", call(lambda f, g: g.compile(str(f / "m.onnx"), pipeline=42)), names=("42",)),
    ApiCase("api-pipeline-unknown-pass", call(lambda f, g: g.compile(str(f / "m.onnx"), pipeline="nosuchpass")),
            names=("nosuchpass",)),
    ApiCase("api-max-memory-letters", call(lambda f, g: g.compile(str(f / "m.onnx"), max_memory="lots")), names=("lots",)),
    ApiCase("api-validate-inputs-wrong-dtype",
            call(lambda f, g: g.compile(str(f / "m.onnx"), validate=True, inputs={"pix": F32.astype(np.int64)})),
            names=("pix",)),
    ApiCase("api-validate-inputs-wrong-shape",
            call(lambda f, g: g.compile(str(f / "m.onnx"), validate=True, inputs={"pix": np.zeros((4, 4), np.float32)})),
            names=("pix",)),
    ApiCase("api-validate-inputs-unknown-name",
            call(lambda f, g: g.compile(str(f / "m.onnx"), validate=True, inputs={"nosuch": F32})), names=("nosuch",)),
    ApiCase("api-validate-inputs-valid", call(lambda f, g: g.compile(str(f / "m.onnx"), validate=True, inputs={"pix": F32})),
            raises=False),
    # run
    ApiCase("api-run-int", run_with(42), names=("int",)),
    ApiCase("api-run-none", run_with(None), names=("NoneType",)),
    ApiCase("api-run-string", run_with("abc"), names=("str",)),
    ApiCase("api-run-value-string", run_with({"pix": "str"}), names=("pix",)),
    ApiCase("api-run-value-none", run_with({"pix": None}), names=("pix",)),
    ApiCase("api-run-value-object-array", run_with(_obj), names=("pix",)),
    ApiCase("api-run-value-object-array-in-dict", run_with(lambda: {"pix": _obj()}), names=("pix",)),
    ApiCase("api-run-wrong-dtype", run_with({"pix": F32.astype(np.int64)}), names=("pix",)),
    ApiCase("api-run-wrong-dtype-float64", run_with({"pix": F32.astype(np.float64)}), names=("pix",)),
    ApiCase("api-run-wrong-shape", run_with({"pix": np.zeros((3, 3), np.float32)}), names=("pix",)),
    ApiCase("api-run-wrong-rank", run_with({"pix": np.zeros(6, np.float32)}), names=("pix",)),
    ApiCase("api-run-unknown-name", run_with({"pix": F32, "nosuch": F32}), names=("nosuch",)),
    ApiCase("api-run-missing-input", run_with({}), names=("pix",)),
    ApiCase("api-run-too-many-in-list", run_with([F32, F32, F32]), names=("3",)),
    ApiCase("api-run-valid", run_with({"pix": F32}), raises=False),
    # save
    ApiCase("api-save-foreign-folder", save_to("data", _foreign), names=("data",)),
    ApiCase("api-save-onto-file", save_to("file.bin", lambda f: (f / "file.bin").write_bytes(b"user")), names=("file.bin",)),
    ApiCase("api-save-into-model-folder", save_to("."), names=("m.onnx",)),
    ApiCase("api-save-parent-is-file", save_to("afile/out", lambda f: (f / "afile").write_text("x")), names=("afile",)),
    ApiCase("api-save-new-folder", save_to("out"), raises=False, creates=("out",)),
]
