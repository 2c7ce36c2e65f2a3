"""torch.compile(model, backend="graphopt"): inference, then a training step.

No `import graphopt` is needed: installing graphopt registers the backend through the
`torch_dynamo_backends` entry point.

1. Inference: a 2-layer GPT-2 (transformers config, random weights) compiled with
   graphopt; its logits equal eager within torch's float32 tolerances.
2. Training: one SGD step of a small transformer encoder compiled with graphopt (the
   forward and backward graphs both run in graphopt); its gradients and updated
   weights equal eager's.

    python examples/torch_compile.py
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import torch
from torch import nn


def inference() -> bool:
    import transformers

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=64, use_cache=False,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 100, (2, 16))
    compiled = torch.compile(model, backend="graphopt", options={"opt_level": 2})
    with torch.no_grad():
        got, expected = compiled(ids).logits, model(ids).logits
    ok = torch.allclose(got, expected, rtol=1.3e-6, atol=1e-5)
    print(f"inference: gpt2 logits {list(got.shape)}, max abs err {(got - expected).abs().max():.2e}: "
          f"{'equal to eager' if ok else 'MISMATCH'}")
    return ok


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.block = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(ids)))


def train_step(model: nn.Module, forward: Any, ids: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """One SGD step of ``model`` through ``forward`` (the model itself, or its compiled form)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    logits = forward(ids)
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    opt.step()
    return grads


def training() -> bool:
    torch.manual_seed(0)
    model = TinyTransformer().train()
    twin = copy.deepcopy(model)
    ids, targets = torch.randint(0, 50, (4, 12)), torch.randint(0, 50, (4, 12))
    expected = train_step(model, model, ids, targets)
    got = train_step(twin, torch.compile(twin, backend="graphopt"), ids, targets)
    worst = max((got[k] - expected[k]).abs().max().item() for k in expected)
    grads_ok = all(torch.allclose(got[k], expected[k], rtol=1.3e-6, atol=1e-5) for k in expected)
    weights_ok = all(torch.allclose(a, b, rtol=1.3e-6, atol=1e-5) for a, b in zip(model.parameters(), twin.parameters()))
    print(f"training: {len(got)} gradients, max abs err {worst:.2e}: "
          f"{'equal to eager' if grads_ok and weights_ok else 'MISMATCH'}")
    return grads_ok and weights_ok


def main() -> int:
    ok = inference()
    ok = training() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
