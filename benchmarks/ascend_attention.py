"""Flash attention alone on ascend-sim: % of the chip's fp16 peak from the timing model.

Attention (ONNX opset-23 Attention) over q, k, v of [1, heads, S, 128] fp16, causal or not;
FLOPs are the model's: 4 * S * S * D per head, halved when causal (the kernel skips fully
masked kv blocks). Reference point: the best published hand-written kernel reaches ~49 % of
peak at S = 8192 (../shared/reference/ascend.md).

    .venv/bin/python benchmarks/ascend_attention.py                 # S = 8192, 32 heads, both modes
    .venv/bin/python benchmarks/ascend_attention.py --seq 1024 --trace /tmp/fa.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def attention_model(seq: int, heads: int, d: int, causal: bool):  # -> onnx.ModelProto
    shape = [1, heads, seq, d]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, shape) for n in "qkv"]
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=int(causal))
    g = helper.make_graph([node], "attention", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT16, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])


def main() -> None:
    import graphopt
    from graphopt.targets.ascend.report_timing import timing_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--trace")
    args = ap.parse_args()
    for causal in (False, True):
        t0 = time.perf_counter()
        c = graphopt.compile(attention_model(args.seq, args.heads, 128, causal), "ascend-sim",
                             target_options={"trace": args.trace if causal else None})
        t = c.report["timing"]
        kern = next(k for k in c.report["kernels"] if k["kind"] == "cube")
        print(f"S={args.seq} heads={args.heads} D=128 {'causal' if causal else 'non-causal'}: {t['total_us']:.0f} us, "
              f"{t['tflops']:.1f} TFLOP/s = {100 * t['mfu']:.1f} % of {t['peak_tflops']} TFLOPS "
              f"(tiles {kern['tiling']['q_tile']}x{kern['tiling']['kv_tile']}, blockDim {kern['block_dim']}; "
              f"compiled + simulated in {time.perf_counter() - t0:.1f} s)")
        for line in timing_table(t, limit=3)[1:]:
            print(line)


if __name__ == "__main__":
    main()
