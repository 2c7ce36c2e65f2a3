"""Collective times on an Ascend cluster description, beside HCCL's cost formulas.

    python benchmarks/ascend_collectives.py [--cluster atlas-800t-a2] [--mb 64]

For each collective and group (8 chips of one server, 2 and 4 servers), the simulated time,
the algorithm-bandwidth it means (bytes / time) and the formula with its numbers (the link
model of targets/ascend/cluster.py, from reference/ascend-cluster.md 2.2). The one measured
point it is fitted to, the 8-card all-gather at 149 GB/s (reference/ascend-measured.md), is
printed beside its row.
"""

from __future__ import annotations

import argparse

from graphopt.targets.ascend.cluster import collective_time, load_cluster

MEASURED = {("AllGather", 8): 149.0, ("AllGather", 2): 38.0, ("AllGather", 4): 64.0}  # GB/s algbw, 910B HCCS [3P]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster", default="atlas-800t-a2")
    ap.add_argument("--mb", type=float, default=64.0, help="message size in MiB (default 64)")
    args = ap.parse_args()
    c = load_cluster(args.cluster)
    n = args.mb * 2**20
    print(f"cluster {c.name}: {c.chips_per_server} chips/server, HCCS link {c.hccs_link_bytes_per_s / 1e9:g} GB/s "
          f"(alpha {c.hccs_alpha_us:g} us), RoCE {c.roce_nic_bytes_per_s / 1e9:g} GB/s per NPU (alpha {c.roce_alpha_us:g} us), "
          f"reduction {c.reduce_bytes_per_s / 1e9:g} GB/s; message {args.mb:g} MiB")
    print(f"{'op':<14}{'ranks':>6}{'us':>10}{'algbw GB/s':>12}{'measured':>10}  algorithm / formula (us)")
    for op in ("AllReduce", "AllGather", "ReduceScatter", "AllToAll"):
        for p in (2, 4, 8, 16, 32):
            r = collective_time(c, op, n, list(range(p)))
            measured = MEASURED.get((op, p))
            print(f"{op:<14}{p:>6}{r.us:>10.1f}{n / r.us / 1e3:>12.1f}{measured if measured else '':>10}  "
                  f"{r.algorithm}: {r.formula}")


if __name__ == "__main__":
    main()
