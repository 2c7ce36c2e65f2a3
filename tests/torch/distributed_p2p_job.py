"""One rank of the point-to-point check (test_distributed.py, 2 ranks, gloo): rank 0's
compiled graph sends relu(x) with graph.send; rank 1's receives it with graph.recv and adds 1.
Each graph is IR text compiled for the cpu target and run on the live group."""

from __future__ import annotations

import numpy as np
import torch.distributed as dist

from graphopt.ir import make_context, parse_module
from graphopt.registry import get_target

SENDER = """builtin.module {
  func.func @main(%x: tensor<4x3xf32>) -> tensor<4x3xf32> {
    %a = "graph.relu"(%x) : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %s = "graph.send"(%a) <{peer = 1 : i64, ranks = array<i64: 0, 1>}> : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %w = "graph.wait"(%s) : (tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %w : tensor<4x3xf32>
  }
}
"""
RECEIVER = """builtin.module {
  func.func @main(%one: tensor<4x3xf32>) -> tensor<4x3xf32> {
    %r = "graph.recv"() <{peer = 0 : i64, shape = array<i64: 4, 3>, dtype = 1 : i64, ranks = array<i64: 1, 0>}> : () -> tensor<4x3xf32>
    %w = "graph.wait"(%r) : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %y = "graph.add"(%w, %one) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }
}
"""


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    ctx = make_context()
    module = parse_module(ctx, SENDER if rank == 0 else RECEIVER)
    module.verify()
    plan = get_target("cpu").build(module, ctx.weights, ["x" if rank == 0 else "one"])
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    (out,) = plan.run([x if rank == 0 else np.ones((4, 3), np.float32)])
    expected = np.maximum(x, 0) if rank == 0 else np.maximum(x, 0) + 1
    np.testing.assert_array_equal(out, expected)
    print(f"OK p2p rank {rank}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
