"""One training step: the shards' kernel times, the collectives the plan implies, the
pipeline schedule, the optimizer, memory per chip and MFU.

Conventions (Megatron-LM / MindSpeed, stated in docs/train-sim.md):
- ranks: tensor-parallel adjacent, then context, then data, pipeline outermost; experts
  over ``ep`` of the data x context ranks (stride tp);
- tensor parallelism: two all-reduces per layer forward and two backward (with sequence
  parallelism an all-gather and a reduce-scatter in place of each), not overlapped;
- context parallelism: a ring of cp - 1 key/value exchanges per layer forward (keys and
  values and their gradients backward), overlapped with the attention kernel;
- experts: a dispatch and a combine all-to-all per MoE layer, each way, not overlapped;
- pipeline: 1F1B (interleaved with vpp chunks), a send/recv per micro-batch and stage
  boundary each way on the critical path;
- data parallelism: the gradients reduced (reduce-scatter with the distributed optimizer,
  else all-reduce; bf16) during the last micro-batch's backward, the updated weights
  gathered during the next step's first forward; only what they outlast is exposed;
- optimizer: Adam over this chip's parameters (its share with the distributed optimizer),
  timed as ascend-sim's vector kernels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.cluster import Cluster, collective_time
from graphopt.targets.ascend.training.config import ModelConfig
from graphopt.targets.ascend.training.layers import ATTENTION_BACKWARD_FACTOR, ShardTime, adam_us_per_param, time_shard
from graphopt.targets.ascend.training.plan import Plan
from graphopt.targets.ascend.training.shard import Shard

BYTES = 2  # bf16 / fp16 activations, weights and gradients


@dataclass
class Setup:
    model: ModelConfig
    plan: Plan
    cluster: Cluster
    seq: int
    global_batch: int
    dtype: str = "bfloat16"
    use_cache: bool = True


@dataclass
class StageWork:
    layers: list[str]  # shard kinds in order
    f_us: float = 0.0  # one micro-batch's forward on this stage, exposed communication included
    b_us: float = 0.0
    comm_f: dict[str, float] = field(default_factory=dict)  # of f_us and b_us, the exposed communication by kind
    comm_b: dict[str, float] = field(default_factory=dict)

    @property
    def comm(self) -> dict[str, float]:
        """Exposed communication per micro-batch by kind, forward and backward."""
        return {k: self.comm_f.get(k, 0.0) + self.comm_b.get(k, 0.0) for k in {*self.comm_f, *self.comm_b}}


def shards(s: Setup) -> dict[str, Shard]:
    m, p = s.model, s.plan
    seq_local = s.seq // p.cp
    base = dict(mbs=p.micro_batch, seq=seq_local, cp=p.cp, hidden=m.hidden, dtype=s.dtype,
                sp=p.tp if p.sequence_parallel else 1)
    heads = m.heads // p.tp
    attn = dict(heads=heads, kv_heads=max(1, m.kv_heads // p.tp), head_dim=m.head_dim, mla=m.mla)
    out = {"embed": Shard(kind="embed", vocab=m.vocab // p.tp, **base),
           "head": Shard(kind="head", vocab=m.vocab // p.tp, **base)}
    if any(not m.is_moe_layer(i) for i in range(m.layers)):
        out["dense"] = Shard(kind="dense", ffn=m.ffn // p.tp, **attn, **base)
    if m.moe:
        local = m.experts // p.ep
        tokens = math.ceil(p.micro_batch * seq_local * m.top_k * p.ep / m.experts)
        out["moe"] = Shard(kind="moe", experts=local, router_experts=m.experts, top_k=m.top_k,
                           expert_ffn=max(1, m.expert_ffn // p.tp), expert_tokens=tokens,
                           shared_ffn=m.shared_ffn // p.tp, **attn, **base)
    return out


def _group(plan: Plan, kind: str) -> list[int]:
    """The global ranks of rank 0's group of ``kind``, in Megatron's order."""
    stride = {"tp": 1, "cp": plan.tp, "dp": plan.tp * plan.cp, "ep": plan.tp, "pp": plan.tp * plan.cp * plan.dp}[kind]
    size = {"tp": plan.tp, "cp": plan.cp, "dp": plan.dp * plan.cp, "ep": plan.ep, "pp": plan.pp}[kind]
    return [k * stride for k in range(size)]


def _coll(s: Setup, op: str, nbytes: float, kind: str) -> float:
    ranks = _group(s.plan, kind)
    return collective_time(s.cluster, op, nbytes, ranks).us if len(ranks) > 1 else 0.0


def layer_comm(s: Setup, kind: str, t: ShardTime) -> tuple[dict[str, float], dict[str, float]]:
    """Exposed communication of one layer and micro-batch: (forward, backward) by kind."""
    p, m = s.plan, s.model
    act = p.micro_batch * (s.seq // p.cp) * m.hidden * BYTES
    fw: dict[str, float] = {}
    bw: dict[str, float] = {}
    if p.tp > 1 and p.sequence_parallel:
        # MindSpeed's MC2 fuses each linear layer's gather / scatter with its matmul; an MoE
        # block's (the alltoall dispatcher gathers the tokens over the tp ranks) is not fused
        pair = _coll(s, "AllGather", act, "tp") + _coll(s, "ReduceScatter", act, "tp")
        fused, alone = (pair, pair) if kind == "moe" else (2 * pair, 0.0)
        fw["tp"] = max(0.0, fused - t.cube_fw_us) + alone
        bw["tp"] = max(0.0, fused - t.cube_bw_us) + alone + (fw["tp"] if p.recompute == "full" else 0.0)
    elif p.tp > 1:
        fw["tp"] = 2 * _coll(s, "AllReduce", act, "tp")
        bw["tp"] = fw["tp"] * (2 if p.recompute == "full" else 1)
    if p.cp > 1:
        kv = 2 * p.micro_batch * (s.seq // p.cp) * max(1, m.kv_heads // p.tp) * m.head_dim * BYTES
        ring = (p.cp - 1) * collective_time(s.cluster, "Send", kv, _group(p, "cp")[:2]).us
        fw["cp"] = max(0.0, ring - t.attn_fw_us)
        bw["cp"] = max(0.0, 2 * ring - t.attn_bw_us)
    if kind == "moe" and p.ep > 1:
        # each tensor-parallel rank dispatches its own tokens (with sequence parallelism, its
        # 1/tp of them; without, the tp ranks' copies are the same tokens, sent once each)
        routed = p.micro_batch * (s.seq // p.cp) // p.tp * m.top_k * m.hidden * BYTES
        a2a = 2 * _coll(s, "AllToAll", routed, "ep")
        fw["ep"] = a2a
        bw["ep"] = a2a * (2 if p.recompute == "full" else 1)
    return fw, bw


def stage_layers(s: Setup) -> list[list[str]]:
    """The shard kinds each pipeline stage runs, embedding first and head last."""
    m, p = s.model, s.plan
    kinds = ["moe" if m.is_moe_layer(i) else "dense" for i in range(m.layers)]
    # layers that do not divide into the stages leave the last ones a layer short (Megatron
    # pads them with no-op layers)
    per = -(-m.layers // p.pp)
    stages = [kinds[k * per:(k + 1) * per] for k in range(p.pp)]
    stages[0] = ["embed", *stages[0]]
    stages[-1] = [*stages[-1], "head"]
    return stages


def _recomputed(s: Setup, kind: str, forward: float, attention: float) -> float:
    """What recompute adds to a layer's backward, of its forward's ``forward`` (time or
    FLOPs) whose attention part is ``attention``: all of it (full), the attention
    (selective); the embedding and the head are never recomputed."""
    if kind in ("embed", "head"):
        return 0.0
    return {"full": forward, "selective": attention}.get(s.plan.recompute, 0.0)


def stage_work(s: Setup, times: dict[str, ShardTime]) -> list[StageWork]:
    out = []
    for kinds in stage_layers(s):
        w = StageWork(kinds)
        for kind in kinds:
            t = times[kind]
            cf, cb = layer_comm(s, kind, t) if kind not in ("embed", "head") else ({}, {})
            w.f_us += t.total_fw_us + sum(cf.values())
            w.b_us += t.total_bw_us + _recomputed(s, kind, t.total_fw_us, t.attn_fw_us) + sum(cb.values())
            for mine, theirs in ((w.comm_f, cf), (w.comm_b, cb)):
                for k, v in theirs.items():
                    mine[k] = mine.get(k, 0.0) + v
        out.append(w)
    return out


def time_shards(s: Setup, progress: Any = None) -> dict[str, ShardTime]:
    out = {}
    for kind, shard in shards(s).items():
        if progress:
            progress(f"timing the {kind} shard")
        out[kind] = time_shard(shard, s.cluster.chip, s.use_cache)
    return out


def one_f_one_b(stages: list[StageWork], micro: int, p2p_us: float) -> tuple[float, list[tuple[Any, ...]]]:
    """The non-interleaved 1F1B schedule, simulated: stage s runs pp - s - 1 forwards, then
    a forward and a backward in turn, then the remaining backwards; a forward waits for the
    previous stage's, a backward for the next stage's, each plus the send between them.
    Returns the step's pipeline time and the events (stage, "F"/"B", micro-batch, start,
    duration, the exposed communication at its end)."""
    pp = len(stages)
    order = []
    for s in range(pp):
        warm = min(pp - s - 1, micro)
        ops = [("F", i) for i in range(warm)]
        for i in range(micro):
            if warm + i < micro:
                ops.append(("F", warm + i))
            ops.append(("B", i))
        order.append(ops)
    end: dict[tuple[str, int, int], float] = {}
    free, nxt, events = [0.0] * pp, [0] * pp, []
    left = sum(len(o) for o in order)
    while left:
        moved = False
        for s in range(pp):
            if nxt[s] == len(order[s]):
                continue
            kind, i = order[s][nxt[s]]
            src = (s - 1 if kind == "F" else s + 1)
            dep = end.get((kind, src, i)) if 0 <= src < pp else end.get(("F", s, i), 0.0)
            if dep is None:
                continue
            start = max(free[s], dep + (p2p_us if 0 <= src < pp else 0.0))
            dur = stages[s].f_us if kind == "F" else stages[s].b_us
            end[(kind, s, i)] = free[s] = start + dur
            events.append((s, kind, i, start, dur, sum((stages[s].comm_f if kind == "F" else stages[s].comm_b).values())))
            nxt[s] += 1
            left -= 1
            moved = True
        if not moved:  # cannot happen with the order above; a guard against a silent hang
            raise GraphoptError("train-sim: the 1F1B schedule deadlocked (a bug in graphopt)")
    return max(free), events


def pipeline_time(s: Setup, stages: list[StageWork], micro: int) -> tuple[float, list[Any]]:
    p = s.plan
    act = p.micro_batch * (s.seq // p.cp) * s.model.hidden * BYTES // (p.tp if p.sequence_parallel else 1)
    p2p = collective_time(s.cluster, "Send", act, _group(p, "pp")[:2]).us if p.pp > 1 else 0.0
    if p.vpp == 1:
        return one_f_one_b(stages, micro, p2p)
    # interleaved (Megatron's schedule with vpp chunks per stage): the warm-up and drain
    # shrink to 1/vpp of a stage's work; each micro-batch crosses every boundary once per chunk
    work = [st.f_us + st.b_us for st in stages]
    total = micro * max(work) + (p.pp - 1) * (sum(work) / len(work)) / p.vpp + 2 * micro * p2p
    return total, []


def stage_params(s: Setup) -> list[tuple[float, float]]:
    """(non-expert, expert) parameters on one chip of each stage."""
    m, p = s.model, s.plan
    from graphopt.targets.ascend.training.config import _attention_params

    attn = _attention_params(m) + 2 * m.hidden
    out = []
    for kinds in stage_layers(s):
        dense = expert = 0.0
        for k in kinds:
            if k == "dense":
                dense += (attn + 3 * m.hidden * m.ffn) / p.tp
            elif k == "moe":
                dense += (attn + m.hidden * m.experts + 3 * m.hidden * m.shared_ffn) / p.tp
                expert += m.experts * 3 * m.hidden * m.expert_ffn / (p.tp * p.ep)
            else:  # embedding, or head and final norm
                dense += m.vocab * m.hidden / p.tp + (m.hidden if k == "head" else 0)
        out.append((dense, expert))
    return out


def data_parallel_us(s: Setup, params: tuple[float, float], first_f: float, last_b: float) -> dict[str, float]:
    """The gradient reduction and weight gather of one stage: total and exposed us."""
    p = s.plan
    dense, expert = params
    dp_ranks = _group(p, "dp")
    ep_dp = [r for r in dp_ranks][:: p.ep] if p.ep > 1 else dp_ranks  # the expert data-parallel group
    total = exposed = 0.0
    for n, ranks in ((dense, dp_ranks), (expert, ep_dp)):
        if n == 0 or len(ranks) < 2:
            continue
        if p.distributed_optimizer:
            rs = collective_time(s.cluster, "ReduceScatter", n * BYTES, ranks).us
            ag = collective_time(s.cluster, "AllGather", n * BYTES, ranks).us
            total += rs + ag
            exposed += max(0.0, rs - last_b) + max(0.0, ag - first_f)
        else:
            ar = collective_time(s.cluster, "AllReduce", n * BYTES, ranks).us
            total += ar
            exposed += max(0.0, ar - last_b)
    return {"total_us": total, "exposed_us": exposed}


def _saved_per_layer(s: Setup, t: ShardTime) -> float:
    """What one layer keeps per micro-batch (the capture is of the chip's own shapes, so
    sequence parallelism's split is in it already)."""
    if s.plan.recompute == "full":
        return t.input_bytes
    if s.plan.recompute == "selective":
        return t.saved_bytes - t.attn_saved_bytes
    return t.saved_bytes


def check_static_memory(s: Setup) -> None:
    """Refuse, before any layer is compiled, a plan whose weights, gradients and optimizer
    states alone do not fit the chip (activations only add to them)."""
    from graphopt.targets.ascend.chip import load_chip

    hbm = load_chip(s.cluster.chip).hbm_bytes
    micro = s.global_batch // (s.plan.micro_batch * s.plan.dp)
    zero = {k: ShardTime.empty() for k in ("embed", "head", "dense", "moe")}
    for k, mem in enumerate(memory(s, zero, micro)):
        if sum(mem.values()) > hbm:
            parts = ", ".join(f"{name} {v / 1e9:.1f}" for name, v in mem.items() if name != "activations")
            raise GraphoptError(f"plan {s.plan.text()}: stage {k} needs {sum(mem.values()) / 1e9:.1f} GB per chip before "
                                f"any activation ({parts} GB), the chip has {hbm / 1e9:.1f} GB; use more tp/pp/ep or "
                                "the distributed optimizer")


def memory(s: Setup, times: dict[str, ShardTime], micro: int) -> list[dict[str, float]]:
    """Bytes per chip of each stage, by kind: weights and gradients (bf16), Adam's float32
    master weights and moments (12 bytes a parameter, split over the data-parallel ranks with
    the distributed optimizer), and the activations 1F1B keeps: stage s holds pp - s
    micro-batches' (interleaved: pp x (1 + (pp - 1) / (pp x vpp)) on the first stage,
    Korthikanti et al.), the embedding's and the head's one."""
    p = s.plan
    out = []
    for k, (kinds, (dense, expert)) in enumerate(zip(stage_layers(s), stage_params(s), strict=True)):
        n = dense + expert
        shard_dp = p.dp * p.cp if p.distributed_optimizer else 1
        states = 12 * (dense / shard_dp + expert / max(1, shard_dp // p.ep if p.distributed_optimizer else 1))
        flight = min(micro, p.pp - k) if p.vpp == 1 else p.pp * (1 + (p.pp - 1) / (p.pp * p.vpp)) * (1 if k == 0 else (p.pp - k) / p.pp)
        acts = sum(_saved_per_layer(s, times[kind]) for kind in kinds if kind not in ("embed", "head")) * flight
        acts += sum(times[kind].saved_bytes for kind in kinds if kind in ("embed", "head"))
        out.append({"weights": BYTES * n, "gradients": BYTES * n, "optimizer_states": states, "activations": acts})
    return out


def flops_per_token(m: ModelConfig, seq: int) -> tuple[float, str]:
    """Model FLOPs per token: 6 x the parameters a token's matmuls use (the head included,
    the embedding lookup not) + attention's 4 S d per layer and head forward, x3 for
    forward and backward, halved as causal attention is."""
    params = m.params()
    matmul = params["active"] - params["embedding"] - (2 * m.layers + 1) * m.hidden
    if m.tied_embeddings:
        matmul += params["head"]
    qk, v = (m.mla.qk_nope + m.mla.qk_rope, m.mla.v_head) if m.mla else (m.head_dim, m.head_dim)
    attention = 3 * m.layers * 2 * seq * m.heads * (qk + v) / 2
    return 6 * matmul + attention, "6 x active matmul parameters (head included, embedding not) + 6 L S H (d_qk + d_v) / 2 (causal attention, forward + backward)"


def simulate(s: Setup, times: dict[str, ShardTime] | None = None, progress: Any = None) -> dict[str, Any]:
    """The step, as report.json's ``training`` section (plus ``events`` for the trace)."""
    from graphopt.targets.ascend.chip import load_chip

    p, m = s.plan, s.model
    check_static_memory(s)
    times = times or time_shards(s, progress)
    micro = s.global_batch // (p.micro_batch * p.dp)
    stages = stage_work(s, times)
    pipe_us, events = pipeline_time(s, stages, micro)
    params = stage_params(s)
    dp = [data_parallel_us(s, prm, st.f_us, st.b_us) for prm, st in zip(params, stages, strict=True)]
    chip = load_chip(s.cluster.chip)
    optimizer_us = max(prm[0] / (p.dp * p.cp if p.distributed_optimizer else 1)
                       + prm[1] / (max(1, p.dp * p.cp // p.ep) if p.distributed_optimizer else 1) for prm in params)
    optimizer_us *= adam_us_per_param(s.cluster.chip, s.use_cache)
    dp_exposed = max(d["exposed_us"] for d in dp)
    step_us = pipe_us + dp_exposed + optimizer_us
    tokens = s.global_batch * s.seq
    chips = p.chips
    fpt, how = flops_per_token(m, s.seq)
    peak = chip.peak_flops("bf16" if "bf16" in chip.macs_per_cycle else "fp16")
    tok_s = tokens / (step_us * 1e-6)
    slowest = max(stages, key=lambda st: st.f_us + st.b_us)  # the stage the steady state runs at
    compute_us = micro * (slowest.f_us + slowest.b_us - sum(slowest.comm.values()))
    comm = {k: micro * slowest.comm.get(k, 0.0) for k in ("tp", "cp", "ep")}
    comm["pp"] = max(0.0, pipe_us - micro * max(st.f_us + st.b_us for st in stages)
                     - (p.pp - 1) * sum(st.f_us + st.b_us for st in stages) / p.pp / p.vpp) if p.pp > 1 else 0.0
    bubble = pipe_us - micro * max(st.f_us + st.b_us for st in stages) - comm["pp"]
    mem = memory(s, times, micro)
    worst = max(range(len(mem)), key=lambda k: sum(mem[k].values()))
    hw = sum(micro * _stage_flops(s, times, kinds) for kinds in stage_layers(s)) / p.pp
    return {
        "model": m.name, "plan": asdict(p), "chips": chips, "cluster": s.cluster.name, "chip": chip.name,
        "seq": s.seq, "global_batch": s.global_batch, "micro_batches": micro,
        "step_time_s": step_us * 1e-6, "tokens_per_s": tok_s, "tokens_per_s_per_chip": tok_s / chips,
        "model_flops_per_token": fpt, "model_flops_counted_as": how,
        "mfu": fpt * tok_s / chips / peak, "hfu": hw / (step_us * 1e-6) / peak, "peak_tflops": peak / 1e12,
        "breakdown_s": {"compute": compute_us * 1e-6, **{f"exposed_{k}": v * 1e-6 for k, v in comm.items()},
                        "exposed_dp": dp_exposed * 1e-6, "pipeline_bubble": max(0.0, bubble) * 1e-6,
                        "optimizer": optimizer_us * 1e-6},
        "data_parallel_total_s": max(d["total_us"] for d in dp) * 1e-6,
        "memory_per_chip_gb": {k: v / 1e9 for k, v in mem[worst].items()} | {"total": sum(mem[worst].values()) / 1e9,
                                                                          "stage": worst},
        "hbm_gb": chip.hbm_bytes / 1e9,
        "shards": {k: _shard_row(t) for k, t in times.items()},
        "events": events,
    }


def _stage_flops(s: Setup, times: dict[str, ShardTime], kinds: list[str]) -> float:
    """The FLOPs one chip's kernels run for a micro-batch on a stage, recompute included."""
    total = 0.0
    for k in kinds:
        t = times[k]
        f = t.fw_flops + t.attn_flops
        total += f + t.bw_flops + ATTENTION_BACKWARD_FACTOR * t.attn_flops + _recomputed(s, k, f, t.attn_flops)
    return total


def _shard_row(t: ShardTime) -> dict[str, Any]:
    return {"forward_us": round(t.total_fw_us, 1), "backward_us": round(t.total_bw_us, 1),
            "attention_forward_us": round(t.attn_fw_us, 1), "saved_mb": round(t.saved_bytes / 1e6, 1),
            "aicpu_kernels": t.aicpu_kernels, "compile_s": t.compile_s, "cached": t.cached,
            "slowest_kernels": t.top_kernels[:4]}


def fits(report: dict[str, Any]) -> bool:
    """Whether the fullest stage's memory fits the chip's HBM."""
    return report["memory_per_chip_gb"]["total"] <= report["hbm_gb"]


def check_memory(report: dict[str, Any]) -> None:
    mem = report["memory_per_chip_gb"]
    if not fits(report):
        parts = ", ".join(f"{k} {v:.1f}" for k, v in mem.items() if k not in ("total", "stage"))
        raise GraphoptError(f"plan {report['plan_text']}: needs {mem['total']:.1f} GB per chip on stage {mem['stage']} "
                            f"({parts} GB), the chip has {report['hbm_gb']:.1f} GB; use more tp/pp, recompute, "
                            "the distributed optimizer or a smaller micro-batch")
