"""Older ONNX op versions, rewritten into their op's newest form at import.

Each graph op has the meaning of its ONNX op's newest version. Where an older version
differs, a rule here rewrites the node: attributes that later became inputs become
constant inputs, removed attributes are dropped when they had no effect, and versions with
another meaning are expressed in the new one (or refused, naming the attribute).

A rule takes the node and the importer, edits the node in place, and may return nodes to
emit after it (their inputs may name the node's outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from graphopt.frontends.onnx import _Importer


@dataclass
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    version: int  # since_version of the schema the node was written against
    name: str = ""  # the ONNX node's name, for provenance
    domain: str = ""

    @property
    def key(self) -> str:
        """The op's key in ONNX_OPS."""
        return self.op_type if not self.domain else f"{self.domain}::{self.op_type}"

    @property
    def src(self) -> str:
        return self.name or self.outputs[0]


Rule = Callable[[Node, "_Importer"], "list[Node] | None"]
LEGALIZE: dict[str, Rule] = {}


def _rule(*op_types: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for t in op_types:
            LEGALIZE[t] = fn
        return fn

    return register


def _const(n: Node, imp: _Importer, tag: str, array: np.ndarray) -> str:
    name = f"{n.outputs[0]}::{tag}"
    imp.values[name] = imp.constant(name, array, n.src)
    return name


def _attr_to_input(n: Node, imp: _Importer, attr: str, position: int, dtype: Any = np.int64) -> None:
    """Move attribute ``attr`` to input ``position`` (padding with missing inputs)."""
    if attr not in n.attrs:
        return
    value = n.attrs.pop(attr)
    while len(n.inputs) < position:
        n.inputs.append("")
    n.inputs.insert(position, _const(n, imp, attr, np.asarray(value, dtype=dtype)))


def _drop(n: Node, *names: str) -> None:
    for name in names:
        n.attrs.pop(name, None)


@_rule("ReduceSum")
def _reduce_sum(n: Node, imp: _Importer) -> None:
    if n.version < 13:
        _attr_to_input(n, imp, "axes", 1)


@_rule(
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceSumSquare",
)
def _reduce(n: Node, imp: _Importer) -> None:
    if n.version < 18:
        _attr_to_input(n, imp, "axes", 1)


@_rule("Squeeze", "Unsqueeze")
def _squeeze(n: Node, imp: _Importer) -> None:
    if n.version < 13:
        _attr_to_input(n, imp, "axes", 1)


@_rule("Split")
def _split(n: Node, imp: _Importer) -> None:
    if n.version < 13:
        _attr_to_input(n, imp, "split", 1)


@_rule("Slice")
def _slice(n: Node, imp: _Importer) -> None:
    if n.version < 10:
        starts, ends = n.attrs.pop("starts"), n.attrs.pop("ends")
        axes = n.attrs.pop("axes", list(range(len(starts))))
        n.inputs[1:] = [
            _const(n, imp, "starts", np.asarray(starts, np.int64)),
            _const(n, imp, "ends", np.asarray(ends, np.int64)),
            _const(n, imp, "axes", np.asarray(axes, np.int64)),
        ]


@_rule("Pad")
def _pad(n: Node, imp: _Importer) -> None:
    if n.version < 11:
        x_type = imp.values[n.inputs[0]].type
        value = n.attrs.pop("value", 0.0)
        _attr_to_input(n, imp, "pads", 1)
        dtype = _np_dtype(x_type)
        n.inputs.insert(2, _const(n, imp, "value", np.asarray(value, dtype=dtype)))


@_rule("Clip")
def _clip(n: Node, imp: _Importer) -> None:
    if n.version < 11:
        dtype = _np_dtype(imp.values[n.inputs[0]].type)
        lo, hi = n.attrs.pop("min", None), n.attrs.pop("max", None)
        n.inputs[1:] = [
            _const(n, imp, "min", np.asarray(lo, dtype)) if lo is not None else "",
            _const(n, imp, "max", np.asarray(hi, dtype)) if hi is not None else "",
        ]


@_rule("TopK")
def _topk(n: Node, imp: _Importer) -> None:
    if n.version < 10:
        n.inputs.insert(1, _const(n, imp, "k", np.asarray([n.attrs.pop("k")], np.int64)))


@_rule("Dropout")
def _dropout(n: Node, imp: _Importer) -> None:
    if n.version < 12:
        if n.attrs.get("is_test", 1) == 0 and n.version < 7:
            raise ValueError("Dropout with is_test=0 is training mode; graphopt compiles inference graphs")
        _drop(n, "is_test", "consumed_inputs")
        n.attrs.pop("ratio", None)  # inference: the ratio has no effect


@_rule("BatchNormalization")
def _batch_norm(n: Node, imp: _Importer) -> None:
    if n.attrs.get("spatial", 1) != 1:
        raise ValueError("BatchNormalization with spatial=0 is not supported; re-export with opset >= 9")
    if n.version < 7 and n.attrs.get("is_test", 0) == 0:
        raise ValueError("BatchNormalization with is_test=0 is training mode; graphopt compiles inference graphs")
    _drop(n, "spatial", "is_test", "consumed_inputs")
    if n.version < 14:
        # Older versions list running mean/var outputs for training; inference uses only Y.
        del n.outputs[1:]


@_rule("Softmax", "LogSoftmax", "Hardmax")
def _softmax(n: Node, imp: _Importer) -> list[Node] | None:
    """Before opset 13 these flattened the input to 2-D at ``axis`` (default 1)."""
    if n.version >= 13:
        return None
    shape = _shape(imp.values[n.inputs[0]].type)
    axis = n.attrs.pop("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if axis == len(shape) - 1:
        n.attrs["axis"] = -1
        return None
    rows = int(np.prod(shape[:axis], dtype=np.int64))
    flat = _const(n, imp, "flat", np.asarray([rows, -1], np.int64))
    back = _const(n, imp, "back", np.asarray(shape, np.int64))
    x2d, y2d, y = f"{n.outputs[0]}::x2d", f"{n.outputs[0]}::y2d", n.outputs[0]
    imp.emit(Node("Reshape", [n.inputs[0], flat], [x2d], {}, 21, n.name))
    n.inputs[0], n.outputs[0], n.attrs["axis"] = x2d, y2d, 1
    return [Node("Reshape", [y2d, back], [y], {}, 21, n.name)]


# Before opset 7 the binary ops broadcast only when asked (broadcast=1), and then B's axes
# lined up with A's from ``axis`` (absent: from the right, numpy's rule). Opset 1 also had
# consumed_inputs, an in-place hint with no effect on the result.
_LEGACY_BROADCAST = ("Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less")


@_rule(*_LEGACY_BROADCAST)
def _legacy_broadcast(n: Node, imp: _Importer) -> None:
    if n.version >= 7:
        return
    _drop(n, "consumed_inputs")
    broadcast, axis = n.attrs.pop("broadcast", 0), n.attrs.pop("axis", None)
    if not broadcast or axis is None:
        return  # equal shapes, or numpy's alignment from the right
    a, b = _shape(imp.values[n.inputs[0]].type), _shape(imp.values[n.inputs[1]].type)
    axis = axis + len(a) if axis < 0 else axis
    trailing = len(a) - axis - len(b)
    if axis < 0 or trailing < 0:
        raise ValueError(f"broadcast axis {axis} does not fit B {list(b)} into A {list(a)}")
    if trailing:
        n.inputs[1] = _reshaped(n, imp, n.inputs[1], (*b, *(1,) * trailing), "b_aligned")


@_rule("Gemm")
def _gemm(n: Node, imp: _Importer) -> None:
    """Gemm before opset 7 broadcast C only with broadcast=1; since, C always broadcasts
    (unidirectionally, which covers the equal shapes broadcast=0 required)."""
    if n.version < 7:
        _drop(n, "broadcast")


@_rule("PRelu")
def _prelu(n: Node, imp: _Importer) -> None:
    """PRelu before opset 7 took a slope per channel ([C], axis 1) or one for all ([1]);
    since, the slope broadcasts numpy-style, so [C] becomes [C, 1, ...]."""
    if n.version >= 7:
        return
    _drop(n, "consumed_inputs")
    x, slope = _shape(imp.values[n.inputs[0]].type), _shape(imp.values[n.inputs[1]].type)
    if len(slope) == 1 and slope[0] != 1 and len(x) > 2:
        n.inputs[1] = _reshaped(n, imp, n.inputs[1], (slope[0], *(1,) * (len(x) - 2)), "slope_per_channel")


def _reshaped(n: Node, imp: _Importer, value: str, shape: tuple[int, ...], tag: str) -> str:
    """``value`` reshaped to ``shape`` by a Reshape node emitted before ``n``."""
    out = f"{n.outputs[0]}::{tag}"
    imp.emit(Node("Reshape", [value, _const(n, imp, f"{tag}_shape", np.asarray(shape, np.int64))], [out], {}, 21, n.name))
    return out


@_rule("Upsample")
def _upsample(n: Node, imp: _Importer) -> None:
    """Upsample is Resize with asymmetric coordinates (and floor for nearest)."""
    mode = n.attrs.pop("mode", "nearest")
    if "scales" in n.attrs:
        _attr_to_input(n, imp, "scales", 1, np.float32)
    n.op_type = "Resize"
    n.inputs[1:] = ["", n.inputs[1]]
    n.attrs.update(mode=mode, coordinate_transformation_mode="asymmetric")
    if mode == "nearest":
        n.attrs["nearest_mode"] = "floor"


@_rule("Resize")
def _resize(n: Node, imp: _Importer) -> None:
    if n.version < 11:  # Resize-10 was Upsample's meaning with scales as input 1
        n.inputs[1:] = ["", n.inputs[1]]
        n.attrs["coordinate_transformation_mode"] = "asymmetric"
        if n.attrs.get("mode", "nearest") == "nearest":
            n.attrs["nearest_mode"] = "floor"


@_rule("Scatter")
def _scatter(n: Node, imp: _Importer) -> None:
    n.op_type = "ScatterElements"


@_rule("DFT")
def _dft(n: Node, imp: _Importer) -> None:
    if n.version < 20:
        axis = n.attrs.pop("axis", 1)
        while len(n.inputs) < 2:
            n.inputs.append("")
        n.inputs.insert(2, _const(n, imp, "axis", np.asarray(axis, np.int64)))


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.get_shape())


def _np_dtype(t: Any) -> np.dtype:
    from graphopt import dtypes

    return dtypes.from_ir(t.element_type).numpy
