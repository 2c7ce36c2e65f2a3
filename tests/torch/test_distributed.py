"""Distributed training under torch.compile(backend="graphopt"): DDP, FSDP2 and tensor
parallelism, 2 processes with gloo, against the same job in eager (distributed_job.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def torchrun(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH_LOGS", "GRAPHOPT_DEBUG"))}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(HERE / script), *args], capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def job():
    return torchrun("distributed_job.py", "ddp,fsdp,tp", "llama,cnn")


@pytest.mark.parametrize("model", ["llama", "cnn"])
@pytest.mark.parametrize("plan", ["ddp", "fsdp", "tp"])
def test_losses_and_gradients_match_eager(job, plan, model):
    tail = job.stdout[-3000:] + job.stderr[-3000:]
    # (the two ranks print to one pipe: a line may run into the other's, so match, not split)
    found = re.findall(rf"OK {plan} {model} rank (\d) collectives (\S+) losses", job.stdout)
    assert job.returncode == 0 and sorted(r for r, _ in found) == ["0", "1"], tail  # both ranks, 3 steps each
    if plan == "tp":  # its all-reduces ran inside graphopt's compiled graphs, through torch.distributed
        for _, ran in found:
            count = re.search(r"AllReduce=(\d+)", ran)
            assert count and int(count.group(1)) > 0, ran


def test_a_tensor_parallel_step_on_ascend_sim_hides_its_backward_all_reduces(tmp_path):
    """The graphs torch captures (forward and backward, with DTensor's all-reduces), compiled
    for ascend-sim: each reports its collectives' time, priced on the cluster; the overlap
    pass hides the backward's gradient all-reduces behind the backward compute."""
    import json

    proc = torchrun("distributed_ascend_job.py", str(tmp_path))
    assert proc.returncode == 0 and len(re.findall(r"OK rank \d", proc.stdout)) == 2, proc.stdout[-2000:] + proc.stderr[-3000:]

    def timing(pipeline: str, phase: str) -> dict:
        (path,) = (tmp_path / pipeline / "rank0").glob(f"*_{phase}.json")
        return json.loads(path.read_text())["timing"]

    for pipeline in ("overlap", "no-overlap"):
        for phase in ("fw", "bw"):
            t = timing(pipeline, phase)
            assert t["collectives"] and all(c["op"] == "AllReduce" and c["ranks"] == 2 for c in t["collectives"])
            assert t["collective_us"] == pytest.approx(t["collective_hidden_us"] + t["collective_exposed_us"], abs=1e-2)
    with_pass, without = timing("overlap", "bw"), timing("no-overlap", "bw")
    assert without["collective_hidden_us"] < 0.5 * without["collective_us"]  # waited for where issued
    # behind the backward matmuls: all but the last block's (the first block's input gradient,
    # after which only that block's weight gradients remain to compute) hide whole
    assert with_pass["collective_hidden_us"] >= 0.75 * with_pass["collective_us"]
    assert with_pass["total_us"] < without["total_us"]


@pytest.mark.parametrize("plan", ["tp"])
def test_the_example_runs(plan):
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(HERE.parents[1] / "examples" / "distributed_train.py"), plan],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and proc.stdout.count("(match)") == 2, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_send_and_recv_between_two_compiled_graphs():
    proc = torchrun("distributed_p2p_job.py")
    assert proc.returncode == 0 and len(re.findall(r"OK p2p rank \d", proc.stdout)) == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
