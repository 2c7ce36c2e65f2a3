"""03 - BERT encoder from two torch exporters.

The same 2-layer BERT (hidden 64, 4 heads, seq 16) exported twice:
  bert_dynamo.onnx  torch.onnx.export(dynamo=True), opset 20: Gelu, LayerNormalization
  bert_legacy.onnx  TorchScript exporter, opset 17, no constant folding: GELU as
                    Div/Erf/Add/Mul, Constant/Unsqueeze/Concat shape chains for Reshape
Both take input_ids (int64) and a 1/0 attention_mask (int64; the last 3 tokens are
padding) and return last_hidden_state and pooler_output, which should agree.

    python examples/03_bert.py
"""

import sys

from _common import check_model, finish, inputs_for, model_path


def main() -> int:
    failures = []
    for name in ("bert_dynamo", "bert_legacy"):
        path = model_path(name)
        failures += check_model(name, path, feeds=inputs_for(path))
    return finish(failures)


if __name__ == "__main__":
    sys.exit(main())
