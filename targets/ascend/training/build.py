"""Layers as torch functions of their activations and (sharded) weights, captured on fake
tensors: aot_autograd's forward and backward graphs, what the forward saves, and the
attention's shapes. Imports torch: loaded only when a shard is compiled."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from functorch.compile import make_boxed_func, min_cut_rematerialization_partition
from torch._functorch.aot_autograd import aot_function
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from graphopt.errors import GraphoptError
from graphopt.frontends.fx.capture import aot_decompositions
from graphopt.targets.ascend.training.shard import Shard

SDPA = "_scaled_dot_product_flash_attention_for_cpu"


def _rms(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    v = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(v + 1e-6)).to(x.dtype) * g


def _rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = t.shape[-1] // 2
    return t * cos + torch.cat((-t[..., half:], t[..., :half]), -1) * sin


@torch.library.custom_op("graphopt_sim::sp_gather", mutates_args=())
def sp_gather(x: torch.Tensor, n: int) -> torch.Tensor:
    """Sequence parallelism's all-gather before a tensor-parallel block: [b, s/n, h] ->
    [b, s, h]. HCCL moves it (step.layer_comm prices it by the link model), so the captured
    graphs cut it out (``COMM_OPS``): its result becomes an input there, costing no kernel."""
    return x.repeat(1, n, 1)


@sp_gather.register_fake
def _(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.new_empty(x.shape[0], x.shape[1] * n, *x.shape[2:])


@torch.library.custom_op("graphopt_sim::sp_scatter", mutates_args=())
def sp_scatter(y: torch.Tensor, n: int) -> torch.Tensor:
    """The reduce-scatter after the block: [b, s, h] -> [b, s/n, h] (this rank's part of the sum)."""
    return y[:, : y.shape[1] // n].clone()


@sp_scatter.register_fake
def _(y: torch.Tensor, n: int) -> torch.Tensor:
    return y.new_empty(y.shape[0], y.shape[1] // n, *y.shape[2:])


def _gather_backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
    return sp_scatter(g, ctx.n), None


def _scatter_backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
    return sp_gather(g, ctx.n), None


def _keep_n(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.n = inputs[1]


sp_gather.register_autograd(_gather_backward, setup_context=_keep_n)
sp_scatter.register_autograd(_scatter_backward, setup_context=_keep_n)
COMM_OPS = "graphopt_sim"


def _gather(s: Shard, x: torch.Tensor) -> torch.Tensor:
    return sp_gather(x, s.sp) if s.sp > 1 else x


def _scatter(s: Shard, y: torch.Tensor) -> torch.Tensor:
    return sp_scatter(y, s.sp) if s.sp > 1 else y


def _attention_block(s: Shard, x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    """Norm, q/k/v projections, rotary, causal attention (GQA by repeating kv), output projection."""
    b, n, d = s.mbs, s.seq, s.head_dim
    h = _gather(s, _rms(x, w["norm1"]))
    if s.mla is None:
        q = (h @ w["wq"]).view(b, n, s.heads, d).transpose(1, 2)
        k = (h @ w["wk"]).view(b, n, s.kv_heads, d).transpose(1, 2)
        v = (h @ w["wv"]).view(b, n, s.kv_heads, d).transpose(1, 2)
        q, k = _rotate(q, w["cos"], w["sin"]), _rotate(k, w["cos"], w["sin"])
        if s.kv_heads != s.heads:
            rep = s.heads // s.kv_heads
            k = k[:, :, None].expand(b, s.kv_heads, rep, n, d).reshape(b, s.heads, n, d)
            v = v[:, :, None].expand(b, s.kv_heads, rep, n, d).reshape(b, s.heads, n, d)
    else:
        q, k, v = _mla_qkv(s, h, w)
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if s.mla is not None:
        a = a[..., : s.mla.v_head]  # the value head's own width (v was padded to the qk head size)
    return x + _scatter(s, a.transpose(1, 2).reshape(b, n, -1) @ w["wo"])


def _mla_qkv(s: Shard, h: torch.Tensor, w: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    m, b, n = s.mla, s.mbs, s.seq
    assert m is not None
    q = _rms(h @ w["wqa"], w["qnorm"]) @ w["wqb"] if m.q_lora else h @ w["wq"]
    q = q.view(b, n, s.heads, m.qk_nope + m.qk_rope).transpose(1, 2)
    kv_a = h @ w["wkva"]
    kv = (_rms(kv_a[..., : m.kv_lora], w["kvnorm"]) @ w["wkvb"]).view(b, n, s.heads, m.qk_nope + m.v_head).transpose(1, 2)
    k_rope = _rotate(kv_a[..., m.kv_lora:].view(b, n, 1, m.qk_rope).transpose(1, 2), w["cos"], w["sin"])
    q = torch.cat((q[..., : m.qk_nope], _rotate(q[..., m.qk_nope:], w["cos"], w["sin"])), -1)
    k = torch.cat((kv[..., : m.qk_nope], k_rope.expand(b, s.heads, n, m.qk_rope)), -1)
    v = kv[..., m.qk_nope:]
    pad = m.qk_nope + m.qk_rope - m.v_head  # sdpa wants one head size: v padded with zeros
    if pad > 0:
        v = torch.cat((v, v.new_zeros(*v.shape[:-1], pad)), -1)
    return q, k, v


def _mlp(x: torch.Tensor, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    return (F.silu(x @ gate) * (x @ up)) @ down


def _moe(s: Shard, x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    """Router, top-k, the tokens each local expert gets (balanced: ``expert_tokens`` each,
    gathered by index as after the dispatch all-to-all), the experts as batched matmuls,
    and the weighted combine back onto the tokens."""
    t = x.reshape(-1, s.hidden)
    probs = torch.softmax((t @ w["router"]).float(), -1)
    top_w, _ = torch.topk(probs, s.top_k, dim=-1)
    xs = t[w["slots"]].view(s.experts, s.expert_tokens, s.hidden)
    gu = torch.bmm(xs, w["e_gate_up"])
    g, u = gu.chunk(2, dim=-1)
    ys = torch.bmm(F.silu(g) * u, w["e_down"]).reshape(-1, s.hidden)
    # balanced routing: the local experts get top_k rows per token in all (experts x expert_tokens)
    y = torch.zeros_like(t).index_add(0, w["slots"], ys * top_w.to(x.dtype).reshape(-1, 1))
    if s.shared_ffn:
        y = y + _mlp(t, w["s_gate"], w["s_up"], w["s_down"])
    return y.view_as(x)


def _weights(s: Shard, dt: torch.dtype) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Each weight's (and side input's) shape and dtype on one chip."""
    h, d = s.hidden, s.head_dim
    w: dict[str, tuple[tuple[int, ...], Any]] = {"norm1": ((h,), dt), "norm2": ((h,), dt)}
    if s.kind in ("dense", "moe"):
        rope = s.mla.qk_rope if s.mla else d
        w.update(cos=((1, 1, s.seq, rope), dt), sin=((1, 1, s.seq, rope), dt))
        if s.mla is None:
            w.update(wq=((h, s.heads * d), dt), wk=((h, s.kv_heads * d), dt), wv=((h, s.kv_heads * d), dt),
                     wo=((s.heads * d, h), dt))
        else:
            m = s.mla
            qd = s.heads * (m.qk_nope + m.qk_rope)
            w.update({"wqa": ((h, m.q_lora), dt), "qnorm": ((m.q_lora,), dt), "wqb": ((m.q_lora, qd), dt)}
                     if m.q_lora else {"wq": ((h, qd), dt)})
            w.update(wkva=((h, m.kv_lora + m.qk_rope), dt), kvnorm=((m.kv_lora,), dt),
                     wkvb=((m.kv_lora, s.heads * (m.qk_nope + m.v_head)), dt), wo=((s.heads * m.v_head, h), dt))
    if s.kind == "dense":
        w.update(gate=((h, s.ffn), dt), up=((h, s.ffn), dt), down=((s.ffn, h), dt))
    if s.kind == "moe":
        e = s.experts
        w.update(router=((h, s.router_experts), dt))
        w.update(slots=((e * s.expert_tokens,), torch.int64), e_gate_up=((e, h, 2 * s.expert_ffn), dt),
                 e_down=((e, s.expert_ffn, h), dt))
        if s.shared_ffn:
            w.update(s_gate=((h, s.shared_ffn), dt), s_up=((h, s.shared_ffn), dt), s_down=((s.shared_ffn, h), dt))
    if s.kind == "head":
        w = {"norm1": ((h,), dt), "head": ((h, s.vocab), dt), "labels": ((s.mbs * s.seq,), torch.int64)}
    if s.kind == "embed":
        w = {"table": ((s.vocab, h), dt), "ids": ((s.mbs, s.seq), torch.int64)}
    return w


def _layer_fn(s: Shard, names: list[str]) -> Any:
    def layer(x: torch.Tensor, *ws: torch.Tensor) -> torch.Tensor:
        w = dict(zip(names, ws, strict=True))
        if s.kind == "embed":
            return F.embedding(w["ids"], w["table"]) + x  # x: zero; keeps one differentiable activation
        if s.kind == "head":
            logits = (_rms(x, w["norm1"]) @ w["head"]).float().view(-1, s.vocab)
            return F.cross_entropy(logits, w["labels"])
        x = _attention_block(s, x, w)
        h = _gather(s, _rms(x, w["norm2"]))
        return x + _scatter(s, _moe(s, h, w) if s.kind == "moe" else _mlp(h, w["gate"], w["up"], w["down"]))
    return layer


def capture(s: Shard) -> tuple[Any, Any, tuple[int, int], int, Any]:
    """(forward graph, backward graph, saved bytes (all, attention's: see _saved_bytes),
    input bytes, the attention's (q, k, v) shapes or None)."""
    dt = getattr(torch, s.dtype)
    specs = _weights(s, dt)
    names = list(specs)
    graphs: dict[str, Any] = {}

    def keep(name: str) -> Any:
        def compiler(gm: Any, _inputs: Any) -> Any:
            graphs[name] = gm
            return make_boxed_func(gm.forward)
        return compiler

    fn = aot_function(_layer_fn(s, names), fw_compiler=keep("fw"), bw_compiler=keep("bw"),
                      partition_fn=min_cut_rematerialization_partition, decompositions=aot_decompositions())
    with FakeTensorMode():
        x = torch.empty(s.mbs, s.seq // (s.sp if s.kind in ("dense", "moe") else 1), s.hidden, dtype=dt,
                        requires_grad=True)
        ws = [torch.empty(shape, dtype=t, requires_grad=t.is_floating_point and n not in ("cos", "sin"))
              if t.is_floating_point else torch.zeros(shape, dtype=t) for n, (shape, t) in specs.items()]
        out = fn(x, *ws)
        out.float().sum().backward()
    fw, bw = graphs["fw"], graphs["bw"]
    saved = _saved_bytes(fw)
    attn = _attention_shapes(fw)
    defer_views(fw, bw)
    for g in (fw, bw):
        cut_node(g, COMM_OPS)
    cut_node(fw, SDPA)
    cut_node(bw, SDPA + "_backward")
    return fw, bw, saved, x.numel() * x.element_size(), attn


def _nbytes(v: Any) -> int:
    return int(v.numel() * v.element_size()) if isinstance(v, torch.Tensor) else 0


_VIEWS = ("view", "_unsafe_view", "alias", "permute", "transpose", "t.default", "expand", "slice", "reshape",
          "squeeze", "unsqueeze", "select", "as_strided")


def _base(n: Any) -> Any:
    """The node whose memory a view node shares (itself if it is no view)."""
    chain = _view_chain(n)
    return chain[0].args[0] if chain else n


def _view_chain(n: Any) -> list[Any]:
    """The view ops from a base tensor to ``n`` (first to last; empty if ``n`` is no view)."""
    chain = []
    while n.op == "call_function" and any(v in str(n.target) for v in _VIEWS) and n.args and hasattr(n.args[0], "op"):
        chain.append(n)
        n = n.args[0]
    return chain[::-1]


def defer_views(fw: Any, bw: Any) -> None:
    """Save a view's base instead of the view, and take the view in the backward: a saved
    transposed activation or weight (what the backward's matmuls read) is then no Transpose
    kernel in the forward, and the backward's matmul reads its operand transposed, as a
    framework's kernels do (the partitioner materialises views it saves)."""
    out = next(n for n in fw.graph.nodes if n.op == "output")
    saved = list(out.args[0][1:])
    holders = [n for n in bw.graph.nodes if n.op == "placeholder"][: len(saved)]
    first = next(iter(bw.graph.nodes))
    changed = False
    for k, (node, ph) in enumerate(zip(saved, holders, strict=False)):
        chain = _view_chain(node) if hasattr(node, "op") else []
        if not chain or not ph.users:
            continue
        base = chain[0].args[0]
        with bw.graph.inserting_before(first):
            new = bw.graph.placeholder(f"saved_base{k}")
        new.meta["val"] = base.meta["val"]
        v = new
        for c in chain:
            with bw.graph.inserting_after(ph if v is new else v):
                v = bw.graph.call_function(c.target, (v, *c.args[1:]), dict(c.kwargs))
            v.meta["val"] = c.meta["val"]
        ph.replace_all_uses_with(v)
        saved[k] = base
        changed = True
    if changed:
        out.args = ((out.args[0][0], *saved),)
        fw.graph.eliminate_dead_code()
        fw.recompile()
        bw.recompile()


def _saved_bytes(fw: Any) -> tuple[int, int]:
    """Bytes the forward saves for the backward (its outputs after the first, less the
    weights it passes through; views of one tensor counted once), and of those the
    attention op's operands and results."""
    placeholders = [n for n in fw.graph.nodes if n.op == "placeholder"]
    weights = set(placeholders[1:])  # aot's primals: the input x first, then the weights
    out = next(n for n in fw.graph.nodes if n.op == "output").args[0]
    bases = {_base(n) for n in out[1:] if hasattr(n, "meta")} - weights
    sdpa = _calls(fw, SDPA)
    attn_nodes = {_base(a) for n in sdpa for a in n.args if hasattr(a, "meta")} | {u for n in sdpa for u in n.users}
    return (sum(_nbytes(n.meta.get("val")) for n in bases),
            sum(_nbytes(n.meta.get("val")) for n in bases if n in attn_nodes))


def _calls(gm: Any, name: str) -> list[Any]:
    """The graph's calls of ops whose name holds ``name``."""
    return [n for n in gm.graph.nodes if n.op == "call_function" and name in str(n.target)]


def _attention_shapes(fw: Any) -> Any:
    calls = _calls(fw, SDPA)
    return tuple(tuple(a.meta["val"].shape) for a in calls[0].args[:3]) if calls else None


def attention_graph(q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...], dtype: str = "bfloat16",
                    causal: bool = True) -> Any:
    """Attention alone on these shapes, as an inference graph (one flash kernel)."""
    dt = getattr(torch, dtype)

    def f(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    with FakeTensorMode():
        args = [torch.empty(shape, dtype=dt) for shape in (q, k, v)]
        return make_fx(f, tracing_mode="fake")(*args)


def adam_graph(n: int) -> Any:
    """One Adam(W) update of ``n`` parameters as Megatron's mixed-precision optimizer runs
    it: bf16 gradient, float32 master weight and moments in, updated master, moments and
    the bf16 weight out."""

    def step(p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g32 = g.float()
        m2 = 0.9 * m + 0.1 * g32
        v2 = 0.999 * v + 0.001 * g32 * g32
        p2 = p - 1e-4 * (m2 / (torch.sqrt(v2) + 1e-8) + 0.1 * p)
        return p2, m2, v2, p2.to(torch.bfloat16)

    with FakeTensorMode():
        args = [torch.empty(n, dtype=torch.float32) for _ in range(3)] + [torch.empty(n, dtype=torch.bfloat16)]
        return make_fx(step, tracing_mode="fake")(*args)


def cut_node(gm: Any, target_name: str) -> int:
    """Remove every call of an op whose name holds ``target_name`` from ``gm``: its results
    become new inputs (placeholders, first), its tensor operands new outputs, so everything
    around it is still computed. Returns how many were cut."""
    g = gm.graph
    cut = _calls(gm, target_name)
    first = next(iter(g.nodes))
    out_node = next(n for n in g.nodes if n.op == "output")
    kept: list[Any] = []

    def as_input(node: Any, name: str) -> None:
        with g.inserting_before(first):
            ph = g.placeholder(name)
        ph.meta["val"] = node.meta["val"]
        node.replace_all_uses_with(ph)

    for k, n in enumerate(cut):
        kept += [a for a in n.args if hasattr(a, "meta") and "val" in a.meta]
        if isinstance(n.meta.get("val"), tuple | list):  # several results, read through getitem
            for u in list(n.users):
                if u.target is not operator.getitem:
                    raise GraphoptError(f"train-sim: {n.target} result used directly by {u.name}")
                as_input(u, f"cut{k}_{u.args[1]}")
                g.erase_node(u)
        else:
            as_input(n, f"cut{k}")
        g.erase_node(n)
    if cut:
        outs = out_node.args[0]
        out_node.args = ((*outs, *kept),) if isinstance(outs, tuple | list) else ((outs, *kept),)
        g.eliminate_dead_code()
        gm.recompile()
    return len(cut)
