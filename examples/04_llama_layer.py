"""04 - LLaMA-style decoder layer.

RMSNorm, rotary position embedding with precomputed cos/sin tables, causal attention
(additive -inf upper-triangular mask, Softmax), SwiGLU FFN w2(silu(x w1) * (x w3)),
exported with the dynamo exporter at opset 20.

    python examples/04_llama_layer.py
"""

import sys

from _common import check_model, finish, model_path


def main() -> int:
    return finish(check_model("llama_layer", model_path("llama_layer")))


if __name__ == "__main__":
    sys.exit(main())
