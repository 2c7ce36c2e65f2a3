"""Run every numbered walkthrough script in examples/ in a subprocess; each must exit 0.

Also checks the bundled models in examples/models/ are valid, self-contained ONNX
files that onnxruntime runs."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
SCRIPTS = sorted(glob.glob(os.path.join(EXAMPLES, "[0-9][0-9]_*.py"))) + [os.path.join(EXAMPLES, n) for n in ("custom_pass.py", "torch_compile.py", "export_pt2.py")]
BUNDLED = ["mlp", "resnet", "bert_dynamo", "bert_legacy", "llama_layer", "moe", "zoo_cnn"]


def test_scripts_found():
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[os.path.basename(s) for s in SCRIPTS])
def test_example_script(script, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # run from an unrelated folder: scripts must find their models relative to themselves
    proc = subprocess.run([sys.executable, script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"{os.path.basename(script)} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_valid(name):
    import onnx
    import onnxruntime as ort

    sys.path.insert(0, EXAMPLES)
    try:
        from models import sample_inputs
    finally:
        sys.path.remove(EXAMPLES)
    path = os.path.join(EXAMPLES, "models", f"{name}.onnx")
    assert os.path.getsize(path) < 2 * 1024 * 1024
    model = onnx.load(path, load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, sample_inputs(model))
    assert all(o.size for o in outs)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_compiles(name):
    """Every bundled model, including zoo_cnn (opset 8, IR 3) which has no script."""
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    if ROOT not in sys.path:
        sys.path.append(ROOT)
    from _common import check_model, model_path

    failures = check_model(name, model_path(name))
    assert not failures, "\n".join(failures)
