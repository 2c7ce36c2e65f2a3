"""Compile time: graphopt -O3 on the cpu target beside onnxruntime's session creation
(ORT_ENABLE_ALL) for the same model, in the same run. Also prints what -O2 did to the
graph (op counts, recognized patterns, fused kernels).

    python benchmarks/compile_time.py                  # BERT-base: 12 layers, hidden 768, seq 128
    python benchmarks/compile_time.py --layers 2 --hidden 128

The model is transformers' BertModel with random weights (no hub access), exported with
torch.onnx.export (the dynamo exporter, and the older TorchScript one with --legacy).
Times are the best of --repeat runs: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def export_bert(path: str, layers: int, hidden: int, seq: int, legacy: bool) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
        intermediate_size=4 * hidden, vocab_size=30522, max_position_embeddings=512,
    )
    bert = BertModel(config).eval()

    class Wrapped(torch.nn.Module):
        """Keyword arguments for BertModel: the TorchScript exporter passes positions."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    model = Wrapped().eval()
    ids = torch.randint(0, 1000, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state", "pooler_output"], dynamo=not legacy,
                          external_data=False, opset_version=17 if legacy else 20)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--legacy", action="store_true", help="export with the TorchScript exporter")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort

    import graphopt

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bert.onnx")
        t0 = time.perf_counter()
        export_bert(path, args.layers, args.hidden, args.seq, args.legacy)
        print(f"exported BERT ({args.layers} layers, hidden {args.hidden}, seq {args.seq}, "
              f"{'legacy' if args.legacy else 'dynamo'} exporter) in {time.perf_counter() - t0:.1f} s")
        model = onnx.load(path)

        def ort_session() -> None:
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.intra_op_num_threads = 1
            ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

        t_go = best(lambda: graphopt.compile(model, "cpu", opt_level=3), args.repeat)
        t_ort = best(ort_session, args.repeat)
        compiled = graphopt.compile(model, "cpu", opt_level=2, validate=True)
        rep = compiled.report
        imported, final = sum(rep["ops"]["imported"].values()), sum(rep["ops"]["final"].values())
        passes = sorted(rep["passes"], key=lambda p: -p["seconds"])[:5]
        print(f"graphopt compile -O3 (cpu, no validation): {t_go:.2f} s (best of {args.repeat})")
        print(f"onnxruntime InferenceSession, ORT_ENABLE_ALL: {t_ort:.2f} s (best of {args.repeat})")
        print(f"ratio graphopt / onnxruntime: {t_go / t_ort:.2f}x")
        print(f"-O2: {imported} ops imported -> {final} after ({final / imported:.1%}); "
              f"patterns {rep['patterns']}; fused {rep['fusion']['by_kind']}")
        print("slowest steps at -O2: " + ", ".join(f"{p['name']} {p['seconds']:.2f}s" for p in passes))
        worst = max(o["max_abs_err"] for o in rep["validation"]["outputs"])
        print(f"validation vs onnxruntime: {'passed' if rep['validation']['passed'] else 'FAILED'} (max abs err {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
