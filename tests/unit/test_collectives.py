"""The collectives of the graph dialect: types, IR text, passes leave them alone, and the
cpu target runs them on torch.distributed's live group (one rank here)."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from graphopt.dialects.graph import ONNX_OPS, ConstantOp
from graphopt.errors import GraphoptError
from graphopt.ir import make_context, parse_module, print_module
from graphopt.rewrite import build

IR = """builtin.module {
  func.func @main(%x: tensor<4x3xf32>) -> (tensor<4x3xf32>, tensor<8x3xf32>, tensor<2x3xf32>) {
    %s = "graph.all_reduce"(%x) <{reduce_op = "sum", group = "0", ranks = array<i64: 0, 1>}> : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %a = "graph.wait"(%s) : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %b = "graph.all_reduce"(%x) <{reduce_op = "sum", group = "0", ranks = array<i64: 0, 1>}> : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %g = "graph.all_gather"(%x) <{group_size = 2 : i64, group = "0"}> : (tensor<4x3xf32>) -> tensor<8x3xf32>
    %r = "graph.reduce_scatter"(%x) <{reduce_op = "sum", group_size = 2 : i64, group = "0"}> : (tensor<4x3xf32>) -> tensor<2x3xf32>
    func.return %a, %g, %r : tensor<4x3xf32>, tensor<8x3xf32>, tensor<2x3xf32>
  }
}
"""


def test_types_follow_the_group():
    x = ConstantOp(np.zeros((4, 3), np.float32), ["x"]).result
    assert build("graphopt::AllGather", [x], {"group_size": 2, "group": "0"}).results[0].type.get_shape() == (8, 3)
    assert build("graphopt::ReduceScatter", [x], {"group_size": 4, "reduce_op": "sum"}).results[0].type.get_shape() == (1, 3)
    assert build("graphopt::AllToAll", [x], {"input_split_sizes": [1, 3], "output_split_sizes": [2, 2]}
                 ).results[0].type.get_shape() == (4, 3)
    with pytest.raises(ValueError, match="equal parts"):
        build("graphopt::ReduceScatter", [x], {"group_size": 3, "reduce_op": "sum"})
    with pytest.raises(ValueError, match="add up"):
        build("graphopt::AllToAll", [x], {"input_split_sizes": [1, 2]})
    for t in ("AllReduce", "AllGather", "ReduceScatter", "AllToAll", "Broadcast", "Wait"):
        assert not ONNX_OPS[f"graphopt::{t}"].has_trait(Pure)  # a message every rank sends: never folded or merged


def test_ir_text_round_trips_and_verifies():
    ctx = make_context()
    module = parse_module(ctx, IR)
    module.verify()
    assert parse_module(make_context(), print_module(module)).is_structurally_equivalent(module)
    with pytest.raises(VerifyException, match=r"graph\.all_gather result 0 is declared tensor<9x3xf32>"):
        parse_module(make_context(), IR.replace("8x3", "9x3")).verify()


def test_passes_neither_fold_nor_merge_nor_fuse_them():
    from graphopt.compiler import parse_pipeline

    ctx = make_context()
    module = parse_module(ctx, IR)
    for p in parse_pipeline("fold-constants,cse,canonicalize,fuse,dce"):
        p.apply(ctx, module)
    names = [op.name for op in module.walk()]
    # two identical all-reduces stay two (each is a message every rank must send), none in a fused group;
    # the one whose result nothing reads stays too (the other ranks wait for it)
    assert names.count("graph.all_reduce") == 2 and names.count("graph.all_gather") == 1
    for op in module.walk():
        if op.name == "graph.fused":
            assert not any(o.name.startswith(("graph.all_", "graph.reduce_scatter", "graph.wait")) for o in op.walk())


def test_compiling_without_a_process_group_is_a_clear_error(tmp_path):
    from graphopt.registry import get_target

    ctx = make_context()
    module = parse_module(ctx, IR)
    with pytest.raises(GraphoptError, match=r"initialized torch\.distributed process group"):
        get_target("cpu").build(module, ctx.weights, ["x"])


@pytest.fixture
def one_rank_group(tmp_path):
    dist = pytest.importorskip("torch.distributed")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield dist
    dist.destroy_process_group()


def test_the_cpu_target_runs_them_on_the_live_group(one_rank_group):
    from graphopt.registry import get_target

    ctx = make_context()
    text = IR.replace('group = "0", ', "").replace("ranks = array<i64: 0, 1>", "ranks = array<i64: 0>")
    text = text.replace("group_size = 2 : i64, ", "group_size = 1 : i64, ")
    text = text.replace("tensor<8x3xf32>", "tensor<4x3xf32>").replace("tensor<2x3xf32>", "tensor<4x3xf32>")
    module = parse_module(ctx, text)
    module.verify()
    plan = get_target("cpu").build(module, ctx.weights, ["x"])
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    a, g, r = plan.run([x])
    np.testing.assert_array_equal(a, x)  # one rank: the sum of one
    np.testing.assert_array_equal(g, x)
    np.testing.assert_array_equal(r, x)
