"""A transformers ``config.json`` as the shapes train-sim builds layers from.

Only the fields that decide shapes and FLOPs are read; weights are never needed. Each model
type's names for the same quantity (Mixtral's ``num_local_experts``, Qwen2-MoE's
``num_experts``, DeepSeek's ``n_routed_experts``) are mapped here, and a field that is
missing or not a positive integer is a one-line error naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError

MODEL_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v3")


@dataclass(frozen=True)
class Mla:
    """DeepSeek's multi-head latent attention: low-rank q and kv projections."""

    q_lora: int  # 0: q is projected directly
    kv_lora: int
    qk_nope: int
    qk_rope: int
    v_head: int


@dataclass(frozen=True)
class ModelConfig:
    name: str
    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int  # a dense layer's FFN width
    vocab: int
    tied_embeddings: bool = False
    experts: int = 0  # routed experts; 0 = a dense model
    top_k: int = 0
    expert_ffn: int = 0
    shared_ffn: int = 0  # total width of the shared experts (0: none)
    first_dense: int = 0  # leading layers that are dense
    mla: Mla | None = None

    @property
    def moe(self) -> bool:
        return self.experts > 0

    def is_moe_layer(self, i: int) -> bool:
        return self.moe and i >= self.first_dense

    def params(self) -> dict[str, float]:
        """Parameter counts: total, active per token (the routed experts a token uses), and
        the embedding and head (which 6N counts apart)."""
        h = self.hidden
        attn = _attention_params(self)
        dense_mlp = 3 * h * self.ffn
        moe_total = self.experts * 3 * h * self.expert_ffn + 3 * h * self.shared_ffn + h * self.experts
        moe_active = self.top_k * 3 * h * self.expert_ffn + 3 * h * self.shared_ffn + h * self.experts
        n_moe = sum(self.is_moe_layer(i) for i in range(self.layers))
        n_dense = self.layers - n_moe
        norms = 2 * h * self.layers + h
        emb = self.vocab * h
        head = 0 if self.tied_embeddings else self.vocab * h
        total = self.layers * attn + n_dense * dense_mlp + n_moe * moe_total + norms + emb + head
        active = self.layers * attn + n_dense * dense_mlp + n_moe * moe_active + norms + emb + head
        return {"total": total, "active": active, "embedding": emb, "head": self.vocab * h}


def _attention_params(c: ModelConfig) -> int:
    h = c.hidden
    if c.mla is None:
        return h * c.heads * c.head_dim + 2 * h * c.kv_heads * c.head_dim + c.heads * c.head_dim * h
    m = c.mla
    q = (h * m.q_lora + m.q_lora * c.heads * (m.qk_nope + m.qk_rope)) if m.q_lora else h * c.heads * (m.qk_nope + m.qk_rope)
    kv = h * (m.kv_lora + m.qk_rope) + m.kv_lora * c.heads * (m.qk_nope + m.v_head)
    return q + kv + c.heads * m.v_head * h


def load_config(path: str | Path) -> ModelConfig:
    """A ``config.json`` (or a folder holding one) -> ModelConfig."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise GraphoptError(f"{p}: no such file; give a transformers config.json (see examples/configs/)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GraphoptError(f"{p}: not a readable JSON config ({e}); give a transformers config.json") from None
    if not isinstance(data, dict):
        raise GraphoptError(f"{p}: a config.json holds a JSON object, not a {type(data).__name__}")
    return from_dict(data, p.stem if p.name != "config.json" else p.parent.name)


def from_dict(d: dict[str, Any], name: str = "model") -> ModelConfig:
    mt = d.get("model_type")
    if mt not in MODEL_TYPES:
        raise GraphoptError(f"config {name}: model_type {mt!r} is not one train-sim builds ({', '.join(MODEL_TYPES)})")

    def need(key: str, *alts: str, default: Any = None) -> int:
        for k in (key, *alts):
            if d.get(k) is not None:
                v = d[k]
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise GraphoptError(f"config {name}: field {k!r} is {v!r}; it must be a positive integer")
                return v
        if default is not None:
            return default
        raise GraphoptError(f"config {name}: field {key!r} is missing; a {mt} config.json has it")

    hidden, heads = need("hidden_size"), need("num_attention_heads")
    fields: dict[str, Any] = dict(
        name=str(d.get("_name_or_path") or name), model_type=mt, layers=need("num_hidden_layers"), hidden=hidden,
        heads=heads, kv_heads=need("num_key_value_heads", default=heads),
        head_dim=need("head_dim", default=hidden // heads), ffn=need("intermediate_size"), vocab=need("vocab_size"),
        tied_embeddings=bool(d.get("tie_word_embeddings", False)))
    if mt == "mixtral":
        fields.update(experts=need("num_local_experts"), top_k=need("num_experts_per_tok"), expert_ffn=fields["ffn"])
    elif mt in ("qwen2_moe", "qwen3_moe"):
        fields.update(experts=need("num_experts"), top_k=need("num_experts_per_tok"),
                      expert_ffn=need("moe_intermediate_size"),
                      shared_ffn=d.get("shared_expert_intermediate_size") or 0)
    elif mt == "deepseek_v3":
        fields.update(experts=need("n_routed_experts"), top_k=need("num_experts_per_tok"),
                      expert_ffn=need("moe_intermediate_size"),
                      shared_ffn=(d.get("n_shared_experts") or 0) * need("moe_intermediate_size"),
                      first_dense=d.get("first_k_dense_replace") or 0,
                      mla=Mla(q_lora=d.get("q_lora_rank") or 0, kv_lora=need("kv_lora_rank"),
                              qk_nope=need("qk_nope_head_dim"), qk_rope=need("qk_rope_head_dim"),
                              v_head=need("v_head_dim")))
    c = ModelConfig(**fields)
    if c.heads % c.kv_heads:
        raise GraphoptError(f"config {name}: {c.heads} attention heads do not divide into {c.kv_heads} key/value heads")
    if c.moe and not 0 < c.top_k <= c.experts:
        raise GraphoptError(f"config {name}: num_experts_per_tok {c.top_k} must be between 1 and the {c.experts} experts")
    return c
