"""Every op the ascend target runs on its cube or vector unit, on both bundled chips, against
the cpu target (R13: one record per op). Tolerances are fp16's (force_fp16 is the default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphopt

CHIPS = ["ascend910b", "ascend310p"]


@dataclass(frozen=True)
class Rec:
    op: str
    shapes: tuple[tuple[int, ...], ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: tuple[tuple[int, ...], ...] = ()  # constant inputs after the runtime ones
    unit: str = "vector"
    opset: int = 20


RECORDS = [
    Rec("Add", ((4, 33), (33,))),
    Rec("Sub", ((2, 8, 16), (2, 8, 16))),
    Rec("Mul", ((3, 40), (3, 1))),
    Rec("Div", ((64,), (64,))),
    Rec("Max", ((5, 7), (5, 7))),
    Rec("Relu", ((6, 50),)),
    Rec("Exp", ((300,),)),
    Rec("Sigmoid", ((2, 3, 17),)),
    Rec("Tanh", ((9, 9),)),
    Rec("Sqrt", ((4, 4),)),
    Rec("Gelu", ((4, 32),)),
    Rec("Softmax", ((4, 6, 20),), {"axis": -1}),
    Rec("LogSoftmax", ((3, 12),), {"axis": 1}),
    Rec("ReduceMean", ((4, 5, 6),), {"keepdims": 1}, ((1,),)),
    Rec("ReduceMax", ((4, 5, 6),), {"keepdims": 0}, ((1,),)),
    Rec("ReduceSum", ((4, 5, 6),), {"keepdims": 0}, ((2,),)),  # two axes, as torch's sum(dim=(-1, -2))
    Rec("LayerNormalization", ((2, 8, 32),), {"axis": -1}, ((32,), (32,))),
    # The 3-D form tiles x by (batch, position) rows with the caches' matching rows.
    Rec("RotaryEmbedding", ((2, 6, 32),), {"num_heads": 4}, ((2, 6, 4), (2, 6, 4)), opset=23),
    Rec("RotaryEmbedding", ((1, 2, 6, 8),), {}, ((1, 6, 4), (1, 6, 4)), opset=23),
    Rec("GlobalAveragePool", ((1, 8, 5, 5),)),
    Rec("MaxPool", ((1, 4, 8, 8),), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    Rec("AveragePool", ((1, 4, 8, 8),), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    Rec("MatMul", ((2, 5, 40),), {}, ((40, 24),), "cube"),
    Rec("MatMul", ((2, 3, 8, 16), (2, 3, 16, 8)), {}, (), "cube"),
    # 1-D operands (numpy semantics): a row vector, a column vector, a dot product, a row
    # vector against a batch of matrices.
    Rec("MatMul", ((40,),), {}, ((40, 24),), "cube"),
    Rec("MatMul", ((2, 5, 40),), {}, ((40,),), "cube"),
    Rec("MatMul", ((40,), (40,)), {}, (), "cube"),
    Rec("MatMul", ((16,), (3, 16, 8)), {}, (), "cube"),
    Rec("Gemm", ((7, 20),), {"transB": 1, "alpha": 0.5, "beta": 2.0}, ((12, 20), (12,)), "cube"),
    Rec("Conv", ((1, 3, 9, 9),), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}, ((8, 3, 3, 3), (8,)), "cube"),
    Rec("Conv", ((2, 4, 6, 6),), {"kernel_shape": [3, 3], "group": 2}, ((6, 2, 3, 3),), "cube"),
    # Depthwise with a bias: one channel per group, its bias a copy under one 32 B block.
    Rec("Conv", ((2, 16, 6, 6),), {"kernel_shape": [3, 3], "group": 16, "pads": [1, 1, 1, 1]}, ((16, 1, 3, 3), (16,)), "cube"),
    Rec("Transpose", ((3, 4, 5),), {"perm": [2, 0, 1]}),
    Rec("Concat", ((2, 3), (2, 5)), {"axis": 1}),
]


def _model(rec: Rec) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(s)) for i, s in enumerate(rec.shapes)]
    inits = []
    names = [f"x{i}" for i in range(len(rec.shapes))]
    for j, s in enumerate(rec.weights):
        if rec.op.startswith("Reduce"):
            axes = [2 if rec.op == "ReduceMean" else 1] if s == (1,) else list(range(-1, -1 - s[0], -1))
            inits.append(helper.make_tensor(f"w{j}", TensorProto.INT64, list(s), axes))
        else:
            inits.append(helper.make_tensor(f"w{j}", TensorProto.FLOAT, list(s), rng.uniform(-1, 1, s).astype(np.float32).ravel().tolist()))
        names.append(f"w{j}")
    node = helper.make_node(rec.op, names, ["y"], **rec.attrs)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", rec.opset)])
    return onnx.shape_inference.infer_shapes(model)


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: f"{r.op}-{'x'.join(map(str, r.shapes[0]))}")
def test_op_matches_cpu(rec: Rec, chip: str) -> None:
    model = _model(rec)
    rng = np.random.default_rng(1)
    feeds = {f"x{i}": rng.uniform(-1, 1, s).astype(np.float32) for i, s in enumerate(rec.shapes)}
    ours = graphopt.compile(model, target=f"ascend-sim:{chip}")
    ref = graphopt.compile(model, target="cpu").run(feeds)["y"]
    kinds = {k["kind"] for k in ours.report["kernels"]}
    assert "aicpu" not in kinds, ours.report["aicpu"]
    assert rec.unit in kinds
    for mode in ("tile", "whole"):
        ours.executable.mode = mode  # type: ignore[attr-defined]
        got = ours.run(feeds)["y"]
        np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-2 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize(("a", "w", "bias"), [
    ((2, 5, 40), (40,), (5,)),  # B a vector: N dropped, the bias runs along the cube's M
    ((2, 5, 40), (40,), (2, 5)),
    ((40,), (40, 24), (24,)),  # A a vector: M dropped
    ((16,), (3, 16, 8), (3, 1)),
])
def test_vector_matmul_epilogue_matches_cpu(a: tuple[int, ...], w: tuple[int, ...], bias: tuple[int, ...], chip: str) -> None:
    # A 1-D MatMul operand with a fused epilogue (Relu, then a broadcast Add).
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    out = list(np.broadcast_shapes(np.matmul(np.zeros(a), np.zeros(w)).shape, bias))
    inits = [numpy_helper.from_array(rng.uniform(-1, 1, s).astype(np.float32), n) for n, s in (("w", w), ("b", bias))]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["r"]),
             helper.make_node("Add", ["r", "b"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(a))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    feeds = {"x": rng.uniform(-1, 1, a).astype(np.float32)}
    ref = graphopt.compile(model, target="cpu").run(feeds)["y"]
    ours = graphopt.compile(model, target=f"ascend-sim:{chip}")
    assert [k["kind"] for k in ours.report["kernels"]] == ["cube"]
    for mode in ("tile", "whole"):
        ours.executable.mode = mode  # type: ignore[attr-defined]
        np.testing.assert_allclose(ours.run(feeds)["y"], ref, rtol=1e-2, atol=1e-2)
