"""An aten-level torch.fx GraphModule (aot_autograd with the core ATen decompositions, or a
``torch.export`` program after ``run_decompositions()``) -> graph IR.

The result is what the ONNX frontend produces (a ``builtin.module`` with ``func.func @main``,
weights in a ``WeightStore``), so every pass and target works unchanged.

Algorithm:
1. Every node gets a *concrete* meta value: ``node.meta["val"]`` (FakeTensors) when all
   shapes are static; otherwise (SymInt shapes, ``dynamic=True``) the graph is re-run
   under a FakeTensorMode with the concrete input shapes of this call, so the IR is
   specialised to one shape (the caller caches one executable per shape). No tensor
   value is ever read; scalars computed from shapes (``sym_size``, ``operator.mul``) are
   compile-time Python numbers.
2. Placeholders become block arguments, except the parameters, buffers and constants of
   an ``ExportedProgram``, which become ``graph.weight`` (or ``graph.constant``) ops.
3. Each ``call_function`` node is lowered by its row in ``FX_TO_GRAPH`` (keyed by aten
   OpOverload) into one or more graph ops with ONNX semantics. Result types come from
   the op's rule, and the last op of a row must agree with the node's meta value.
4. A node with no row is an ``UnsupportedOp`` error naming the aten op and the user's
   source line, from the node's ``stack_trace``.

torch is imported by this module: import it only when a torch model is compiled.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np
import torch
import torch.fx
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, Region, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, WeightOp
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


@dataclass
class FxImported:
    """What the fx frontend produces; the same fields as the ONNX frontend's ``Imported``."""

    module: ModuleOp
    weights: WeightStore
    inputs: list[tuple[str, Spec]]
    outputs: list[str]
    opset: int = 0  # no ONNX opset: the graph ops have their newest ONNX meaning
    histogram: dict[str, int] = field(default_factory=dict)
    # How each fx output comes back: "tensor", or a Python value (a shape scalar, None).
    output_kinds: list[Any] = field(default_factory=list)
    tensor_placeholders: list[int] = field(default_factory=list)  # placeholder positions that are IR inputs


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


def module_path(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, _ = list(stack.values())[-1]
    return re.sub(r"^L\['self'\]\.?|^L__self___?", "", str(path))


# ---------------------------------------------------------------------------------------
# Concrete meta values


def is_static(gm: torch.fx.GraphModule) -> bool:
    """True when every placeholder's meta value has concrete shapes (no SymInts)."""
    for n in gm.graph.nodes:
        if n.op != "placeholder":
            continue
        val = n.meta.get("val")
        if isinstance(val, torch.SymInt | torch.SymFloat | torch.SymBool):
            return False
        if isinstance(val, torch.Tensor) and not all(isinstance(d, int) for d in val.shape):
            return False
    return True


def concrete_values(gm: torch.fx.GraphModule, args: Sequence[Any] | None) -> dict[torch.fx.Node, Any]:
    """The meta value of every node, with concrete shapes.

    ``args`` are this call's inputs (tensors or their ``(shape, dtype)``, and ints for
    SymInt placeholders); None when the graph is static and ``meta["val"]`` already holds
    concrete shapes. Otherwise the graph is re-run on fake tensors of those shapes."""
    if args is None:
        return {n: n.meta.get("val") for n in gm.graph.nodes}
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    fakes: list[Any] = []
    with mode:  # torch.empty here makes a FakeTensor on the cpu device: no memory, no values
        for a in args:
            if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], torch.dtype):
                fakes.append(torch.empty(a[0], dtype=a[1]))
            elif isinstance(a, torch.Tensor):
                fakes.append(torch.empty(tuple(a.shape), dtype=a.dtype))
            else:
                fakes.append(a)
    found: dict[torch.fx.Node, Any] = {}

    class _Record(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            result = super().run_node(n)
            found[n] = result
            return result

    with mode:
        _Record(gm).run(*fakes)
    return found


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


def _result_dtype(L: Lowering, a: Any, b: Any) -> np.dtype:
    """torch's type promotion of two operands (tensors by their IR dtype and rank, or Python scalars)."""

    def stand_in(x: Any) -> Any:
        if isinstance(x, SSAValue):
            shape, dt = spec(x)
            return torch.empty((0,) if shape else (), dtype=_torch_dtype(dt.numpy))
        return x

    return np_dtype(torch.result_type(stand_in(a), stand_in(b)))


_NUMPY_TO_TORCH = {v: k for k, v in TORCH_TO_NUMPY.items()}


def _torch_dtype(dt: np.dtype) -> torch.dtype:
    return _NUMPY_TO_TORCH[np.dtype(dt)]


def _binary(onnx_type: str) -> Row:
    def lower(L: Lowering, a: Any, b: Any, *, alpha: Any = 1) -> SSAValue:
        dt = L.out_dtype()
        if alpha != 1:
            b = L.op("Mul", [L.tensor(b, dt), L.const(np.asarray(alpha, dtype=dt))]) if isinstance(b, SSAValue) else b * alpha
        return L.op(onnx_type, [L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])

    return lower


for _name, _onnx in (("add", "Add"), ("sub", "Sub"), ("mul", "Mul")):
    row(getattr(aten, _name).Tensor, getattr(aten, _name).Scalar)(_binary(_onnx))
row(aten.maximum.default)(_binary("Max"))


@row(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(L: Lowering, a: Any, b: Any, *, alpha: Any = 1) -> SSAValue:
    """b - alpha * a."""
    dt = L.out_dtype()
    a = L.tensor(a, dt)
    if alpha != 1:
        a = L.op("Mul", [a, L.const(np.asarray(alpha, dt))])
    return L.op("Sub", [L.tensor(b, dt), a], specs=[L.out_spec()])

row(aten.minimum.default)(_binary("Min"))


@row(aten.div.Tensor, aten.div.Scalar, aten.true_divide.Tensor)
def _div(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()  # true division: integer operands divide as floats
    return L.op("Div", [L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])


@row(aten.div.Tensor_mode, aten.div.Scalar_mode)
def _div_mode(L: Lowering, a: Any, b: Any, *, rounding_mode: str | None = None) -> SSAValue:
    dt = L.out_dtype()
    if rounding_mode is None:
        return _div(L, a, b)
    if np.issubdtype(dt, np.integer):
        fa, fb = L.tensor(a, np.dtype(np.float64)), L.tensor(b, np.dtype(np.float64))
    else:
        fa, fb = L.tensor(a, dt), L.tensor(b, dt)
    q = L.op("Div", [fa, fb])
    q = L.op("Floor" if rounding_mode == "floor" else "Ceil", [q]) if rounding_mode == "floor" else _trunc(L, q)
    return L.cast(q, dt)


def _trunc(L: Lowering, x: SSAValue) -> SSAValue:
    neg = L.op("Less", [x, L.const(np.asarray(0, spec(x)[1].numpy))])
    return L.op("Where", [neg, L.op("Ceil", [x]), L.op("Floor", [x])])


@row(aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor, aten.pow.Scalar)
def _pow(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    if not isinstance(b, SSAValue) and b == 2:  # x*x: exact, as torch computes it
        x = L.tensor(a, dt)
        return L.op("Mul", [x, x], specs=[L.out_spec()])
    return L.op("Pow", [L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])


def _compare(onnx_type: str, negate: bool = False) -> Row:
    def lower(L: Lowering, a: Any, b: Any) -> SSAValue:
        dt = _result_dtype(L, a, b)
        r = L.op(onnx_type, [L.tensor(a, dt), L.tensor(b, dt)])
        return L.op("Not", [r]) if negate else r

    return lower


for _name, _onnx, _neg in (("eq", "Equal", False), ("ne", "Equal", True), ("lt", "Less", False),
                           ("le", "LessOrEqual", False), ("gt", "Greater", False), ("ge", "GreaterOrEqual", False)):
    row(getattr(aten, _name).Tensor, getattr(aten, _name).Scalar)(_compare(_onnx, _neg))


def _bitwise(logical: str, bitwise: str) -> Row:
    def lower(L: Lowering, a: Any, b: Any) -> SSAValue:
        dt = L.out_dtype()
        return L.op(logical if dt == np.bool_ else bitwise, [L.tensor(a, dt), L.tensor(b, dt)])

    return lower


for _name, _l, _b in (("bitwise_and", "And", "BitwiseAnd"), ("bitwise_or", "Or", "BitwiseOr"), ("bitwise_xor", "Xor", "BitwiseXor")):
    row(getattr(aten, _name).Tensor, getattr(aten, _name).Scalar)(_bitwise(_l, _b))
for _name, _l in (("logical_and", "And"), ("logical_or", "Or"), ("logical_xor", "Xor")):
    row(getattr(aten, _name).default)(lambda L, a, b, _l=_l: L.op(_l, [L.tensor(a, np.dtype(np.bool_)), L.tensor(b, np.dtype(np.bool_))]))


@row(aten.bitwise_not.default)
def _bitwise_not(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("Not" if L.out_dtype() == np.bool_ else "BitwiseNot", [x])


row(aten.logical_not.default)(lambda L, x: L.op("Not", [L.cast(x, np.dtype(np.bool_))]))


def _unary(onnx_type: str) -> Row:
    def lower(L: Lowering, x: SSAValue) -> SSAValue:
        return L.op(onnx_type, [L.cast(x, L.out_dtype())], specs=[L.out_spec()])

    return lower


for _name, _onnx in (("neg", "Neg"), ("exp", "Exp"), ("log", "Log"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid"),
                     ("sqrt", "Sqrt"), ("erf", "Erf"), ("sin", "Sin"), ("cos", "Cos"), ("relu", "Relu"), ("abs", "Abs"),
                     ("reciprocal", "Reciprocal"), ("floor", "Floor"), ("ceil", "Ceil"), ("sign", "Sign"),
                     ("round", "Round"), ("tan", "Tan"), ("atan", "Atan"), ("asin", "Asin"), ("acos", "Acos"),
                     ("sinh", "Sinh"), ("cosh", "Cosh")):
    row(getattr(aten, _name).default)(_unary(_onnx))
row(aten.isnan.default)(lambda L, x: L.op("IsNaN", [x]))
row(aten.isinf.default)(lambda L, x: L.op("IsInf", [x]))


@row(aten.rsqrt.default)
def _rsqrt(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("Reciprocal", [L.op("Sqrt", [L.cast(x, L.out_dtype())])])


@row(aten.log1p.default)
def _log1p(L: Lowering, x: SSAValue) -> SSAValue:
    x = L.cast(x, L.out_dtype())
    return L.op("Log", [L.op("Add", [x, L.const(np.asarray(1, L.out_dtype()))])])


@row(aten.expm1.default)
def _expm1(L: Lowering, x: SSAValue) -> SSAValue:
    x = L.cast(x, L.out_dtype())
    return L.op("Sub", [L.op("Exp", [x]), L.const(np.asarray(1, L.out_dtype()))])


@row(aten.trunc.default)
def _trunc_row(L: Lowering, x: SSAValue) -> SSAValue:
    return _trunc(L, x)


@row(aten.gelu.default)
def _gelu(L: Lowering, x: SSAValue, approximate: str = "none") -> SSAValue:
    return L.op("Gelu", [x], {"approximate": approximate}, specs=[L.out_spec()])


@row(aten.silu.default)
def _silu(L: Lowering, x: SSAValue) -> SSAValue:
    return L.op("Mul", [x, L.op("Sigmoid", [x])])


@row(aten.leaky_relu.default)
def _leaky_relu(L: Lowering, x: SSAValue, negative_slope: float = 0.01) -> SSAValue:
    return L.op("LeakyRelu", [x], {"alpha": float(negative_slope)})


@row(aten.clamp.default, aten.clamp.Tensor, aten.hardtanh.default)
def _clamp(L: Lowering, x: SSAValue, lo: Any = None, hi: Any = None) -> SSAValue:
    dt = L.out_dtype()
    x = L.cast(x, dt)
    if lo is not None:
        x = L.op("Max", [x, L.tensor(lo, dt)])
    if hi is not None:
        x = L.op("Min", [x, L.tensor(hi, dt)])
    return x


row(aten.clamp_min.default)(lambda L, x, lo: _clamp(L, x, lo, None))
row(aten.clamp_max.default)(lambda L, x, hi: _clamp(L, x, None, hi))


@row(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def _where(L: Lowering, cond: SSAValue, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    return L.op("Where", [L.cast(cond, np.dtype(np.bool_)), L.tensor(a, dt), L.tensor(b, dt)], specs=[L.out_spec()])


@row(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def _masked_fill(L: Lowering, x: SSAValue, mask: SSAValue, value: Any) -> SSAValue:
    return _where(L, mask, value, x)


@row(aten.remainder.Tensor, aten.remainder.Scalar)
def _remainder(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    a, b = L.tensor(a, dt), L.tensor(b, dt)
    if np.issubdtype(dt, np.integer):
        return L.op("Mod", [a, b])  # fmod=0: the sign of the divisor, as Python's %
    return L.op("Sub", [a, L.op("Mul", [L.op("Floor", [L.op("Div", [a, b])]), b])])


@row(aten.fmod.Tensor, aten.fmod.Scalar)
def _fmod(L: Lowering, a: Any, b: Any) -> SSAValue:
    dt = L.out_dtype()
    return L.op("Mod", [L.tensor(a, dt), L.tensor(b, dt)], {"fmod": 1})


# -- linear algebra -----------------------------------------------------------------------


@row(aten.mm.default, aten.bmm.default, aten.matmul.default)
def _mm(L: Lowering, a: SSAValue, b: SSAValue) -> SSAValue:
    return L.op("MatMul", [a, b], specs=[L.out_spec()])


@row(aten.addmm.default, aten.baddbmm.default)
def _addmm(L: Lowering, bias: SSAValue, a: SSAValue, b: SSAValue, *, beta: Any = 1, alpha: Any = 1) -> SSAValue:
    dt = L.out_dtype()
    m = L.op("MatMul", [a, b])
    if alpha != 1:
        m = L.op("Mul", [m, L.const(np.asarray(alpha, dt))])
    if beta == 0:
        return m
    if beta != 1:
        bias = L.op("Mul", [bias, L.const(np.asarray(beta, dt))])
    return L.op("Add", [m, bias], specs=[L.out_spec()])


@row(aten.convolution.default)
def _convolution(L: Lowering, x: SSAValue, w: SSAValue, b: SSAValue | None, stride: Sequence[int], padding: Sequence[int],
                 dilation: Sequence[int], transposed: bool, output_padding: Sequence[int], groups: int) -> SSAValue:
    nd = rank(x) - 2
    stride, padding, dilation = _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    attrs: dict[str, Any] = {"strides": stride, "pads": [*padding, *padding], "dilations": dilation, "group": int(groups)}
    operands = [x, w] + ([b] if b is not None else [])
    if transposed:
        attrs["output_padding"] = _nd(output_padding, nd)
        return L.op("ConvTranspose", operands, attrs, specs=[L.out_spec()])
    return L.op("Conv", operands, attrs, specs=[L.out_spec()])


def _nd(v: Sequence[int] | int, nd: int) -> list[int]:
    v = [int(v)] if isinstance(v, int) else [int(i) for i in v]
    return v * nd if len(v) == 1 and nd > 1 else v


@row(aten.convolution_backward.default)
def _convolution_backward(L: Lowering, go: SSAValue, x: SSAValue, w: SSAValue, bias_sizes: Any, stride: Sequence[int],
                          padding: Sequence[int], dilation: Sequence[int], transposed: bool, output_padding: Any,
                          groups: int, mask: Sequence[bool]) -> tuple[Any, Any, Any]:
    """grad_input is a transposed convolution of the output gradient; grad_weight is a
    convolution of the input by the output gradient with stride and dilation swapped."""
    if transposed:
        raise UnsupportedOp(f"{L.where()}: the backward of a transposed convolution is not supported")
    nd = rank(x) - 2
    stride, padding, dilation = _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    xs, ws, gs = spec(x)[0], spec(w)[0], spec(go)[0]
    gx = gw = gb = None
    if mask[0]:
        natural = [(gs[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (ws[2 + i] - 1) + 1 for i in range(nd)]
        gx = L.op("ConvTranspose", [go, w], {"strides": stride, "pads": [*padding, *padding], "dilations": dilation,
                                              "group": int(groups), "output_padding": [xs[2 + i] - natural[i] for i in range(nd)]})
    if mask[1]:
        if groups != 1:
            raise UnsupportedOp(f"{L.where()}: the weight gradient of a grouped convolution is not supported")
        perm = [1, 0, *range(2, nd + 2)]
        xt, gt = L.op("Transpose", [x], {"perm": perm}), L.op("Transpose", [go], {"perm": perm})
        full = L.op("Conv", [xt, gt], {"strides": dilation, "dilations": stride, "pads": [*padding, *padding]})
        fs = spec(full)[0]
        if tuple(fs[2:]) != tuple(ws[2:]):  # rows the forward never reached
            full = L.op("Slice", [full, L.ints([0] * nd), L.ints(ws[2:]), L.ints(range(2, nd + 2))])
        gw = L.op("Transpose", [full], {"perm": perm})
    if mask[2]:
        gb = L.op("ReduceSum", [go, L.ints([0, *range(2, nd + 2)])], {"keepdims": 0})
    return gx, gw, gb


# -- normalisation, softmax ---------------------------------------------------------------------


@row(aten.native_layer_norm.default)
def _layer_norm(L: Lowering, x: SSAValue, shape: Sequence[int], w: SSAValue | None, b: SSAValue | None, eps: float) -> tuple[Any, ...]:
    dt = L.out_dtype(0)
    scale = w if w is not None else L.filled(1, shape, dt)
    operands = [x, scale] + ([b] if b is not None else [])
    attrs = {"axis": -len(shape), "epsilon": float(eps), "stash_type": 1}
    return L.op("LayerNormalization", operands, attrs, n_results=3, specs=[L.out_spec(0), L.out_spec(1), L.out_spec(2)])


@row(aten._native_batch_norm_legit_no_training.default)
def _batch_norm_eval(L: Lowering, x: SSAValue, w: Any, b: Any, mean: SSAValue, var: SSAValue, momentum: float, eps: float) -> tuple[Any, ...]:
    dt = L.out_dtype(0)
    c = spec(x)[0][1]
    w = w if w is not None else L.filled(1, (c,), dt)
    b = b if b is not None else L.filled(0, (c,), dt)
    y = L.op("BatchNormalization", [x, w, b, mean, var], {"epsilon": float(eps)}, specs=[L.out_spec(0)])
    empty = L.const(np.zeros((0,), dt))
    return y, empty, empty


@row(aten._native_batch_norm_legit_functional.default, aten._native_batch_norm_legit.default, aten.native_batch_norm.default)
def _batch_norm_train(L: Lowering, x: SSAValue, w: Any, b: Any, rmean: Any, rvar: Any, training: bool, momentum: float,
                      eps: float) -> tuple[Any, ...]:
    """Training batch norm from reductions: statistics over all but the channel axis,
    running statistics updated with the unbiased variance, as torch does."""
    if not training:
        y, _, _ = _batch_norm_eval(L, x, w, b, rmean, rvar, momentum, eps)
        empty = L.const(np.zeros((0,), L.out_dtype(0)))
        return (y, empty, empty, rmean, rvar)[: len(L.val())]
    dt = L.out_dtype(0)
    shape = spec(x)[0]
    r, c = len(shape), shape[1]
    axes = L.ints([0, *range(2, r)])
    count = int(np.prod(shape, dtype=np.int64)) // c
    mean = L.op("ReduceMean", [x, axes], {"keepdims": 1})
    d = L.op("Sub", [x, mean])
    var = L.op("ReduceMean", [L.op("Mul", [d, d]), axes], {"keepdims": 1})
    rstd = L.op("Reciprocal", [L.op("Sqrt", [L.op("Add", [var, L.const(np.asarray(eps, dt))])])])
    y = L.op("Mul", [d, rstd])
    bshape = [1, c] + [1] * (r - 2)
    if w is not None:
        y = L.op("Mul", [y, L.reshape(w, bshape)])
    if b is not None:
        y = L.op("Add", [y, L.reshape(b, bshape)])
    outs: list[Any] = [y, L.reshape(mean, (c,)), L.reshape(rstd, (c,))]
    if len(L.val()) == 5:
        m = L.const(np.asarray(momentum, dt))
        keep = L.const(np.asarray(1 - momentum, dt))
        unbiased = L.op("Mul", [L.reshape(var, (c,)), L.const(np.asarray(count / max(count - 1, 1), dt))])
        outs.append(L.op("Add", [L.op("Mul", [rmean, keep]), L.op("Mul", [L.reshape(mean, (c,)), m])]))
        outs.append(L.op("Add", [L.op("Mul", [rvar, keep]), L.op("Mul", [unbiased, m])]))
    return tuple(outs)


@row(aten._softmax.default, aten.softmax.int)
def _softmax(L: Lowering, x: SSAValue, dim: int, half_to_float: Any = False) -> SSAValue:
    return L.op("Softmax", [L.cast(x, L.out_dtype())], {"axis": int(dim)}, specs=[L.out_spec()])


@row(aten._log_softmax.default, aten.log_softmax.int)
def _log_softmax(L: Lowering, x: SSAValue, dim: int, half_to_float: Any = False) -> SSAValue:
    return L.op("LogSoftmax", [L.cast(x, L.out_dtype())], {"axis": int(dim)}, specs=[L.out_spec()])


@row(aten._softmax_backward_data.default)
def _softmax_backward(L: Lowering, g: SSAValue, y: SSAValue, dim: int, dtype: Any) -> SSAValue:
    gy = L.op("Mul", [g, y])
    s = L.op("ReduceSum", [gy, L.ints([dim])], {"keepdims": 1})
    return L.op("Sub", [gy, L.op("Mul", [y, s])])


@row(aten._log_softmax_backward_data.default)
def _log_softmax_backward(L: Lowering, g: SSAValue, y: SSAValue, dim: int, dtype: Any) -> SSAValue:
    s = L.op("ReduceSum", [g, L.ints([dim])], {"keepdims": 1})
    return L.op("Sub", [g, L.op("Mul", [L.op("Exp", [y]), s])])


@row(aten.native_dropout.default)
def _dropout(L: Lowering, x: SSAValue, p: float, train: bool | None) -> tuple[Any, Any]:
    if train and p > 0:
        raise UnsupportedOp(f"{L.where()}: dropout with p={p} in training draws random numbers, which graphopt "
                            "does not; use model.eval() or p=0")
    return x, L.filled(True, spec(x)[0], np.dtype(np.bool_))


# -- reductions ---------------------------------------------------------------------------


def _axes(dims: Any, r: int) -> list[int]:
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return list(range(r))
    return [axis(int(d), r) for d in ([dims] if isinstance(dims, int) else dims)]


def _reduce(onnx_type: str) -> Row:
    def lower(L: Lowering, x: SSAValue, dims: Any = None, keepdim: bool = False, *, dtype: Any = None) -> SSAValue:
        x = L.cast(x, L.out_dtype())
        if rank(x) == 0:
            return x
        return L.op(onnx_type, [x, L.ints(_axes(dims, rank(x)))], {"keepdims": int(bool(keepdim))}, specs=[L.out_spec()])

    return lower


row(aten.sum.dim_IntList)(_reduce("ReduceSum"))
row(aten.mean.dim)(_reduce("ReduceMean"))
row(aten.amax.default)(_reduce("ReduceMax"))
row(aten.amin.default)(_reduce("ReduceMin"))
row(aten.prod.dim_int)(_reduce("ReduceProd"))
row(aten.sum.default)(lambda L, x, *, dtype=None: _reduce("ReduceSum")(L, x, None, False))
row(aten.mean.default)(lambda L, x, *, dtype=None: _reduce("ReduceMean")(L, x, None, False))
row(aten.max.default)(lambda L, x: _reduce("ReduceMax")(L, x, None, False))
row(aten.min.default)(lambda L, x: _reduce("ReduceMin")(L, x, None, False))


@row(aten.any.dim, aten.any.dims, aten.any.default)
def _any(L: Lowering, x: SSAValue, dims: Any = None, keepdim: bool = False) -> SSAValue:
    m = L.cast(x, np.dtype(np.bool_))
    s = _reduce("ReduceMax")(L, L.cast(m, np.dtype(np.int32)), dims, keepdim) if rank(x) else L.cast(m, np.dtype(np.int32))
    return L.cast(s, np.dtype(np.bool_))


@row(aten.var.correction, aten.var.dim)
def _var(L: Lowering, x: SSAValue, dims: Any = None, *, correction: Any = None, keepdim: bool = False, unbiased: Any = None) -> SSAValue:
    r = rank(x)
    ax = _axes(dims, r)
    count = int(np.prod([spec(x)[0][a] for a in ax], dtype=np.int64))
    corr = 1 if correction is None and unbiased is None else (int(unbiased) if unbiased is not None else correction)
    d = L.op("Sub", [x, L.op("ReduceMean", [x, L.ints(ax)], {"keepdims": 1})])
    s = L.op("ReduceSum", [L.op("Mul", [d, d]), L.ints(ax)], {"keepdims": int(keepdim)})
    return L.op("Div", [s, L.const(np.asarray(max(count - corr, 0), L.out_dtype()))])


def _arg(onnx_type: str) -> Row:
    def lower(L: Lowering, x: SSAValue, dim: Any = None, keepdim: bool = False) -> SSAValue:
        if dim is None:
            x, dim = L.reshape(x, (-1,) if rank(x) else (1,)), 0
        return L.op(onnx_type, [x], {"axis": int(dim), "keepdims": int(bool(keepdim)), "select_last_index": 0})

    return lower


row(aten.argmax.default)(_arg("ArgMax"))
row(aten.argmin.default)(_arg("ArgMin"))


@row(aten.max.dim, aten.min.dim)
def _max_dim(L: Lowering, x: SSAValue, dim: int, keepdim: bool = False) -> tuple[SSAValue, SSAValue]:
    is_max = L.node is not None and L.node.target == aten.max.dim
    v = L.op("ReduceMax" if is_max else "ReduceMin", [x, L.ints([dim])], {"keepdims": int(bool(keepdim))})
    i = _arg("ArgMax" if is_max else "ArgMin")(L, x, dim, keepdim)
    return v, i


@row(aten.cumsum.default)
def _cumsum(L: Lowering, x: SSAValue, dim: int, *, dtype: Any = None) -> SSAValue:
    x = L.cast(x, L.out_dtype())
    return L.op("CumSum", [x, L.const(np.asarray(dim, np.int64))], specs=[L.out_spec()])


@row(aten.topk.default)
def _topk(L: Lowering, x: SSAValue, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> tuple[Any, Any]:
    return L.op("TopK", [x, L.ints([k])], {"axis": int(dim), "largest": int(largest), "sorted": int(sorted)},
                n_results=2, specs=[L.out_spec(0), L.out_spec(1)])


@row(aten.sort.default)
def _sort(L: Lowering, x: SSAValue, dim: int = -1, descending: bool = False) -> tuple[Any, Any]:
    n = spec(x)[0][axis(dim, rank(x))]
    return L.op("TopK", [x, L.ints([n])], {"axis": int(dim), "largest": int(descending), "sorted": 1}, n_results=2)


# -- movement -------------------------------------------------------------------------------


@row(aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.squeeze.dim, aten.squeeze.dims,
     aten.squeeze.default, aten.unsqueeze.default, aten.flatten.using_ints, aten.view_copy.default)
def _view(L: Lowering, x: SSAValue, *args: Any) -> SSAValue:
    # Every view's result shape is known: one Reshape to it covers them all.
    return L.reshape(x, L.out_spec()[0])


@row(aten.alias.default, aten.clone.default, aten.detach.default, aten.lift_fresh_copy.default, aten.contiguous.default)
def _same(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    return x  # values are immutable in the IR: a copy is the value itself


@row(aten._to_copy.default, aten.to.dtype, aten.type_as.default, torch.ops.prims.convert_element_type.default)
def _to_copy(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    return L.cast(x, L.out_dtype())


@row(aten.copy.default)
def _copy(L: Lowering, dst: SSAValue, src: SSAValue, non_blocking: bool = False) -> SSAValue:
    v = L.cast(src, L.out_dtype())
    return v if spec(v)[0] == spec(dst)[0] else L.op("Expand", [v, L.ints(spec(dst)[0])])


@row(aten.permute.default)
def _permute(L: Lowering, x: SSAValue, dims: Sequence[int]) -> SSAValue:
    return L.op("Transpose", [x], {"perm": [axis(int(d), rank(x)) for d in dims]}, specs=[L.out_spec()])


@row(aten.t.default, aten.transpose.int)
def _transpose(L: Lowering, x: SSAValue, d0: int = 0, d1: int = 1) -> SSAValue:
    r = rank(x)
    if r < 2:
        return x
    perm = list(range(r))
    a, b = axis(d0, r), axis(d1, r)
    perm[a], perm[b] = perm[b], perm[a]
    return L.op("Transpose", [x], {"perm": perm})


@row(aten.expand.default, aten.expand_copy.default, aten.broadcast_to.default)
def _expand(L: Lowering, x: SSAValue, size: Any, *, implicit: bool = False) -> SSAValue:
    shape = L.out_spec()[0]
    return x if spec(x)[0] == shape else L.op("Expand", [x, L.ints(shape)], specs=[L.out_spec()])


@row(aten.slice.Tensor, aten.slice_copy.Tensor)
def _slice(L: Lowering, x: SSAValue, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> SSAValue:
    r = rank(x)
    d = axis(dim, r)
    size = spec(x)[0][d]
    lo, hi = _bounds(start, end, size)
    if lo == 0 and hi == size and step == 1:
        return x
    return L.op("Slice", [x, L.ints([lo]), L.ints([hi]), L.ints([d]), L.ints([step])], specs=[L.out_spec()])


def _bounds(start: Any, end: Any, size: int) -> tuple[int, int]:
    lo = 0 if start is None else int(start)
    hi = size if end is None else int(end)
    lo = min(max(lo + size if lo < 0 else lo, 0), size)
    hi = min(max(hi + size if hi < 0 else hi, 0), size)
    return lo, max(hi, lo)


@row(aten.select.int)
def _select(L: Lowering, x: SSAValue, dim: int, index: int) -> SSAValue:
    return L.op("Gather", [x, L.const(np.asarray(index, np.int64))], {"axis": int(dim)}, specs=[L.out_spec()])


@row(aten.cat.default)
def _cat(L: Lowering, tensors: Sequence[SSAValue], dim: int = 0) -> SSAValue:
    dt = L.out_dtype()
    # torch lets a 1-D empty tensor join any concatenation; ONNX does not.
    parts = [L.cast(t, dt) for t in tensors if not (rank(t) == 1 and spec(t)[0][0] == 0 and len(L.out_spec()[0]) != 1)]
    if len(parts) == 1:
        return parts[0]
    r = len(L.out_spec()[0])
    return L.op("Concat", parts, {"axis": axis(int(dim), r)}, specs=[L.out_spec()])


@row(aten.split_with_sizes.default, aten.split.Tensor, aten.split_with_sizes_copy.default, aten.split_copy.Tensor)
def _split(L: Lowering, x: SSAValue, sizes: Any, dim: int = 0) -> tuple[Any, ...]:
    outs = L.val()
    lens = [int(o.shape[axis(dim, rank(x))]) for o in outs]
    if len(lens) == 1:
        return (x,)
    return L.op("Split", [x, L.ints(lens)], {"axis": axis(int(dim), rank(x))}, n_results=len(lens))


@row(aten.unbind.int)
def _unbind(L: Lowering, x: SSAValue, dim: int = 0) -> tuple[Any, ...]:
    d = axis(dim, rank(x))
    n = spec(x)[0][d]
    parts = L.op("Split", [x, L.ints([1] * n)], {"axis": d}, n_results=n) if n > 1 else (x,)
    return tuple(L.reshape(p, tuple(L.val()[k].shape)) for k, p in enumerate(parts))


@row(aten.constant_pad_nd.default)
def _pad(L: Lowering, x: SSAValue, pad: Sequence[int], value: Any = 0) -> SSAValue:
    r = rank(x)
    begins, ends = [0] * r, [0] * r
    for k in range(len(pad) // 2):  # torch pads the last axis first
        begins[r - 1 - k], ends[r - 1 - k] = int(pad[2 * k]), int(pad[2 * k + 1])
    if any(p < 0 for p in begins + ends):
        raise UnsupportedOp(f"{L.where()}: negative padding is not supported")
    return L.op("Pad", [x, L.ints(begins + ends), L.const(np.asarray(value, spec(x)[1].numpy))], {"mode": "constant"})


@row(aten.flip.default)
def _flip(L: Lowering, x: SSAValue, dims: Sequence[int]) -> SSAValue:
    r = rank(x)
    ax = [axis(int(d), r) for d in dims]
    big = np.iinfo(np.int64).max
    return L.op("Slice", [x, L.ints([-1] * len(ax)), L.ints([-big] * len(ax)), L.ints(ax), L.ints([-1] * len(ax))])


# -- creation (compile-time constants: shapes are static here) ------------------------------


@row(aten.arange.start_step, aten.arange.start, aten.arange.default)
def _arange(L: Lowering, *args: Any, **kwargs: Any) -> SSAValue:
    dt = L.out_dtype()
    n = L.out_spec()[0][0]
    start, step = (0, 1) if len(args) == 1 else (args[0], args[2] if len(args) > 2 else kwargs.get("step", 1))
    return L.const((start + np.arange(n, dtype=np.float64) * step).astype(dt))


@row(aten.full.default, aten.full_like.default, aten.zeros.default, aten.ones.default, aten.zeros_like.default,
     aten.ones_like.default, aten.empty.memory_format, aten.empty_like.default, aten.new_zeros.default,
     aten.new_ones.default, aten.new_full.default, aten.new_empty.default, aten.empty_strided.default,
     aten.scalar_tensor.default)
def _full(L: Lowering, *args: Any, **kwargs: Any) -> SSAValue:
    target = L.node.target if L.node is not None else None
    value: Any = 0
    if target in (aten.full.default, aten.full_like.default):
        value = args[1]
    elif target == aten.new_full.default:
        value = args[2]
    elif target in (aten.ones.default, aten.ones_like.default, aten.new_ones.default):
        value = 1
    elif target == aten.scalar_tensor.default:
        value = args[0]
    shape, dt = L.out_spec()
    return L.filled(value, shape, dt.numpy)


# -- indexing -----------------------------------------------------------------------------


@row(aten.embedding.default)
def _embedding(L: Lowering, w: SSAValue, idx: SSAValue, *args: Any) -> SSAValue:
    return L.op("Gather", [w, idx], {"axis": 0}, specs=[L.out_spec()])


@row(aten.index_select.default)
def _index_select(L: Lowering, x: SSAValue, dim: int, idx: SSAValue) -> SSAValue:
    return L.op("Gather", [x, idx], {"axis": axis(dim, rank(x))}, specs=[L.out_spec()])


@row(aten.gather.default)
def _gather(L: Lowering, x: SSAValue, dim: int, idx: SSAValue, *, sparse_grad: bool = False) -> SSAValue:
    return L.op("GatherElements", [x, idx], {"axis": axis(dim, rank(x))}, specs=[L.out_spec()])


def _advanced(L: Lowering, x: SSAValue, indices: Sequence[Any]) -> tuple[int, SSAValue, SSAValue]:
    """x[..., i0, i1, ...] with adjacent index tensors starting at axis k: the indexed axes
    flattened into one, and one linear index (negative indices wrapped). Returns (k, x
    with those axes flattened, the linear index)."""
    placed = [k for k, i in enumerate(indices) if i is not None]
    if not placed or placed != list(range(placed[0], placed[-1] + 1)):
        raise UnsupportedOp(f"{L.where()}: indexing with non-adjacent index tensors is not supported")
    for i in indices:
        if i is not None and spec(i)[1].numpy == np.bool_:
            raise UnsupportedOp(f"{L.where()}: indexing with a boolean mask has a data-dependent shape")
    k = placed[0]
    shape = spec(x)[0]
    sizes = [shape[k + j] for j in range(len(placed))]
    if len(placed) == 1:
        return k, x, L.cast(indices[k], np.dtype(np.int64))
    linear: SSAValue | None = None
    for j, size in enumerate(sizes):
        i = L.cast(indices[k + j], np.dtype(np.int64))
        i = L.op("Mod", [L.op("Add", [i, L.ints([size])]), L.ints([size])])  # wrap negatives
        stride = int(np.prod(sizes[j + 1:], dtype=np.int64))
        term = L.op("Mul", [i, L.ints([stride])]) if stride != 1 else i
        linear = term if linear is None else L.op("Add", [linear, term])
    assert linear is not None
    flat = L.reshape(x, (*shape[:k], int(np.prod(sizes, dtype=np.int64)), *shape[k + len(placed):]))
    return k, flat, linear


@row(aten.index.Tensor)
def _index(L: Lowering, x: SSAValue, indices: Sequence[Any]) -> SSAValue:
    k, flat, linear = _advanced(L, x, indices)
    return L.op("Gather", [flat, linear], {"axis": k}, specs=[L.out_spec()])


@row(aten.index_put.default, aten._unsafe_index_put.default)
def _index_put(L: Lowering, x: SSAValue, indices: Sequence[Any], values: SSAValue, accumulate: bool = False) -> SSAValue:
    """ScatterND over the leading indexed axes; values broadcast to the updates' shape."""
    indices = list(indices) + [None] * (rank(x) - len(indices))
    placed = [k for k, i in enumerate(indices) if i is not None]
    if placed != list(range(len(placed))):
        raise UnsupportedOp(f"{L.where()}: index_put on axes other than the leading ones is not supported")
    for i in indices:
        if i is not None and spec(i)[1].numpy == np.bool_:
            raise UnsupportedOp(f"{L.where()}: index_put with a boolean mask has a data-dependent shape")
    idx = [L.cast(indices[k], np.dtype(np.int64)) for k in placed]
    bshape = tuple(np.broadcast_shapes(*[spec(i)[0] for i in idx]))
    cols = [L.op("Unsqueeze", [L.op("Expand", [i, L.ints(bshape)]) if spec(i)[0] != bshape else i, L.ints([-1])]) for i in idx]
    stacked = cols[0] if len(cols) == 1 else L.op("Concat", cols, {"axis": -1})
    xs = spec(x)[0]
    ushape = (*bshape, *xs[len(placed):])
    dt = spec(x)[1].numpy
    updates = L.cast(values, dt)
    if spec(updates)[0] != ushape:
        updates = L.op("Expand", [updates, L.ints(ushape)])
    return L.op("ScatterND", [x, stacked, updates], {"reduction": "add" if accumulate else "none"}, specs=[L.out_spec()])


@row(aten.scatter.src, aten.scatter.value, aten.scatter_add.default, aten.scatter.reduce, aten.scatter.value_reduce)
def _scatter(L: Lowering, x: SSAValue, dim: int, idx: SSAValue, src: Any, *, reduce: str | None = None) -> SSAValue:
    dt = spec(x)[1].numpy
    if not isinstance(src, SSAValue):
        src = L.filled(src, spec(idx)[0], dt)
    elif spec(src)[0] != spec(idx)[0]:  # only the index's extent of src is scattered
        src = L.op("Slice", [src, L.ints([0] * rank(idx)), L.ints(spec(idx)[0]), L.ints(range(rank(idx)))])
    reduction = "add" if L.node is not None and L.node.target == aten.scatter_add.default else {None: "none", "add": "add", "sum": "add", "multiply": "mul"}[reduce]
    return L.op("ScatterElements", [x, idx, L.cast(src, dt)], {"axis": axis(dim, rank(x)), "reduction": reduction},
                specs=[L.out_spec()])


@row(aten.slice_scatter.default)
def _slice_scatter(L: Lowering, x: SSAValue, src: SSAValue, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> SSAValue:
    r = rank(x)
    d = axis(dim, r)
    lo, _ = _bounds(start, end, spec(x)[0][d])
    return _scatter_along(L, x, src, d, lo, step)


@row(aten.select_scatter.default)
def _select_scatter(L: Lowering, x: SSAValue, src: SSAValue, dim: int, index: int) -> SSAValue:
    d = axis(dim, rank(x))
    size = spec(x)[0][d]
    s = list(spec(src)[0])
    s.insert(d, 1)
    return _scatter_along(L, x, L.reshape(src, s), d, int(index) % size, 1)


def _scatter_along(L: Lowering, x: SSAValue, src: SSAValue, d: int, lo: int, step: int) -> SSAValue:
    """x with ``src`` written at positions lo, lo+step, ... of axis d: ScatterElements
    with a small index constant expanded to src's shape."""
    sshape = spec(src)[0]
    r = len(sshape)
    pos = (lo + np.arange(sshape[d], dtype=np.int64) * step).reshape([sshape[d] if k == d else 1 for k in range(r)])
    idx = L.const(pos)
    if tuple(pos.shape) != tuple(sshape):
        idx = L.op("Expand", [idx, L.ints(sshape)])
    return L.op("ScatterElements", [x, idx, L.cast(src, spec(x)[1].numpy)], {"axis": d}, specs=[L.out_spec()])


# -- pooling ------------------------------------------------------------------------------


@row(aten.max_pool2d_with_indices.default, aten.max_pool3d_with_indices.default)
def _max_pool(L: Lowering, x: SSAValue, kernel: Sequence[int], stride: Sequence[int] = (), padding: Any = 0,
              dilation: Any = 1, ceil_mode: bool = False) -> tuple[SSAValue, SSAValue]:
    """ONNX indexes the whole tensor ((n*C + c)*H*W + ...); torch indexes each plane: modulo H*W."""
    nd = rank(x) - 2
    kernel = _nd(kernel, nd)
    stride = _nd(stride, nd) if stride else kernel
    padding = _nd(padding, nd)
    attrs = {"kernel_shape": kernel, "strides": stride, "pads": [*padding, *padding], "dilations": _nd(dilation, nd),
             "ceil_mode": int(bool(ceil_mode))}
    y, idx = L.op("MaxPool", [x], attrs, n_results=2, specs=[L.out_spec(0), L.out_spec(1)])
    plane = int(np.prod(spec(x)[0][2:], dtype=np.int64))
    return y, L.op("Mod", [idx, L.ints([plane])])


@row(aten.max_pool2d_with_indices_backward.default, aten.max_pool3d_with_indices_backward.default)
def _max_pool_backward(L: Lowering, g: SSAValue, x: SSAValue, *args: Any) -> SSAValue:
    idx = args[-1]
    xs, gs = spec(x)[0], spec(g)[0]
    n, c = xs[0], xs[1]
    zeros = L.filled(0, (n, c, int(np.prod(xs[2:], dtype=np.int64))), spec(g)[1].numpy)
    flat_shape = (n, c, int(np.prod(gs[2:], dtype=np.int64)))
    scattered = L.op("ScatterElements", [zeros, L.reshape(idx, flat_shape), L.reshape(g, flat_shape)],
                     {"axis": 2, "reduction": "add"})
    return L.reshape(scattered, xs)


@row(aten.avg_pool2d.default, aten.avg_pool3d.default)
def _avg_pool(L: Lowering, x: SSAValue, kernel: Sequence[int], stride: Sequence[int] = (), padding: Any = 0,
              ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Any = None) -> SSAValue:
    if divisor_override is not None:
        raise UnsupportedOp(f"{L.where()}: avg_pool with divisor_override is not supported")
    nd = rank(x) - 2
    kernel = _nd(kernel, nd)
    stride = _nd(stride, nd) if stride else kernel
    padding = _nd(padding, nd)
    attrs = {"kernel_shape": kernel, "strides": stride, "pads": [*padding, *padding], "ceil_mode": int(bool(ceil_mode)),
             "count_include_pad": int(bool(count_include_pad))}
    return L.op("AveragePool", [x], attrs, specs=[L.out_spec()])


@row(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg_pool(L: Lowering, x: SSAValue, size: Sequence[int]) -> SSAValue:
    xs = spec(x)[0]
    out = _nd(size, 2)
    if any(xs[2 + i] % out[i] for i in range(2)):
        raise UnsupportedOp(f"{L.where()}: adaptive pooling to {out} from {list(xs[2:])} has uneven windows")
    k = [xs[2 + i] // out[i] for i in range(2)]
    return L.op("AveragePool", [x], {"kernel_shape": k, "strides": k}, specs=[L.out_spec()])


# -- losses -------------------------------------------------------------------------------


@row(aten.nll_loss_forward.default)
def _nll_loss(L: Lowering, x: SSAValue, target: SSAValue, weight: Any, reduction: int, ignore_index: int) -> tuple[Any, Any]:
    """-x[i, target[i]] over rows whose target is not ignore_index; reduction 0 none, 1 mean, 2 sum."""
    if weight is not None or rank(x) != 2:
        raise UnsupportedOp(f"{L.where()}: nll_loss with class weights or more than 2 dimensions is not supported")
    dt = spec(x)[1].numpy
    keep = L.op("Not", [L.op("Equal", [target, L.const(np.asarray(ignore_index, np.int64))])])
    safe = L.op("Where", [keep, target, L.const(np.asarray(0, np.int64))])
    picked = L.op("GatherElements", [x, L.op("Unsqueeze", [safe, L.ints([1])])], {"axis": 1})
    picked = L.reshape(picked, spec(target)[0])
    losses = L.op("Where", [keep, L.op("Neg", [picked]), L.const(np.asarray(0, dt))])
    total = L.op("ReduceSum", [L.cast(keep, dt), L.ints([0])], {"keepdims": 0})
    if reduction == 0:
        return losses, total
    s = L.op("ReduceSum", [losses, L.ints([0])], {"keepdims": 0})
    return (L.op("Div", [s, total]) if reduction == 1 else s), total


@row(aten.nll_loss_backward.default)
def _nll_loss_backward(L: Lowering, g: SSAValue, x: SSAValue, target: SSAValue, weight: Any, reduction: int,
                       ignore_index: int, total: SSAValue) -> SSAValue:
    dt = spec(x)[1].numpy
    keep = L.op("Not", [L.op("Equal", [target, L.const(np.asarray(ignore_index, np.int64))])])
    safe = L.op("Where", [keep, target, L.const(np.asarray(0, np.int64))])
    per_row = L.op("Neg", [g])
    if reduction == 1:
        per_row = L.op("Div", [per_row, total])
    if rank(per_row) == 0:
        per_row = L.op("Expand", [per_row, L.ints(spec(target)[0])])
    per_row = L.op("Where", [keep, per_row, L.const(np.asarray(0, dt))])
    zeros = L.filled(0, spec(x)[0], dt)
    col = L.op("Unsqueeze", [safe, L.ints([1])])
    return L.op("ScatterElements", [zeros, col, L.op("Unsqueeze", [per_row, L.ints([1])])], {"axis": 1})


# ---------------------------------------------------------------------------------------
# The graph walk

# Nodes that only assert things about shapes or values: no IR.
_CHECKS = {
    "aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default",
    "aten.sym_constrain_range.default", "aten._assert_async.msg",
}


def _op_name(target: Any) -> str:
    return str(target) if not callable(target) or isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


def unsupported_nodes(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """Nodes whose op has no row (checked before any shape is known, so a dynamic graph fails early)."""
    bad = []
    for n in gm.graph.nodes:
        if n.op != "call_function" or n.target is operator.getitem or str(n.target) in _CHECKS:
            continue
        if n.target in FX_TO_GRAPH or _is_scalar_op(n):
            continue
        bad.append(n)
    return bad


def _is_scalar_op(n: torch.fx.Node) -> bool:
    """Arithmetic on shape scalars (operator.mul, sym_size, torch.sym_max ...): evaluated
    at compile time, since the graph is specialised to concrete shapes."""
    val = n.meta.get("val")
    return isinstance(val, int | float | bool | torch.SymInt | torch.SymFloat | torch.SymBool) and not isinstance(val, torch.Tensor)


def unsupported_error(n: torch.fx.Node) -> UnsupportedOp:
    return UnsupportedOp(f"aten op {_op_name(n.target)} is not supported by graphopt (node {n.name}, "
                         f"at {source_line(n)}); use torch.compile's default backend for this model, or "
                         "add a row to graphopt.frontends.fx.FX_TO_GRAPH")


def _src(n: torch.fx.Node) -> list[str]:
    path = module_path(n)
    return [f"{path}/{n.name}" if path else n.name]


def lower_graph(
    gm: torch.fx.GraphModule,
    args: Sequence[Any] | None = None,
    weights: dict[str, Any] | None = None,
    input_names: Sequence[str] | None = None,
) -> FxImported:
    """Lower ``gm`` into a graph IR module.

    ``args``: this call's concrete inputs (needed when the graph has symbolic shapes).
    ``weights``: placeholder name -> tensor, for placeholders that are weights (parameters,
    buffers, constants of an ExportedProgram); every other tensor placeholder is an input.
    ``input_names``: names for the IR inputs (default: the placeholder names)."""
    bad = unsupported_nodes(gm)
    if bad:
        raise unsupported_error(bad[0])
    vals = concrete_values(gm, None if args is None and is_static(gm) else args)
    if args is None and not is_static(gm):
        raise GraphoptError("the graph has symbolic shapes; give the inputs of a call to specialise it")
    store = WeightStore()
    L = Lowering(vals, store)
    weights = weights or {}
    inputs: list[tuple[str, Spec]] = []
    tensor_positions: list[int] = []
    histogram: dict[str, int] = {}
    names = iter(input_names or [])
    position = -1
    for n in gm.graph.nodes:
        L.node, L.src = n, _src(n)
        if n.op == "placeholder":
            position += 1
            val = vals[n]
            if n.name in weights:
                L.values[n] = _weight(L, n.name, weights[n.name])
            elif isinstance(val, torch.Tensor):
                sp = L.out_spec()
                arg = L.block.insert_arg(_ttype(sp), len(L.block.args))
                name = next(names, n.name)
                arg.name_hint = _hint(name)
                L.values[n] = arg
                inputs.append((name, sp))
                tensor_positions.append(position)
            else:  # a SymInt placeholder: a compile-time number in this specialisation
                L.values[n] = val
            continue
        if n.op == "get_attr":
            L.values[n] = _weight(L, n.target, _attr(gm, n.target))
            continue
        if n.op == "output":
            return _finish(L, n, inputs, tensor_positions, store, histogram)
        if n.op != "call_function":
            raise GraphoptError(f"fx node {n.name}: {n.op} nodes are not supported (only call_function)")
        if str(n.target) in _CHECKS:
            continue
        if n.target is operator.getitem:
            src, k = n.args
            L.values[n] = L.values[src][k]
            continue
        if _is_scalar_op(n) or (n.target not in FX_TO_GRAPH and not isinstance(vals[n], torch.Tensor | tuple | list)):
            L.values[n] = _concrete_scalar(vals[n])
            continue
        key = _op_name(n.target)
        histogram[key] = histogram.get(key, 0) + 1
        lowered_args = _map(L, n.args)
        lowered_kwargs = {k: _map(L, v) for k, v in n.kwargs.items() if k not in ("device", "pin_memory", "layout", "memory_format", "non_blocking")}
        lowered_kwargs.pop("dtype", None) if n.target not in (aten.sum.dim_IntList, aten.mean.dim, aten.cumsum.default) else None
        try:
            result = FX_TO_GRAPH[n.target](L, *lowered_args, **lowered_kwargs)
        except TypeError as e:  # a signature the row does not take
            raise UnsupportedOp(f"{L.where()}: this form of the op is not supported ({e})") from None
        L.values[n] = result
        _check_result(L, n, result)
    raise GraphoptError("the fx graph has no output node")


def _map(L: Lowering, a: Any) -> Any:
    if isinstance(a, torch.fx.Node):
        return L.values[a]
    if isinstance(a, list | tuple):
        return type(a)(_map(L, x) for x in a)
    if isinstance(a, torch.SymInt | torch.SymFloat | torch.SymBool):
        return _concrete_scalar(a)
    return a


def _concrete_scalar(v: Any) -> Any:
    if isinstance(v, torch.SymInt):
        return int(v)
    if isinstance(v, torch.SymFloat):
        return float(v)
    if isinstance(v, torch.SymBool):
        return bool(v)
    return v


def _check_result(L: Lowering, n: torch.fx.Node, result: Any) -> None:
    """The lowering's types must be the node's: a wrong row is a bug, caught here with
    the node named, instead of as a mismatch at run time."""
    val = L.vals[n]
    pairs = list(zip(result, val)) if isinstance(result, tuple) and isinstance(val, tuple | list) else [(result, val)]
    for r, v in pairs:
        if not isinstance(r, SSAValue) or not isinstance(v, torch.Tensor):
            continue
        want = (tuple(int(d) for d in v.shape), np_dtype(v.dtype))
        have = spec(r)
        if have[0] != want[0] or have[1].numpy != want[1]:
            raise GraphoptError(f"{L.where()}: lowered to {have[1].name}{list(have[0])}, torch says "
                                f"{dtypes.from_numpy(want[1]).name}{list(want[0])} (a bug in graphopt's row for this op)")


def _finish(L: Lowering, n: torch.fx.Node, inputs: list[tuple[str, Spec]], positions: list[int], store: WeightStore,
            histogram: dict[str, int]) -> FxImported:
    (outs,) = n.args
    outs = outs if isinstance(outs, list | tuple) else [outs]
    results: list[SSAValue] = []
    kinds: list[Any] = []
    names: list[str] = []
    L.src = ["output"]
    for k, o in enumerate(outs):
        v = L.values[o] if isinstance(o, torch.fx.Node) else o
        if isinstance(v, SSAValue):
            results.append(v)
            kinds.append("tensor")
            names.append(f"output_{k}" if not isinstance(o, torch.fx.Node) else o.name)
        else:
            kinds.append(v)
    L.builder.insert(func.ReturnOp(*results))
    ftype = ([a.type for a in L.block.args], [r.type for r in results])
    fn = func.FuncOp("main", ftype, Region(L.block))
    return FxImported(ModuleOp([fn]), store, inputs, _unique(names), 0, histogram, kinds, positions)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}_{k}")
    return out


def _weight(L: Lowering, name: str, t: Any) -> SSAValue:
    if not isinstance(t, torch.Tensor):
        return t
    array = to_numpy(t)
    if array.size <= INLINE_MAX:
        op = ConstantOp(array, [name]) if array.dtype != ml_dtypes.bfloat16 else None
        if op is not None:
            L.builder.insert(op)
            return op.results[0]
    handle = L.weights.add(name, array)
    op = WeightOp(handle, _ttype((tuple(array.shape), dtypes.from_numpy(array.dtype))), [name])
    L.builder.insert(op)
    return op.results[0]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's data as numpy (bfloat16 through its bits, which numpy cannot take directly)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _attr(gm: torch.fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _ttype(sp: Spec) -> TensorType:
    return TensorType(sp[1].ir, sp[0])


def _hint(name: str) -> str | None:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else None


# ---------------------------------------------------------------------------------------
# torch.export programs


def decompose(ep: Any) -> Any:
    """An ExportedProgram in core ATen (the same ops the torch.compile path sees)."""
    from torch._decomp import core_aten_decompositions

    return ep.run_decompositions(core_aten_decompositions())


def import_exported(ep: Any) -> tuple[FxImported, list[str]]:
    """An ExportedProgram -> IR: parameters, buffers and constants become weights; user
    inputs are the IR's inputs. Returns the import and the user input names."""
    from torch.export.graph_signature import InputKind

    ep = decompose(ep)
    gm = ep.graph_module
    weights: dict[str, Any] = {}
    user: list[str] = []
    for s in ep.graph_signature.input_specs:
        name = s.arg.name
        if s.kind == InputKind.USER_INPUT:
            user.append(name)
        elif s.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            weights[name] = ep.state_dict[s.target] if s.target in ep.state_dict else ep.constants[s.target]
        elif s.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):
            weights[name] = ep.constants[s.target]
        else:
            raise GraphoptError(f"exported program input {name}: kind {s.kind.name} is not supported")
    args = None
    if not is_static(gm):  # bind dynamic dims to the example inputs the program was exported with
        args = _example_args(ep, gm, weights)
    imported = lower_graph(gm, args, weights, user)
    return imported, user


def _example_args(ep: Any, gm: torch.fx.GraphModule, weights: dict[str, Any]) -> list[Any]:
    example = getattr(ep, "example_inputs", None)
    flat: list[Any] = []
    if example is not None:
        args, kwargs = example
        flat = [*args, *kwargs.values()]
    it = iter(flat)
    out: list[Any] = []
    for n in gm.graph.nodes:
        if n.op != "placeholder":
            continue
        if n.name in weights:
            out.append(weights[n.name])
            continue
        try:
            out.append(next(it))
        except StopIteration:
            raise GraphoptError(f"exported program input {n.name} has a dynamic shape and the program keeps no "
                                "example inputs; export with static shapes") from None
    return out


Reference = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def load_pt2(path: Any) -> Any:
    """A ``.pt2`` file through ``torch.export.load``, after checking that loading it
    unpickles nothing: ``torch.export.load`` reads tensors as raw bytes, except payloads
    marked ``use_pickle`` (tensor subclasses), custom and opaque objects, and the legacy
    format, which it passes to ``pickle``/``torch.load(weights_only=False)``. Those files
    are refused."""
    import logging
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise GraphoptError(f"{p}: no such file; check the path")
    check_pt2_safe(p)
    # torch logs the real cause (with a traceback) and then raises a vague error: keep the
    # logged cause for our one line, and keep the traceback off the user's screen.
    causes: list[BaseException] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                causes.append(record.exc_info[1])

    log = logging.getLogger("torch.export")
    saved = (log.handlers[:], log.propagate)
    log.handlers[:] = [_Keep()]
    log.propagate = False
    try:
        return torch.export.load(str(p))
    except Exception as e:
        raise GraphoptError(f"{p}: cannot be loaded as a torch.export program ({_root_cause(causes[0] if causes else e)})") from None
    finally:
        log.handlers[:], log.propagate = saved


def check_pt2_safe(p: Any) -> None:
    """Refuse a .pt2 archive that torch.export.load would unpickle any part of."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            configs = [n for n in names if n.endswith(("_weights_config.json", "_constants_config.json"))]
            if not configs:
                raise GraphoptError(f"{p}: not a torch.export archive of the current format (torch.export.save "
                                    "writes one); older formats hold pickled weights, which graphopt does not load")
            for name in configs:
                config = json.loads(z.read(name)).get("config", {})
                for fqn, meta in config.items():
                    path_name = str(meta.get("path_name", ""))
                    if meta.get("use_pickle") or not path_name.startswith(("weight_", "tensor_")):
                        raise GraphoptError(f"{p}: {fqn} is stored pickled ({path_name}); graphopt loads no pickles "
                                            "from model files")
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise GraphoptError(f"{p}: not a torch.export archive ({type(e).__name__}: {e})") from None


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def import_torch(model: Any, example_inputs: Sequence[Any] | None = None) -> tuple[FxImported, Reference, str]:
    """A torch model -> (IR, an eager reference on numpy inputs, a label for reports).

    ``model``: an ExportedProgram, a ``.pt2`` path, or an ``nn.Module`` (exported here
    with ``example_inputs``)."""
    label = type(model).__name__
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        label = str(model)
        model = load_pt2(model)
    if isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise GraphoptError(f"compiling a {type(model).__name__} needs example_inputs=(...) to export it with")
        args = tuple(example_inputs) if isinstance(example_inputs, list | tuple) else (example_inputs,)
        try:
            model = torch.export.export(model, args)
        except Exception as e:
            raise GraphoptError(f"torch.export cannot capture {label}: {str(e).strip().splitlines()[0]}") from None
    if not isinstance(model, torch.export.ExportedProgram):
        raise GraphoptError(f"cannot compile a {type(model).__name__} with the torch frontend")
    imported, _ = import_exported(model)
    eager = model.module()

    def reference(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            out = eager(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])
        flat = torch.utils._pytree.tree_leaves(out)
        return [to_numpy(t) if isinstance(t, torch.Tensor) else np.asarray(t) for t in flat]

    return imported, reference, label


# -- attention (after the table's other rows; registered the same way) -------------------------


def _attention_scores(L: Lowering, q: SSAValue, k: SSAValue, mask: Any, causal: bool, scale: Any) -> SSAValue:
    """scale * q @ k^T, with the additive or boolean mask and the causal mask applied."""
    dt = spec(q)[1].numpy
    e = spec(q)[0][-1]
    r = rank(k)
    kt = L.op("Transpose", [k], {"perm": [*range(r - 2), r - 1, r - 2]})
    s = L.op("Mul", [L.op("MatMul", [q, kt]), L.const(np.asarray(scale if scale is not None else 1 / np.sqrt(e), dt))])
    lq, lk = spec(s)[0][-2], spec(s)[0][-1]
    if causal:
        keep = L.const(np.tril(np.ones((lq, lk), dtype=bool)))
        s = L.op("Where", [keep, s, L.const(np.asarray(-np.inf, dt))])
    if mask is not None:
        if spec(mask)[1].numpy == np.bool_:
            s = L.op("Where", [mask, s, L.const(np.asarray(-np.inf, dt))])
        else:
            s = L.op("Add", [s, L.cast(mask, dt)])
    return s


@row(aten._scaled_dot_product_flash_attention_for_cpu.default)
def _sdpa_cpu(L: Lowering, q: SSAValue, k: SSAValue, v: SSAValue, dropout_p: float = 0.0, is_causal: bool = False, *,
              attn_mask: Any = None, scale: Any = None) -> tuple[SSAValue, SSAValue]:
    """softmax(scale * q k^T + mask) v, and the log-sum-exp of each row (saved for backward)."""
    if dropout_p:
        raise UnsupportedOp(f"{L.where()}: attention dropout draws random numbers, which graphopt does not")
    s = _attention_scores(L, q, k, attn_mask, is_causal, scale)
    out = L.op("MatMul", [L.op("Softmax", [s], {"axis": -1}), v])
    lse = L.op("ReduceLogSumExp", [s, L.ints([-1])], {"keepdims": 0})
    return out, lse


@row(aten._scaled_dot_product_flash_attention_for_cpu_backward.default)
def _sdpa_cpu_backward(L: Lowering, go: SSAValue, q: SSAValue, k: SSAValue, v: SSAValue, out: SSAValue, lse: SSAValue,
                       dropout_p: float = 0.0, is_causal: bool = False, *, attn_mask: Any = None,
                       scale: Any = None) -> tuple[SSAValue, SSAValue, SSAValue]:
    """The attention probabilities recomputed (not from the saved ``logsumexp``: after
    the core decompositions of the forward, that operand is not always the log-sum-exp),
    then the softmax and matmul gradients."""
    dt = spec(q)[1].numpy
    e = spec(q)[0][-1]
    sc = scale if scale is not None else 1 / np.sqrt(e)
    s = _attention_scores(L, q, k, attn_mask, is_causal, scale)
    p = L.op("Softmax", [s], {"axis": -1})
    r = rank(q)
    swap = {"perm": [*range(r - 2), r - 1, r - 2]}
    gv = L.op("MatMul", [L.op("Transpose", [p], swap), go])
    gp = L.op("MatMul", [go, L.op("Transpose", [v], swap)])
    row_dot = L.op("ReduceSum", [L.op("Mul", [gp, p]), L.ints([-1])], {"keepdims": 1})
    gs = L.op("Mul", [L.op("Mul", [p, L.op("Sub", [gp, row_dot])]), L.const(np.asarray(sc, dt))])
    gq = L.op("MatMul", [gs, k])
    gk = L.op("MatMul", [L.op("Transpose", [gs], swap), q])
    return gq, gk, gv
