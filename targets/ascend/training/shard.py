"""What one layer's kernels depend on under a plan: the shapes one chip holds."""

from __future__ import annotations

from dataclasses import dataclass

from graphopt.targets.ascend.training.config import Mla


@dataclass(frozen=True)
class Shard:
    kind: str  # "dense", "moe", "embed", "head"
    mbs: int
    seq: int  # tokens of one sequence on this chip (seq / cp; / tp more where sequence parallel)
    cp: int
    hidden: int
    heads: int = 0  # per chip
    kv_heads: int = 0
    head_dim: int = 0
    ffn: int = 0
    experts: int = 0  # local experts
    router_experts: int = 0  # all experts (the router scores every one)
    top_k: int = 0
    expert_ffn: int = 0
    expert_tokens: int = 0  # tokens each local expert processes (balanced routing)
    shared_ffn: int = 0
    vocab: int = 0
    mla: Mla | None = None
    sp: int = 1  # sequence parallelism over this many tensor-parallel ranks (1: none)
    dtype: str = "bfloat16"
