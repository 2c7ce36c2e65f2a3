"""Random graphs: the optimized graph computes what the unoptimized one does (cpu target).

Hypothesis builds small float32 ONNX graphs with static shapes, 3 to 15 nodes, of
elementwise ops (Add, Mul, Sub, Relu, Tanh, Sigmoid, Exp of a bounded value), broadcasts
(operands whose shapes broadcast, constants among them: scalars 0 and 1 too, which the
algebraic simplifier removes), MatMul (2-D and batched 3-D, sometimes with a bias Add; parallel projections of one value),
ReduceSum/ReduceMean (axes, keepdims), Reshape and Transpose. Each graph is compiled at
-O0, -O3 and with "fuse" alone and run on the same seeded inputs; all must agree with each
other and with onnxruntime (float32: |a - b| <= 1e-5 + 1e-4 |b|).

A failing example prints the model (its nodes, shapes and constants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort  # a required dependency of graphopt: the judge
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import graphopt

ATOL, RTOL = 1e-5, 1e-4
OPSET = 18  # axes of the Reduce ops are inputs
UNARY = ("Relu", "Tanh", "Sigmoid", "Exp")
BINARY = ("Add", "Mul", "Sub")
KINDS = ("unary", "binary", "matmul", "parallel", "reduce", "reshape", "transpose")
PIPELINES = {"-O0": dict(opt_level=0), "-O3": dict(opt_level=3), "fuse": dict(pipeline="fuse")}


@dataclass
class _Builder:
    draw: st.DrawFn
    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    values: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # produced by nodes or inputs
    bounded: set[str] = field(default_factory=set)  # values in [-1, 1]
    counter: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, array: np.ndarray) -> str:
        name = self.fresh("c")
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> str:
        out = self.fresh("v")
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}_{out}", **attrs))
        self.values.append((out, shape))
        return out

    def pick(self) -> tuple[str, tuple[int, ...]]:
        # Mostly one of the latest values (chains), sometimes any (fan-out, several users).
        n = len(self.values)
        recent = self.draw(st.booleans())
        lo = max(0, n - 3) if recent else 0
        return self.values[self.draw(st.integers(lo, n - 1))]

    def weights(self, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
        return (self.rng.uniform(-1, 1, size=shape) * scale).astype(np.float32)


def _broadcast_partner(b: _Builder, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: equal, a suffix, some dims 1, a new leading axis."""
    how = b.draw(st.sampled_from(["same", "suffix", "ones", "scalar", "lead"]))
    if how == "same" or not shape:
        return shape if how != "lead" else (b.draw(st.integers(2, 3)), *shape)
    if how == "suffix":
        return shape[b.draw(st.integers(1, len(shape))):]
    if how == "ones":
        return tuple(1 if b.draw(st.booleans()) else d for d in shape)
    if how == "scalar":
        return ()
    return (b.draw(st.integers(2, 3)), *shape) if len(shape) < 3 else shape


def _factor(n: int, rank: int, b: _Builder) -> tuple[int, ...]:
    """A random shape of ``rank`` dims whose product is n."""
    primes, k, m = [], 2, n
    while m > 1:
        while m % k == 0:
            primes.append(k)
            m //= k
        k += 1
    dims = [1] * rank
    for p in primes:
        dims[b.draw(st.integers(0, rank - 1))] *= p
    return tuple(dims)


def _step(b: _Builder, kind: str) -> bool:
    """Add one node (or a short idiom) of ``kind``; False if it does not apply here."""
    x, shape = b.pick()
    rank = len(shape)
    if kind == "unary":
        op = b.draw(st.sampled_from(UNARY))
        if op == "Exp" and x not in b.bounded:
            x = b.add("Tanh", [x], shape)
            b.bounded.add(x)
        out = b.add(op, [x], shape)
        if op in ("Tanh", "Sigmoid"):
            b.bounded.add(out)
        return True
    if kind == "binary":
        op = b.draw(st.sampled_from(BINARY))
        pshape = _broadcast_partner(b, shape)
        same_shaped = [v for v, s in b.values if s == pshape and v != x]
        source = b.draw(st.sampled_from(["const", "neutral", "value"] if same_shaped else ["const", "neutral"]))
        if source == "value":
            y = b.draw(st.sampled_from(same_shaped))
        elif source == "neutral":  # x*1, x+0, x-0: the algebraic simplifier's cases
            y = b.const(np.full(pshape, 1.0 if op == "Mul" else 0.0, np.float32))
        else:
            y = b.const(b.weights(pshape))
        operands = [x, y] if op == "Sub" or b.draw(st.booleans()) else [y, x]
        b.add(op, operands, tuple(np.broadcast_shapes(shape, pshape)))
        return True
    if kind == "matmul":
        if rank not in (2, 3):
            return False
        k, n = shape[-1], b.draw(st.integers(1, 5))
        batched = rank == 3 and b.draw(st.booleans())
        wshape = (shape[0], k, n) if batched else (k, n)
        w = b.const(b.weights(wshape, scale=1.0 / math.sqrt(k)))
        out_shape = (*shape[:-1], n)
        y = b.add("MatMul", [x, w], out_shape)
        if b.draw(st.booleans()):  # a bias: fold-matmul-add's pattern
            bias = b.const(b.weights(b.draw(st.sampled_from([(n,), (1, n), (1,)]))))
            b.add("Add", [y, bias], tuple(np.broadcast_shapes(out_shape, tuple(b.inits[-1].dims))))
        return True
    if kind == "parallel":  # two or three projections of one value, summed (QKV-like fan-out)
        if rank not in (2, 3):
            return False
        k, n = shape[-1], b.draw(st.integers(1, 4))
        out_shape = (*shape[:-1], n)
        total = None
        for _ in range(b.draw(st.integers(2, 3))):
            y = b.add("MatMul", [x, b.const(b.weights((k, n), scale=1.0 / math.sqrt(k)))], out_shape)
            if b.draw(st.booleans()):
                y = b.add("Add", [y, b.const(b.weights(b.draw(st.sampled_from([(n,), (1, n), (1,)]))))], out_shape)
            total = y if total is None else b.add("Add", [total, y], out_shape)
        return True
    if kind == "reduce":
        if rank == 0:
            return False
        op = b.draw(st.sampled_from(["ReduceSum", "ReduceMean"]))
        axes = sorted(b.draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=rank)))
        keep = b.draw(st.sampled_from([0, 1]))
        signed = [a - rank if b.draw(st.booleans()) else a for a in axes]
        out_shape = np.zeros(shape).sum(axis=tuple(axes), keepdims=bool(keep)).shape
        b.add(op, [x, b.const(np.asarray(signed, np.int64))], tuple(out_shape), keepdims=keep)
        return True
    if kind == "reshape":
        new_rank = b.draw(st.integers(1, 3))
        target = _factor(math.prod(shape), new_rank, b)
        spec = list(target)
        if b.draw(st.booleans()):
            spec[b.draw(st.integers(0, new_rank - 1))] = -1
        b.add("Reshape", [x, b.const(np.asarray(spec, np.int64))], target)
        return True
    if kind == "transpose":
        if rank < 2:
            return False
        perm = b.draw(st.permutations(range(rank)))
        b.add("Transpose", [x], tuple(shape[p] for p in perm), perm=list(perm))
        return True
    raise AssertionError(kind)


@st.composite
def random_models(draw: st.DrawFn) -> onnx.ModelProto:
    b = _Builder(draw, np.random.default_rng(draw(st.integers(0, 2**16))))
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    inputs = [helper.make_tensor_value_info("x0", TensorProto.FLOAT, shape)]
    b.values.append(("x0", shape))
    if draw(st.booleans()):
        shape1 = _broadcast_partner(b, shape)
        inputs.append(helper.make_tensor_value_info("x1", TensorProto.FLOAT, shape1))
        b.values.append(("x1", shape1))
    target = draw(st.integers(3, 15))
    while len(b.nodes) < target:
        _step(b, draw(st.sampled_from(KINDS)))
    produced = [(v, s) for v, s in b.values if not v.startswith("x")]
    outs = [produced[-1]]
    if len(produced) > 1 and draw(st.booleans()):
        extra = draw(st.sampled_from(produced[:-1]))
        outs.append(extra)
    outputs = [helper.make_tensor_value_info(v, TensorProto.FLOAT, s) for v, s in outs]
    graph = helper.make_graph(b.nodes, "random", inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _parallel_projections_with_a_one_element_bias() -> onnx.ModelProto:
    """Found by this test: two projections of x, one biased by a [1] constant (broadcast
    over the columns). merge-parallel-matmuls concatenated the biases without widening the
    [1] one, and -O2/-O3 failed with "shapes [(2, 4), (3,)] do not broadcast"."""
    inits = [
        numpy_helper.from_array(np.asarray([[0.2739, -0.4604]], np.float32), "c1"),
        numpy_helper.from_array(np.asarray([-0.9181], np.float32), "c3"),
        numpy_helper.from_array(np.asarray([[-0.9669, 0.6265]], np.float32), "c5"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x0", "c1"], ["v2"]),
        helper.make_node("Add", ["v2", "c3"], ["v4"]),
        helper.make_node("MatMul", ["x0", "c5"], ["v6"]),
        helper.make_node("Add", ["v4", "v6"], ["v7"]),
    ]
    graph = helper.make_graph(nodes, "random", [helper.make_tensor_value_info("x0", TensorProto.FLOAT, (2, 1))],
                              [helper.make_tensor_value_info("v7", TensorProto.FLOAT, (2, 2))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def _describe(model: onnx.ModelProto) -> str:
    """The nodes, and the constants' values, to rebuild the failing model from."""
    lines = [helper.printable_graph(model.graph), "constants:"]
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        lines.append(f"  %{init.name} {list(value.shape)} = {np.array2string(value, precision=4, separator=', ', threshold=64)}")
    return "\n".join(lines)


def _inputs(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
    return feeds


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, sess.run(names, feeds)))


def _mismatch(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> str | None:
    if list(got) != list(want):
        return f"outputs {list(got)} != {list(want)}"
    for name, b in want.items():
        a = np.asarray(got[name])
        b = np.asarray(b)
        if a.shape != b.shape:
            return f"{name}: shape {a.shape} != {b.shape}"
        if a.dtype != b.dtype:
            return f"{name}: dtype {a.dtype} != {b.dtype}"
        err = np.abs(a.astype(np.float64) - b.astype(np.float64))
        bad = ~(err <= ATOL + RTOL * np.abs(b.astype(np.float64)))
        if bad.any():
            i = np.unravel_index(np.argmax(bad), bad.shape)
            at = tuple(int(k) for k in i)
            return f"{name}: {int(bad.sum())}/{b.size} elements differ, first at {at}: {float(a[i])!r} vs {float(b[i])!r}"
    return None


@settings(max_examples=40, deadline=None, derandomize=True, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_models())
@example(_parallel_projections_with_a_one_element_bias())
def test_optimized_graph_computes_what_the_unoptimized_one_does(model):
    text = _describe(model)
    note(text)
    feeds = _inputs(model)
    want = _onnxruntime(model, feeds)
    results = {}
    for label, kwargs in PIPELINES.items():
        try:
            compiled = graphopt.compile(model, **kwargs)
            results[label] = compiled.run(feeds)
        except Exception as e:
            raise AssertionError(f"{label}: {type(e).__name__}: {e}\nmodel:\n{text}") from e
    reference = results["-O0"]
    problem = _mismatch(reference, want)
    assert problem is None, f"-O0 vs onnxruntime: {problem}\nmodel:\n{text}"
    for label in ("-O3", "fuse"):
        problem = _mismatch(results[label], reference)
        assert problem is None, f"{label} vs -O0: {problem}\nmodel:\n{text}"
