"""``--parallel auto``: the plans that fit, ranked by tokens/s.

Compiling every candidate's layers would take minutes each, so the search runs in two
rounds. First every candidate is scored with estimated layer times: its shards are only
captured (seconds: the forward and backward graphs, their saved bytes and matmul FLOPs), and
their kernel times are a compiled reference shard's, scaled by the FLOPs (the reference: the
same kind of layer under the plan with the smallest shards). Collectives, the pipeline and memory are computed
exactly as for any plan. Then the best ``exact`` candidates are simulated from their own
compiled layers and ranked again: every plan printed is timed from its own kernels; the
estimates only choose which plans get that far.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.training.layers import ShardTime, time_shard
from graphopt.targets.ascend.training.plan import candidate_plans
from graphopt.targets.ascend.training.shard import Shard
from graphopt.targets.ascend.training.step import Setup, check_static_memory, fits, shards, simulate

_MATMULS = ("aten.mm", "aten.bmm", "aten.addmm")


def _captured(shard: Shard, memo: dict[Shard, tuple[float, int, int, int]]) -> tuple[float, int, int, int]:
    """(matmul FLOPs of forward + backward, saved bytes, attention's saved bytes, input bytes)."""
    if shard not in memo:
        from graphopt.targets.ascend.training import build

        fw, bw, (saved, attn_saved), in_bytes, _ = build.capture(shard)
        flops = 0.0
        for g in (fw, bw):
            for n in g.graph.nodes:
                if n.op == "call_function" and str(n.target).startswith(_MATMULS):
                    a, b = (n.args[1], n.args[2]) if "addmm" in str(n.target) else (n.args[0], n.args[1])
                    sa, sb = a.meta["val"].shape, b.meta["val"].shape
                    flops += 2 * sa.numel() * sb[-1] if len(sa) else 0
        memo[shard] = (flops, saved, attn_saved, in_bytes)
    return memo[shard]


def _estimate(shard: Shard, ref: Shard, ref_time: ShardTime, memo: dict[Shard, Any]) -> ShardTime:
    flops, saved, attn_saved, in_bytes = _captured(shard, memo)
    ref_flops = _captured(ref, memo)[0] or 1.0
    k = flops / ref_flops
    # attention's work per chip: mbs x heads x S^2 / (2 cp), S = seq x cp (layers.py: _attention_time)
    attn = (shard.mbs * shard.heads * shard.seq ** 2 * shard.cp) / max(ref.mbs * ref.heads * ref.seq ** 2 * ref.cp, 1)
    return replace(ref_time, fw_us=ref_time.fw_us * k, bw_us=ref_time.bw_us * k, cube_fw_us=ref_time.cube_fw_us * k,
                   cube_bw_us=ref_time.cube_bw_us * k, attn_fw_us=ref_time.attn_fw_us * attn,
                   attn_bw_us=ref_time.attn_bw_us * attn, fw_flops=ref_time.fw_flops * k, bw_flops=ref_time.bw_flops * k,
                   attn_flops=ref_time.attn_flops * attn, saved_bytes=saved, attn_saved_bytes=attn_saved,
                   input_bytes=in_bytes, cached=False)


def search(base: Setup, top: int = 5, exact: int = 4, progress: Any = None) -> list[dict[str, Any]]:
    """The ``top`` best plans for ``base``'s model, chips, sequence and batch (each a
    ``simulate`` report, its layers compiled), best first."""
    from graphopt.targets.ascend.chip import load_chip

    chips = base.plan.chips
    fitting: list[Setup] = []
    for plan in candidate_plans(base.model, chips, base.seq, base.global_batch, base.cluster.chips_per_server):
        s = replace(base, plan=plan)
        try:
            check_static_memory(s)
        except GraphoptError:
            continue
        fitting.append(s)
    if not fitting:
        hbm = load_chip(base.cluster.chip).hbm_bytes
        raise GraphoptError(f"no plan fits {chips} chips of {hbm / 1e9:.0f} GB for {base.model.name}; use more chips")
    # the reference layers: the smallest shards (most tensor parallelism, one sequence each),
    # the cheapest to compile, and for a large model the plan most likely to win
    ref_setup = min(fitting, key=lambda s: (-s.plan.tp, s.plan.micro_batch, -s.plan.cp))
    refs: dict[str, tuple[Shard, ShardTime]] = {}
    for kind, shard in shards(ref_setup).items():
        if progress:
            progress(f"compiling the reference {kind} layer")
        refs[kind] = (shard, time_shard(shard, base.cluster.chip, base.use_cache))
    memo: dict[Shard, Any] = {}
    scored = []
    for k, s in enumerate(fitting):
        if progress and k % 25 == 0:
            progress(f"estimating plans {k + 1}-{min(k + 25, len(fitting))} of {len(fitting)}")
        times = {}
        for kind, shard in shards(s).items():
            if kind not in refs:
                refs[kind] = (shard, time_shard(shard, s.cluster.chip, s.use_cache))
            times[kind] = _estimate(shard, *refs[kind], memo)
        r = simulate(s, times)
        if fits(r):
            scored.append((r["tokens_per_s"], s))
    scored.sort(key=lambda t: -t[0])
    best = []
    for k, (_, s) in enumerate(scored[:exact]):
        if progress:
            progress(f"compiling plan {k + 1} of {min(exact, len(scored))}: {s.plan.text()}")
        r = simulate(s, progress=progress)
        if fits(r):
            r["plan_text"] = s.plan.text()
            best.append(r)
    best.sort(key=lambda r: -r["tokens_per_s"])
    for r in best:
        r["searched"] = {"candidates": len(fitting), "estimated": len(scored), "compiled": min(exact, len(scored))}
    return best[:top]
