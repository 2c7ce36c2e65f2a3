"""Hostile and mistaken use of the API and the CLI: validation never lies, exit codes mean
what the README says (0 ok, 1 mismatch, 2 bad input in one line, 3 graphopt's own bug),
and names from a model cannot add lines to what graphopt prints."""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import onnx
import pytest
from gp_models import _model, assert_no_output_folder, cli_in_process, save, two_output_model, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import graphopt
from graphopt import GraphoptError, ValidationError, dtypes
from graphopt.errors import escape
from graphopt.validate import random_array, validate_against_torch


def _run_cli(capsys, monkeypatch, *argv) -> tuple[int, str, str]:
    """``graphopt ARGV`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.delenv("GRAPHOPT_DEBUG", raising=False)
    return cli_in_process(capsys, *argv)


def _one_line(rc, err, code=2) -> str:
    assert rc == code, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphopt: error: "), err
    return lines[0]


def _identity(elem: int, shape, opset: int = 21) -> onnx.ModelProto:
    m = _model([h.make_node("Identity", ["x"], ["y"], name="id1")], [vi("x", shape, elem)], [vi("y", shape, elem)], opset=opset)
    m.ir_version = 10
    return m


# -- 1. validation: inputs of every dtype and rank; a judge that cannot run says so -------

@pytest.mark.parametrize("shape", [(), (2, 3)], ids=["rank0", "rank2"])
@pytest.mark.parametrize("d", dtypes._TABLE, ids=lambda d: d.name)
def test_random_inputs_are_arrays_of_the_input_type(d, shape):
    value = random_array(np.random.default_rng(0), shape, d.numpy)
    assert type(value) is np.ndarray  # a 0-d array, never a numpy scalar
    assert value.shape == shape
    assert value.dtype == d.numpy
    if d.name == "string":
        assert all(type(s) is str and s for s in value.reshape(-1))
    if d.name.startswith("complex"):
        assert np.all(value.imag != 0)


# What onnxruntime 1.32 runs an Identity on; the rest it refuses (complex, int4, float4 ...).
_ORT_RUNS = {"float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16", "double",
             "uint32", "uint64", "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"}


@pytest.mark.parametrize("shape", [[], [2, 3]], ids=["rank0", "rank2"])
@pytest.mark.parametrize("d", dtypes._TABLE, ids=lambda d: d.name)
def test_identity_validates_for_every_dtype(d, shape):
    """Never a mismatch: it passes, or validation says the judge cannot run the model."""
    model = _identity(d.onnx, shape)
    if d.name in _ORT_RUNS:
        compiled = graphopt.compile(model, validate=True)
        assert compiled.report["validation"]["passed"]
        return
    with pytest.raises(GraphoptError) as e:
        graphopt.compile(model, validate=True)
    assert not isinstance(e.value, ValidationError)
    assert str(e.value).startswith("validation: onnxruntime cannot run this model (")
    assert str(e.value).endswith("); use --no-validate")


def _seq_models() -> dict[str, onnx.ModelProto]:
    seq = h.make_tensor_sequence_value_info("s", T.FLOAT, [2, 3])
    opt = h.make_value_info("o", h.make_optional_type_proto(h.make_tensor_type_proto(T.FLOAT, [2])))
    return {
        "sequence_length": _model([h.make_node("SequenceLength", ["s"], ["y"])], [seq], [vi("y", [], T.INT64)], opset=18),
        "sequence_at": _model([h.make_node("SequenceAt", ["s", "i"], ["y"])], [seq, vi("i", [], T.INT64)], [vi("y", [2, 3])], opset=18),
        "sequence_output": _model([h.make_node("SequenceConstruct", ["x", "x"], ["y"])], [vi("x", [2])],
                                  [h.make_tensor_sequence_value_info("y", T.FLOAT, [2])], opset=18),
        "optional_has_element": _model([h.make_node("OptionalHasElement", ["o"], ["y"])], [opt], [vi("y", [], T.BOOL)], opset=18),
        "optional_get_element": _model([h.make_node("OptionalGetElement", ["o"], ["y"])], [opt], [vi("y", [2])], opset=18),
        "bool_rank0_not": _model([h.make_node("Not", ["x"], ["y"])], [vi("x", [], T.BOOL)], [vi("y", [], T.BOOL)]),
        "string_rank0": _model([h.make_node("Identity", ["x"], ["y"])], [vi("x", [], T.STRING)], [vi("y", [], T.STRING)]),
        "float_to_string": _model([h.make_node("Cast", ["x"], ["y"], to=T.STRING)], [vi("x", [2, 3])], [vi("y", [2, 3], T.STRING)]),
        "float8_output": _model([h.make_node("Cast", ["x"], ["y"], to=T.FLOAT8E4M3FN)], [vi("x", [2, 3])],
                                [vi("y", [2, 3], T.FLOAT8E4M3FN)], opset=19),
        "bfloat16_input": _model([h.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], [vi("x", [2, 3], T.BFLOAT16)], [vi("y", [2, 3])]),
        # int4 goes to onnxruntime packed two to a byte: a wrong packing gives other values.
        "int4_dequantize": _model([h.make_node("DequantizeLinear", ["x", "sc"], ["y"])], [vi("x", [2, 3], T.INT4), vi("sc", [])],
                                  [vi("y", [2, 3])], opset=21),
    }


@pytest.mark.parametrize("name", list(_seq_models()))
def test_validation_feeds_sequences_optionals_strings_and_narrow_types(name):
    model = _seq_models()[name]
    model.ir_version = 10
    compiled = graphopt.compile(model, validate=True)
    assert compiled.report["validation"]["passed"]


def test_string_identity_validates_and_writes_the_folder(tmp_path, capsys, monkeypatch):
    path = save(_identity(T.STRING, [2, 3]), tmp_path / "s.onnx")
    rc, out, err = _run_cli(capsys, monkeypatch, "compile", path, "-o", tmp_path / "out")
    assert rc == 0, err
    assert "validation vs onnxruntime" in out and "PASSED" in out
    assert (tmp_path / "out" / "model.mlir").is_file()


def test_a_model_onnxruntime_refuses_is_no_mismatch(tmp_path, capsys, monkeypatch):
    path = save(_identity(T.COMPLEX64, [2]), tmp_path / "c.onnx")
    out = tmp_path / "out"
    rc, _, err = _run_cli(capsys, monkeypatch, "compile", path, "-o", out)
    line = _one_line(rc, err)
    assert "validation: onnxruntime cannot run this model (" in line and "complex64" in line and "use --no-validate" in line
    assert_no_output_folder(out)


def test_onnxruntime_failing_at_run_time_logs_nothing_more(tmp_path, capsys, monkeypatch):
    """TopK with k = -1: onnxruntime fails running it (and would log the failure to stderr too)."""
    m = two_output_model()
    m.graph.initializer.append(nh.from_array(np.array([-1], np.int64), "k"))
    m.graph.node.append(h.make_node("TopK", ["act", "k"], ["tv", "ti"], name="topk_neg"))
    m.graph.output.append(h.make_tensor_value_info("tv", T.FLOAT, None))
    rc, _, err = _run_cli(capsys, monkeypatch, "compile", save(m, tmp_path / "k.onnx"))
    line = _one_line(rc, err)
    assert "onnxruntime cannot run this model" in line and "k must not be negative" in line


def test_torch_eager_failing_is_no_mismatch():
    compiled = graphopt.compile(two_output_model())

    def eager(inputs):
        raise RuntimeError("expected scalar type Float but found Double\nmore detail")

    with pytest.raises(GraphoptError) as e:
        validate_against_torch(compiled, eager)
    assert not isinstance(e.value, ValidationError)
    assert str(e.value) == "validation: torch eager cannot run this model (expected scalar type Float but found Double); use --no-validate"


def test_torch_eager_takes_bfloat16_inputs():
    torch = pytest.importorskip("torch")

    class Double(torch.nn.Module):
        def forward(self, x):
            return x * 2

    compiled = graphopt.compile(Double(), example_inputs=(torch.ones(2, 3, dtype=torch.bfloat16),), validate=True)
    assert compiled.report["validation"]["passed"]


# -- 2. API arguments --------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "named"), [
    ({"shapes": {"a": (-1, 3)}}, "shapes['a']: dimension 0 is -1"),
    ({"shapes": {"a": (2.0, 3)}}, "shapes['a']: dimension 0 is 2.0"),
    ({"shapes": {"a": (True, 3)}}, "shapes['a']: dimension 0 is True"),
    ({"shapes": {"a": "abc"}}, "shapes['a']: 'abc' is not a list of dimensions"),
    ({"shapes": {"a": 6}}, "shapes['a']: 6 is not a list"),
    ({"shapes": [("a", (2, 3))]}, "shapes: a dict"),
    ({"shapes": {1: (2, 3)}}, "shapes: key 1"),
    ({"shapes": {"nosuch": (2, 3)}}, "nosuch: the model has no input"),
    ({"target": "nosuch"}, "nosuch: no such target"),
    ({"target": 42}, "target 42"),
    ({"target_options": {"precision": "bogus"}}, "--precision"),
    ({"target": "ascend-sim", "target_options": {"precision": "bogus"}}, "--precision bogus: use one of"),
    ({"target": "ascend-sim", "target_options": {"trace": 42}}, "--trace 42"),
    ({"target_options": 42}, "target_options 42"),
    ({"opt_level": "2"}, "opt_level '2'"),
    ({"opt_level": True}, "opt_level True"),
    ({"opt_level": 7}, "opt_level 7"),
    ({"pipeline": 42}, "pipeline 42"),
    ({"options": 42}, "options: a graphopt.compiler.PipelineOptions"),
    ({"validate": True, "inputs": 42}, "inputs: a dict"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_compile_refuses_bad_arguments(kwargs, named):
    with pytest.raises(GraphoptError) as e:
        graphopt.compile(two_output_model(), **kwargs)
    assert named in str(e.value)
    assert "\n" not in str(e.value)


def test_compile_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(GraphoptError, match="cannot compile a int"):
        graphopt.compile(42)
    (tmp_path / "m.onnx").mkdir()
    with pytest.raises(GraphoptError, match=r"is a folder; give an \.onnx or \.pt2 file"):
        graphopt.compile(tmp_path / "m.onnx")
    (tmp_path / "p.pt2").mkdir()
    with pytest.raises(GraphoptError, match="is a folder"):
        graphopt.compile(str(tmp_path / "p.pt2"))


_A = np.ones((2, 3), np.float32)


@pytest.mark.parametrize(("inputs", "named"), [
    (42, "run() takes a dict of input name -> array, or a list of arrays in input order (a, b); not a int"),
    ("abc", "not a str"),
    ("ab", "not a str"),  # as many characters as inputs: still no arrays
    (None, "not a NoneType"),
    (_A, "not a ndarray"),
    ({"a": "not an array", "b": _A}, "input a: a str, not an array; the model wants float32[2, 3]"),
    ({"a": None, "b": _A}, "input a: a NoneType, not an array"),
    ({"a": object(), "b": _A}, "input a: a object, not an array of numbers"),
    ({"a": [[1.0], [1.0, 2.0]], "b": _A}, "input a: a list, not an array of numbers"),
    ({"a": _A.astype(np.float64), "b": _A}, "input a: dtype float64, the model wants float32[2, 3]"),
    ({"a": np.ones((3, 2), np.float32), "b": _A}, "input a: shape [3, 2], the model was compiled for float32[2, 3]"),
    ({"a": np.float32(1), "b": _A}, "input a: shape [], the model was compiled for float32[2, 3]"),
    ([_A], "1 inputs given; the model needs 2: a, b"),
    ([_A, _A, _A], "3 inputs given"),
    ({"a": _A}, "input b: not given"),
    ({"a": _A, "b": _A, 7: _A}, "input '7': the model has no such input"),
])
@pytest.mark.parametrize("target", ["cpu", "ascend-sim"])
def test_run_refuses_bad_inputs(target, inputs, named):
    compiled = graphopt.compile(two_output_model(), target=target)
    with pytest.raises(GraphoptError) as e:
        compiled.run(inputs)
    assert named in str(e.value)


def test_run_takes_strings_as_a_list_of_str():
    compiled = graphopt.compile(_identity(T.STRING, [2]))
    out = compiled.run({"x": ["a", "b"]})["y"]
    assert out.dtype == object and list(out) == ["a", "b"]


# -- 3. CLI argument errors: one line ----------------------------------------------------

@pytest.mark.parametrize(("argv", "command"), [
    ([], ""),
    (["nosuch"], ""),
    (["--bogus"], ""),
    (["compile"], " compile"),
    (["compile", "m.onnx", "-O", "7"], " compile"),
    (["compile", "m.onnx", "--shape", "x=abc"], " compile"),
    (["compile", "m.onnx", "--shape", "x=-1x3"], " compile"),
    (["compile", "m.onnx", "--seed", "zz"], " compile"),
    (["compile", "m.onnx", "--bogus"], " compile"),
    (["compile", "m.onnx", "--emit", "png"], " compile"),
    (["run", "m.onnx", "--input", "x"], " run"),
    (["opt"], " opt"),
    (["check", "m.onnx", "extra"], " check"),
    (["targets", "extra"], " targets"),
])
def test_argument_errors_are_one_line(capsys, monkeypatch, argv, command):
    rc, out, err = _run_cli(capsys, monkeypatch, *argv)
    line = _one_line(rc, err)
    assert line.endswith(f"; see graphopt{command} --help")
    assert out == ""


def test_help_is_unchanged(capsys, monkeypatch):
    rc, out, err = _run_cli(capsys, monkeypatch, "compile", "--help")
    assert rc == 0 and err == ""
    assert out.startswith("usage: graphopt compile [-h]")
    assert "--no-validate" in out


# -- 4. names from the model are escaped -------------------------------------------------

def test_escape():
    assert escape("plain name é 'q'") == "plain name é 'q'"
    assert escape("a\nb\r\x1b[31m\t\u2028") == "a\\nb\\r\\x1b[31m\\t\\u2028"


_EVIL = "y\ngraphopt: error: forged\x1b[2J"


def test_names_cannot_add_lines_to_the_summary(tmp_path, capsys, monkeypatch):
    m = _model([h.make_node("Relu", ["x"], [_EVIL], name="relu\x1b[31m")], [vi("x", [2, 3])], [vi(_EVIL, [2, 3])])
    rc, out, err = _run_cli(capsys, monkeypatch, "compile", save(m, tmp_path / "m.onnx"))
    assert rc == 0, err
    assert "\x1b" not in out and "forged" in out
    assert not any(line.startswith("graphopt: error") for line in out.splitlines())
    assert r"y\ngraphopt: error: forged\x1b[2J" in out


def test_names_cannot_add_lines_to_errors_and_check(tmp_path, capsys, monkeypatch):
    m = _model([h.make_node("Frob", ["x"], [_EVIL], name="n\x1b[2J\nline2", domain="x.y")], [vi("x", [2, 3])], [vi(_EVIL, [2, 3])],
               extra_opsets=[("x.y", 1)])
    path = save(m, tmp_path / "m.onnx")
    rc, _, err = _run_cli(capsys, monkeypatch, "compile", path)
    assert "\x1b" not in _one_line(rc, err)
    rc, out, _ = _run_cli(capsys, monkeypatch, "check", path)
    assert rc == 1 and "\x1b" not in out
    assert all(line.startswith(("op type", "x.y::Frob", "unsupported on")) for line in out.splitlines())
    rc, _, err = _run_cli(capsys, monkeypatch, "compile", "--bogus\n\x1b[2J")
    assert "\x1b" not in _one_line(rc, err)


# -- 5. Loop: constant memory without scan outputs; scan outputs within the limit --------

def _loop(trip: int | None, scan: bool) -> onnx.ModelProto:
    """y = x + M (a Loop carrying x); with ``scan`` also every x, stacked (ys)."""
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]), h.make_node("Add", ["x_in", "one"], ["x_out"]),
         *([h.make_node("Identity", ["x_in"], ["s"])] if scan else [])],
        "body", [vi("i", [], T.INT64), vi("cond_in", [], T.BOOL), vi("x_in", [2])],
        [vi("cond_out", [], T.BOOL), vi("x_out", [2]), *([vi("s", [2])] if scan else [])],
        [nh.from_array(np.ones(2, np.float32), "one")])
    inits = [nh.from_array(np.array(True), "c")]
    inputs = [vi("x", [2])]
    if trip is None:
        inputs.append(vi("M", [], T.INT64))
    else:
        inits.append(nh.from_array(np.array(trip, np.int64), "M"))
    node = h.make_node("Loop", ["M", "c", "x"], ["y", *(["ys"] if scan else [])], body=body, name="loop1")
    return _model([node], inputs, [vi("y", [2]), *([vi("ys", [trip if trip is not None else "n", 2])] if scan else [])], inits)


def test_loop_without_scan_outputs_runs_in_constant_memory():
    peaks = []
    for trip in (1000, 20000):
        compiled = graphopt.compile(_loop(trip, scan=False))
        tracemalloc.start()
        try:
            y = compiled.run({"x": np.zeros(2, np.float32)})["y"]
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert y.tolist() == [trip, trip]
    # Before: one list kept per iteration (~64 bytes each, 1.2 MB more over 19,000 more).
    assert peaks[1] - peaks[0] < 100_000, peaks


def test_loop_scan_outputs_beyond_the_memory_limit_are_refused_at_compile_time():
    with pytest.raises(GraphoptError) as e:
        graphopt.compile(_loop(2**40, scan=True))
    assert "node 'loop1' (Loop" in str(e.value) and "scan outputs over 1099511627776 iterations" in str(e.value)
    assert "memory limit" in str(e.value)
    graphopt.compile(_loop(2**62, scan=False))  # no scan outputs: nothing grows


def test_loop_scan_outputs_beyond_the_memory_limit_are_refused_at_run_time():
    from graphopt import limits

    compiled = graphopt.compile(_loop(None, scan=True))
    # 200 iterations of 8 bytes: past a 1 KiB limit after 128 (a bounded count, so that
    # without the check the test fails rather than eating the machine's memory).
    with limits.limited("1K"), pytest.raises(GraphoptError) as e:
        compiled.run({"x": np.zeros(2, np.float32), "M": np.array(200, np.int64)})
    assert "loop1" in str(e.value) and "memory limit" in str(e.value)
    assert compiled.run({"x": np.zeros(2, np.float32), "M": np.array(3, np.int64)})["ys"].shape == (3, 2)


def test_loop_of_no_iteration_gives_empty_scan_outputs():
    compiled = graphopt.compile(_loop(0, scan=True), validate=True)
    assert compiled.report["validation"]["passed"]
    ys = compiled.run({"x": np.zeros(2, np.float32)})["ys"]
    assert ys.shape == (0, 2) and ys.dtype == np.float32


# -- 6. malformed models exit 2 with one line naming what is wrong, never 3 --------------

def _add(m, node, out, inits=()):
    """Append ``node`` and its output ``out`` (float, shape left to inference)."""
    m.graph.initializer.extend(inits)
    m.graph.node.append(node)
    m.graph.output.append(h.make_tensor_value_info(out, T.FLOAT, None))


def _input_type(m):
    return m.graph.input[0].type.tensor_type


def _constant_of_a_string(m):
    node = h.make_node("Constant", [], ["k"], name="const", value_string="s")
    node.attribute[0].name = "value"  # a STRING where the op wants a TENSOR
    m.graph.node.insert(0, node)
    _add(m, h.make_node("Add", ["act", "k"], ["cc"], name="addk"), "cc")


def _constant_floats_of_ints(m):
    m.graph.node.insert(0, h.make_node("Constant", [], ["k"], name="const", value_float=[1, 2]))  # INTS, not FLOAT
    _add(m, h.make_node("Add", ["act", "k"], ["cc"], name="addk"), "cc")


def _initializer(m, dims=None, data_type=None):
    t = nh.from_array(np.ones((2, 3), np.float32), "w")
    if dims is not None:
        t.dims[:] = dims
    if data_type is not None:
        t.data_type = data_type
    m.graph.initializer.append(t)
    _add(m, h.make_node("Add", ["act", "w"], ["cc"], name="addw"), "cc")


def _concat(**attrs):
    return lambda m: _add(m, h.make_node("Concat", ["act", "act"], ["cc"], name="cat", **attrs), "cc")


def _cast(to):
    return lambda m: _add(m, h.make_node("Cast", ["act"], ["cc"], name="cast", to=to), "cc")


# mutation of two_output_model -> what the one error line must say
_MUTATIONS = {
    "input elem_type 0": (lambda m: setattr(_input_type(m), "elem_type", 0), "input a: element type 0"),
    "input elem_type 999": (lambda m: setattr(_input_type(m), "elem_type", 999), "input a: element type 999"),
    "input negative dim": (lambda m: setattr(_input_type(m).shape.dim[0], "dim_value", -3), "input a: dimension 0 is -3"),
    "input huge dim": (lambda m: setattr(_input_type(m).shape.dim[0], "dim_value", 2**62), "input a: needs"),
    "missing required attribute": (_concat(), "node 'cat' (Concat, opset 17): attribute axis is required"),
    "attribute of the wrong type": (_concat(axis=0.5), "node 'cat' (Concat, opset 17): attribute axis is of type FLOAT, the op wants INT"),
    "attribute out of range": (_concat(axis=9), "node 'cat' (Concat"),
    "required input named empty": (lambda m: m.graph.node[0].input.__setitem__(0, ""), "node 'relu1' (Relu, opset 17): input 0 (X) is required"),
    "too many inputs": (lambda m: m.graph.node[0].input.append("b"), "node 'relu1' (Relu, opset 17): 2 inputs, the op takes at most 1"),
    "too many outputs": (lambda m: m.graph.node[0].output.append("extra"), "node 'relu1' (Relu, opset 17): 2 outputs"),
    "no outputs": (lambda m: m.graph.ClearField("output"), "the model declares no outputs"),
    "output nothing produces": (lambda m: m.graph.output.append(vi("ghost", [2, 3])), "output 'ghost': no node produces it"),
    "output declared another shape": (lambda m: setattr(m.graph.output[0].type.tensor_type.shape.dim[0], "dim_value", 5),
                                      "output total is declared [5, 3], but the node computes [2, 3]"),
    "output declared another dtype": (lambda m: setattr(m.graph.output[0].type.tensor_type, "elem_type", T.INT64), "node 'add1' (Add"),
    "undefined input": (lambda m: m.graph.node[0].input.__setitem__(0, "nowhere"), "input 'nowhere' is not produced"),
    "opset 0": (lambda m: setattr(m.opset_import[0], "version", 0), "opset_import 0 of the default domain"),
    "Cast to type 999": (_cast(999), "node 'cast' (Cast"),
    "Cast to type 0": (_cast(0), "node 'cast' (Cast"),
    "Reshape to a huge constant shape": (
        lambda m: _add(m, h.make_node("Reshape", ["act", "shp"], ["cc"], name="rs"), "cc",
                       [nh.from_array(np.array([2**40, 2**40], np.int64), "shp")]), "node 'rs' (Reshape"),
    "Constant value of a string": (_constant_of_a_string, "node 'const' (Constant, opset 17): attribute value is of type STRING, the op wants TENSOR"),
    "Constant value_float of ints": (_constant_floats_of_ints, "attribute value_float is of type INTS, the op wants FLOAT"),
    "initializer negative dims": (lambda m: _initializer(m, dims=[-2, 3]), "initializer w: dims [-2, 3]"),
    "initializer elem_type 0": (lambda m: _initializer(m, data_type=0), "initializer w"),
}


@pytest.mark.parametrize("mutation", list(_MUTATIONS))
def test_malformed_model_exits_2(tmp_path, capsys, monkeypatch, mutation):
    mutate, named = _MUTATIONS[mutation]
    m = copy.deepcopy(two_output_model())
    mutate(m)
    path = save(m, tmp_path / "m.onnx")
    rc, _, err = _run_cli(capsys, monkeypatch, "compile", path, "--no-validate")
    assert named in _one_line(rc, err)
    rc, _, err = _run_cli(capsys, monkeypatch, "check", path)
    assert rc in (0, 1) and err == "", err
