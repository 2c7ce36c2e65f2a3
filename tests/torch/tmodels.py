"""Small torch models the torch tests compile: transformers configs with random weights
(2 layers, hidden 64), a CNN and a mixture-of-experts layer."""

from __future__ import annotations

import torch
from torch import nn

VOCAB, SEQ = 100, 8


def tokens(batch: int = 2, seq: int = SEQ) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(0))


def bert() -> nn.Module:
    import transformers

    cfg = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                  vocab_size=VOCAB, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0, attn_implementation="eager")
    return transformers.BertModel(cfg).eval()


def gpt2() -> nn.Module:
    import transformers

    cfg = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=64, use_cache=False,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                                  attn_implementation="eager")
    return transformers.GPT2LMHeadModel(cfg).eval()


def llama() -> nn.Module:
    import transformers

    cfg = transformers.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   intermediate_size=128, vocab_size=VOCAB, max_position_embeddings=64, use_cache=False,
                                   attn_implementation="eager")
    return transformers.LlamaForCausalLM(cfg).eval()


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class MoE(nn.Module):
    """Top-2 routing over 4 SwiGLU experts, computed densely (no data-dependent shapes)."""

    def __init__(self, dim: int = 32, hidden: int = 64, experts: int = 4, k: int = 2) -> None:
        super().__init__()
        self.k = k
        self.gate = nn.Linear(dim, experts, bias=False)
        self.w1 = nn.ModuleList(nn.Linear(dim, hidden, bias=False) for _ in range(experts))
        self.w3 = nn.ModuleList(nn.Linear(dim, hidden, bias=False) for _ in range(experts))
        self.w2 = nn.ModuleList(nn.Linear(hidden, dim, bias=False) for _ in range(experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.gate(x), dim=-1)
        top_v, top_i = torch.topk(probs, self.k, dim=-1)
        top_v = top_v / top_v.sum(-1, keepdim=True)
        route = torch.zeros_like(probs).scatter(-1, top_i, top_v)
        out = torch.zeros_like(x)
        for e, (w1, w3, w2) in enumerate(zip(self.w1, self.w3, self.w2)):
            out = out + route[..., e : e + 1] * w2(nn.functional.silu(w1(x)) * w3(x))
        return out


def cnn() -> nn.Module:
    torch.manual_seed(0)
    m = CNN().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        m.features[1].running_mean.uniform_(-0.5, 0.5)
        m.features[1].running_var.uniform_(0.5, 1.5)
    return m


def moe() -> nn.Module:
    torch.manual_seed(0)
    return MoE().eval()


# -- more transformers architectures (random weights, tiny), each with what it exercises ----


def t5() -> nn.Module:  # encoder-decoder, relative position buckets
    import transformers

    cfg = transformers.T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, vocab_size=VOCAB,
                                use_cache=False, dropout_rate=0.0)
    return transformers.T5Model(cfg).eval()


def bart() -> nn.Module:  # a scalar tensor constant made in forward
    import transformers

    cfg = transformers.BartConfig(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                  decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                                  vocab_size=VOCAB, max_position_embeddings=64, use_cache=False)
    return transformers.BartModel(cfg).eval()


def deberta() -> nn.Module:  # disentangled attention, a scalar tensor constant
    import transformers

    cfg = transformers.DebertaV2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=128, vocab_size=VOCAB, max_position_embeddings=64)
    return transformers.DebertaV2Model(cfg).eval()


def swin() -> nn.Module:  # shifted windows (roll), aten.as_strided
    import transformers

    cfg = transformers.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                  window_size=4)
    return transformers.SwinModel(cfg).eval()


def mixtral() -> nn.Module:  # top-2 of 4 experts in eager loops: graph breaks, in-place index_add_
    import transformers

    cfg = transformers.MixtralConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                     intermediate_size=128, vocab_size=VOCAB, max_position_embeddings=64,
                                     num_local_experts=4, num_experts_per_tok=2, use_cache=False,
                                     experts_implementation="eager")
    return transformers.MixtralForCausalLM(cfg).eval()
