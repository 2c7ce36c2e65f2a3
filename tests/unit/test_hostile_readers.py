"""Every reader bounded: hostile or broken files (weights.json, external data, duplicate
names, huge declared sizes, .npy inputs, IR text) are one-line user errors (exit 2), never
a crash, an unbounded read or allocation, or a read outside the model's folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from gp_models import _model, assert_one_line_error, cli, save, vi
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import graphopt
from graphopt.errors import GraphoptError
from graphopt.frontends.onnx import load_model
from graphopt.weights import WeightStore

# -- weights.json / weights.bin (graphopt opt on a saved folder) -----------------------------


def _neg_weight_folder(tmp_path: Path) -> Path:
    """A saved folder whose model folds a 100-element weight (Neg of it) under fold-constants."""
    w = nh.from_array(np.arange(100, dtype=np.float32), "w")
    nodes = [h.make_node("Neg", ["w"], ["nw"], name="neg1"), h.make_node("Add", ["x", "nw"], ["y"], name="add1")]
    model = _model(nodes, [vi("x", [100])], [vi("y", [100])], [w])
    graphopt.compile(model, opt_level=0).save(tmp_path / "out")
    return tmp_path / "out"


def _edit_index(folder: Path, edit) -> None:
    index = json.loads((folder / "weights.json").read_text())
    edit(index)
    (folder / "weights.json").write_text(json.dumps(index))


def test_string_dtype_in_weights_json_is_refused_not_a_crash(tmp_path):
    # Before: weights.bin was mapped as an object array, its bytes used as pointers: SIGSEGV.
    out = _neg_weight_folder(tmp_path)
    _edit_index(out, lambda ix: ix["w"].update(dtype="string", shape=[50]))
    line = assert_one_line_error(cli("opt", "-p", "fold-constants", out / "model.mlir", cwd=tmp_path))
    assert "weights.json" in line and "'w'" in line and "string" in line


def _store(tmp_path: Path) -> Path:
    store = WeightStore()
    store.add("w", np.arange(100, dtype=np.float32))
    store.save(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("index", "words"), [
    ([1, 2], "JSON object"),
    ({"w": [1]}, "'w'"),
    ({"w": {"dtype": "float", "shape": [100]}}, "missing offset"),
    ({"w": {"dtype": "float", "shape": [100], "offset": 0, "extra": 1}}, "extra"),
    ({"w": {"dtype": 1, "shape": [100], "offset": 0}}, "dtype"),
    ({"w": {"dtype": "object", "shape": [100], "offset": 0}}, "dtype"),
    ({"w": {"dtype": "float", "shape": "100", "offset": 0}}, "shape"),
    ({"w": {"dtype": "float", "shape": [-1], "offset": 0}}, "shape"),
    ({"w": {"dtype": "float", "shape": [True], "offset": 0}}, "shape"),
    ({"w": {"dtype": "float", "shape": [1.0], "offset": 0}}, "shape"),
    ({"w": {"dtype": "float", "shape": [1] * 33, "offset": 0}}, "shape"),
    ({"w": {"dtype": "float", "shape": [100], "offset": -64}}, "offset"),
    ({"w": {"dtype": "float", "shape": [100], "offset": 0.5}}, "offset"),
    ({"w": {"dtype": "float", "shape": [100], "offset": "0"}}, "offset"),
    ({"w": {"dtype": "float", "shape": [2**62, 2**62], "offset": 0}}, "past the file's end"),
    ({"w": {"dtype": "float", "shape": [100], "offset": 2**70}}, "past the file's end"),
])
def test_malformed_weight_index_is_refused(tmp_path, index, words):
    folder = _store(tmp_path)
    (folder / "weights.json").write_text(json.dumps(index))
    with pytest.raises(GraphoptError, match="weights") as e:
        WeightStore.load(folder)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("data", "words"), [
    (b'{"w": {"dtype": "float", "shape": [100], "offset": 0}', "not a valid weight index"),
    (b'{"w": {"dtype": "flo\xff\xfe", "shape": [100], "offset": 0}}', "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not a valid weight index"),
    (b'{"w": {"dtype": "float", "shape": [100], "offset": 0}, "w": {"dtype": "float", "shape": [1], "offset": 0}}', "twice"),
    (b'{"w": {"dtype": "float", "shape": [100], "offset": ' + b"9" * 5000 + b"}}", "not a valid weight index"),
])
def test_unreadable_weight_index_is_refused(tmp_path, data, words):
    folder = _store(tmp_path)
    (folder / "weights.json").write_bytes(data)
    with pytest.raises(GraphoptError, match=words):
        WeightStore.load(folder)


def test_huge_weight_index_is_refused_unread(tmp_path):
    folder = _store(tmp_path)
    with open(folder / "weights.json", "r+b") as f:
        f.truncate(1 << 40)  # sparse: a terabyte that takes no disk
    with pytest.raises(GraphoptError, match="too large"):
        WeightStore.load(folder)


def test_missing_weights_bin_is_a_user_error(tmp_path):
    out = _neg_weight_folder(tmp_path)
    (out / "weights.bin").unlink()
    line = assert_one_line_error(cli("opt", out / "model.mlir", cwd=tmp_path))
    assert "weights.bin" in line and "missing" in line


def test_weight_of_another_type_than_the_ir_says_is_refused(tmp_path):
    out = _neg_weight_folder(tmp_path)
    _edit_index(out, lambda ix: ix["w"].update(dtype="int32", shape=[10]))
    line = assert_one_line_error(cli("opt", "-p", "fold-constants", out / "model.mlir", cwd=tmp_path))
    assert "'w'" in line and "int32" in line


def test_store_of_only_empty_weights_loads(tmp_path):
    store = WeightStore()
    store.add("e", np.zeros((0, 3), np.float32))
    store.save(tmp_path)
    assert (tmp_path / "weights.bin").stat().st_size == 0
    assert WeightStore.load(tmp_path)["e"].shape == (0, 3)


# -- external data -----------------------------------------------------------------------------


def _external(t: onnx.TensorProto, location: str, **info: str) -> onnx.TensorProto:
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for k, v in {"location": location, **info}.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _add_model(w: onnx.TensorProto, shape=(2, 3)) -> onnx.ModelProto:
    nodes = [h.make_node("Add", ["x", w.name], ["y"], name="add1")]
    return _model(nodes, [vi("x", list(shape))], [vi("y", list(shape))], [w])


def test_external_data_without_length_reads_only_the_tensor(tmp_path):
    # Before: the whole file was read into the 4-byte tensor.
    data = np.float32(2.5).tobytes() + b"\0" * (1 << 20)
    (tmp_path / "w.bin").write_bytes(data)
    model = _add_model(_external(nh.from_array(np.zeros((1,), np.float32), "w"), "w.bin"), shape=(1,))
    loaded = load_model(save(model, tmp_path / "m.onnx"))
    assert len(loaded.graph.initializer[0].raw_data) == 4
    out = graphopt.compile(loaded).run({"x": np.ones(1, np.float32)})
    np.testing.assert_array_equal(out["y"], [3.5])


def test_external_data_offset_without_length(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 64 + np.arange(6, dtype=np.float32).tobytes())
    model = _add_model(_external(nh.from_array(np.zeros((2, 3), np.float32), "w"), "w.bin", offset="64"))
    c = graphopt.compile(save(model, tmp_path / "m.onnx"))
    np.testing.assert_array_equal(c.run({"x": np.zeros((2, 3), np.float32)})["y"], np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(("info", "words"), [
    ({"length": "8"}, "length 8"),
    ({"length": "-24"}, "length"),
    ({"length": "24.0"}, "length"),
    ({"offset": "-4"}, "offset"),
    ({"offset": "abc"}, "offset"),
    ({"offset": "1e3"}, "offset"),
    ({"offset": "8"}, "fewer than"),
])
def test_external_data_bad_offset_or_length(tmp_path, info, words):
    (tmp_path / "w.bin").write_bytes(np.ones(6, np.float32).tobytes())
    model = _add_model(_external(nh.from_array(np.zeros((2, 3), np.float32), "w"), "w.bin", **info))
    line = assert_one_line_error(cli("compile", save(model, tmp_path / "m.onnx"), "--no-validate", cwd=tmp_path))
    assert "initializer w" in line and words in line


def test_external_data_of_negative_dims_or_unknown_type(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.ones(6, np.float32).tobytes())
    t = _external(nh.from_array(np.zeros((2, 3), np.float32), "w"), "w.bin")
    t.dims[0] = -2
    with pytest.raises(GraphoptError, match="initializer w: negative dimension"):
        load_model(save(_add_model(t), tmp_path / "m.onnx"))
    t.dims[0], t.data_type = 2, 0
    with pytest.raises(GraphoptError, match="initializer w: element type 0"):
        load_model(save(_add_model(t), tmp_path / "m.onnx"))


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin", "link.bin", ""])
def test_external_data_outside_the_folder(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(np.ones(6, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sub").mkdir()
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    model = _add_model(_external(nh.from_array(np.zeros((2, 3), np.float32), "w"), location))
    with pytest.raises(GraphoptError, match="initializer w: external data") as e:
        load_model(save(model, folder / "m.onnx"))
    assert "outside" in str(e.value) or "without a location" in str(e.value)


def test_external_data_symlink_inside_the_folder_is_fine(tmp_path):
    (tmp_path / "real.bin").write_bytes(np.ones(6, np.float32).tobytes())
    (tmp_path / "link.bin").symlink_to(tmp_path / "real.bin")
    model = _add_model(_external(nh.from_array(np.zeros((2, 3), np.float32), "w"), "link.bin"))
    assert load_model(save(model, tmp_path / "m.onnx")).graph.initializer[0].raw_data == np.ones(6, np.float32).tobytes()


def _sparse_constant_model(values: onnx.TensorProto) -> onnx.ModelProto:
    indices = nh.from_array(np.array([1, 4], np.int64), "idx")
    sparse = h.make_sparse_tensor(values, indices, [6])
    nodes = [h.make_node("Constant", [], ["c"], name="c1", sparse_value=sparse),
             h.make_node("Add", ["x", "c"], ["y"], name="add1")]
    return _model(nodes, [vi("x", [6])], [vi("y", [6])])


def test_sparse_value_external_data_is_checked_against_the_folder(tmp_path):
    # Before: onnx read a sparse_value's external data from the current directory, unchecked.
    (tmp_path / "secret.bin").write_bytes(np.ones(2, np.float32).tobytes())
    values = _external(nh.from_array(np.zeros(2, np.float32), "v"), "../secret.bin")
    path = save(_sparse_constant_model(values), tmp_path / "model" / "m.onnx")
    line = assert_one_line_error(cli("compile", path, "--no-validate", cwd=tmp_path / "model"))
    assert "node 'c1'" in line and "sparse_value" in line and "outside" in line


def test_sparse_value_external_data_is_read_from_the_model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "v.bin").write_bytes(np.array([2.0, 3.0], np.float32).tobytes())
    values = _external(nh.from_array(np.zeros(2, np.float32), "v"), "v.bin")
    loaded = load_model(save(_sparse_constant_model(values), folder / "m.onnx"))
    sparse = loaded.graph.node[0].attribute[0].sparse_tensor
    np.testing.assert_array_equal(nh.to_array(sparse.values), [2.0, 3.0])


def test_tensors_attribute_and_subgraph_initializer_external_data(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(6, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "t.bin").write_bytes(np.full(6, 7, np.float32).tobytes())
    # A subgraph's initializer outside the folder.
    inner = _external(nh.from_array(np.zeros((2, 3), np.float32), "k"), "../secret.bin")
    then = h.make_graph([h.make_node("Identity", ["k"], ["o"], name="id1")], "then", [], [vi("o", [2, 3])], [inner])
    other = h.make_graph([h.make_node("Identity", ["x"], ["o2"], name="id2")], "else", [], [vi("o2", [2, 3])])
    node = h.make_node("If", ["cond"], ["y"], name="if1", then_branch=then, else_branch=other)
    model = _model([node], [vi("cond", [], T.BOOL), vi("x", [2, 3])], [vi("y", [2, 3])])
    with pytest.raises(GraphoptError, match=r"node 'if1', attribute then_branch, subgraph 'then', initializer k.*outside"):
        load_model(save(model, folder / "m.onnx"))
    # A TENSORS attribute (read from the model's folder, not the current directory).
    attr = h.make_attribute("ts", [_external(nh.from_array(np.zeros(6, np.float32), "t0"), "t.bin")])
    node = h.make_node("Relu", ["x"], ["y"], name="relu1")
    node.attribute.append(attr)
    loaded = load_model(save(_model([node], [vi("x", [2, 3])], [vi("y", [2, 3])]), folder / "m2.onnx"))
    np.testing.assert_array_equal(nh.to_array(loaded.graph.node[0].attribute[0].tensors[0]), np.full(6, 7))


def test_model_proto_with_external_data_and_no_folder(tmp_path, monkeypatch):
    (tmp_path / "w.bin").write_bytes(np.ones(6, np.float32).tobytes())
    monkeypatch.chdir(tmp_path)  # where onnx itself would look
    model = _add_model(_external(nh.from_array(np.zeros((2, 3), np.float32), "w"), "w.bin"))
    with pytest.raises(GraphoptError, match=r"initializer w: .*external file.*ModelProto"):
        graphopt.compile(model)


def test_external_data_beyond_the_memory_limit_is_refused_unread(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.ones(6, np.float32).tobytes())
    t = _external(nh.from_array(np.zeros((2, 3), np.float32), "w"), "w.bin")
    del t.dims[:]
    t.dims.extend([1 << 20, 1 << 20])
    line = assert_one_line_error(cli("compile", save(_add_model(t), tmp_path / "m.onnx"), cwd=tmp_path))
    assert "initializer w" in line and "memory limit" in line


# -- one definition per value name ---------------------------------------------------------


def _if_model(then_nodes, then_out, extra_nodes=(), then_inits=()):
    then = h.make_graph(then_nodes, "then", [], [vi(then_out, [2])], list(then_inits))
    other = h.make_graph([h.make_node("Neg", ["x"], ["e"], name="neg_else")], "else", [], [vi("e", [2])])
    node = h.make_node("If", ["c"], ["y"], name="if1", then_branch=then, else_branch=other)
    return _model([*extra_nodes, node], [vi("x", [2]), vi("c", [], T.BOOL)], [vi("y", [2])])


@pytest.mark.parametrize(("model", "words"), [
    # two nodes writing one name
    (_model([h.make_node("Relu", ["x"], ["y"], name="a"), h.make_node("Neg", ["x"], ["y"], name="b")],
            [vi("x", [2])], [vi("y", [2])]), ["'y'", "node 'a' (Relu)", "node 'b' (Neg)"]),
    # a node output shadowing a graph input
    (_model([h.make_node("Relu", ["x"], ["x"], name="a")], [vi("x", [2])], [vi("x", [2])]), ["'x'", "input 'x'", "node 'a'"]),
    # a node output shadowing an initializer
    (_model([h.make_node("Relu", ["x"], ["w"], name="a"), h.make_node("Add", ["x", "w"], ["y"], name="b")],
            [vi("x", [2])], [vi("y", [2])], [nh.from_array(np.ones(2, np.float32), "w")]), ["'w'", "initializer 'w'", "node 'a'"]),
    # two initializers, two inputs of one name
    (_model([h.make_node("Add", ["x", "w"], ["y"], name="b")], [vi("x", [2])], [vi("y", [2])],
            [nh.from_array(np.ones(2, np.float32), "w"), nh.from_array(np.zeros(2, np.float32), "w")]), ["'w'", "two initializers"]),
    (_model([h.make_node("Relu", ["x"], ["y"], name="b")], [vi("x", [2]), vi("x", [2])], [vi("y", [2])]), ["'x'", "input"]),
    # a subgraph's node output reusing an outer input, or an outer node's output
    (_if_model([h.make_node("Relu", ["c"], ["x"], name="inner")], "x"), ["'x'", "input 'x'", "node 'inner'", "subgraph 'then'"]),
    (_if_model([h.make_node("Relu", ["x"], ["t"], name="inner")], "t", [h.make_node("Relu", ["x"], ["t"], name="outer")]),
     ["'t'", "node 'outer'", "node 'inner'"]),
])
def test_a_value_defined_twice_is_refused(tmp_path, model, words):
    # Before: the later definition silently replaced the earlier one.
    with pytest.raises(onnx.checker.ValidationError):  # onnx agrees these are not valid models
        onnx.checker.check_model(model)
    line = assert_one_line_error(cli("compile", save(model, tmp_path / "m.onnx"), "--no-validate", cwd=tmp_path))
    for w in words:
        assert w in line, line


def test_what_onnx_allows_in_subgraphs_still_imports():
    # An initializer naming an input (its default), a subgraph's initializer shadowing an
    # outer name, a subgraph defining a name the outer graph defines only later, and the
    # If's own output name inside its branch: all valid (onnx.checker accepts them).
    w = nh.from_array(np.ones(2, np.float32), "x")
    default = _model([h.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [2])], [vi("y", [2])], [w])
    shadow = _if_model([h.make_node("Relu", ["c"], ["t"], name="inner")], "t", then_inits=[nh.from_array(np.ones(2, np.float32), "c")])
    later = _if_model([h.make_node("Relu", ["x"], ["late"], name="inner")], "late")
    later.graph.node.append(h.make_node("Relu", ["x"], ["late"], name="after"))
    own = _if_model([h.make_node("Relu", ["x"], ["y"], name="inner")], "y")
    for model in (default, shadow, later, own):
        onnx.checker.check_model(model)
        graphopt.compile(model)


# -- sizes against the memory limit ---------------------------------------------------------


def test_an_input_larger_than_the_memory_limit_is_refused(tmp_path):
    # Before: validation allocated it: MemoryError, exit 3.
    model = _model([h.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [1 << 20, 1 << 20])], [vi("y", [1 << 20, 1 << 20])])
    line = assert_one_line_error(cli("compile", save(model, tmp_path / "m.onnx"), cwd=tmp_path))
    assert "input x" in line and "memory limit" in line


def test_a_shape_bound_beyond_the_limit_is_refused(tmp_path):
    model = _model([h.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", ["N", 8])], [vi("y", ["N", 8])])
    line = assert_one_line_error(cli("run", save(model, tmp_path / "m.onnx"), "--shape", "x=100000000000x8", cwd=tmp_path))
    assert "input x" in line and "memory limit" in line


def test_a_value_larger_than_the_limit_is_refused_naming_it(tmp_path):
    shape = nh.from_array(np.array([1 << 20, 1 << 20], np.int64), "shape")
    nodes = [h.make_node("ConstantOfShape", ["shape"], ["big"], name="cos1"),
             h.make_node("ReduceSum", ["big"], ["y"], name="sum1", keepdims=0)]
    model = _model(nodes, [], [vi("y", [])], [shape])
    line = assert_one_line_error(cli("compile", save(model, tmp_path / "m.onnx"), "-O0", cwd=tmp_path))
    assert "cos1" in line and "memory limit" in line


def test_max_memory_option_and_api():
    nodes = [h.make_node("Relu", ["x"], ["y"], name="r")]
    model = _model(nodes, [vi("x", [64, 64])], [vi("y", [64, 64])])  # 16 KiB
    with pytest.raises(GraphoptError, match=re.escape("input x: needs 16.0 KiB, more than the memory limit of 8.0 KiB")):
        graphopt.compile(model, max_memory="8K")
    graphopt.compile(model, max_memory=1 << 20, validate=True)
    graphopt.compile(model)  # the limit applied to that call only
    with pytest.raises(GraphoptError, match="max_memory"):
        graphopt.compile(model, max_memory="lots")


def test_max_memory_on_the_command_line(tmp_path):
    model = save(_model([h.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [64, 64])], [vi("y", [64, 64])]), tmp_path / "m.onnx")
    line = assert_one_line_error(cli("compile", model, "--max-memory", "8K", cwd=tmp_path))
    assert "input x" in line and "8.0 KiB" in line
    line = assert_one_line_error(cli("run", model, "--max-memory", "-3", cwd=tmp_path))
    assert "--max-memory" in line
    assert cli("compile", model, "--max-memory", "1M", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(("text", "size"), [("100", 100), ("8K", 8192), ("1.5k", 1536), ("64M", 64 << 20), ("8G", 8 << 30),
                                            ("2GiB", 2 << 30), ("1T", 1 << 40)])
def test_parse_size(text, size):
    from graphopt.limits import parse_size

    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1", "0", "8X", "1e9", "nan"])
def test_parse_size_refuses(text):
    from graphopt.limits import parse_size

    with pytest.raises(GraphoptError):
        parse_size(text)


def test_random_validation_inputs_are_checked_before_allocating():
    from graphopt.validate import random_inputs

    with pytest.raises(GraphoptError, match=re.escape("input x: needs 4.0 TiB")):
        random_inputs([("x", (1 << 40,), np.dtype(np.float32))])


# -- .npy inputs ------------------------------------------------------------------------------


def _npy(header: str, payload: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    import struct

    text = header.encode("latin1")
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    size = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + size + text + payload


def _relu_model(tmp_path: Path) -> Path:
    return save(_model([h.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", ["N"])], [vi("y", ["N"])]), tmp_path / "m.onnx")


@pytest.mark.parametrize(("data", "words"), [
    # a header of 4 TiB over 16 bytes (before: np.load allocated it, MemoryError, exit 3)
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", b"\0" * 16), "memory limit"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (64,), }", b"\0" * 16), "truncated"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", b"\0" * 16), "negative"),
    (_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16), "Python objects"),
    (_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", b"\0" * 16), "structured"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16, version=(2, 0)), None),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16, version=(9, 0)), "not a readable .npy"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", b"\0" * 16), "not a readable .npy"),
    (_npy("__import__('os').system('true')", b""), "not a readable .npy"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + "}"), "not a readable .npy"),
    (b"\x93NUMPY\x01", "not a readable .npy"),
    (b"PK\x03\x04 a zip", "not a readable .npy"),
])
def test_npy_input_header_is_checked_first(tmp_path, data, words):
    (tmp_path / "x.npy").write_bytes(data)
    proc = cli("run", _relu_model(tmp_path), "--input", "x=x.npy", cwd=tmp_path)
    if words is None:  # a valid version 2.0 file
        assert proc.returncode == 0, proc.stderr
        return
    line = assert_one_line_error(proc)
    assert "--input x=x.npy" in line and words in line


# -- IR text (graphopt opt) ---------------------------------------------------------------------

_VALID = """builtin.module {
  func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
    %y = "graph.relu"(%x) {src = ["r"]} : (tensor<2xf32>) -> tensor<2xf32>
    func.return %y : tensor<2xf32>
  }
}
"""


def _opt_fails(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "m.mlir"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return assert_one_line_error(cli("opt", path, "-p", "canonicalize", cwd=tmp_path))


def test_opt_valid_text_still_parses(tmp_path):
    (tmp_path / "m.mlir").write_text(_VALID)
    proc = cli("opt", tmp_path / "m.mlir", cwd=tmp_path)
    assert proc.returncode == 0 and "graph.relu" in proc.stdout, proc.stderr


def test_opt_non_utf8(tmp_path):
    line = _opt_fails(tmp_path, _VALID.encode().replace(b"src", b"s\xffc"))
    assert "m.mlir:3" in line and "UTF-8" in line


def test_opt_non_utf8_on_stdin(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "graphopt.cli", "opt", "-"], input=b"\xff\xfe", capture_output=True, timeout=120)
    assert proc.returncode == 2 and b"<stdin>" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.parametrize("depth", [3000, 400])
def test_opt_deep_nesting(tmp_path, depth):
    attr = "[" * depth + "]" * depth
    line = _opt_fails(tmp_path, f"builtin.module attributes {{a = {attr}}} {{\n}}\n")
    assert "nests too deeply" in line


def test_opt_deep_regions(tmp_path):
    inner = '"builtin.module"() ({\n}) : () -> ()'
    for _ in range(3000):
        inner = '"builtin.module"() ({\n' + inner + "\n}) : () -> ()"
    assert "nests too deeply" in _opt_fails(tmp_path, "builtin.module {\n" + inner + "\n}\n")


def test_opt_huge_file_is_refused_unread(tmp_path):
    path = tmp_path / "m.mlir"
    with open(path, "wb") as f:
        f.truncate(1 << 40)  # sparse
    line = assert_one_line_error(cli("opt", path, cwd=tmp_path))
    assert "too large" in line


def test_opt_unclosed_string_fails_fast(tmp_path):
    # Before: xDSL's string regex backtracked exponentially (minutes for 40 characters).
    text = _VALID.replace('["r"]', '["r' + "x" * 60 + "]")
    t0 = time.perf_counter()
    line = _opt_fails(tmp_path, text)
    assert "closing string literal" in line and time.perf_counter() - t0 < 60


@pytest.mark.parametrize(("attr", "words"), [
    # found by mutating tests/ir/*.mlir: each was an internal error (exit 3) or worse
    ('dense<[(1.0, 2.0]> : tensor<1xcomplex<f32>>', "m.mlir"),                       # AssertionError in xDSL's parser
    ('dense<[1.0, 2.0]> : tensor<2xcomplex<f32>>', "m.mlir"),                        # AssertionError (a real for a complex)
    ('array<i128: 1>', "m.mlir"),                                                    # NotImplementedError
    ('dense<1.0> : tensor<99999999999x99999999999x99999999999xf32>', "memory limit"),  # OverflowError
    ('dense<1.0> : tensor<100000x100000xf32>', "memory limit"),                        # a 150 GiB list (MemoryError, or the OOM killer)
    ('dense<"0x0000803F"> : tensor<100000x100000xf32>', "memory limit"),
])
def test_opt_garbage_attributes(tmp_path, attr, words):
    text = _VALID.replace('{src = ["r"]}', "{src = [\"r\"], junk = " + attr + "}")
    assert words in _opt_fails(tmp_path, text)


@pytest.mark.parametrize("body", [
    # found by mutating tests/ir/*.mlir: xDSL verifies these, and passes then crash (exit 3)
    '%0 = "graph.neg"(%0) : (tensor<2xf32>) -> tensor<2xf32>\n    func.return %0 : tensor<2xf32>',
    '%0 = "graph.neg"(%1) : (tensor<2xf32>) -> tensor<2xf32>\n    %1 = "graph.relu"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n'
    "    func.return %0 : tensor<2xf32>",
])
def test_opt_use_before_definition(tmp_path, body):
    text = _VALID.split("    %y")[0] + "    " + body + "\n  }\n}\n"
    assert "before it is defined" in _opt_fails(tmp_path, text)
