"""The precision rule of fused chains: fusing never changes a result's numerics.

Each op of a fused kernel (a cube kernel's epilogue, a vector chain) computes in the dtype
``Numerics.compute`` gives it under the precision mode and rounds its result to that dtype
in UB, exactly what the op alone would compute and store in GM; only the cube accumulates
wider (fp32 in L0C) and rounds when FixPipe copies out, fused or not. CANN's UB fusion works
the same way: the fused ops are the same vector instructions on the same UB dtypes. The
timing model prices each vector instruction by the width of the UB buffers it writes, which
the same rule sets, so the functional simulator and the timing model agree on it."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import graphopt
from graphopt.targets.ascend.dialect import VecOp
from graphopt.targets.ascend.vector import Numerics


def chain(k: float, cube: bool):
    """[MatMul ->] x*k -> Exp -> Log -> Sigmoid: an epilogue after a matmul, or a vector chain."""
    rng = np.random.default_rng(0)
    nodes, x = [], "x"
    inits = [h.make_tensor("k", T.FLOAT, [], [k])]
    if cube:
        inits.append(nh.from_array((rng.standard_normal((64, 64)) * 0.2).astype(np.float32), "W"))
        nodes.append(h.make_node("MatMul", ["x", "W"], ["m"], name="mm"))
        x = "m"
    nodes += [h.make_node("Mul", [x, "k"], ["a"], name="scale"), h.make_node("Exp", ["a"], ["b"], name="exp"),
              h.make_node("Log", ["b"], ["c"], name="log"), h.make_node("Sigmoid", ["c"], ["y"], name="sig")]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [32, 64])],
                     [h.make_tensor_value_info("y", T.FLOAT, [32, 64])], inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


def _vector_widths(compiled) -> collections.Counter:
    """(op, UB dtype it writes) of every vector instruction of the compiled model."""
    found: collections.Counter = collections.Counter()
    for kernel in compiled.executable.kernels:
        for op in kernel.walk():
            if isinstance(op, VecOp) and op.op.data in ("Mul", "Exp", "Log", "Sigmoid"):
                found[(op.op.data, str(op.outs[0].type.element_type))] += 1
    return found


@pytest.mark.parametrize("cube", [True, False], ids=["epilogue", "vector-chain"])
@pytest.mark.parametrize("precision", ["force_fp16", "allow_mix_precision"])
@pytest.mark.parametrize("k", [1.5, 25.0], ids=["in-range", "overflows"])
def test_fused_computes_as_unfused(monkeypatch, cube, precision, k):
    x = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)
    results, widths = {}, {}
    for level in (0, 2):
        for mode in ("tile", "whole"):
            monkeypatch.setenv("GRAPHOPT_ASCEND_SIM_MODE", mode)
            c = graphopt.compile(chain(k, cube), "ascend-sim", opt_level=level, target_options={"precision": precision})
            results[(level, mode)] = c.run({"x": x})["y"]
            widths[level] = _vector_widths(c)
        kernels = len(c.executable.kernels)
        assert (kernels == 1) if level == 2 else (kernels >= 4)  # fused into one kernel at -O2, one per op at -O0
    base = results[(0, "tile")]
    for key, value in results.items():
        np.testing.assert_array_equal(value, base, err_msg=str(key))  # bit for bit, NaN and inf included
    assert widths[0] == widths[2]  # the timing model prices the same instruction widths
    num = Numerics.of(precision)
    short = {"float16": "f16", "float32": "f32"}
    for op, width in widths[2]:  # ... which are the rule's: Numerics.compute of each op
        assert width == short[num.compute(op, num.store(np.dtype(np.float32))).name], (op, width)
