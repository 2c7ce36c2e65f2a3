"""Start-up cost: no torch on import or compile; `graphopt --help` is quick."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from gp_models import cnn_model, save


def _python(code: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_import_graphopt_does_not_import_torch():
    proc = _python('import graphopt, sys; assert "torch" not in sys.modules, "torch imported"')
    assert proc.returncode == 0, proc.stderr


def test_import_graphopt_is_lazy():
    # the package docstring promises that xDSL and onnx load on first use
    proc = _python('import graphopt, sys; bad = [m for m in ("torch", "onnx", "xdsl", "onnxruntime") if m in sys.modules]; assert not bad, bad')
    assert proc.returncode == 0, proc.stderr


def test_compile_does_not_import_torch(tmp_path):
    path = save(cnn_model(), tmp_path / "m.onnx")
    code = (
        "import sys, numpy as np, graphopt\n"
        f"c = graphopt.compile({str(path)!r}, validate=True)\n"
        "c.run({'x': np.zeros((1, 2, 6, 6), np.float32)})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


def test_help_is_fast():
    script = os.path.join(os.path.dirname(sys.executable), "graphopt")
    cmd = [script, "--help"] if os.path.exists(script) else [sys.executable, "-m", "graphopt.cli", "--help"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "compile" in proc.stdout and "opt" in proc.stdout
    print(f"graphopt --help: {seconds:.3f} s")
    assert seconds < 1.5, f"graphopt --help took {seconds:.2f} s"
