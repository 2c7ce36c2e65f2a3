"""A parallel plan: how a model's training is split over the chips, and the plans
``--parallel auto`` tries.

Megatron's rank order: tensor-parallel ranks are adjacent (inside a server), then context,
then data, then pipeline stages outermost; expert parallelism is carved out of the data
and context ranks (``ep`` divides ``dp * cp``), as Megatron-Core and MindSpeed do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from graphopt.errors import GraphoptError
from graphopt.targets.ascend.training.config import ModelConfig

RECOMPUTE = ("none", "selective", "full")
_KEYS = ("tp", "pp", "vpp", "dp", "ep", "cp")


@dataclass(frozen=True)
class Plan:
    tp: int = 1
    pp: int = 1
    vpp: int = 1
    dp: int = 1
    ep: int = 1
    cp: int = 1
    micro_batch: int = 1
    sequence_parallel: bool = False
    recompute: str = "none"
    distributed_optimizer: bool = False

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def text(self) -> str:
        s = ",".join(f"{k}={getattr(self, k)}" for k in _KEYS)
        flags = [f"mbs={self.micro_batch}", f"recompute={self.recompute}"]
        if self.sequence_parallel:
            flags.append("sp")
        if self.distributed_optimizer:
            flags.append("dist-opt")
        return s + " " + " ".join(flags)


def parse_plan(text: str, chips: int) -> dict[str, int]:
    """``tp=8,pp=4,...`` -> sizes; dp, when not given, is what the chips leave."""
    sizes: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in _KEYS:
            raise GraphoptError(f"--parallel {text!r}: {part!r} is not one of {', '.join(k + '=N' for k in _KEYS)}")
        if not value.strip().isdigit() or int(value) < 1:
            raise GraphoptError(f"--parallel {text!r}: {key} must be a positive integer, not {value!r}")
        sizes[key] = int(value)
    rest = sizes.get("tp", 1) * sizes.get("pp", 1) * sizes.get("cp", 1)
    if "dp" not in sizes:
        if chips % rest:
            raise GraphoptError(f"--parallel {text!r}: tp x pp x cp = {rest} does not divide the {chips} chips")
        sizes["dp"] = chips // rest
    return sizes


def check_plan(plan: Plan, model: ModelConfig, chips: int, seq: int, global_batch: int, per_server: int) -> None:
    """Every constraint a plan must meet, each failure one line naming it and what to change."""
    def fail(why: str) -> GraphoptError:
        return GraphoptError(f"plan {plan.text()}: {why}")

    if plan.chips != chips:
        raise fail(f"tp x pp x dp x cp = {plan.chips}, not the {chips} chips given")
    if model.heads % plan.tp or (model.kv_heads % plan.tp and plan.tp % model.kv_heads):
        raise fail(f"tp {plan.tp} does not divide the {model.heads} heads and {model.kv_heads} key/value heads")
    if plan.tp > per_server:
        raise fail(f"tp {plan.tp} spans servers of {per_server} chips; keep tensor parallelism inside a server")
    if model.layers < plan.pp * plan.vpp or -(-model.layers // plan.pp) * (plan.pp - 1) >= model.layers:
        raise fail(f"{model.layers} layers do not fill pp {plan.pp} x vpp {plan.vpp} stages "
                   f"(each stage takes {-(-model.layers // plan.pp)}, the last must have one)")
    if plan.vpp > 1 and plan.pp == 1:
        raise fail("vpp > 1 needs pipeline parallelism (pp > 1)")
    if seq % (plan.cp * (2 if plan.cp > 1 else 1)) or (plan.sequence_parallel and seq // plan.cp % plan.tp):
        raise fail(f"the sequence {seq} does not split into cp {plan.cp} (x2 chunks) and tp {plan.tp} pieces")
    if plan.ep > 1 and not model.moe:
        raise fail("ep > 1 needs a mixture-of-experts model")
    if model.moe and (model.experts % plan.ep or (plan.dp * plan.cp) % plan.ep):
        raise fail(f"ep {plan.ep} must divide the {model.experts} experts and dp x cp = {plan.dp * plan.cp}")
    if global_batch % (plan.micro_batch * plan.dp):
        raise fail(f"the global batch {global_batch} is not a multiple of micro-batch x dp = {plan.micro_batch * plan.dp}")
    micro = global_batch // (plan.micro_batch * plan.dp)
    if plan.pp > 1 and micro < plan.pp:
        raise fail(f"{micro} micro-batches per pipeline, fewer than its {plan.pp} stages")
    if plan.vpp > 1 and micro % plan.pp:
        raise fail(f"the interleaved schedule needs the {micro} micro-batches to be a multiple of pp {plan.pp}")
    if plan.recompute not in RECOMPUTE:
        raise fail(f"recompute {plan.recompute!r} is not one of {', '.join(RECOMPUTE)}")


def _divisors(n: int, cap: int) -> list[int]:
    return [d for d in range(1, min(n, cap) + 1) if n % d == 0]


def candidate_plans(model: ModelConfig, chips: int, seq: int, global_batch: int, per_server: int) -> Iterator[Plan]:
    """The plans --parallel auto tries: every valid combination of tp (within a server),
    pp (up to 16 stages), vpp, cp (for long sequences), ep, micro-batch 1-4 and the three
    recompute policies, with sequence parallelism and the distributed optimizer on (both
    only save memory or communication in this model)."""
    for tp in (t for t in (1, 2, 4, 8, 16) if t <= per_server and chips % t == 0):
        for pp in (d for d in (1, 2, 4, 8, 16) if d <= model.layers):
            for cp in (c for c in (1, 2, 4, 8) if seq // c >= 4096 or c == 1):
                if chips % (tp * pp * cp):
                    continue
                dp = chips // (tp * pp * cp)
                for vpp in ([1] if pp == 1 else [v for v in (1, 2, 4) if model.layers >= pp * v]):
                    for ep in (_divisors(model.experts, dp * cp) if model.moe else [1]):
                        for mbs in (1, 2, 4):
                            for rc in RECOMPUTE:
                                p = Plan(tp, pp, vpp, dp, ep, cp, mbs, tp > 1, rc, dp > 1)
                                try:
                                    check_plan(p, model, chips, seq, global_batch, per_server)
                                except GraphoptError:
                                    continue
                                yield p


def with_sizes(base: Plan, sizes: dict[str, int]) -> Plan:
    return replace(base, **sizes)
