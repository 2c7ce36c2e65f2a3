"""06 - A custom pass: recognize SiLU, from the command line and from Python.

The pass lives in examples/silu_pass.py (one pattern of graphopt.patterns), and as text in
examples/silu.patterns. This script builds a small MLP whose activations are written as
x * sigmoid(x), then:
1. runs `graphopt passes --load-pass-plugin examples/silu_pass.py` and finds the pass listed;
2. compiles with `graphopt compile --load-pass-plugin ... -p "recognize-silu,fuse"`, and
   with `--load-patterns examples/silu.patterns -p "recognize-silu-text,fuse"`;
3. does the same from Python with graphopt.registry.register_pass and checks that the
   SiLUs were recognized, fused into the matmul kernels, and that outputs still match.

    python examples/custom_pass.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from silu_pass import RecognizeSiLU  # noqa: E402

import graphopt  # noqa: E402
from graphopt.registry import register_pass  # noqa: E402

PLUGIN = os.path.join(HERE, "silu_pass.py")
PATTERNS = os.path.join(HERE, "silu.patterns")


def silu_mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits, nodes, x = [], [], "x"
    for k, (n_in, n_out) in enumerate([(32, 64), (64, 64), (64, 8)]):
        inits += [numpy_helper.from_array(rng.standard_normal((n_in, n_out)).astype(np.float32) * 0.2, f"w{k}"),
                  numpy_helper.from_array(rng.standard_normal(n_out).astype(np.float32) * 0.1, f"b{k}")]
        nodes += [helper.make_node("MatMul", [x, f"w{k}"], [f"m{k}"], name=f"fc{k}"),
                  helper.make_node("Add", [f"m{k}", f"b{k}"], [f"h{k}"], name=f"bias{k}")]
        x = f"h{k}"
        if k < 2:
            nodes += [helper.make_node("Sigmoid", [x], [f"s{k}"], name=f"sigmoid{k}"),
                      helper.make_node("Mul", [x, f"s{k}"], [f"a{k}"], name=f"silu{k}")]
            x = f"a{k}"
    graph = helper.make_graph(nodes, "silu_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 32])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [4, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def graphopt_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "graphopt")
    return subprocess.run([exe, *args], capture_output=True, text=True, check=True)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "silu_mlp.onnx")
        onnx.save(silu_mlp(), path)

        listed = graphopt_cli("passes", "--load-pass-plugin", PLUGIN).stdout
        assert "recognize-silu" in listed, listed
        print("CLI: `graphopt passes` lists recognize-silu")

        out = os.path.join(tmp, "out")
        graphopt_cli("compile", path, "--load-pass-plugin", PLUGIN, "-p", "recognize-silu,dce,fold-matmul-add,fuse", "-o", out)
        report = json.load(open(os.path.join(out, "report.json")))
        print(f"CLI: ops {report['ops']['final']}, fusion {report['fusion']['by_kind']}")
        out_text = os.path.join(tmp, "out_text")
        graphopt_cli("compile", path, "--load-patterns", PATTERNS, "-p", "recognize-silu-text,fold-matmul-add,fuse", "-o", out_text)
        from_text = json.load(open(os.path.join(out_text, "report.json")))["ops"]["final"]
        print(f"CLI, patterns file: ops {from_text}")

    register_pass(RecognizeSiLU)
    compiled = graphopt.compile(silu_mlp(), pipeline="recognize-silu,dce,fold-matmul-add,fuse", validate=True)
    inner = [op.name for op in compiled.module.walk()]
    swish = inner.count("graph.swish")
    print(f"Python: {swish} SiLUs recognized; final ops {compiled.report['ops']['final']}; "
          f"validation {'passed' if compiled.report['validation']['passed'] else 'FAILED'}")
    if swish != 2 or report["ops"]["final"].get("graph.fused") != 2 or from_text != report["ops"]["final"]:
        print("expected 2 SiLUs, each fused into its matmul's kernel")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
