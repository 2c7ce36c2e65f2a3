"""ONNX attribute values <-> IR attributes.

ints become ``i64`` integers, floats ``f32`` floats, lists become dense arrays
(``array<i64: 1, 1>``), strings string attributes, and small tensors dense elements.
The printer writes floats losslessly, so IR text round-trips exactly.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    f32,
    i64,
)
from xdsl.ir import Attribute

from graphopt import dtypes


class AttrType(IntEnum):
    """ONNX attribute kinds, numbered as ``AttributeProto.AttributeType`` (and onnx's
    ``OpSchema.AttrType``), so values pass to onnx's helpers unchanged."""

    FLOAT = 1
    INT = 2
    STRING = 3
    TENSOR = 4
    GRAPH = 5
    FLOATS = 6
    INTS = 7
    STRINGS = 8
    TENSORS = 9
    GRAPHS = 10
    SPARSE_TENSOR = 11
    SPARSE_TENSORS = 12
    TYPE_PROTO = 13
    TYPE_PROTOS = 14


# Element types that dense attributes can hold exactly; others go to the weight store.
_DENSE_OK = frozenset("float double float16 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool".split())


def can_inline(array: np.ndarray) -> bool:
    return dtypes.from_numpy(array.dtype).name in _DENSE_OK


def dense(array: np.ndarray) -> DenseIntOrFPElementsAttr:
    """A numpy array as a dense elements attribute (see ``can_inline``)."""
    dt = dtypes.from_numpy(array.dtype)
    ttype = TensorType(dt.ir, array.shape)
    flat = array.reshape(-1)
    if dt.name == "bool":
        values: list[Any] = [int(v) for v in flat]
    elif array.dtype.kind in "iu":
        values = [int(v) for v in flat]
    else:
        values = [float(v) for v in flat]
    return DenseIntOrFPElementsAttr.from_list(ttype, values)


def dense_to_numpy(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    ttype = attr.get_type()
    assert isinstance(ttype, TensorType)
    dt = dtypes.from_ir(ttype.element_type)
    values = list(attr.get_values())
    return np.array(values, dtype=dt.numpy).reshape(tuple(ttype.get_shape()))


def to_ir(value: Any, kind: AttrType) -> Attribute:
    """An ONNX attribute's Python value as an IR attribute."""
    if kind == AttrType.INT:
        return IntegerAttr(int(value), i64)
    if kind == AttrType.FLOAT:
        return FloatAttr(float(np.float32(value)), f32)
    if kind == AttrType.STRING:
        return StringAttr(str(value))
    if kind == AttrType.INTS:
        return DenseArrayBase.from_list(i64, [int(v) for v in value])
    if kind == AttrType.FLOATS:
        return DenseArrayBase.from_list(f32, [float(np.float32(v)) for v in value])
    if kind == AttrType.STRINGS:
        return ArrayAttr([StringAttr(str(v)) for v in value])
    if kind == AttrType.TENSOR:
        array = np.asarray(value)
        if not can_inline(array):
            raise ValueError(f"a tensor attribute of type {array.dtype} cannot be held in the IR")
        return dense(array)
    raise ValueError(f"attributes of kind {kind.name} are not supported")


def from_ir(attr: Attribute) -> Any:
    """The Python value of an IR attribute made by ``to_ir``."""
    if isinstance(attr, IntegerAttr):
        return int(attr.value.data)
    if isinstance(attr, FloatAttr):
        return float(attr.value.data)
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, DenseArrayBase):
        values = attr.get_values()
        if isinstance(attr.elt_type, IntegerType):
            return [int(v) for v in values]
        assert isinstance(attr.elt_type, Float32Type)
        return [float(v) for v in values]
    if isinstance(attr, ArrayAttr):
        return [from_ir(a) for a in attr.data]
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return dense_to_numpy(attr)
    raise ValueError(f"unexpected attribute {attr}")


def kind_matches(attr: Attribute, kind: AttrType) -> bool:
    match kind:
        case AttrType.INT:
            return isinstance(attr, IntegerAttr)
        case AttrType.FLOAT:
            return isinstance(attr, FloatAttr)
        case AttrType.STRING:
            return isinstance(attr, StringAttr)
        case AttrType.INTS:
            return isinstance(attr, DenseArrayBase) and isinstance(attr.elt_type, IntegerType)
        case AttrType.FLOATS:
            return isinstance(attr, DenseArrayBase) and isinstance(attr.elt_type, Float32Type)
        case AttrType.STRINGS:
            return isinstance(attr, ArrayAttr)
        case AttrType.TENSOR:
            return isinstance(attr, DenseIntOrFPElementsAttr)
        case _:
            return False
