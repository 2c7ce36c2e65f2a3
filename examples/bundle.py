"""Write every example model to examples/models/<name>.onnx.

    PYTHONPATH=. python examples/bundle.py            # all models
    PYTHONPATH=. python examples/bundle.py mlp moe    # some

Each model is checked with onnx.checker (full_check=True) and run once in
onnxruntime before it is written.  Weights are embedded (no external data).
"""

from __future__ import annotations

import collections
import os
import sys

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import models  # noqa: E402

OUT_DIR = os.path.join(HERE, "models")


def bundle(names=None) -> None:
    import onnxruntime as ort

    os.makedirs(OUT_DIR, exist_ok=True)
    for name in names or list(models.MODEL_BUILDERS):
        model = models.MODEL_BUILDERS[name]()
        onnx.checker.check_model(model, full_check=True)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, models.sample_inputs(model))
        path = os.path.join(OUT_DIR, f"{name}.onnx")
        onnx.save_model(model, path, save_as_external_data=False)
        hist = collections.Counter(n.op_type for n in model.graph.node)
        opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        print(f"{name:12s} {os.path.getsize(path) / 1024:7.1f} KiB  opset {opset}  "
              f"{len(model.graph.node)} nodes: "
              + ", ".join(f"{k} {v}" for k, v in hist.most_common()))


if __name__ == "__main__":
    bundle(sys.argv[1:] or None)
