"""What a training step's graph needs from ascend-sim, each checked for numerics against
onnxruntime and for placement (no AI CPU kernel): sums across rows (a weight gradient),
softmax over a vocabulary-long row, a transposed matmul operand, a fused group no single
kernel holds."""

from __future__ import annotations

import pytest
from onnx import TensorProto as T
from onnx import helper as h

import graphopt

F32, F16 = T.FLOAT, T.FLOAT16


def _model(nodes, inputs, outputs, inits=()):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                     [h.make_tensor_value_info(n, t, s) for n, t, s in outputs], list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid("", 18)])


def _compiled(model):
    c = graphopt.compile(model, "ascend-sim", validate=True, target_options={"precision": "must_keep_origin_dtype"})
    kinds = {k["name"]: k["kind"] for k in c.report["timing"]["kernels"]}
    assert "aicpu" not in kinds.values(), kinds
    return c, kinds


@pytest.mark.parametrize("dtype", [F32, F16])
@pytest.mark.parametrize("axes, shape, out", [([0, 1], [2, 512, 96], [96]), ([1], [2, 8, 256, 64], [2, 256, 64])])
def test_sum_across_rows_runs_on_the_cube(dtype, axes, shape, out):
    m = _model([h.make_node("Mul", ["x", "y"], ["m"]), h.make_node("ReduceSum", ["m", "axes"], ["s"], keepdims=0)],
               [("x", dtype, shape), ("y", dtype, shape)], [("s", dtype, out)],
               [h.make_tensor("axes", T.INT64, [len(axes)], axes)])
    _, kinds = _compiled(m)
    assert "cube" in kinds.values()


@pytest.mark.parametrize("op, dtype", [("LogSoftmax", F32), ("Softmax", F16), ("ReduceMax", F32), ("ReduceMean", F32)])
def test_long_rows_split_in_two_levels(op, dtype):
    reduce = op.startswith("Reduce")
    node = h.make_node(op, ["x", "axes"] if reduce else ["x"], ["y"], **({"keepdims": 1} if reduce else {}))
    inits = [h.make_tensor("axes", T.INT64, [1], [-1])] if reduce else []
    m = _model([node], [("x", dtype, [4, 32000])], [("y", dtype, [4, 1] if reduce else [4, 32000])], inits)
    _, kinds = _compiled(m)
    assert len(kinds) > 1  # the two levels


def test_a_prime_row_length_is_left_as_it_is():
    """No divisor splits 32003 into chunks that fit: the op keeps its (AI CPU) placement, said in a remark."""
    m = _model([h.make_node("Softmax", ["x"], ["y"])], [("x", F32, [2, 32003])], [("y", F32, [2, 32003])])
    c = graphopt.compile(m, "ascend-sim", validate=True, target_options={"precision": "must_keep_origin_dtype"})
    assert c.report["timing"]["kernels"][0]["kind"] == "aicpu"


@pytest.mark.parametrize("perm_a, perm_b", [(True, False), (False, True), (True, True)])
def test_transposed_matmul_operand_is_read_transposed(perm_a, perm_b):
    nodes, a, b = [], "a", "b"
    if perm_a:
        nodes.append(h.make_node("Transpose", ["a"], ["at"], perm=[1, 0]))
        a = "at"
    if perm_b:
        nodes.append(h.make_node("Transpose", ["b"], ["bt"], perm=[1, 0]))
        b = "bt"
    nodes.append(h.make_node("MatMul", [a, b], ["y"]))
    m = _model(nodes, [("a", F32, [256, 128] if perm_a else [128, 256]), ("b", F32, [512, 256] if perm_b else [256, 512])],
               [("y", F32, [128, 512])])
    c, kinds = _compiled(m)
    assert list(kinds.values()) == ["cube"]
    assert "graph.transpose" not in c.ir


def test_a_group_no_kernel_holds_is_unfused_not_sent_to_the_ai_cpu():
    """A scalar computed among rows (the loss scale of a cross-entropy backward) made the
    fused group one tile of the whole [2048, 2048] tensor."""
    m = _model([h.make_node("Div", ["s", "n"], ["d"]), h.make_node("Mul", ["x", "d"], ["y"])],
               [("x", F32, [2048, 2048]), ("s", F32, []), ("n", F32, [])], [("y", F32, [2048, 2048])])
    c, _ = _compiled(m)
    assert any(str(r.get("reason", "")).startswith("unfused") for r in c.report["remarks"])
