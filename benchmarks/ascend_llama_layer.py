"""A LLaMA-7B-shaped decoder layer on ascend-sim: simulated MFU, default tiling vs naive.

The layer (built here with onnx.helper; random fp16 weights, ~400 MB, opset 23):
  hidden 4096, 32 heads of 128, FFN 11008 with SwiGLU, RMSNorm (eps 1e-6), rotary embedding
  (rotate-half form, precomputed cos/sin), causal attention (ONNX Attention, is_causal=1),
  sequence 4096, batch 1, fp16 weights and activations.

    x -> RMSNorm -> Q, K, V projections -> rotary(Q), rotary(K) -> causal Attention -> O proj
      -> + x -> RMSNorm -> SwiGLU FFN (gate, up, down) -> + residual -> y

Model FLOPs (what MFU counts): 2*S*H*(4H) for Q/K/V/O, 2*S*H*F*3 for the FFN, and half of
4*S*S*H for attention (causal: the masked half is not counted, and the kernel skips fully
masked blocks). MFU = model FLOPs / (time x the chip's fp16 peak).

    .venv/bin/python benchmarks/ascend_llama_layer.py             # both tilings, the table
    .venv/bin/python benchmarks/ascend_llama_layer.py --seq 1024  # smaller, for a quick look
    .venv/bin/python benchmarks/ascend_llama_layer.py --save /tmp/llama7b.onnx   # the model only
    .venv/bin/python benchmarks/ascend_llama_layer.py --rope heads-major  # transformers' rotary layout
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

F16 = TensorProto.FLOAT16


def llama_layer(seq: int = 4096, hidden: int = 4096, heads: int = 32, ffn: int = 11008, seed: int = 0,
                rope: str = "seq-major") -> onnx.ModelProto:
    """The decoder layer described in the module docstring, as an ONNX model.

    ``rope``: how the rotary embedding is written. "seq-major" rotates q and k as
    [1, S, heads, d] with cos/sin [S, 1, d]; "heads-major" is how transformers' LLaMA
    writes it: q and k transposed to [1, heads, S, d], cos/sin [1, 1, S, d], transposed
    back for the projection."""
    if rope not in ("seq-major", "heads-major"):
        raise ValueError(f"rope {rope!r}: seq-major or heads-major")
    rng = np.random.default_rng(seed)
    d = hidden // heads
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, shape: tuple[int, ...], scale: float) -> str:
        # Random fp16 weights (standard normal x scale): generated in fp32 chunks, which is fast.
        w = (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float16)
        inits.append(numpy_helper.from_array(w, name))
        return name

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def rms_norm(x: str, prefix: str) -> str:
        w = const(f"{prefix}.weight", np.ones(hidden, np.float16))
        return node("RMSNormalization", [x, w], f"{prefix}.out", axis=-1, epsilon=1e-6)

    def rotary(x: str, prefix: str, cos: str, sin: str) -> str:
        # x [1, S, heads, d] or [1, heads, S, d]: x * cos + rotate_half(x) * sin,
        # rotate_half(x) = cat(-x2, x1) over the last axis.
        h = d // 2
        x1 = node("Slice", [x, const(f"{prefix}.s0", np.array([0])), const(f"{prefix}.e0", np.array([h])),
                            const(f"{prefix}.ax0", np.array([3]))], f"{prefix}.x1")
        x2 = node("Slice", [x, const(f"{prefix}.s1", np.array([h])), const(f"{prefix}.e1", np.array([d])),
                            const(f"{prefix}.ax1", np.array([3]))], f"{prefix}.x2")
        rot = node("Concat", [node("Neg", [x2], f"{prefix}.neg"), x1], f"{prefix}.rot", axis=3)
        return node("Add", [node("Mul", [x, cos], f"{prefix}.xcos"), node("Mul", [rot, sin], f"{prefix}.rsin")], f"{prefix}.out")

    inv = 1.0 / (10000 ** (np.arange(0, d, 2, dtype=np.float64) / d))
    ang = np.outer(np.arange(seq), inv)
    ang = np.concatenate([ang, ang], axis=-1)
    # seq-major: [S, 1, d], broadcast over heads; heads-major: [1, 1, S, d]
    ang = ang[:, None, :] if rope == "seq-major" else ang[None, None, :, :]
    cos = const("rope.cos", np.cos(ang).astype(np.float16))
    sin = const("rope.sin", np.sin(ang).astype(np.float16))
    heads_shape = const("shape.heads", np.array([1, seq, heads, d], np.int64))
    flat_shape = const("shape.flat", np.array([1, seq, hidden], np.int64))

    s = 1.0 / np.sqrt(hidden)
    h = rms_norm("x", "attn_norm")
    q = node("MatMul", [h, weight("wq", (hidden, hidden), s)], "q")
    k = node("MatMul", [h, weight("wk", (hidden, hidden), s)], "k")
    v = node("MatMul", [h, weight("wv", (hidden, hidden), s)], "v")
    if rope == "seq-major":
        q = rotary(node("Reshape", [q, heads_shape], "q4"), "rope_q", cos, sin)
        k = rotary(node("Reshape", [k, heads_shape], "k4"), "rope_k", cos, sin)
    else:
        perm = [0, 2, 1, 3]
        q = node("Transpose", [node("Reshape", [q, heads_shape], "q4")], "qt", perm=perm)
        k = node("Transpose", [node("Reshape", [k, heads_shape], "k4")], "kt", perm=perm)
        q = node("Transpose", [rotary(q, "rope_q", cos, sin)], "qr", perm=perm)
        k = node("Transpose", [rotary(k, "rope_k", cos, sin)], "kr", perm=perm)
    q, k = node("Reshape", [q, flat_shape], "q3"), node("Reshape", [k, flat_shape], "k3")
    a = node("Attention", [q, k, v], "attn", is_causal=1, q_num_heads=heads, kv_num_heads=heads)
    x1 = node("Add", ["x", node("MatMul", [a, weight("wo", (hidden, hidden), s)], "o")], "resid1")
    h2 = rms_norm(x1, "ffn_norm")
    gate = node("MatMul", [h2, weight("w_gate", (hidden, ffn), s)], "gate")
    up = node("MatMul", [h2, weight("w_up", (hidden, ffn), s)], "up")
    act = node("Mul", [node("Mul", [gate, node("Sigmoid", [gate], "gate.sig")], "gate.silu"), up], "swiglu")
    down = node("MatMul", [act, weight("w_down", (ffn, hidden), 1.0 / np.sqrt(ffn))], "down")
    node("Add", [x1, down], "y")
    graph = helper.make_graph(
        nodes, "llama7b_layer",
        [helper.make_tensor_value_info("x", F16, [1, seq, hidden])],
        [helper.make_tensor_value_info("y", F16, [1, seq, hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    return model


def model_flops(seq: int = 4096, hidden: int = 4096, ffn: int = 11008, causal: bool = True) -> float:
    """Model FLOPs of one layer (see the module docstring)."""
    proj = 2.0 * seq * hidden * hidden * 4
    mlp = 2.0 * seq * hidden * ffn * 3
    attn = 4.0 * seq * seq * hidden * (0.5 if causal else 1.0)
    return proj + mlp + attn


def compile_layer(model: onnx.ModelProto, tiling: str, trace: str | None = None) -> tuple[dict, float]:
    """Compile for ascend-sim (no validation), returning (report, wall seconds)."""
    import graphopt

    t0 = time.perf_counter()
    compiled = graphopt.compile(model, "ascend-sim", target_options={"tiling": tiling, "trace": trace})
    return compiled.report, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--save", type=Path, help="write the ONNX model here and stop")
    ap.add_argument("--trace", help="write the default tiling's Chrome trace here")
    ap.add_argument("--rope", choices=["seq-major", "heads-major"], default="seq-major",
                    help="how the rotary embedding is written (heads-major: transformers' layout)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    model = llama_layer(args.seq, rope=args.rope)
    print(f"built the layer in {time.perf_counter() - t0:.1f} s ({sum(len(t.raw_data) for t in model.graph.initializer) / 1e6:.0f} MB of weights)")
    if args.save:
        onnx.save(model, str(args.save))
        print(f"wrote {args.save}")
        return
    flops = model_flops(args.seq)
    rows = []
    for tiling in ("model", "naive"):
        report, seconds = compile_layer(model, tiling, args.trace if tiling == "model" else None)
        rows.append((tiling, report, seconds))
    from graphopt.targets.ascend.report_timing import timing_table

    for tiling, report, seconds in rows:
        t = report["timing"]
        print(f"\n--tiling {tiling}: compiled in {seconds:.1f} s; {t['total_us']:.0f} us, {t['tflops']:.1f} TFLOP/s, "
              f"MFU {100 * t['mfu']:.1f} % of {t['peak_tflops']:.1f} TFLOPS ({t['peak_basis']})")
        print(f"  model FLOPs {flops / 1e9:.1f} G (report: {t['flops'] / 1e9:.1f} G)")
        for line in timing_table(t, limit=14):
            print(line)


if __name__ == "__main__":
    main()
