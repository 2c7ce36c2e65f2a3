"""02 - ResNet-style CNN.

Conv/BatchNormalization/Relu stem, MaxPool, three residual blocks (the second one
downsamples with a strided 1x1 projection), GlobalAveragePool, Flatten, Gemm.
Typical wins here: folding BatchNormalization into the preceding Conv and fusing
Relu / the residual Add.

    python examples/02_resnet.py
"""

import sys

from _common import compare, finish, inputs_for, model_path, onnxruntime_reference, summarize

import graphopt


def main() -> int:
    path = model_path("resnet")
    feeds = inputs_for(path)                      # {"input": float32[1, 3, 32, 32]}
    compiled = graphopt.compile(path, target="cpu", opt_level=2, validate=True)
    summarize("resnet", compiled)
    outs = compiled.run(feeds)
    return finish(compare(outs, onnxruntime_reference(path, feeds)))


if __name__ == "__main__":
    sys.exit(main())
