"""torch.export -> .pt2 -> graphopt, from Python and from the command line.

A small CNN is exported with torch.export, saved as model.pt2 and compiled by graphopt
three ways: from the ExportedProgram, from the .pt2 file, and from the module itself
with example inputs (graphopt exports it). Parameters become graphopt weights. Each
compile validates against torch eager with torch's float32 tolerances.

    python examples/export_pt2.py
    graphopt compile model.pt2 -o out/cnn      # the same from the shell
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import torch
from torch import nn

import graphopt


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body(x), dim=-1)


def main() -> int:
    torch.manual_seed(0)
    model = CNN().eval()
    x = torch.randn(2, 3, 32, 32)
    ep = torch.export.export(model, (x,))
    folder = tempfile.mkdtemp(prefix="graphopt_pt2_")
    path = os.path.join(folder, "model.pt2")
    torch.export.save(ep, path)

    ok = True
    for label, compiled in (
        ("ExportedProgram", graphopt.compile(ep, validate=True)),
        (".pt2 file", graphopt.compile(path, validate=True)),
        ("module + example_inputs", graphopt.compile(model, example_inputs=(x,), validate=True)),
    ):
        v = compiled.report["validation"]
        err = max(o["max_abs_err"] for o in v["outputs"])
        print(f"{label:<24} {compiled.report['weights']['count']} weights, ops {sum(compiled.report['ops']['final'].values())}"
              f" after -O2, vs {v['reference']}: {'PASSED' if v['passed'] else 'FAILED'} (max abs err {err:.2e})")
        ok = ok and v["passed"]

    cli = os.path.join(os.path.dirname(sys.executable), "graphopt")
    cmd = [cli] if os.path.exists(cli) else [sys.executable, "-m", "graphopt.cli"]
    proc = subprocess.run([*cmd, "compile", path, "-o", os.path.join(folder, "out")], capture_output=True, text=True)
    print(f"$ graphopt compile {path} -o {folder}/out\n{proc.stdout.rstrip()}")
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
    return 0 if ok and proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
