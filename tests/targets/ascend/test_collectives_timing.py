"""Collectives on ascend-sim: priced by the cluster's link model (HCCL's formulas), on their
own stream; the overlap pass hides them behind compute."""

from __future__ import annotations

import math

import pytest

from graphopt.compiler import build_compiled
from graphopt.frontends.onnx import Imported
from graphopt.ir import make_context, parse_module
from graphopt.registry import get_target
from graphopt.targets.ascend.cluster import collective_time, load_cluster

# A backward step's shape: a layer's weight gradient (4 MB) all-reduced across 8 ranks,
# written (as a naive capture would) right before its wait at the end, after three matmuls
# of 1024^3 that do not depend on it.
STEP = """builtin.module {
  func.func @main(%x: tensor<1024x1024xf32>, %w: tensor<1024x1024xf32>, %g: tensor<1024x1024xf32>)
      -> (tensor<1024x1024xf32>, tensor<1024x1024xf32>) {
    %a = "graph.matmul"(%x, %w) : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    %b = "graph.matmul"(%a, %w) : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    %c = "graph.matmul"(%b, %w) : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    %r = "graph.all_reduce"(%g) <{reduce_op = "sum", group = "0", ranks = array<i64: 0, 1, 2, 3, 4, 5, 6, 7>}> {src = ["grad_ar"]} : (tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    %d = "graph.wait"(%r) {src = ["grad_wait"]} : (tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    func.return %c, %d : tensor<1024x1024xf32>, tensor<1024x1024xf32>
  }
}
"""


def _compile(pipeline: str, text: str = STEP, **options):
    ctx = make_context()
    module = parse_module(ctx, text)
    spec = ((1024, 1024), None)
    from graphopt import dtypes

    spec = ((1024, 1024), dtypes.from_numpy(__import__("numpy").dtype("float32")))
    imported = Imported(module, ctx.weights, [("x", spec), ("w", spec), ("g", spec)], ["c", "d"], 17)
    target = get_target("ascend-sim", **options)
    return build_compiled(imported, target, pipeline=f"{pipeline}ascend-layout,ascend-lower" if pipeline else
                          "ascend-layout,ascend-lower")


def test_the_link_model_follows_hcclss_formulas():
    c = load_cluster("atlas-800t-a2")
    n = 64 * 2**20
    mesh = collective_time(c, "AllReduce", n, list(range(8)))
    a, b, g = c.hccs_alpha_us, 1e6 / c.hccs_link_bytes_per_s, 1e6 / c.reduce_bytes_per_s
    assert mesh.us == pytest.approx(2 * a + 2 * n / 8 * b + 7 / 8 * n * g) and "mesh" in mesh.algorithm
    two = collective_time(c, "AllReduce", n, list(range(16)))
    rs = a + n / 8 * b + 7 / 8 * n * g
    ag = a + n / 8 * b
    m, ar, br = n / 8, c.roce_alpha_us, 1e6 / c.roce_nic_bytes_per_s
    inter = 2 * math.log2(2) * ar + 2 * (1 / 2) * m * br + (1 / 2) * m * g
    assert two.us == pytest.approx(rs + inter + ag) and "RHD" in two.algorithm
    # the fitted HCCS link reproduces the measured 8-card all-gather (149 GB/s algorithm bandwidth)
    gather = collective_time(c, "AllGather", 1 << 30, list(range(8)))
    assert (1 << 30) / (gather.us * 1e-6) / 1e9 == pytest.approx(149, rel=0.05)
    assert collective_time(c, "AllReduce", n, [3]).us == 0.0


def test_collectives_are_timed_on_their_own_stream_and_the_overlap_pass_hides_them():
    late = _compile("")
    early = _compile("overlap-collectives,")
    t_late, t_early = late.report["timing"], early.report["timing"]
    for t in (t_late, t_early):
        (c,) = t["collectives"]
        assert c["op"] == "AllReduce" and c["ranks"] == 8 and c["bytes"] == 1024 * 1024 * 2  # float16 on the device
        assert c["us"] > 0 and "mesh" in c["algorithm"]
    compute = sum(k["time_us"] for k in t_late["kernels"])
    comm = t_late["collective_us"]
    # issued at the end, the all-reduce is all exposed: compute then communication
    assert t_late["collective_hidden_us"] == pytest.approx(0.0, abs=1e-6)
    assert t_late["total_us"] == pytest.approx(compute + comm, rel=1e-6)
    # issued first, it runs behind the three matmuls
    assert t_early["collective_hidden_us"] == pytest.approx(min(comm, compute), rel=1e-3)
    assert t_early["total_us"] == pytest.approx(max(compute, comm), rel=1e-3) and t_early["total_us"] < t_late["total_us"]


def test_the_pass_moves_the_collective_up_and_keeps_the_wait_late():
    from graphopt.compiler import parse_pipeline

    ctx = make_context()
    module = parse_module(ctx, STEP)
    for p in parse_pipeline("overlap-collectives"):
        p.apply(ctx, module)
    module.verify()
    names = [op.name for op in module.walk() if op.name.startswith("graph.")]
    assert names[0] == "graph.all_reduce" and names.index("graph.wait") > names.index("graph.matmul")


def test_a_collective_without_ranks_is_a_clear_error():
    from graphopt.errors import GraphoptError

    text = STEP.replace(', ranks = array<i64: 0, 1, 2, 3, 4, 5, 6, 7>', '')
    with pytest.raises(GraphoptError, match="ranks are unknown"):
        _compile("", text)


def test_a_cluster_file_is_checked(tmp_path):
    from graphopt.errors import GraphoptError

    bad = tmp_path / "c.toml"
    bad.write_text('[cluster]\nname = "x"\nchip = "ascend910b"\nchips_per_server = 8\n')
    with pytest.raises(GraphoptError, match="source tag"):
        load_cluster(bad)


def test_point_to_point_is_one_link():
    c = load_cluster("atlas-800t-a2")
    near, far = collective_time(c, "Send", 4e6, [0, 1]), collective_time(c, "Recv", 4e6, [0, 9])
    assert near.us == pytest.approx(c.hccs_alpha_us + 4e6 / c.hccs_link_bytes_per_s * 1e6) and "HCCS" in near.algorithm
    assert far.us == pytest.approx(c.roce_alpha_us + 4e6 / c.roce_nic_bytes_per_s * 1e6) and "RoCE" in far.algorithm


def test_a_recv_is_posted_early_and_hides_behind_compute():
    text = STEP.replace(
        '%r = "graph.all_reduce"(%g) <{reduce_op = "sum", group = "0", ranks = array<i64: 0, 1, 2, 3, 4, 5, 6, 7>}> {src = ["grad_ar"]} : (tensor<1024x1024xf32>) -> tensor<1024x1024xf32>',
        '%r = "graph.recv"() <{peer = 9 : i64, shape = array<i64: 1024, 1024>, dtype = 1 : i64}> {src = ["recv"]} : () -> tensor<1024x1024xf32>')
    late, early = _compile("", text).report["timing"], _compile("overlap-collectives,", text).report["timing"]
    (c,) = early["collectives"]
    assert c["op"] == "Recv" and "RoCE" in c["algorithm"]  # rank 0's view: peer 9 is on the next server
    assert late["collective_hidden_us"] == pytest.approx(0.0, abs=1e-6) and early["collective_hidden_us"] > 0
    assert early["total_us"] < late["total_us"]


def test_a_switched_fabric_shares_each_chips_injection_bandwidth(tmp_path):
    """The A3 SuperPoD's UB: an all-gather of n over p dies moves (p - 1) / p of n through each
    die's one injection bandwidth, wherever the peers are in the 768-die domain; on the A2, 64
    ranks span 8 servers and their all-to-all crosses RoCE."""
    from graphopt.errors import GraphoptError

    a3, a2 = load_cluster("atlas-900-a3-superpod"), load_cluster("atlas-800t-a2")
    assert a3.topology == "switch" and a2.topology == "mesh"
    n = 2.0**28
    for p in (8, 64, 768):
        ag = collective_time(a3, "AllGather", n, list(range(p)))
        assert ag.us == pytest.approx(a3.hccs_alpha_us + (p - 1) / p * n / a3.hccs_link_bytes_per_s * 1e6)
        assert "switched" in ag.algorithm
    assert collective_time(a3, "AllToAll", n, list(range(64))).us < collective_time(a2, "AllToAll", n, list(range(64))).us / 4
    text = (a3.source_file and open(a3.source_file).read()).replace('topology = "switch"', 'topology = "ring"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(GraphoptError, match="topology"):
        load_cluster(bad)
