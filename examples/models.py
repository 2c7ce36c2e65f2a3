"""Example ONNX models for graphopt.

Every builder returns an ``onnx.ModelProto`` with random but seeded weights, so
the same call always yields the same model.  The hand-written models use
``onnx.helper``; the transformer models are written as ``torch.nn.Module`` and
exported with ``torch.onnx.export`` (torch is imported lazily, only by those
builders).

Builders:
    mlp()                       Gemm/MatMul+Add + Relu, opset 17, x: 4x64
    resnet()                    small residual CNN, opset 17, x: 1x3x32x32
    bert(exporter)              2-layer BERT encoder, "dynamo" (opset 20) or
                                "legacy" (TorchScript exporter, opset 17)
    llama_layer()               LLaMA-style decoder layer, dynamo, opset 20
    moe()                       top-2 mixture of experts, opset 17, x: 8x32
    zoo_cnn()                   SqueezeNet/GoogLeNet-like CNN, opset 8, IR 3
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "MODEL_BUILDERS",
    "bert",
    "llama_layer",
    "mlp",
    "moe",
    "resnet",
    "sample_inputs",
    "zoo_cnn",
]


# --------------------------------------------------------------------------
# helpers for onnx.helper-built models
# --------------------------------------------------------------------------

class _Graph:
    """Tiny accumulator for nodes and initializers with a seeded RNG."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, arr) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, name: str, shape, fan_in: int | None = None) -> str:
        if fan_in is None:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        w = self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        return self.const(name, w.astype(np.float32))

    def bias(self, name: str, n: int, scale: float = 0.05) -> str:
        return self.const(name, (self.rng.standard_normal(n) * scale).astype(np.float32))

    def node(self, op: str, inputs, outputs=None, name: str | None = None, **attrs):
        self._n += 1
        name = name or f"{op.lower()}_{self._n}"
        if outputs is None:
            outputs = [f"{name}_out"]
        elif isinstance(outputs, str):
            outputs = [outputs]
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def bn_params(self, prefix: str, c: int):
        scale = self.const(f"{prefix}.gamma", (1.0 + 0.1 * self.rng.standard_normal(c)).astype(np.float32))
        b = self.const(f"{prefix}.beta", (0.1 * self.rng.standard_normal(c)).astype(np.float32))
        mean = self.const(f"{prefix}.mean", (0.1 * self.rng.standard_normal(c)).astype(np.float32))
        var = self.const(f"{prefix}.var", self.rng.uniform(0.5, 1.5, c).astype(np.float32))
        return [scale, b, mean, var]


def _finish(g: _Graph, name: str, inputs, outputs, opset: int, ir_version: int | None = None,
            doc: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="graphopt-examples", doc_string=doc)
    if ir_version is not None:
        model.ir_version = ir_version
    else:
        # onnxruntime may lag behind the newest IR version onnx writes by default
        model.ir_version = min(model.ir_version, 10)
    return model


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# --------------------------------------------------------------------------
# 1. MLP
# --------------------------------------------------------------------------

def mlp() -> onnx.ModelProto:
    """x[4,64] -> Gemm(64->128)+Relu -> MatMul+Add(128->64)+Relu -> Gemm(64->10)."""
    g = _Graph(seed=1)
    w1 = g.weight("fc1.weight", (128, 64), fan_in=64)        # Gemm with transB=1 (torch layout)
    b1 = g.bias("fc1.bias", 128)
    h = g.node("Gemm", ["x", w1, b1], name="fc1", transB=1)
    h = g.node("Relu", [h], name="relu1")
    w2 = g.weight("fc2.weight", (128, 64), fan_in=128)       # MatMul layout [in, out]
    b2 = g.bias("fc2.bias", 64)
    h = g.node("MatMul", [h, w2], name="fc2_matmul")
    h = g.node("Add", [h, b2], name="fc2_add")
    h = g.node("Relu", [h], name="relu2")
    w3 = g.weight("fc3.weight", (64, 10), fan_in=64)
    b3 = g.bias("fc3.bias", 10)
    g.node("Gemm", [h, w3, b3], "logits", name="fc3")
    return _finish(g, "mlp", [_f32("x", [4, 64])], [_f32("logits", [4, 10])], opset=17,
                   doc="3-layer MLP (Gemm / MatMul+Add / Gemm, Relu)")


# --------------------------------------------------------------------------
# 2. ResNet-style CNN
# --------------------------------------------------------------------------

def resnet() -> onnx.ModelProto:
    """Stem conv/bn/relu/maxpool, three basic blocks (one strided with 1x1 projection),
    GlobalAveragePool, Flatten, Gemm.  x[1,3,32,32] -> logits[1,10]."""
    g = _Graph(seed=2)

    def conv_bn(x, prefix, cin, cout, k, stride, relu=True):
        w = g.weight(f"{prefix}.conv.weight", (cout, cin, k, k))
        y = g.node("Conv", [x, w], name=f"{prefix}.conv", kernel_shape=[k, k],
                   strides=[stride, stride], pads=[k // 2] * 4)
        y = g.node("BatchNormalization", [y] + g.bn_params(f"{prefix}.bn", cout),
                   name=f"{prefix}.bn", epsilon=1e-5)
        if relu:
            y = g.node("Relu", [y], name=f"{prefix}.relu")
        return y

    def block(x, prefix, cin, cout, stride):
        y = conv_bn(x, f"{prefix}.a", cin, cout, 3, stride)
        y = conv_bn(y, f"{prefix}.b", cout, cout, 3, 1, relu=False)
        if stride != 1 or cin != cout:
            sc = conv_bn(x, f"{prefix}.proj", cin, cout, 1, stride, relu=False)
        else:
            sc = x
        y = g.node("Add", [y, sc], name=f"{prefix}.add")
        return g.node("Relu", [y], name=f"{prefix}.out")

    x = conv_bn("input", "stem", 3, 16, 3, 1)                          # 16x32x32
    x = g.node("MaxPool", [x], name="stem.pool", kernel_shape=[3, 3],
               strides=[2, 2], pads=[1, 1, 1, 1])                      # 16x16x16
    x = block(x, "layer1", 16, 16, 1)                                  # 16x16x16
    x = block(x, "layer2", 16, 32, 2)                                  # 32x8x8 (projection)
    x = block(x, "layer3", 32, 32, 1)                                  # 32x8x8
    x = g.node("GlobalAveragePool", [x], name="gap")                   # 32x1x1
    x = g.node("Flatten", [x], name="flatten", axis=1)                 # 32
    w = g.weight("fc.weight", (10, 32), fan_in=32)
    b = g.bias("fc.bias", 10)
    g.node("Gemm", [x, w, b], "logits", name="fc", transB=1)
    return _finish(g, "resnet", [_f32("input", [1, 3, 32, 32])], [_f32("logits", [1, 10])],
                   opset=17, doc="ResNet-style CNN with 3 basic blocks")


# --------------------------------------------------------------------------
# torch-exported models
# --------------------------------------------------------------------------

def _export_torch(module, args, input_names, output_names, *, dynamo: bool, opset: int,
                  kwargs: dict | None = None) -> onnx.ModelProto:
    import torch

    module.eval()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        with torch.no_grad():
            if dynamo:
                torch.onnx.export(module, args, path, dynamo=True, opset_version=opset,
                                  input_names=input_names, output_names=output_names,
                                  external_data=False, verbose=False, **(kwargs or {}))
            else:
                torch.onnx.export(module, args, path, dynamo=False, opset_version=opset,
                                  input_names=input_names, output_names=output_names,
                                  **(kwargs or {}))
        model = onnx.load(path, load_external_data=True)
    # make sure nothing still points at (now deleted) external files
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            raise RuntimeError(f"initializer {t.name} still external")
    model.ir_version = min(model.ir_version, 10)
    return model


def _bert_module():
    import math

    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, hidden, heads):
            super().__init__()
            self.heads = heads
            self.head_dim = hidden // heads
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)
            self.out = nn.Linear(hidden, hidden)

        def split(self, t):
            b, s, _ = t.size()
            return t.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

        def forward(self, x, mask_add):
            b, s, h = x.size()
            q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            scores = scores + mask_add
            probs = torch.softmax(scores, dim=-1)
            ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(b, s, h)
            return self.out(ctx)

    class Layer(nn.Module):
        def __init__(self, hidden, heads, ffn):
            super().__init__()
            self.attn = Attention(hidden, heads)
            self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
            self.fc1 = nn.Linear(hidden, ffn)
            self.fc2 = nn.Linear(ffn, hidden)
            self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

        def forward(self, x, mask_add):
            x = self.ln1(x + self.attn(x, mask_add))
            return self.ln2(x + self.fc2(nn.functional.gelu(self.fc1(x))))

    class Bert(nn.Module):
        def __init__(self, vocab=1000, hidden=64, heads=4, ffn=128, layers=2, max_pos=64):
            super().__init__()
            self.word = nn.Embedding(vocab, hidden)
            self.pos = nn.Embedding(max_pos, hidden)
            self.token_type = nn.Embedding(2, hidden)
            self.ln = nn.LayerNorm(hidden, eps=1e-12)
            self.layers = nn.ModuleList([Layer(hidden, heads, ffn) for _ in range(layers)])
            self.pooler = nn.Linear(hidden, hidden)

        def forward(self, input_ids, attention_mask):
            s = input_ids.size(1)
            pos_ids = torch.arange(s, dtype=torch.long).unsqueeze(0)
            x = self.word(input_ids) + self.pos(pos_ids) + self.token_type(torch.zeros_like(input_ids))
            x = self.ln(x)
            # [B,S] 1/0 mask -> additive [B,1,1,S]
            mask_add = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            for layer in self.layers:
                x = layer(x, mask_add)
            pooled = torch.tanh(self.pooler(x[:, 0]))
            return x, pooled

    torch.manual_seed(3)
    m = Bert()
    # BERT-style init (N(0, 0.02)) is too flat to be an interesting test; use a wider one
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.1)
    return m


def bert(exporter: str = "dynamo") -> onnx.ModelProto:
    """2-layer BERT encoder (hidden 64, 4 heads, FFN 128, batch 1, seq 16).

    Inputs: input_ids int64 [1,16], attention_mask int64 [1,16] (1 = keep).
    Outputs: last_hidden_state [1,16,64], pooler_output [1,64].
    exporter="dynamo": opset 20 (Gelu, LayerNormalization);
    exporter="legacy": TorchScript exporter, opset 17 (Erf-based GELU, Shape/Gather/... chains).
    """
    import torch

    if exporter not in ("dynamo", "legacy"):
        raise ValueError(f"exporter must be 'dynamo' or 'legacy', not {exporter!r}")
    m = _bert_module()
    ids = torch.randint(0, 1000, (1, 16), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(1, 16, dtype=torch.long)
    dyn = exporter == "dynamo"
    # legacy: keep the raw TorchScript graph (no constant folding) so that the
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains the tracer records
    # for t.size()/view() stay in the model, as in many real-world legacy exports.
    return _export_torch(m, (ids, mask), ["input_ids", "attention_mask"],
                         ["last_hidden_state", "pooler_output"],
                         dynamo=dyn, opset=20 if dyn else 17,
                         kwargs=None if dyn else {"do_constant_folding": False})


def _llama_module():
    import math

    import torch
    from torch import nn

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):
            var = x.pow(2).mean(-1, keepdim=True)
            return self.weight * (x * torch.rsqrt(var + self.eps))

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    class DecoderLayer(nn.Module):
        def __init__(self, hidden=64, heads=4, ffn=172, seq=16, theta=10000.0):
            super().__init__()
            self.heads, self.head_dim = heads, hidden // heads
            self.input_norm = RMSNorm(hidden)
            self.q_proj = nn.Linear(hidden, hidden, bias=False)
            self.k_proj = nn.Linear(hidden, hidden, bias=False)
            self.v_proj = nn.Linear(hidden, hidden, bias=False)
            self.o_proj = nn.Linear(hidden, hidden, bias=False)
            self.post_norm = RMSNorm(hidden)
            self.w1 = nn.Linear(hidden, ffn, bias=False)   # gate
            self.w3 = nn.Linear(hidden, ffn, bias=False)   # up
            self.w2 = nn.Linear(ffn, hidden, bias=False)   # down
            inv_freq = 1.0 / theta ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim)
            freqs = torch.outer(torch.arange(seq).float(), inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)                       # [seq, head_dim]
            self.register_buffer("cos", emb.cos()[None, None], persistent=False)
            self.register_buffer("sin", emb.sin()[None, None], persistent=False)
            causal = torch.full((seq, seq), float("-inf")).triu(1)
            self.register_buffer("causal_mask", causal[None, None], persistent=False)

        def forward(self, x):
            b, s, h = x.shape
            r = x
            x = self.input_norm(x)
            q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
            k = self.k_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
            v = self.v_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
            q = q * self.cos + rotate_half(q) * self.sin
            k = k * self.cos + rotate_half(k) * self.sin
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + self.causal_mask
            p = torch.softmax(scores.float(), dim=-1).to(q.dtype)
            a = (p @ v).transpose(1, 2).reshape(b, s, h)
            x = r + self.o_proj(a)
            r = x
            x = self.post_norm(x)
            x = self.w2(nn.functional.silu(self.w1(x)) * self.w3(x))
            return r + x

    torch.manual_seed(4)
    m = DecoderLayer()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.08)
            else:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return m


def llama_layer() -> onnx.ModelProto:
    """LLaMA-style decoder layer: RMSNorm, RoPE (precomputed cos/sin), causal softmax
    attention, SwiGLU FFN.  x[1,16,64] float32 -> y[1,16,64].  Dynamo exporter, opset 20."""
    import torch

    m = _llama_module()
    x = torch.randn(1, 16, 64, generator=torch.Generator().manual_seed(0))
    return _export_torch(m, (x,), ["x"], ["y"], dynamo=True, opset=20)


# --------------------------------------------------------------------------
# 5. Mixture of experts
# --------------------------------------------------------------------------

def moe(num_experts: int = 4, d: int = 32, d_ff: int = 64, tokens: int = 8) -> onnx.ModelProto:
    """Top-2 MoE layer.  x[8,32] -> y[8,32] (= x + sum_k w_k * expert_k(x)), gates[8,4].

    router MatMul -> Softmax -> TopK(k=2) -> renormalise; the 4 expert FFNs (Relu MLPs)
    are computed densely and stacked [8,4,32]; the top-2 expert rows are picked with
    GatherElements and weighted by the renormalised gate values.  The dense gate matrix
    (ScatterElements of the top-2 weights into zeros) is a second output.
    """
    g = _Graph(seed=5)
    wr = g.weight("router.weight", (d, num_experts), fan_in=d)
    logits = g.node("MatMul", ["x", wr], name="router")
    probs = g.node("Softmax", [logits], name="router_softmax", axis=-1)
    k = g.const("k", np.array([2], dtype=np.int64))
    topv, topi = g.node("TopK", [probs, k], ["topk_values", "topk_indices"], name="topk",
                        axis=-1, largest=1, sorted=1)
    axes_last = g.const("axes_last", np.array([-1], dtype=np.int64))
    denom = g.node("ReduceSum", [topv, axes_last], name="topk_sum", keepdims=1)
    weights = g.node("Div", [topv, denom], name="renorm")                     # [T,2]

    # dense gate matrix [T,E]
    zeros = g.const("gate_zeros", np.zeros((tokens, num_experts), dtype=np.float32))
    g.node("ScatterElements", [zeros, topi, weights], "gates", name="scatter_gates", axis=1)

    # experts, computed densely
    axes1 = g.const("axes_1", np.array([1], dtype=np.int64))
    outs = []
    for e in range(num_experts):
        w1 = g.weight(f"experts.{e}.w1", (d, d_ff), fan_in=d)
        b1 = g.bias(f"experts.{e}.b1", d_ff)
        w2 = g.weight(f"experts.{e}.w2", (d_ff, d), fan_in=d_ff)
        b2 = g.bias(f"experts.{e}.b2", d)
        h = g.node("MatMul", ["x", w1], name=f"expert{e}.fc1")
        h = g.node("Add", [h, b1], name=f"expert{e}.fc1_bias")
        h = g.node("Relu", [h], name=f"expert{e}.relu")
        h = g.node("MatMul", [h, w2], name=f"expert{e}.fc2")
        h = g.node("Add", [h, b2], name=f"expert{e}.fc2_bias")
        outs.append(g.node("Unsqueeze", [h, axes1], name=f"expert{e}.unsqueeze"))
    stacked = g.node("Concat", outs, name="stack_experts", axis=1)          # [T,E,d]

    # pick the top-2 expert outputs: GatherElements along the expert axis
    axes2 = g.const("axes_2", np.array([2], dtype=np.int64))
    idx3 = g.node("Unsqueeze", [topi, axes2], name="topk_idx_unsqueeze")     # [T,2,1]
    shape = g.const("gather_shape", np.array([tokens, 2, d], dtype=np.int64))
    idx3 = g.node("Expand", [idx3, shape], name="topk_idx_expand")           # [T,2,d]
    picked = g.node("GatherElements", [stacked, idx3], name="gather_experts", axis=1)
    w3 = g.node("Unsqueeze", [weights, axes2], name="weights_unsqueeze")     # [T,2,1]
    mixed = g.node("Mul", [picked, w3], name="weighted")
    mixed = g.node("ReduceSum", [mixed, axes1], name="combine", keepdims=0)  # [T,d]
    g.node("Add", ["x", mixed], "y", name="residual")
    return _finish(g, "moe", [_f32("x", [tokens, d])],
                   [_f32("y", [tokens, d]), _f32("gates", [tokens, num_experts])],
                   opset=17, doc="top-2 mixture of experts, 4 dense experts")


# --------------------------------------------------------------------------
# 6. model-zoo-era CNN at opset 8
# --------------------------------------------------------------------------

def zoo_cnn() -> onnx.ModelProto:
    """SqueezeNet/GoogLeNet-like CNN in the style of the old ONNX model zoo:
    opset 8, IR version 3 (initializers also listed as graph inputs).

    conv/BN(spatial=1)/relu/LRN/maxpool stem, two fire modules (squeeze 1x1 -> expand
    1x1 || expand 3x3 -> Concat), an inception-ish block whose branches are merged
    with Sum, Dropout, AveragePool, Flatten, Gemm, Softmax.
    x[1,3,64,64] -> prob[1,10].
    """
    g = _Graph(seed=6)

    def conv(x, prefix, cin, cout, k, stride=1, pad=None, relu=True):
        pad = k // 2 if pad is None else pad
        w = g.weight(f"{prefix}_w", (cout, cin, k, k))
        b = g.bias(f"{prefix}_b", cout)
        y = g.node("Conv", [x, w, b], name=prefix, kernel_shape=[k, k], strides=[stride, stride],
                   pads=[pad] * 4, dilations=[1, 1], group=1)
        if relu:
            y = g.node("Relu", [y], name=f"{prefix}_relu")
        return y

    def fire(x, prefix, cin, s, e):
        sq = conv(x, f"{prefix}_squeeze1x1", cin, s, 1)
        e1 = conv(sq, f"{prefix}_expand1x1", s, e, 1)
        e3 = conv(sq, f"{prefix}_expand3x3", s, e, 3)
        return g.node("Concat", [e1, e3], name=f"{prefix}_concat", axis=1)

    x = conv("data_0", "conv1", 3, 32, 5, stride=2, pad=2, relu=False)          # 32x32x32
    x = g.node("BatchNormalization", [x] + g.bn_params("conv1_bn", 32), name="conv1_bn",
               epsilon=1e-5, momentum=0.9, spatial=1)
    x = g.node("Relu", [x], name="conv1_relu")
    x = g.node("LRN", [x], name="norm1", size=5, alpha=1e-4, beta=0.75, bias=1.0)
    x = g.node("MaxPool", [x], name="pool1", kernel_shape=[3, 3], strides=[2, 2],
               pads=[0, 0, 1, 1])                                                 # 32x16x16
    x = fire(x, "fire2", 32, 8, 16)                                               # 32x16x16
    x = fire(x, "fire3", 32, 8, 16)                                               # 32x16x16
    x = g.node("MaxPool", [x], name="pool3", kernel_shape=[3, 3], strides=[2, 2],
               pads=[0, 0, 1, 1])                                                 # 32x8x8
    # inception-ish: three branches, merged by Sum (plus a broadcast per-channel bias)
    b1 = conv(x, "inc_1x1", 32, 48, 1)
    b2 = conv(conv(x, "inc_3x3_reduce", 32, 16, 1), "inc_3x3", 16, 48, 3)
    pooled = g.node("MaxPool", [x], name="inc_pool", kernel_shape=[3, 3], strides=[1, 1],
                    pads=[1, 1, 1, 1])
    b3 = conv(pooled, "inc_pool_proj", 32, 48, 1)
    chan_bias = g.const("inc_sum_bias", (0.05 * g.rng.standard_normal((1, 48, 1, 1))).astype(np.float32))
    x = g.node("Sum", [b1, b2, b3, chan_bias], name="inc_sum")                   # 48x8x8
    x = g.node("LRN", [x], name="norm2", size=3, alpha=2e-4, beta=0.75, bias=2.0)
    x = g.node("Dropout", [x], ["drop_out"], name="drop", ratio=0.5)
    x = g.node("AveragePool", [x], name="pool_avg", kernel_shape=[8, 8], strides=[1, 1],
               pads=[0, 0, 0, 0], count_include_pad=0)                            # 48x1x1
    x = g.node("Flatten", [x], name="flatten", axis=1)                            # 48
    w = g.weight("fc_w", (10, 48), fan_in=48)
    b = g.bias("fc_b", 10)
    x = g.node("Gemm", [x, w, b], name="fc", alpha=1.0, beta=1.0, transA=0, transB=1)
    g.node("Softmax", [x], "prob_1", name="prob", axis=1)

    # IR version 3: every initializer must also be a graph input
    inputs = [_f32("data_0", [1, 3, 64, 64])]
    for t in g.inits:
        inputs.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return _finish(g, "zoo_cnn", inputs, [_f32("prob_1", [1, 10])], opset=8, ir_version=3,
                   doc="SqueezeNet/GoogLeNet-like CNN, opset 8")


MODEL_BUILDERS = {
    "mlp": mlp,
    "resnet": resnet,
    "bert_dynamo": lambda: bert("dynamo"),
    "bert_legacy": lambda: bert("legacy"),
    "llama_layer": llama_layer,
    "moe": moe,
    "zoo_cnn": zoo_cnn,
}


def sample_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for a bundled model (only true inputs, not IR<4 initializer inputs)."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value for d in tt.shape.dim]
        if vi.name == "input_ids":
            feeds[vi.name] = rng.integers(0, 1000, size=shape, dtype=np.int64)
        elif vi.name == "attention_mask":
            m = np.ones(shape, dtype=np.int64)
            m[..., -3:] = 0                      # last three tokens are padding
            feeds[vi.name] = m
        elif tt.elem_type == TensorProto.FLOAT:
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            raise ValueError(f"no sample data rule for input {vi.name}")
    return feeds
