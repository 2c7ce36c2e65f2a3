"""Clusters of Ascend servers as data, and what a collective costs on one.

A cluster file (``clusters/*.toml``, every number with its source tag like a chip file)
gives the servers' size and the links: HCCS inside a server (a full mesh: each NPU pair
on its own link), RoCE across servers (one NIC per NPU), and the reduction's speed. A
collective's time follows HCCL's own cost formulas (reference/ascend-cluster.md 2.2; α a
step's latency, β seconds per byte on a link, γ seconds per byte reduced; p ranks, n bytes):

- within one server, HCCL's Mesh: every peer's chunk on its own link, one step per phase:
  ReduceScatter α + (n/p)β + ((p−1)/p)nγ, AllGather α + (n/p)β, AllReduce the two;
  AllToAll α + (n/p)β (each pair exchanges its part on its own link); Broadcast as a
  scatter then an all-gather;
- within one server whose chips reach each other through switches (``hccs.topology =
  "switch"``: the A3 SuperPoD's UB, where a "server" is the whole scale-up domain): the
  same steps, the p − 1 peers' chunks sharing the chip's one injection bandwidth;
- across s servers of k ranks each, hierarchically (level 0 mesh, level 1 across servers,
  each of the k NPUs driving its own NIC on its 1/k share): an AllReduce is a mesh
  ReduceScatter, an AllReduce of n/k across the servers (recursive halving-doubling when s
  is a power of 2, else a ring) and a mesh AllGather; an AllGather and a ReduceScatter the
  same, less their other half; an AllToAll sends (s−1)/s of its data over RoCE pairwise,
  (s−1) steps.

``collective_time`` returns the time, the algorithm and the formula with its numbers, so a
report says what it assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError

CLUSTERS_DIR = Path(__file__).parent / "clusters"
DEFAULT_CLUSTER = "atlas-800t-a2"


@dataclass(frozen=True)
class Cluster:
    name: str
    chip: str
    chips_per_server: int
    hccs_link_bytes_per_s: float
    hccs_alpha_us: float
    roce_nic_bytes_per_s: float
    roce_alpha_us: float
    reduce_bytes_per_s: float
    source_file: str = ""
    # "mesh": a link per pair of chips in a server (HCCS on the A2); "switch": each chip's
    # links go to switches (UB on the A3 SuperPoD), so what limits a collective is the chip's
    # whole injection bandwidth, hccs_link_bytes_per_s, shared by all its peers.
    topology: str = "mesh"


def available_clusters() -> list[str]:
    return sorted(p.stem for p in CLUSTERS_DIR.glob("*.toml"))


def load_cluster(name_or_path: str | Path = DEFAULT_CLUSTER) -> Cluster:
    """A bundled cluster by name, or a user's TOML file by path."""
    from graphopt.targets.ascend.chip import find_description

    return _load(find_description(name_or_path, CLUSTERS_DIR, "cluster", available_clusters))


@cache
def _load(path: Path) -> Cluster:
    from graphopt.targets.ascend.chip import _Reader, read_description

    data = read_description(path, "cluster")
    r = _Reader(path, data)
    return Cluster(
        name=r.text("cluster.name"),
        chip=r.text("cluster.chip"),
        chips_per_server=r.number("cluster.chips_per_server", int),
        hccs_link_bytes_per_s=r.number("hccs.link_bytes_per_s"),
        hccs_alpha_us=r.number("hccs.alpha_us"),
        roce_nic_bytes_per_s=r.number("roce.nic_bytes_per_s"),
        roce_alpha_us=r.number("roce.alpha_us"),
        reduce_bytes_per_s=r.number("reduce.bytes_per_s"),
        source_file=str(path),
        topology=_topology(r),
    )


def _topology(r: Any) -> str:
    if not r.has("hccs.topology"):
        return "mesh"
    t = r.text("hccs.topology")
    if t not in ("mesh", "switch"):
        raise r.fail(f"field 'hccs.topology': {t!r} is not 'mesh' or 'switch'")
    return t


@dataclass(frozen=True)
class CollectiveCost:
    us: float
    algorithm: str
    formula: str  # the cost formula with its numbers, in microseconds


def layout(cluster: Cluster, ranks: Sequence[int]) -> tuple[int, int]:
    """(servers, ranks per server) of a group, global ranks filling servers in order."""
    per_server: dict[int, int] = {}
    for r in ranks:
        per_server[r // cluster.chips_per_server] = per_server.get(r // cluster.chips_per_server, 0) + 1
    return len(per_server), max(per_server.values(), default=1)


def collective_time(cluster: Cluster, op: str, nbytes: float, ranks: Sequence[int]) -> CollectiveCost:
    """The time of collective ``op`` ("AllReduce", "AllGather", "ReduceScatter", "AllToAll",
    "Broadcast"; "Send" and "Recv" between the two ``ranks``) of ``nbytes`` (an all-gather's
    whole output, a reduce-scatter's whole input, the tensor otherwise) over the global ``ranks``."""
    if op in ("Send", "Recv"):  # point to point: one link between the pair
        servers, _ = layout(cluster, ranks)
        if servers <= 1:
            a, bw, link = cluster.hccs_alpha_us, cluster.hccs_link_bytes_per_s / 1e6, "HCCS link"
        else:
            a, bw, link = cluster.roce_alpha_us, cluster.roce_nic_bytes_per_s / 1e6, "RoCE"
        return CollectiveCost(a + nbytes / bw, f"point to point ({link})", f"a + n b = {a:g} + {nbytes / bw:.1f}")
    p = len(ranks)
    if p <= 1:
        return CollectiveCost(0.0, "none", "one rank: nothing moves")
    servers, k = layout(cluster, ranks)
    if servers == 1:
        return _mesh(cluster, op, nbytes, p)
    return _hierarchical(cluster, op, nbytes, servers, k)


def _mesh(c: Cluster, op: str, n: float, p: int) -> CollectiveCost:
    a, link, red = c.hccs_alpha_us, c.hccs_link_bytes_per_s / 1e6, c.reduce_bytes_per_s / 1e6  # bytes per us
    chunk, reduced = n / p / link, (p - 1) / p * n / red
    if c.topology == "switch":  # the p - 1 peers' chunks share the chip's one injection bandwidth
        chunk *= p - 1
    terms = {
        "ReduceScatter": (a + chunk + reduced, f"a + (n/p)b + ((p-1)/p)n g = {a:g} + {chunk:.1f} + {reduced:.1f}"),
        "AllGather": (a + chunk, f"a + (n/p)b = {a:g} + {chunk:.1f}"),
        "AllReduce": (2 * a + 2 * chunk + reduced, f"2a + (2n/p)b + ((p-1)/p)n g = {2 * a:g} + {2 * chunk:.1f} + {reduced:.1f}"),
        "AllToAll": (a + chunk, f"a + (n/p)b = {a:g} + {chunk:.1f}"),
        "Broadcast": (2 * a + 2 * chunk, f"scatter + all-gather: 2a + 2(n/p)b = {2 * a:g} + {2 * chunk:.1f}"),
    }
    if op not in terms:
        raise GraphoptError(f"no cost model for collective {op}")
    us, formula = terms[op]
    return CollectiveCost(us, f"{'mesh (HCCS' if c.topology == 'mesh' else 'switched (UB'}, p={p})", formula)


def _inter_allreduce(c: Cluster, n: float, s: int) -> tuple[float, str, str]:
    """An all-reduce of n bytes per NPU across s servers on RoCE (one NIC each)."""
    a, nic, red = c.roce_alpha_us, c.roce_nic_bytes_per_s / 1e6, c.reduce_bytes_per_s / 1e6
    moved, reduced = 2 * (s - 1) / s * n / nic, (s - 1) / s * n / red
    if s & (s - 1) == 0:
        steps = 2 * int(math.log2(s))
        return steps * a + moved + reduced, "RHD", f"2 log2(s) a + 2((s-1)/s)n b + ((s-1)/s)n g = {steps * a:g} + {moved:.1f} + {reduced:.1f}"
    steps = 2 * (s - 1)
    return steps * a + moved + reduced, "ring", f"2(s-1) a + 2((s-1)/s)n b + ((s-1)/s)n g = {steps * a:g} + {moved:.1f} + {reduced:.1f}"


def _hierarchical(c: Cluster, op: str, n: float, s: int, k: int) -> CollectiveCost:
    """Level 0 a mesh of k in each server, level 1 across the s servers (n/k per NIC)."""
    rs, ag = _mesh(c, "ReduceScatter", n, k), _mesh(c, "AllGather", n, k)
    if op == "AllToAll":
        a, nic = c.roce_alpha_us, c.roce_nic_bytes_per_s / 1e6
        remote = (s - 1) / s * n / nic
        local = _mesh(c, "AllToAll", n / s, k)
        us = (s - 1) * a + remote + local.us
        return CollectiveCost(us, f"pairwise across {s} servers + mesh within",
                              f"(s-1)a + ((s-1)/s)n b_roce + mesh = {(s - 1) * a:g} + {remote:.1f} + {local.us:.1f}")
    inter, algo, formula = _inter_allreduce(c, n / k, s)
    if op == "AllReduce":
        us, parts = rs.us + inter + ag.us, f"mesh RS {rs.us:.1f} + {algo} AR of n/k {inter:.1f} ({formula}) + mesh AG {ag.us:.1f}"
    elif op in ("AllGather", "ReduceScatter", "Broadcast"):
        half = inter / 2  # one phase of the inter-server all-reduce (its all-gather or reduce-scatter half)
        local = ag if op == "AllGather" else rs
        us, parts = local.us + half + (ag.us if op == "Broadcast" else 0.0), \
            f"mesh {local.us:.1f} + half of the {algo} AR across servers {half:.1f}"
    else:
        raise GraphoptError(f"no cost model for collective {op}")
    return CollectiveCost(us, f"hierarchical: mesh (HCCS, k={k}) + {algo} (RoCE, s={s})", parts)
