"""What a row of the fx frontend works with: the ``Lowering`` context (values by fx node,
constants, op emission), the spec/rank/axis helpers, torch <-> numpy dtypes, and the table
``FX_TO_GRAPH`` that the ``rows_*.py`` modules register their rows into with ``@row``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import ml_dtypes
import numpy as np
import torch
import torch.fx
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, SSAValue

from graphopt import dtypes
from graphopt.dialects.shapes import Spec
from graphopt.errors import GraphoptError
from graphopt.rewrite import INLINE_MAX, build, make_constant
from graphopt.weights import WeightStore

aten = torch.ops.aten

TORCH_TO_NUMPY: dict[torch.dtype, np.dtype] = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: np.dtype(ml_dtypes.bfloat16),
    torch.int64: np.dtype(np.int64),
    torch.int32: np.dtype(np.int32),
    torch.int16: np.dtype(np.int16),
    torch.int8: np.dtype(np.int8),
    torch.uint8: np.dtype(np.uint8),
    torch.bool: np.dtype(np.bool_),
}


class UnsupportedOp(GraphoptError):
    """An aten op graphopt has no lowering for (names the op and the user's source line)."""


def np_dtype(dt: torch.dtype) -> np.dtype:
    try:
        return TORCH_TO_NUMPY[dt]
    except KeyError:
        raise GraphoptError(f"torch dtype {dt} is not supported by graphopt") from None


def source_line(node: torch.fx.Node) -> str:
    """The user's source line of a node (``file:line in fn: code``), from its stack trace."""
    trace = node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)', trace)
    if not frames:
        return "unknown source line"
    file, line, fn, code = frames[-1]  # the innermost frame is where the op was written
    return f"{file}:{line} in {fn}: {code.strip()}"


# ---------------------------------------------------------------------------------------
# The lowering context a row works with


class Lowering:
    """Builds the IR of one graph: values by fx node, constants, op emission."""

    def __init__(self, vals: dict[torch.fx.Node, Any], weights: WeightStore):
        self.vals = vals
        self.weights = weights
        self.block = Block()
        self.builder = Builder(InsertPoint.at_end(self.block))
        self.values: dict[torch.fx.Node, Any] = {}
        self.node: torch.fx.Node | None = None
        self.src: list[str] = []
        self.pairs: set[SSAValue] = set()  # complex tensors, as [..., 2] real pairs (rows_complex.py)

    # -- values ------------------------------------------------------------------------
    def val(self, node: torch.fx.Node | None = None) -> Any:
        return self.vals[node or self.node]

    def out_spec(self, k: int | None = None) -> Spec:
        v = self.val()
        if k is not None:
            v = v[k]
        return tuple(int(d) for d in v.shape), dtypes.from_numpy(np_dtype(v.dtype))

    def out_dtype(self, k: int | None = None) -> np.dtype:
        return self.out_spec(k)[1].numpy

    def op(self, onnx_type: str, operands: Sequence[SSAValue], attrs: dict[str, Any] | None = None,
           n_results: int = 1, specs: Sequence[Spec] | None = None) -> Any:
        """Insert a graph op; one result as an SSAValue, several as a tuple."""
        try:
            built = build(onnx_type, operands, attrs, self.src, n_results, specs)
        except (ValueError, KeyError) as e:
            raise GraphoptError(f"{self.where()}: cannot build {onnx_type}: {e}") from None
        self.builder.insert(built)
        return built.results[0] if n_results == 1 else tuple(built.results)

    def const(self, array: Any, dtype: Any = None) -> SSAValue:
        arr = np.asarray(array, dtype=dtype)
        op = make_constant(arr, self.src, self.weights, name=self.src[0] if self.src else "const")
        self.builder.insert(op)
        return op.results[0]

    def ints(self, values: Sequence[int]) -> SSAValue:
        return self.const(np.asarray([int(v) for v in values], dtype=np.int64))

    def cast(self, v: SSAValue, dtype: np.dtype) -> SSAValue:
        if np.dtype(spec(v)[1].numpy) == np.dtype(dtype):
            return v
        return self.op("Cast", [v], {"to": dtypes.from_numpy(dtype).onnx})

    def tensor(self, x: Any, dtype: np.dtype) -> SSAValue:
        """An operand as a tensor of ``dtype``: values are cast, Python scalars become constants."""
        if isinstance(x, SSAValue):
            return self.cast(x, dtype)
        return self.const(np.asarray(x, dtype=dtype))

    def reshape(self, v: SSAValue, shape: Sequence[int]) -> SSAValue:
        if tuple(spec(v)[0]) == tuple(shape):
            return v
        return self.op("Reshape", [v, self.ints(shape)])

    def filled(self, value: Any, shape: Sequence[int], dtype: np.dtype) -> SSAValue:
        """A tensor of one value: a constant when small, else a scalar expanded at run time
        (so a 128x128 mask costs no weight)."""
        count = int(np.prod(shape, dtype=np.int64))
        if count <= INLINE_MAX:
            return self.const(np.full(tuple(shape), value, dtype=dtype))
        return self.op("Expand", [self.const(np.asarray(value, dtype=dtype)), self.ints(shape)])

    def where(self) -> str:
        n = self.node
        if n is None:
            return "graph"
        return f"aten op {n.target} (node {n.name}) at {source_line(n)}"


def spec(v: SSAValue) -> Spec:
    t = v.type
    assert isinstance(t, TensorType)
    return tuple(int(d) for d in t.get_shape()), dtypes.from_ir(t.element_type)


def rank(v: SSAValue) -> int:
    return len(spec(v)[0])


def axis(d: int, r: int) -> int:
    return d + r if d < 0 else d


# ---------------------------------------------------------------------------------------
# The table: one row per aten OpOverload

Row = Callable[..., Any]
FX_TO_GRAPH: dict[Any, Row] = {}


def row(*targets: Any) -> Callable[[Row], Row]:
    def register(fn: Row) -> Row:
        for t in targets:
            FX_TO_GRAPH[t] = fn
        return fn

    return register
