"""Random ONNX graphs for differential fuzzing, each reproducible from its seed.

    case = make_case(seed)          # Case: model, shapes (dynamic dims bound), feeds, features
    model = make_graph(seed)        # the onnx.ModelProto alone

A case is built from one ``numpy.random.default_rng(seed)``: same seed, same model, same
inputs. ``exclude`` drops generator features (names in ``FEATURES``) for a whole run; it
changes which graphs a seed gives, not whether a seed is reproducible.

What the graphs hold (float32, opset 18, 3 to 14 steps, a step being one op or a short
idiom): elementwise ops and broadcasts (scalar, suffix and size-1 partners, the neutral
constants 0 and 1 the simplifier removes), MatMul / Gemm (2-D to 4-D, biases, parallel
projections of one value), reductions, Reshape / Flatten / Unsqueeze, Transpose; Conv (2-D,
groups incl. depthwise, strides, pads, dilations, auto_pad), MaxPool / AveragePool (odd
sizes, ceil_mode, pads, count_include_pad), GlobalAveragePool, BatchNormalization;
LayerNormalization (the op and the decomposed chain), Softmax / LogSoftmax, GELU chains
(the erf and tanh forms exporters write); Concat, Split, Slice (negative steps, clamped
bounds), Gather, Pad (constant, reflect, edge), Expand, Tile; an attention block (Q K^T, a scale, an optional additive mask, Softmax,
times V; one head or the multi-head Reshape/Transpose plumbing); Sum / Max / Min / Mean of
several inputs; Cast; Where; a small If and Loop; and inputs with dynamic dims, bound at
compile time by ``shapes``. Shapes are small (dims up to 9) except in 15% of the cases,
which start from a large tensor (up to 300 x 300, or 40 channels of 40 x 40) so that
ascend-sim's kernels split into several tiles.

Values stay bounded so that float16 cannot overflow: every value carries a bound on its
magnitude, and an operand past a step's limit is squashed first (Tanh, or a scaling by a
constant); Exp only sees values in [-1, 1]; normalisations see a value plus a random
constant, so their rows are never (nearly) constant, where a normalisation amplifies
rounding noise. Comparisons (Where's condition, a Cast of a mask) read graph inputs
only: a comparison of a computed value flips on rounding, and float16 rounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
IR_VERSION = 8

# Generator features: the step kinds, plus "dynamic" (input dims bound at compile time).
STEP_KINDS = (
    "unary", "binary", "matmul", "gemm", "parallel", "reduce", "reshape", "transpose",
    "conv", "pool", "global_pool", "batchnorm", "layernorm", "layernorm_chain", "softmax", "gelu",
    "concat", "split", "slice", "gather", "movement", "attention", "variadic", "cast", "where", "if", "loop",
)
FEATURES = (*STEP_KINDS, "dynamic")
CONTROL_FLOW = ("if", "loop")

UNARY = ("Relu", "Tanh", "Sigmoid", "Exp", "Abs", "Neg", "LeakyRelu", "Erf", "HardSigmoid", "Clip")
LIMIT = 16.0  # an operand past this magnitude bound is squashed before a step


@dataclass
class Case:
    """One generated graph, its compile-time shape bindings and its seeded inputs."""

    seed: int
    model: onnx.ModelProto
    shapes: dict[str, tuple[int, ...]]  # dynamic inputs -> the shapes bound at compile time
    feeds: dict[str, np.ndarray]
    features: frozenset[str]  # what the graph holds (FEATURES names)

    def describe(self) -> str:
        """The nodes, the constants' values and the bindings, to read a failing case."""
        lines = [helper.printable_graph(self.model.graph), "constants:"]
        for init in self.model.graph.initializer:
            value = numpy_helper.to_array(init)
            text = np.array2string(value, precision=4, separator=", ", threshold=32)
            lines.append(f"  %{init.name} {value.dtype}{list(value.shape)} = {text}")
        if self.shapes:
            lines.append(f"shapes: {self.shapes}")
        lines.append(f"features: {', '.join(sorted(self.features))}")
        return "\n".join(lines)


@dataclass
class _Value:
    name: str
    shape: tuple[int, ...]
    bound: float  # an upper bound on |value|


@dataclass
class _Builder:
    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    inputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    values: list[_Value] = field(default_factory=list)  # float32 values produced by nodes or inputs
    graph_inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # float inputs
    features: set[str] = field(default_factory=set)
    counter: int = 0
    onnx_infers_other_shapes: bool = False  # a shape onnx's inference gets wrong (outputs stay untyped)

    # -- random draws ----------------------------------------------------------------------
    def coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def int(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi], both ends included."""
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, seq: Iterable):
        items = list(seq)
        return items[int(self.rng.integers(len(items)))]

    def weights(self, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
        return (self.rng.uniform(-1, 1, size=shape) * scale).astype(np.float32)

    # -- graph building --------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        outs = [self.fresh("v") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"{op.lower()}_{outs[0]}", **attrs))
        return outs

    def add(self, op: str, inputs: list[str], shape: tuple[int, ...], bound: float, **attrs) -> _Value:
        """A one-output node whose float32 result joins the values later steps read."""
        (out,) = self.node(op, inputs, **attrs)
        value = _Value(out, tuple(int(d) for d in shape), float(bound))
        self.values.append(value)
        return value

    def input(self, shape: tuple[int, ...], elem: int = TensorProto.FLOAT, prefix: str = "x") -> str:
        name = f"{prefix}{len(self.inputs)}"
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        if elem == TensorProto.FLOAT:
            self.graph_inputs[name] = shape
        return name

    def pick(self, ok: Callable[[tuple[int, ...]], bool] = lambda s: True) -> _Value | None:
        """Mostly one of the latest values (chains), sometimes any (fan-out, several users)."""
        fits = [v for v in self.values if ok(v.shape)]
        if not fits:
            return None
        lo = max(0, len(fits) - 3) if self.coin() else 0
        return fits[self.int(lo, len(fits) - 1)]

    def tame(self, v: _Value, limit: float = LIMIT) -> _Value:
        """``v`` itself if its bound is within ``limit``, else v squashed into [-1, 1]."""
        if v.bound <= limit:
            return v
        if self.coin():
            return self.add("Tanh", [v.name], v.shape, 1.0)
        return self.add("Mul", [v.name, self.const(np.float32(1.0 / v.bound))], v.shape, 1.0)


def _broadcast_partner(b: _Builder, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: equal, a suffix, some dims 1, a scalar, a new leading axis."""
    how = b.choice(["same", "same", "suffix", "ones", "scalar", "lead"])
    if how == "same" or not shape:
        return shape if how != "lead" or len(shape) >= 4 else (b.int(2, 3), *shape)
    if how == "suffix":
        return shape[b.int(1, len(shape)):]
    if how == "ones":
        return tuple(1 if b.coin() else d for d in shape)
    if how == "scalar":
        return ()
    return (b.int(2, 3), *shape) if len(shape) < 4 else shape


def _factor(b: _Builder, n: int, rank: int) -> tuple[int, ...]:
    """A random shape of ``rank`` dims whose product is n."""
    primes, k, m = [], 2, n
    while m > 1:
        while m % k == 0:
            primes.append(k)
            m //= k
        k += 1
    dims = [1] * rank
    for p in primes:
        dims[b.int(0, rank - 1)] *= p
    return tuple(dims)


def _bshape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(d) for d in np.broadcast_shapes(*shapes))


def _broadcasts(*shapes: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def _operand_like(b: _Builder, shape: tuple[int, ...], x: str) -> tuple[str, float]:
    """Another operand of ``shape`` (a value of that shape, x itself, or a random constant)."""
    same = [v for v in b.values if v.shape == shape and v.name != x and v.bound <= LIMIT]
    if same and b.coin(0.6):
        v = b.choice(same)
        return v.name, v.bound
    if shape == next(v.shape for v in b.values if v.name == x) and b.coin(0.15):
        return x, 0.0  # the caller's own bound applies
    return b.const(b.weights(shape)), 1.0


# -- steps ---------------------------------------------------------------------------------


def _unary(b: _Builder) -> bool:
    x = b.tame(b.pick())
    op = b.choice(UNARY)
    if op == "Exp":
        if x.bound > 1:
            x = b.add("Tanh", [x.name], x.shape, 1.0)
        b.add("Exp", [x.name], x.shape, math.e)
    elif op in ("Tanh", "Sigmoid", "Erf", "HardSigmoid"):
        b.add(op, [x.name], x.shape, 1.0)
    elif op == "LeakyRelu":
        b.add(op, [x.name], x.shape, x.bound, alpha=float(b.choice([0.01, 0.1, 0.2])))
    elif op == "Clip":
        lo, hi = sorted(float(t) for t in b.rng.uniform(-1, 1, size=2))
        ins = [x.name, b.const(np.float32(lo)), b.const(np.float32(hi))]
        if b.coin(0.3):
            ins = ins[:2] if b.coin() else [x.name, "", ins[2]]
        b.add("Clip", ins, x.shape, x.bound)
    else:
        b.add(op, [x.name], x.shape, x.bound)
    return True


def _binary(b: _Builder) -> bool:
    x = b.tame(b.pick())
    op = b.choice(["Add", "Mul", "Sub", "Div"])
    pshape = _broadcast_partner(b, x.shape)
    same = [v for v in b.values if v.shape == pshape and v.name != x.name and v.bound <= LIMIT]
    source = b.choice(["const", "neutral", "value"] if same else ["const", "neutral"])
    if op == "Div":
        if source == "value":  # x / (1 + |y|)
            y = b.choice(same)
            y_abs = b.add("Abs", [y.name], y.shape, y.bound)
            den = b.add("Add", [y_abs.name, b.const(np.float32(1.0))], y.shape, y.bound + 1)
            b.add("Div", [x.name, den.name], _bshape(x.shape, pshape), x.bound)
            return True
        # a constant away from zero (1 itself: the simplifier's x / 1)
        c = np.full(pshape, 1.0, np.float32) if source == "neutral" else \
            (b.rng.uniform(0.5, 2.0, size=pshape) * b.rng.choice([-1, 1], size=pshape)).astype(np.float32)
        b.add("Div", [x.name, b.const(c)], _bshape(x.shape, pshape), x.bound * 2)
        return True
    if source == "value":
        y = b.choice(same)
        yname, ybound = y.name, y.bound
    elif source == "neutral":  # x*1, x+0, x-0: the algebraic simplifier's cases
        yname, ybound = b.const(np.full(pshape, 1.0 if op == "Mul" else 0.0, np.float32)), 1.0
    else:
        yname, ybound = b.const(b.weights(pshape)), 1.0
    operands = [x.name, yname] if op == "Sub" or b.coin() else [yname, x.name]
    bound = x.bound * ybound if op == "Mul" else x.bound + ybound
    b.add(op, operands, _bshape(x.shape, pshape), bound)
    return True


def _bias(b: _Builder, y: _Value, n: int) -> _Value:
    bias = b.const(b.weights(b.choice([(n,), (1, n), (1,)])))
    shape = _bshape(y.shape, tuple(b.inits[-1].dims))
    return b.add("Add", [y.name, bias] if b.coin() else [bias, y.name], shape, y.bound + 1)


def _matmul(b: _Builder) -> bool:
    x = b.pick(lambda s: 1 <= len(s) <= 4)
    if x is None:
        return False
    x = b.tame(x)
    k, n = x.shape[-1], _width(b, x.shape)
    rank = len(x.shape)
    if rank >= 3 and b.coin():  # batched weights, broadcast or full
        wshape = (*(d if b.coin() else 1 for d in x.shape[:-2]), k, n)
    else:
        wshape = (k, n) if rank > 1 or b.coin() else (k,)
    w = b.const(b.weights(wshape, scale=1.0 / math.sqrt(k)))
    out = np.matmul(np.zeros(x.shape, np.float32), np.zeros(wshape, np.float32)).shape
    y = b.add("MatMul", [x.name, w], out, x.bound * math.sqrt(k))
    if len(wshape) > 1 and b.coin():  # a bias: fold-matmul-add's pattern
        _bias(b, y, n)
    return True


def _width(b: _Builder, shape: tuple[int, ...]) -> int:
    """A matmul's output width: narrow, or for a large input as wide as layers are (and
    off the cube's 16-element fractal, sometimes)."""
    if math.prod(shape) >= 4096 and b.coin(0.7):
        return b.choice([16, 31, 64, 100, 128])
    return b.int(1, 6)


def _gemm(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) == 2)
    if x is None:
        return False
    x = b.tame(x)
    m, k = x.shape
    n = _width(b, x.shape)
    trans_a, trans_b = b.coin(0.3), b.coin()
    a = x.name
    if trans_a:  # Gemm reads A transposed: give it x^T
        a = b.add("Transpose", [x.name], (k, m), x.bound, perm=[1, 0]).name
    w = b.const(b.weights((n, k) if trans_b else (k, n), scale=1.0 / math.sqrt(k)))
    alpha = float(b.choice([1.0, 1.0, 0.5, 2.0]))
    ins = [a, w]
    beta = 1.0
    if b.coin(0.7):
        ins.append(b.const(b.weights(b.choice([(n,), (1, n), (m, n), (1,), (m, 1)]))))
        beta = float(b.choice([1.0, 1.0, 0.5]))
    b.add("Gemm", ins, (m, n), alpha * x.bound * math.sqrt(k) + 1, alpha=alpha, beta=beta,
          transA=int(trans_a), transB=int(trans_b))
    return True


def _parallel(b: _Builder) -> bool:
    """Two or three projections of one value, summed (QKV-like fan-out)."""
    x = b.pick(lambda s: len(s) in (2, 3))
    if x is None:
        return False
    x = b.tame(x)
    k, n = x.shape[-1], b.int(1, 5)
    out_shape = (*x.shape[:-1], n)
    total = None
    for _ in range(b.int(2, 3)):
        y = b.add("MatMul", [x.name, b.const(b.weights((k, n), scale=1.0 / math.sqrt(k)))], out_shape, x.bound * math.sqrt(k))
        if b.coin():
            y = _bias(b, y, n)
        total = y if total is None else b.add("Add", [total.name, y.name], out_shape, total.bound + y.bound)
    return True


def _reduce(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    op = b.choice(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare"])
    x = b.tame(x, 4.0 if op == "ReduceSumSquare" else LIMIT)
    rank = len(x.shape)
    keep = b.int(0, 1)
    if b.coin(0.15):  # no axes: every axis
        axes = list(range(rank))
        ins = [x.name]
    else:
        axes = sorted(int(a) for a in b.rng.choice(rank, size=b.int(1, rank), replace=False))
        signed = [a - rank if b.coin() else a for a in axes]
        ins = [x.name, b.const(np.asarray(signed, np.int64))]
    out = np.zeros(x.shape).sum(axis=tuple(axes), keepdims=bool(keep)).shape
    n = math.prod(x.shape[a] for a in axes)
    bound = {"ReduceSum": x.bound * n, "ReduceSumSquare": x.bound**2 * n}.get(op, x.bound)
    b.add(op, ins, out, bound, keepdims=keep)
    return True


def _reshape(b: _Builder) -> bool:
    x = b.pick()
    how = b.choice(["reshape", "reshape", "flatten", "unsqueeze"])
    if how == "flatten" and x.shape:
        axis = b.int(-len(x.shape), len(x.shape))
        a = axis + len(x.shape) if axis < 0 else axis
        b.add("Flatten", [x.name], (math.prod(x.shape[:a]), math.prod(x.shape[a:])), x.bound, axis=axis)
        return True
    if how == "unsqueeze" and len(x.shape) < 4:
        ax = b.int(0, len(x.shape))
        shape = list(x.shape)
        shape.insert(ax, 1)
        y = b.add("Unsqueeze", [x.name, b.const(np.asarray([ax - len(shape) if b.coin() else ax], np.int64))], tuple(shape), x.bound)
        if b.coin():  # and back (squeeze-unsqueeze pairs fold away)
            b.add("Squeeze", [y.name, b.const(np.asarray([ax], np.int64))], x.shape, x.bound)
        return True
    new_rank = b.int(1, 4)
    target = _factor(b, math.prod(x.shape), new_rank)
    spec = list(target)
    if b.coin():
        spec[b.int(0, new_rank - 1)] = -1
    elif b.coin(0.3):  # 0 copies the input's dim where it matches
        for i in range(min(new_rank, len(x.shape))):
            if spec[i] == x.shape[i] and b.coin():
                spec[i] = 0
    b.add("Reshape", [x.name, b.const(np.asarray(spec, np.int64))], target, x.bound)
    return True


def _transpose(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 2)
    if x is None:
        return False
    perm = [int(p) for p in b.rng.permutation(len(x.shape))]
    b.add("Transpose", [x.name], tuple(x.shape[p] for p in perm), x.bound, perm=perm)
    return True


def _conv_out(size: int, k: int, stride: int, dil: int, pad: int) -> int:
    return (size + pad - dil * (k - 1) - 1) // stride + 1


def _conv(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) == 4)
    if x is None:
        return False
    x = b.tame(x)
    n, c, h, w = x.shape
    groups = b.choice([1, 1, c, *(g for g in range(2, c) if c % g == 0)])
    m = groups * b.int(1, 3) if groups > 1 else (b.int(1, 8) if math.prod(x.shape) < 4096 else b.choice([8, 17, 32, 48]))
    big = min(h, w) >= 12
    kh, kw = b.int(1, 5 if big else 3), b.int(1, 5 if big else 3)
    strides = [b.int(1, 3 if big else 2), b.int(1, 3 if big else 2)]
    dil = [b.int(1, 2) if b.coin(0.3) else 1 for _ in range(2)]
    attrs: dict = {"group": groups, "strides": strides, "dilations": dil, "kernel_shape": [kh, kw]}
    auto = b.choice(["NOTSET"] * 6 + ["SAME_UPPER", "SAME_LOWER", "VALID"])
    if auto.startswith("SAME") and dil != [1, 1]:
        auto = "NOTSET"  # onnxruntime, the judge, has no dilated SAME convolution
    if auto == "NOTSET":
        pads = [b.int(0, 2) for _ in range(4)]
        attrs["pads"] = pads
        oh = _conv_out(h, kh, strides[0], dil[0], pads[0] + pads[2])
        ow = _conv_out(w, kw, strides[1], dil[1], pads[1] + pads[3])
    else:
        attrs["auto_pad"] = auto
        if auto == "VALID":
            oh = _conv_out(h, kh, strides[0], dil[0], 0)
            ow = _conv_out(w, kw, strides[1], dil[1], 0)
        else:
            oh, ow = -(-h // strides[0]), -(-w // strides[1])
    if oh < 1 or ow < 1:
        return False
    fan_in = c // groups * kh * kw
    ins = [x.name, b.const(b.weights((m, c // groups, kh, kw), scale=1.0 / math.sqrt(fan_in)))]
    if b.coin(0.7):
        ins.append(b.const(b.weights((m,))))
    y = b.add("Conv", ins, (n, m, oh, ow), x.bound * math.sqrt(fan_in) + 1, **attrs)
    if b.coin(0.3):  # Conv + Relu, the usual epilogue
        b.add("Relu", [y.name], y.shape, y.bound)
    return True


def _pool(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) == 4)
    if x is None:
        return False
    n, c, h, w = x.shape
    op = b.choice(["MaxPool", "AveragePool"])
    k = [b.int(1, min(3, h + 1)), b.int(1, min(3, w + 1))]
    strides = [b.int(1, 3), b.int(1, 3)]
    pads = [b.int(0, k[0] - 1), b.int(0, k[1] - 1), b.int(0, k[0] - 1), b.int(0, k[1] - 1)]
    ceil = b.int(0, 1)
    dil = [1, 1]
    attrs: dict = {"kernel_shape": k, "strides": strides, "pads": pads, "ceil_mode": ceil}
    if op == "MaxPool" and b.coin(0.25):
        dil = [b.int(1, 2), b.int(1, 2)]
        attrs["dilations"] = dil
    if op == "AveragePool":
        attrs["count_include_pad"] = b.int(0, 1)
    out, trimmed = [], False
    for i, size in enumerate((h, w)):
        span = size + pads[i] + pads[i + 2] - dil[i] * (k[i] - 1) - 1
        if span < 0:
            return False
        o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
        if ceil and (o - 1) * strides[i] >= size + pads[i]:
            # The last window must start inside the input or its begin padding (the ONNX
            # spec, onnxruntime, onnx.reference); onnx's shape inference keeps it.
            o -= 1
            trimmed = True
        # A dilated window can miss every element (pads 1, kernel 2, dilation 2 over a
        # size 1): the spec leaves its value open (onnxruntime: the lowest float,
        # onnx.reference: 0), so no case has one.
        starts = [j * strides[i] - pads[i] for j in range(o)]
        if any(not any(0 <= t + dil[i] * q < size for q in range(k[i])) for t in starts):
            return False
        out.append(o)
    if trimmed:
        # onnx's inference (onnxruntime's too) then gives the pool, and what follows, other
        # shapes, and onnxruntime rejects a later op whose operand has the true one: keep
        # these rarer (the import's handling of them has its test).
        if b.coin(0.7):
            return False
        b.onnx_infers_other_shapes = True
    b.add(op, [x.name], (n, c, *out), x.bound, **attrs)
    return True


def _global_pool(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) in (3, 4))
    if x is None:
        return False
    op = b.choice(["GlobalAveragePool", "GlobalAveragePool", "GlobalMaxPool"])
    b.add(op, [x.name], (*x.shape[:2], *(1 for _ in x.shape[2:])), x.bound)
    return True


def _batchnorm(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 2)
    if x is None:
        return False
    x = b.tame(x)
    c = x.shape[1]
    scale = b.rng.uniform(0.5, 1.5, size=c).astype(np.float32)
    bias = b.weights((c,))
    mean = b.weights((c,), scale=0.5)
    var = b.rng.uniform(0.5, 1.5, size=c).astype(np.float32)
    ins = [x.name, *(b.const(a) for a in (scale, bias, mean, var))]
    b.add("BatchNormalization", ins, x.shape, (x.bound + 0.5) * 1.5 / math.sqrt(0.5) + 1,
          epsilon=float(b.choice([1e-5, 1e-3])))
    return True


def _varied(b: _Builder, x: _Value, axes_shape: tuple[int, ...]) -> _Value:
    """x squashed into [-1/2, 1/2] plus a spread constant over the normalised axes (evenly
    spaced values in [-2, 2], shuffled), so that every row's standard deviation is at least
    about 0.6: a normalisation divides by it, and float16 rounding of a nearly constant
    row would be amplified past any tolerance (seed 148 found that, with 3-element rows)."""
    x = b.tame(x, 0.5)
    if x.bound > 0.5:
        x = b.add("Mul", [x.name, b.const(np.float32(0.5))], x.shape, 0.5)
    n = math.prod(axes_shape)
    spread = b.rng.permutation(np.linspace(-2, 2, n) if n > 1 else np.zeros(1)).reshape(axes_shape)
    return b.add("Add", [x.name, b.const(spread.astype(np.float32))], x.shape, x.bound + 2)


def _layernorm(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    rank = len(x.shape)
    axis = b.int(0, rank - 1) if b.coin(0.4) else rank - 1
    norm = x.shape[axis:]
    x = _varied(b, x, norm)
    ins = [x.name, b.const(b.rng.uniform(0.5, 1.5, size=norm).astype(np.float32))]
    if b.coin(0.7):
        ins.append(b.const(b.weights(norm)))
    b.add("LayerNormalization", ins, x.shape, 1.5 * math.sqrt(math.prod(norm)) + 1,
          axis=axis - rank if b.coin() else axis, epsilon=float(b.choice([1e-5, 1e-6, 1e-12])))
    return True


def _layernorm_chain(b: _Builder) -> bool:
    """The decomposed layer norm older exporters write (recognize-layernorm's pattern)."""
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    rank = len(x.shape)
    first = rank - 1 if b.coin(0.7) else b.int(0, rank - 1)
    norm = x.shape[first:]
    x = _varied(b, x, norm)
    axes = b.const(np.asarray(list(range(first, rank)), np.int64))
    mean = b.add("ReduceMean", [x.name, axes], (*x.shape[:first], *(1 for _ in norm)), x.bound, keepdims=1)
    d = b.add("Sub", [x.name, mean.name], x.shape, 2 * x.bound)
    sq = b.add("Pow", [d.name, b.const(np.float32(2.0))], x.shape, d.bound**2) if b.coin() else \
        b.add("Mul", [d.name, d.name], x.shape, d.bound**2)
    var = b.add("ReduceMean", [sq.name, axes], mean.shape, sq.bound, keepdims=1)
    eps = b.add("Add", [var.name, b.const(np.float32(1e-5))], mean.shape, sq.bound)
    std = b.add("Sqrt", [eps.name], mean.shape, math.sqrt(sq.bound))
    bound = 1.5 * math.sqrt(math.prod(norm)) + 1
    if b.coin():
        y = b.add("Div", [d.name, std.name], x.shape, bound)
    else:
        inv = b.add("Reciprocal", [std.name], mean.shape, 1e3)
        y = b.add("Mul", [d.name, inv.name], x.shape, bound)
    if b.coin(0.7):
        y = b.add("Mul", [y.name, b.const(b.rng.uniform(0.5, 1.5, size=norm).astype(np.float32))], x.shape, bound)
        if b.coin():
            b.add("Add", [y.name, b.const(b.weights(norm))], x.shape, bound)
    return True


def _softmax(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    x = b.tame(x, 8.0)
    rank = len(x.shape)
    axis = b.int(-rank, rank - 1) if b.coin(0.4) else -1
    if b.coin(0.2):
        b.add("LogSoftmax", [x.name], x.shape, 2 * x.bound + math.log(x.shape[axis]) + 1, axis=axis)
    else:
        b.add("Softmax", [x.name], x.shape, 1.0, axis=axis)
    return True


def _gelu(b: _Builder) -> bool:
    """GELU as exporters write it: the erf form or the tanh form, in several arrangements."""
    x = b.tame(b.pick(), 4.0)
    s = x.shape

    def scalar(v: float) -> str:
        return b.const(np.float32(v))

    if b.coin():  # erf form: 0.5 * x * (1 + erf(x / sqrt(2)))
        if b.coin():
            t = b.add("Div", [x.name, scalar(math.sqrt(2.0))], s, x.bound)
        else:
            t = b.add("Mul", [x.name, scalar(1 / math.sqrt(2.0))], s, x.bound)
        inner = b.add("Erf", [t.name], s, 1.0)
    else:  # tanh form: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        if b.coin():
            cube = b.add("Pow", [x.name, scalar(3.0)], s, x.bound**3)
        else:
            sq = b.add("Mul", [x.name, x.name], s, x.bound**2)
            cube = b.add("Mul", [sq.name, x.name], s, x.bound**3)
        c = b.add("Mul", [cube.name, scalar(0.044715)], s, cube.bound)
        inner_sum = b.add("Add", [x.name, c.name], s, cube.bound + x.bound)
        scaled = b.add("Mul", [inner_sum.name, scalar(math.sqrt(2 / math.pi))], s, inner_sum.bound)
        inner = b.add("Tanh", [scaled.name], s, 1.0)
    one_plus = b.add("Add", [inner.name, scalar(1.0)] if b.coin() else [scalar(1.0), inner.name], s, 2.0)
    where = b.choice(["x", "product", "sum"])
    if where == "x":
        half = b.add("Mul", [x.name, scalar(0.5)], s, x.bound)
        b.add("Mul", [half.name, one_plus.name], s, x.bound * 2)
    elif where == "product":
        p = b.add("Mul", [x.name, one_plus.name], s, x.bound * 2)
        b.add("Mul", [p.name, scalar(0.5)], s, x.bound)
    else:
        half = b.add("Mul", [one_plus.name, scalar(0.5)], s, 1.0)
        b.add("Mul", [x.name, half.name], s, x.bound)
    return True


def _concat(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    rank = len(x.shape)
    axis = b.int(0, rank - 1)
    parts, total, bound = [x.name], x.shape[axis], x.bound
    for _ in range(b.int(1, 2)):
        fits = [v for v in b.values if len(v.shape) == rank and v.name != x.name
                and all(d == e for i, (d, e) in enumerate(zip(v.shape, x.shape)) if i != axis)]
        if fits and b.coin(0.6):
            v = b.choice(fits)
            parts.append(v.name)
            total += v.shape[axis]
            bound = max(bound, v.bound)
        elif b.coin(0.2):
            parts.append(x.name)
            total += x.shape[axis]
        else:
            d = b.int(1, 3)
            parts.append(b.const(b.weights((*x.shape[:axis], d, *x.shape[axis + 1:]))))
            total += d
    b.rng.shuffle(parts)
    b.add("Concat", parts, (*x.shape[:axis], total, *x.shape[axis + 1:]), bound, axis=axis - rank if b.coin() else axis)
    return True


def _split(b: _Builder) -> bool:
    x = b.pick(lambda s: any(d >= 2 for d in s))
    if x is None:
        return False
    rank = len(x.shape)
    axis = b.choice([i for i, d in enumerate(x.shape) if d >= 2])
    size = x.shape[axis]
    signed_axis = axis - rank if b.coin() else axis
    if b.coin():  # explicit sizes
        k = b.int(2, min(size, 3))
        cuts = sorted(int(c) for c in b.rng.choice(np.arange(1, size), size=k - 1, replace=False))
        sizes = [e - s for s, e in zip([0, *cuts], [*cuts, size])]
        outs = b.node("Split", [x.name, b.const(np.asarray(sizes, np.int64))], n_out=k, axis=signed_axis)
    else:  # num_outputs: equal parts, the last one smaller
        k = b.int(2, min(size, 3))
        part = -(-size // k)
        if part * (k - 1) >= size:
            return False
        sizes = [part] * (k - 1) + [size - part * (k - 1)]
        outs = b.node("Split", [x.name], n_out=k, axis=signed_axis, num_outputs=k)
    for name, s in zip(outs, sizes):
        b.values.append(_Value(name, (*x.shape[:axis], s, *x.shape[axis + 1:]), x.bound))
    if b.coin(0.5) and len(outs) >= 2:  # recombine two parts (both used)
        a, c = b.values[-len(outs)], b.values[-1]
        if a.shape == c.shape:
            b.add(b.choice(["Add", "Mul"]), [a.name, c.name], a.shape, a.bound * max(c.bound, 1) + c.bound)
    return True


def _slice(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    rank = len(x.shape)
    axes = [int(a) for a in b.rng.choice(rank, size=b.int(1, rank), replace=False)]
    starts, ends, steps, index = [], [], [], [slice(None)] * rank
    big = np.iinfo(np.int64).max
    for a in axes:
        d = x.shape[a]
        step = b.choice([1, 1, 1, 2, 3, -1, -2])
        if step > 0:
            s = b.int(-d - 2, d - 1)
            e = b.choice([b.int(-d, d + 2), big, d])
        else:
            s = b.choice([b.int(-d, d + 2), big, -1])
            e = b.choice([b.int(-d - 2, d - 1), -big, -d - 1])
        starts.append(s)
        ends.append(e)
        steps.append(step)
        # numpy reproduces ONNX's clamping for these bounds
        index[a] = slice(s, e, step)
    out = np.zeros(x.shape)[tuple(index)].shape
    if 0 in out:
        return False
    ins = [x.name, b.const(np.asarray(starts, np.int64)), b.const(np.asarray(ends, np.int64))]
    if b.coin(0.8) or any(st != 1 for st in steps):
        ins.append(b.const(np.asarray([a - rank if b.coin(0.3) else a for a in axes], np.int64)))
        if any(st != 1 for st in steps) or b.coin():
            ins.append(b.const(np.asarray(steps, np.int64)))
    elif axes != list(range(len(axes))):
        return False  # without axes, starts and ends are for axes 0..k-1
    b.add("Slice", ins, out, x.bound)
    return True


def _gather(b: _Builder) -> bool:
    x = b.pick(lambda s: len(s) >= 1)
    if x is None:
        return False
    rank = len(x.shape)
    axis = b.int(0, rank - 1)
    d = x.shape[axis]
    ishape = b.choice([(), (b.int(1, 4),), (b.int(1, 3), b.int(1, 3))])
    indices = b.rng.integers(-d, d, size=ishape).astype(np.int64)
    out = (*x.shape[:axis], *ishape, *x.shape[axis + 1:])
    b.add("Gather", [x.name, b.const(indices)], out, x.bound, axis=axis - rank if b.coin(0.3) else axis)
    return True


def _movement(b: _Builder) -> bool:
    """Pad (constant, reflect, edge; negative pads crop), Expand, Tile."""
    x = b.pick(lambda s: 1 <= len(s) <= 4 and math.prod(s) <= 20000)
    if x is None:
        return False
    rank = len(x.shape)
    op = b.choice(["Pad", "Pad", "Expand", "Tile"])
    if op == "Pad":
        mode = b.choice(["constant", "constant", "reflect", "edge"])
        axes = sorted(int(a) for a in b.rng.choice(rank, size=b.int(1, rank), replace=False))
        pads = []
        for _ in range(2):  # begins, then ends
            for a in axes:
                d = x.shape[a]
                hi = d - 1 if mode == "reflect" else 3
                pads.append(b.int(-1 if d > 2 and mode == "constant" else 0, max(hi, 0)))
        out = list(x.shape)
        for i, a in enumerate(axes):
            out[a] += pads[i] + pads[i + len(axes)]
        if min(out) < 1:
            return False
        ins = [x.name, b.const(np.asarray(pads, np.int64))]
        if mode == "constant" and b.coin():
            ins.append(b.const(np.float32(b.rng.uniform(-1, 1))))
        if axes != list(range(rank)) or b.coin(0.3):
            ins += [""] * (3 - len(ins)) + [b.const(np.asarray([a - rank if b.coin(0.3) else a for a in axes], np.int64))]
        b.add("Pad", ins, tuple(out), max(x.bound, 1.0), mode=mode)
        return True
    if op == "Expand":
        target = [d if d != 1 or b.coin(0.3) else b.int(2, 3) for d in x.shape]
        lead = [b.int(1, 3)] if rank < 4 and b.coin(0.3) else []
        spec = [*lead, *(1 if d == t and b.coin(0.3) else t for d, t in zip(x.shape, target))]
        b.add("Expand", [x.name, b.const(np.asarray(spec, np.int64))], (*lead, *target), x.bound)
        return True
    reps = [b.int(1, 3) if b.coin(0.5) else 1 for _ in x.shape]
    b.add("Tile", [x.name, b.const(np.asarray(reps, np.int64))], tuple(d * r for d, r in zip(x.shape, reps)), x.bound)
    return True


def _attention(b: _Builder) -> bool:
    """Q K^T * scale [+ mask] -> Softmax -> * V, from projections of one [B, S, D] value;
    one head, or heads split by Reshape/Transpose and merged back (recognize-attention's
    multi-head plumbing)."""
    x = b.pick(lambda s: len(s) == 3)
    if x is None:
        return False
    x = b.tame(x, 2.0)
    bsz, seq, dim = x.shape
    heads = b.choice([1, 1, 2, 3])
    dh = b.int(1, 4) if dim < 32 else b.choice([4, 16, 32, 64])
    inner = heads * dh

    def proj() -> _Value:
        w = b.const(b.weights((dim, inner), scale=1.0 / math.sqrt(dim)))
        y = b.add("MatMul", [x.name, w], (bsz, seq, inner), x.bound * math.sqrt(dim))
        if b.coin(0.3):
            y = b.add("Add", [y.name, b.const(b.weights((inner,)))], y.shape, y.bound + 1)
        return y

    q, k, v = proj(), proj(), proj()
    multi = heads > 1 or b.coin(0.3)
    if multi:
        def split_heads(t: _Value, perm: list[int]) -> _Value:
            r = b.add("Reshape", [t.name, b.const(np.asarray([bsz, seq, heads, dh], np.int64))], (bsz, seq, heads, dh), t.bound)
            shape = tuple((bsz, seq, heads, dh)[p] for p in perm)
            return b.add("Transpose", [r.name], shape, t.bound, perm=perm)

        q, kt, v = split_heads(q, [0, 2, 1, 3]), split_heads(k, [0, 2, 3, 1]), split_heads(v, [0, 2, 1, 3])
        sshape = (bsz, heads, seq, seq)
    else:
        kt = b.add("Transpose", [k.name], (bsz, inner, seq), k.bound, perm=[0, 2, 1])
        sshape = (bsz, seq, seq)
    s = b.add("MatMul", [q.name, kt.name], sshape, q.bound * k.bound * dh)
    scale = 1.0 / math.sqrt(dh)
    if b.coin():
        s = b.add("Mul", [s.name, b.const(np.float32(scale))], sshape, s.bound * scale)
    else:
        s = b.add("Div", [s.name, b.const(np.float32(math.sqrt(dh)))], sshape, s.bound * scale)
    mask = b.choice(["none", "causal", "random", "input"])
    if mask != "none":
        mshape = b.choice([(seq, seq), (1, seq, seq), (bsz, 1, seq, seq) if multi else (bsz, seq, seq)])
        if mask == "causal":
            m = np.triu(np.full((seq, seq), -1e4, np.float32), 1)
            name = b.const(np.broadcast_to(m, mshape).copy())
        elif mask == "random":
            name = b.const(b.weights(mshape, scale=2.0))
        else:
            name = b.input(mshape, prefix="mask")
        # The bound is true (the causal mask's -1e4 included), so that a later step reading
        # the masked scores squashes them first: in float16, -1e4 minus its mean cancels
        # to noise and its square overflows (seed 20166). The Softmax reads them as they are.
        s = b.add("Add", [s.name, name], sshape, s.bound + (1e4 if mask == "causal" else 2))
    p = b.add("Softmax", [s.name], sshape, 1.0, axis=-1)
    y = b.add("MatMul", [p.name, v.name], (*sshape[:-1], dh if multi else inner), v.bound)
    if multi:
        t = b.add("Transpose", [y.name], (bsz, seq, heads, dh), y.bound, perm=[0, 2, 1, 3])
        b.add("Reshape", [t.name, b.const(np.asarray([bsz, seq, inner], np.int64))], (bsz, seq, inner), y.bound)
    return True


def _variadic(b: _Builder) -> bool:
    x = b.tame(b.pick())
    op = b.choice(["Sum", "Max", "Min", "Mean"])
    names, shape, total, peak = [x.name], x.shape, x.bound, x.bound
    for _ in range(b.int(1, 3)):
        pshape = _broadcast_partner(b, x.shape)
        if not _broadcasts(shape, pshape):
            pshape = x.shape
        same = [v for v in b.values if v.shape == pshape and v.bound <= LIMIT]
        if same and b.coin(0.6):
            v = b.choice(same)
            names.append(v.name)
            total, peak = total + v.bound, max(peak, v.bound)
        else:
            names.append(b.const(b.weights(pshape)))
            total, peak = total + 1, max(peak, 1.0)
        shape = _bshape(shape, pshape)
    b.rng.shuffle(names)
    b.add(op, names, shape, total if op == "Sum" else peak)
    return True


def _cast(b: _Builder) -> bool:
    how = b.choice(["fp16", "fp16", "mask", "double"])
    if how == "mask":  # a comparison of an input, as a 0/1 float (comparisons read inputs only)
        inputs = [(n, s) for n, s in b.graph_inputs.items()]
        name, shape = b.choice(inputs)
        op = b.choice(["Greater", "Less"])
        (cmp,) = b.node(op, [name, b.const(np.float32(0.0))])
        y = b.add("Cast", [cmp], shape, 1.0, to=TensorProto.FLOAT)
        x = b.pick(lambda s: s == shape)
        if x is not None and x.name != y.name:
            b.add("Mul", [x.name, y.name], shape, x.bound)
        return True
    if how == "fp16":
        # To float16 and back: only a graph input, whose value every side has exactly; a
        # computed value differs in its last float32 bits between sides, and rounding to
        # float16 can turn that into a float16 step (seed 4258).
        name, shape = b.choice(list(b.graph_inputs.items()))
        x = _Value(name, shape, 1.0)
    else:  # to double and back: exact
        x = b.tame(b.pick())
    to = TensorProto.FLOAT16 if how == "fp16" else TensorProto.DOUBLE
    (mid,) = b.node("Cast", [x.name], to=to)
    b.add("Cast", [mid], x.shape, x.bound, to=TensorProto.FLOAT)
    return True


def _where(b: _Builder) -> bool:
    x = b.tame(b.pick())
    fits = [(n, s) for n, s in b.graph_inputs.items() if _broadcasts(s, x.shape)]
    if b.coin() or not fits:
        shape = _broadcast_partner(b, x.shape)
        cond = b.input(shape, TensorProto.BOOL, prefix="m")
    else:
        name, shape = b.choice(fits)
        (cond,) = b.node(b.choice(["Greater", "Less", "GreaterOrEqual"]), [name, b.const(np.float32(0.0))])
    oshape = _broadcast_partner(b, x.shape)
    if not _broadcasts(shape, x.shape, oshape):
        oshape = x.shape
    other, bound = _operand_like(b, oshape, x.name)
    bound = max(bound, x.bound)
    ins = [cond, x.name, other] if b.coin() else [cond, other, x.name]
    b.add("Where", ins, _bshape(shape, x.shape, oshape), bound)
    return True


def _subgraph_const(b: _Builder, array: np.ndarray) -> tuple[onnx.NodeProto, str]:
    name = b.fresh("k")
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name + "_t")), name


def _if(b: _Builder) -> bool:
    """If on a boolean input, each branch a short elementwise chain of an outer value."""
    x = b.tame(b.pick())
    cond = b.input((), TensorProto.BOOL, prefix="cond")
    branches = []
    for tag in ("then", "else"):
        out = b.fresh(f"{tag}_y")
        k_node, k = _subgraph_const(b, b.weights(x.shape))
        op = b.choice(["Add", "Mul", "Sub"])
        mid = b.fresh(f"{tag}_t")
        nodes = [k_node, helper.make_node(op, [x.name, k], [mid]),
                 helper.make_node(b.choice(["Tanh", "Relu", "Sigmoid"]), [mid], [out])]
        branches.append(helper.make_graph(nodes, f"{tag}_branch", [],
                                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, x.shape)]))
    b.add("If", [cond], x.shape, x.bound * 2 + 1, then_branch=branches[0], else_branch=branches[1])
    return True


def _loop(b: _Builder) -> bool:
    """A Loop with a constant trip count carrying one value (v = tanh(v * w + c)), with or
    without a scan output of each iteration's value."""
    x = b.tame(b.pick(lambda s: len(s) <= 3) or b.values[0])
    if len(x.shape) > 3:
        return False
    trips = b.int(1, 4)
    it, cond_in, v_in = b.fresh("it"), b.fresh("cin"), b.fresh("vin")
    cond_out, v_out, scan = b.fresh("cout"), b.fresh("vout"), b.fresh("scan")
    w_node, w = _subgraph_const(b, b.weights(x.shape))
    c_node, c = _subgraph_const(b, b.weights(x.shape, 0.5))
    t1, t2 = b.fresh("t"), b.fresh("t")
    nodes = [w_node, c_node,
             helper.make_node("Identity", [cond_in], [cond_out]),
             helper.make_node("Mul", [v_in, w], [t1]),
             helper.make_node("Add", [t1, c], [t2]),
             helper.make_node("Tanh", [t2], [v_out])]
    with_scan = b.coin()
    outs = [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
            helper.make_tensor_value_info(v_out, TensorProto.FLOAT, x.shape)]
    if with_scan:
        nodes.append(helper.make_node("Identity", [v_out], [scan]))
        outs.append(helper.make_tensor_value_info(scan, TensorProto.FLOAT, x.shape))
    body = helper.make_graph(nodes, "loop_body",
                             [helper.make_tensor_value_info(it, TensorProto.INT64, []),
                              helper.make_tensor_value_info(cond_in, TensorProto.BOOL, []),
                              helper.make_tensor_value_info(v_in, TensorProto.FLOAT, x.shape)], outs)
    ins = [b.const(np.asarray(trips, np.int64)), b.const(np.asarray(True)), x.name]
    outs_names = b.node("Loop", ins, n_out=2 if with_scan else 1, body=body)
    b.values.append(_Value(outs_names[0], x.shape, 1.0))
    if with_scan:
        b.values.append(_Value(outs_names[1], (trips, *x.shape), 1.0))
    return True


STEPS: dict[str, Callable[[_Builder], bool]] = {
    "unary": _unary, "binary": _binary, "matmul": _matmul, "gemm": _gemm, "parallel": _parallel,
    "reduce": _reduce, "reshape": _reshape, "transpose": _transpose, "conv": _conv, "pool": _pool,
    "global_pool": _global_pool, "batchnorm": _batchnorm, "layernorm": _layernorm,
    "layernorm_chain": _layernorm_chain, "softmax": _softmax, "gelu": _gelu, "concat": _concat,
    "split": _split, "slice": _slice, "gather": _gather, "movement": _movement, "attention": _attention,
    "variadic": _variadic, "cast": _cast, "where": _where, "if": _if, "loop": _loop,
}
# Vision steps need a 4-D value: an image input makes them likely; control flow is rarer.
_WEIGHT = {"if": 0.3, "loop": 0.3, "attention": 0.7}


def _start_shape(b: _Builder) -> tuple[int, ...]:
    if b.coin(0.15):  # large enough that kernels split into several tiles (ascend-sim's UB, L1, L0)
        how = b.choice(["image", "seq", "any"])
        if how == "image":
            return (b.int(1, 2), b.choice([3, 16, 24, 32, 40]), b.int(12, 40), b.int(12, 40))
        if how == "seq":
            return (b.int(1, 2), b.int(16, 130), b.choice([32, 64, 96, 128, 200]))
        return (b.int(17, 300), b.int(17, 300))
    how = b.choice(["image", "image", "seq", "any"])
    if how == "image":  # N, C, H, W with odd sizes common
        return (b.int(1, 2), b.choice([1, 2, 3, 4, 6, 8]), b.int(3, 9), b.int(3, 9))
    if how == "seq":  # B, S, D: attention-shaped
        return (b.int(1, 2), b.int(1, 6), b.choice([2, 4, 6, 8]))
    return tuple(b.int(1, 5) for _ in range(b.int(1, 3)))


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    return out


def make_case(seed: int, exclude: Iterable[str] = ()) -> Case:
    """The graph of ``seed`` (without the generator features in ``exclude``), checked by
    onnx's checker and shape inference against the shapes the generator tracked."""
    excluded = set(exclude)
    unknown = excluded - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown generator features {sorted(unknown)}; known: {', '.join(FEATURES)}")
    rng = np.random.default_rng(seed)
    kinds = [k for k in STEP_KINDS if k not in excluded]
    b = _Builder(rng)
    shape = _start_shape(b)
    x0 = b.input(shape)
    b.values.append(_Value(x0, shape, 1.0))
    if b.coin(0.4):
        shape1 = _broadcast_partner(b, shape)
        b.values.append(_Value(b.input(shape1), shape1, 1.0))
    probs = np.asarray([_WEIGHT.get(k, 1.0) for k in kinds])
    probs /= probs.sum()
    target = b.int(3, 14)
    steps = attempts = 0
    while steps < target and attempts < 200:
        attempts += 1
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        if STEPS[kind](b):
            b.features.add(kind)
            steps += 1
    produced = [v for v in b.values if v.name not in b.graph_inputs]
    if not produced:
        produced = [b.add("Relu", [x0], shape, 1.0)]
    outs = [produced[-1]]
    if len(produced) > 1 and b.coin():
        extra = b.choice(produced[:-1])
        if extra.name != outs[0].name:
            outs.append(extra)
    outputs = [helper.make_tensor_value_info(
        v.name, TensorProto.FLOAT, [f"{v.name}_d{i}" for i in range(len(v.shape))] if b.onnx_infers_other_shapes else v.shape)
        for v in outs]
    graph = helper.make_graph(b.nodes, f"fuzz_{seed}", b.inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    # onnx's strict shape inference rejects a model holding a pool whose shape it gets wrong
    onnx.checker.check_model(model, full_check=not b.onnx_infers_other_shapes)
    inferred = {} if b.onnx_infers_other_shapes else _inferred_shapes(model)
    for v in b.values:
        got = inferred.get(v.name, v.shape)  # None: a dim onnx leaves unknown (a Loop's trip count)
        if len(got) != len(v.shape) or any(g is not None and g != d for g, d in zip(got, v.shape)):
            raise AssertionError(f"seed {seed}: the generator tracked {v.name} as {v.shape}, onnx infers {inferred[v.name]}")
    feeds = _feeds(model, seed)
    shapes: dict[str, tuple[int, ...]] = {}
    if "dynamic" not in excluded and b.coin(0.25):
        shapes = _make_dynamic(b, model)
        b.features.add("dynamic")
    model.metadata_props.extend([
        onnx.StringStringEntryProto(key="fuzz.seed", value=str(seed)),
        onnx.StringStringEntryProto(key="fuzz.shapes", value=json.dumps({k: list(v) for k, v in shapes.items()})),
        onnx.StringStringEntryProto(key="fuzz.features", value=",".join(sorted(b.features))),
    ])
    return Case(seed, model, shapes, feeds, frozenset(b.features))


def _make_dynamic(b: _Builder, model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Some dims of the float inputs become named parameters (a batch dim shared by the
    inputs whose first dim agrees, others per input); outputs lose their static shapes.
    Returns the bindings that compile needs."""
    shapes = {}
    float_inputs = [vi for vi in model.graph.input if vi.type.tensor_type.elem_type == TensorProto.FLOAT]
    for vi in float_inputs:
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            continue
        shapes[vi.name] = tuple(d.dim_value for d in dims)
        for i, d in enumerate(dims):
            if (i == 0 and b.coin(0.8)) or b.coin(0.3):
                size = d.dim_value
                d.Clear()
                # inputs sharing a batch size share its name
                d.dim_param = f"batch{size}" if i == 0 else f"{vi.name}_d{i}"
    for vo in model.graph.output:
        for i, d in enumerate(vo.type.tensor_type.shape.dim):
            if b.coin(0.5):
                d.Clear()
                d.dim_param = f"{vo.name}_d{i}"
    onnx.checker.check_model(model)
    return {k: v for k, v in shapes.items()
            if any(d.HasField("dim_param") for d in next(i for i in model.graph.input if i.name == k).type.tensor_type.shape.dim)}


def _feeds(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    """Inputs from their own stream of the seed: floats uniform in [-1, 1), booleans coins."""
    rng = np.random.default_rng([seed, 1])
    feeds = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        shape = tuple(d.dim_value for d in t.shape.dim)
        if t.elem_type == TensorProto.BOOL:
            feeds[vi.name] = np.asarray(rng.random(shape) < 0.5)
        else:
            feeds[vi.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
    return feeds


def make_graph(seed: int, exclude: Iterable[str] = ()) -> onnx.ModelProto:
    """The model of ``make_case(seed)``; its metadata holds the seed and the shape bindings."""
    return make_case(seed, exclude).model


def case_from_model(model: onnx.ModelProto) -> Case:
    """A case rebuilt from a saved model (its metadata: seed, shapes, features), for
    rerunning a reduced or hand-edited graph; inputs are drawn from the seed again."""
    meta = {p.key: p.value for p in model.metadata_props}
    seed = int(meta.get("fuzz.seed", "0"))
    shapes = {k: tuple(v) for k, v in json.loads(meta.get("fuzz.shapes", "{}")).items()}
    static = onnx.ModelProto()
    static.CopyFrom(model)
    for vi in static.graph.input:
        if vi.name in shapes:
            for d, size in zip(vi.type.tensor_type.shape.dim, shapes[vi.name]):
                d.Clear()
                d.dim_value = size
    features = frozenset(f for f in meta.get("fuzz.features", "").split(",") if f)
    return Case(seed, model, shapes, _feeds(static, seed), features)
