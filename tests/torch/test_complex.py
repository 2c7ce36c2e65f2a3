"""Complex tensors inside a graph (Meta's original LLaMA rotary: view_as_complex, a complex
product, view_as_real) lower to real pairs [..., 2]; torch.compile passes the complex
freqs_cis in as a graph input, which is fed as its pairs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import graphopt
from graphopt.errors import GraphoptError


def _freqs_cis(dim: int, end: int, theta: float = 10000.0) -> torch.Tensor:
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(end), freqs).float()
    return torch.polar(torch.ones_like(angles), angles)


def _rotary(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    shape = [d if i in (1, xc.ndim - 1) else 1 for i, d in enumerate(xc.shape)]
    return torch.view_as_real(xc * freqs_cis.view(*shape)).flatten(3).type_as(x)


class MetaAttention(nn.Module):
    """Meta's llama/model.py attention scores, freqs_cis a plain attribute sliced per call."""

    def __init__(self) -> None:
        super().__init__()
        self.wq, self.wk = nn.Linear(64, 64, bias=False), nn.Linear(64, 64, bias=False)
        self.freqs_cis = _freqs_cis(16, 32)

    def forward(self, x: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        b, s, _ = x.shape
        fc = self.freqs_cis[start_pos: start_pos + s]
        q = _rotary(self.wq(x).view(b, s, 4, 16), fc).transpose(1, 2)
        k = _rotary(self.wk(x).view(b, s, 4, 16), fc).transpose(1, 2)
        return (q @ k.transpose(2, 3) / 4.0).softmax(-1)


@pytest.mark.parametrize("target", ["cpu", "ascend-sim"])
def test_meta_llama_rotary_compiles(target):
    torch.manual_seed(0)
    model, x = MetaAttention().eval(), torch.randn(2, 8, 64)
    torch._dynamo.reset()
    with torch.no_grad():
        want = model(x)
        got = torch.compile(model, backend="graphopt", options={"target": target, "validate": True})(x)
    torch.testing.assert_close(got, want, rtol=1e-2, atol=5e-3 if target != "cpu" else 1e-5)
    compiled = graphopt.compile(torch.export.export(model, (x,)), target, validate=True)
    assert compiled.report["validation"]["passed"]


def test_a_complex_output_is_refused_with_its_remedy():
    class Out(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.view_as_complex(x.reshape(4, 2)) * 2

    with pytest.raises(GraphoptError, match=r"complex tensor: return torch.view_as_real"):
        graphopt.compile(torch.export.export(Out(), (torch.randn(8),)), "cpu")


def test_an_unsupported_complex_op_is_named():
    class Abs(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.view_as_real(torch.view_as_complex(x.reshape(4, 2)).conj_physical())

    with pytest.raises(GraphoptError, match=r"(on complex tensors is not supported|is not supported by graphopt)"):
        graphopt.compile(torch.export.export(Abs(), (torch.randn(8),)), "cpu")
