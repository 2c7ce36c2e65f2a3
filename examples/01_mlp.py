"""01 - MLP: the basic graphopt workflow.

Load the bundled 3-layer MLP (Gemm -> Relu -> MatMul+Add -> Relu -> Gemm), compile it
for the CPU, let graphopt validate itself against onnxruntime, then check the outputs
ourselves on the same seeded input.

    python examples/01_mlp.py
"""

import sys

from _common import compare, finish, inputs_for, model_path, onnxruntime_reference, summarize

import graphopt


def main() -> int:
    path = model_path("mlp")                      # examples/models/mlp.onnx
    feeds = inputs_for(path)                      # {"x": float32[4, 64]}, seeded

    # validate=True makes compile() run the model on random inputs and compare with
    # onnxruntime; it raises graphopt.GraphoptError on a mismatch.
    compiled = graphopt.compile(path, target="cpu", opt_level=2, validate=True)
    summarize("mlp", compiled)

    outs = compiled.run(feeds)                    # {"logits": float32[4, 10]}
    ref = onnxruntime_reference(path, feeds)
    return finish(compare(outs, ref))


if __name__ == "__main__":
    sys.exit(main())
