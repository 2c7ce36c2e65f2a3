"""Small ONNX models and file builders for the hostile corpus (no torch here)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h


def model(nodes, inputs, outputs, inits=(), opset=17, extra_opsets=(), ir_version=8, name="g"):
    g = h.make_graph(nodes, name, inputs, outputs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset), *[h.make_opsetid(d, v) for d, v in extra_opsets]])
    m.ir_version = ir_version
    return m


def vi(name, shape, elem=T.FLOAT):
    return h.make_tensor_value_info(name, elem, shape)


def relu(shape=(2, 3), x="x", y="y", node="relu1", elem=T.FLOAT, opset=17):
    return model([h.make_node("Relu", [x], [y], name=node)], [vi(x, list(shape), elem)], [vi(y, list(shape), elem)],
                 opset=opset)


def add_weight(w: onnx.TensorProto, shape=(2, 3), node="add1"):
    """y = x + w, with the initializer ``w`` as given (external data, bad dims ...)."""
    return model([h.make_node("Add", ["x", w.name], ["y"], name=node)], [vi("x", list(shape))], [vi("y", list(shape))], [w])


def unknown_op(node_name="frob1", op="Frobnicate", domain="com.example", x="x", y="y"):
    extra = [(domain, 1)] if domain else []
    return model([h.make_node(op, [x], [y], name=node_name, domain=domain)], [vi(x, [2, 3])], [vi(y, [2, 3])],
                 extra_opsets=extra)


def external(name, location, dims=(2, 3), offset=None, length=None, data_type=T.FLOAT, extra=()):
    """A tensor whose data is external: ``location`` as given, offset/length as given (strings)."""
    t = T()
    t.name = name
    t.data_type = data_type
    t.dims.extend(dims)
    t.data_location = T.EXTERNAL
    fields = [("location", location)]
    if offset is not None:
        fields.append(("offset", str(offset)))
    if length is not None:
        fields.append(("length", str(length)))
    for k, v in [*fields, *extra]:
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def floats(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32).tobytes()


def nested_if(depth: int) -> onnx.ModelProto:
    """``depth`` If nodes, each in the then-branch of the one above (outermost if<depth>,
    innermost if1); the innermost branch copies the outer input x. Built in place, outermost
    first: copying a deep graph into an attribute would parse it, and protobuf refuses to
    parse past 100 levels."""
    m = onnx.ModelProto()
    m.ir_version = 8
    m.opset_import.add().version = 17
    g = m.graph
    g.name = "main"
    g.input.extend([vi("c", [], T.BOOL), vi("x", [2])])
    for k in range(depth, 0, -1):
        g.output.append(vi(f"o{k}", [2]))
        node = g.node.add()
        node.op_type, node.name = "If", f"if{k}"
        node.input.append("c")
        node.output.append(f"o{k}")
        other = node.attribute.add()
        other.name, other.type = "else_branch", onnx.AttributeProto.GRAPH
        other.g.CopyFrom(h.make_graph([h.make_node("Identity", ["x"], [f"e{k}"])], f"e{k}", [], [vi(f"e{k}", [2])]))
        then = node.attribute.add()
        then.name, then.type = "then_branch", onnx.AttributeProto.GRAPH
        g = then.g
        g.name = f"g{k - 1}"
    g.node.append(h.make_node("Identity", ["x"], ["o0"]))
    g.output.append(vi("o0", [2]))
    return m


def chain(n: int) -> onnx.ModelProto:
    """n elementwise nodes in a line (Neg and Relu by turns)."""
    nodes, prev = [], "x"
    for k in range(n):
        out = "y" if k == n - 1 else f"t{k}"
        nodes.append(h.make_node("Neg" if k % 2 == 0 else "Relu", [prev], [out], name=f"n{k}"))
        prev = out
    return model(nodes, [vi("x", [4, 8])], [vi("y", [4, 8])])


def write(folder: Path, name: str, m: onnx.ModelProto | bytes) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(m if isinstance(m, bytes) else m.SerializeToString())
    return name


def sparse_file(path: Path, size: int, tail: bytes = b"") -> None:
    """A file of ``size`` bytes that costs no disk (holes), ``tail`` written at its end."""
    with open(path, "wb") as f:
        f.truncate(size)
        if tail:
            f.seek(size - len(tail))
            f.write(tail)


# -- harmless payloads: what a hostile pickle would do, made visible --------------------------

class _Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def mkdir_payload(path: Path) -> bytes:
    """A pickle that, when unpickled, creates the folder ``path``."""
    return pickle.dumps(_Call(os.mkdir, str(path)), protocol=2)


def open_payload(path: Path) -> bytes:
    """A pickle that, when unpickled, creates the file ``path`` (builtins.open(path, "w"))."""
    return pickle.dumps(_Call(open, str(path), "w"), protocol=2)


def npy_header(shape, descr="<f4", fortran=False, version=(1, 0)) -> bytes:
    """A .npy header (magic, version, padded dict) for the given shape and dtype."""
    d = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode("latin1")
    pre = 10 if version[0] == 1 else 12
    pad = -(pre + len(d) + 1) % 64
    header = d + b" " * pad + b"\n"
    n = len(header)
    size = n.to_bytes(2, "little") if version[0] == 1 else n.to_bytes(4, "little")
    return b"\x93NUMPY" + bytes(version) + size + header

