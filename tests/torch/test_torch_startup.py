"""What torch.compile(backend="graphopt") loads: not onnx, and only the graph ops it uses.

Every module and op class a compile imports is a long-lived object in a process already
holding torch's heap (see torch_backend's _young_garbage), so the torch path stays lean."""

from __future__ import annotations

import subprocess
import sys


def test_torch_compile_imports_no_onnx_and_few_op_classes():
    code = (
        "import sys, torch\n"
        "m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.LayerNorm(8), torch.nn.Softmax(-1))\n"
        "f = torch.compile(m, backend='graphopt')\n"
        "x = torch.randn(2, 3, 8)\n"
        "with torch.no_grad():\n"
        "    torch.testing.assert_close(f(x), m(x))\n"
        "x = torch.randn(4, 8).reshape(2, 2, 8).transpose(0, 1)[:, 1:]\n"
        "with torch.no_grad():\n"
        "    torch.testing.assert_close(f(x), m(x))\n"
        "from graphopt.dialects.graph import ONNX_OPS\n"
        "assert 'onnx' not in sys.modules, 'onnx imported'\n"
        "assert len(ONNX_OPS._classes) < 20, sorted(ONNX_OPS._classes)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
