"""Distributed training under torch.compile(backend="graphopt"): DDP, FSDP2 and tensor
parallelism, 2 processes with gloo, against the same job in eager (distributed_job.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

JOB = Path(__file__).with_name("distributed_job.py")


@pytest.fixture(scope="module")
def job():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH_LOGS", "GRAPHOPT_DEBUG"))}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "0",
                           str(JOB), "ddp,fsdp,tp", "llama,cnn"],
                          capture_output=True, text=True, timeout=900, env=env)
    return proc


@pytest.mark.parametrize("model", ["llama", "cnn"])
@pytest.mark.parametrize("plan", ["ddp", "fsdp", "tp"])
def test_losses_and_gradients_match_eager(job, plan, model):
    tail = job.stdout[-3000:] + job.stderr[-3000:]
    lines = [line for line in job.stdout.splitlines() if line.startswith(f"OK {plan} {model} ")]
    assert job.returncode == 0 and len(lines) == 2, tail  # both ranks, 3 steps each
    if plan == "tp":  # its all-reduces ran inside graphopt's compiled graphs, through torch.distributed
        for line in lines:
            count = re.search(r"AllReduce=(\d+)", line)
            assert count and int(count.group(1)) > 0, line
