"""One rank of the ascend-sim check of a tensor-parallel step (test_distributed.py runs it
under torchrun, 2 ranks, gloo): a 4-block MLP with colwise/rowwise plans, forward and
backward under torch.compile(backend="graphopt") for ascend-sim, once with the default
pipeline and once without the overlap-collectives pass; each compiled graph's report.json
goes to REPORTS/<pipeline>/rank<r>/ (the test reads the collectives' times there)."""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

from graphopt.registry import get_target


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = torch.nn.Linear(256, 1024)
        self.down = torch.nn.Linear(1024, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList([MLP() for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + b(x)
        return x


def step(reports: str, pipeline: str | None) -> float:
    torch.manual_seed(0)
    model = Net()
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for b in model.blocks:
        parallelize_module(b, mesh, {"up": ColwiseParallel(), "down": RowwiseParallel()})
    options = {"target": "ascend-sim", "report_dir": reports, "pipeline": pipeline}
    run = torch.compile(model, backend="graphopt", options=options)
    loss = run(torch.randn(512, 256, generator=torch.Generator().manual_seed(0))).square().mean()
    loss.backward()
    torch._dynamo.reset()
    return loss.item()


def main() -> None:
    dist.init_process_group("gloo")
    rank, root = dist.get_rank(), sys.argv[1]
    default = get_target("ascend-sim").pipeline(2)
    without = ",".join(p for p in default.split(",") if p != "overlap-collectives")
    a = step(f"{root}/overlap/rank{rank}", None)
    b = step(f"{root}/no-overlap/rank{rank}", without)
    print(f"OK rank {rank} losses {a} {b}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
