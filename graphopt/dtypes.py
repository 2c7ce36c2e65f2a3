"""Element types: ONNX TensorProto codes, numpy dtypes and IR types, one table."""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    ComplexType,
    Float4E2M1FNType,
    Float8E4M3FNType,
    Float8E4M3FNUZType,
    Float8E5M2FNUZType,
    Float8E5M2Type,
    Float8E8M0FNUType,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
)
from xdsl.ir import Attribute

from graphopt.dialects.types import StringType


@dataclass(frozen=True)
class DType:
    name: str  # ONNX's name, lower case: "float", "int64", "bfloat16"
    onnx: int  # TensorProto.DataType code
    numpy: np.dtype
    ir: Attribute


def _u(bits: int) -> IntegerType:
    return IntegerType(bits, Signedness.UNSIGNED)


_TABLE = [
    DType("float", 1, np.dtype(np.float32), Float32Type()),
    DType("uint8", 2, np.dtype(np.uint8), _u(8)),
    DType("int8", 3, np.dtype(np.int8), IntegerType(8)),
    DType("uint16", 4, np.dtype(np.uint16), _u(16)),
    DType("int16", 5, np.dtype(np.int16), IntegerType(16)),
    DType("int32", 6, np.dtype(np.int32), IntegerType(32)),
    DType("int64", 7, np.dtype(np.int64), IntegerType(64)),
    DType("string", 8, np.dtype(object), StringType()),
    DType("bool", 9, np.dtype(np.bool_), IntegerType(1)),
    DType("float16", 10, np.dtype(np.float16), Float16Type()),
    DType("double", 11, np.dtype(np.float64), Float64Type()),
    DType("uint32", 12, np.dtype(np.uint32), _u(32)),
    DType("uint64", 13, np.dtype(np.uint64), _u(64)),
    DType("complex64", 14, np.dtype(np.complex64), ComplexType(Float32Type())),
    DType("complex128", 15, np.dtype(np.complex128), ComplexType(Float64Type())),
    DType("bfloat16", 16, np.dtype(ml_dtypes.bfloat16), BFloat16Type()),
    DType("float8e4m3fn", 17, np.dtype(ml_dtypes.float8_e4m3fn), Float8E4M3FNType()),
    DType("float8e4m3fnuz", 18, np.dtype(ml_dtypes.float8_e4m3fnuz), Float8E4M3FNUZType()),
    DType("float8e5m2", 19, np.dtype(ml_dtypes.float8_e5m2), Float8E5M2Type()),
    DType("float8e5m2fnuz", 20, np.dtype(ml_dtypes.float8_e5m2fnuz), Float8E5M2FNUZType()),
    DType("uint4", 21, np.dtype(ml_dtypes.uint4), _u(4)),
    DType("int4", 22, np.dtype(ml_dtypes.int4), IntegerType(4)),
    DType("float4e2m1", 23, np.dtype(ml_dtypes.float4_e2m1fn), Float4E2M1FNType()),
    DType("float8e8m0", 24, np.dtype(ml_dtypes.float8_e8m0fnu), Float8E8M0FNUType()),
    DType("uint2", 25, np.dtype(ml_dtypes.uint2), _u(2)),
    DType("int2", 26, np.dtype(ml_dtypes.int2), IntegerType(2)),
]

BY_ONNX = {d.onnx: d for d in _TABLE}
BY_NUMPY = {d.numpy: d for d in _TABLE}
BY_IR = {d.ir: d for d in _TABLE}


def from_onnx(code: int) -> DType:
    try:
        return BY_ONNX[code]
    except KeyError:
        raise KeyError(f"ONNX element type {code} is not supported") from None


def from_numpy(dtype: np.dtype | type) -> DType:
    dt = np.dtype(dtype)
    if dt.kind in "US":
        return BY_ONNX[8]
    try:
        return BY_NUMPY[dt]
    except KeyError:
        raise KeyError(f"numpy dtype {dt} has no ONNX element type") from None


def from_ir(t: Attribute) -> DType:
    try:
        return BY_IR[t]
    except KeyError:
        raise KeyError(f"IR element type {t} has no ONNX element type") from None


def is_float(d: DType) -> bool:
    return d.numpy.kind in "fV" and d.name not in ("string",) and "int" not in d.name
