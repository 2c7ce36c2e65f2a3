"""One rank of the distributed training check (tests/torch/test_distributed.py runs it
under ``torchrun --nproc-per-node 2`` with gloo): for each parallel plan (DDP, FSDP2,
tensor parallel) and model (a transformers LLaMA with random weights, a small CNN), train
3 SGD steps in eager and with ``torch.compile(backend="graphopt")`` from the same weights
on the same data, and check that every step's loss and every gradient agree within
torch's float32 tolerances. Prints one ``OK <plan> <model> ...`` line per case, or raises."""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

STEPS = 3


def llama() -> tuple[torch.nn.Module, callable]:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=32)
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config)

    def batch(g: torch.Generator) -> tuple[tuple, torch.Tensor]:
        ids = torch.randint(0, 64, (2, 8), generator=g)
        return (ids,), ids

    def loss(model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> torch.Tensor:
        logits = model(*inputs).logits
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 64), target[:, 1:].reshape(-1))

    return model, batch, loss, [layer.mlp for layer in model.model.layers], ("gate_proj", "up_proj", "down_proj")


def cnn() -> tuple:
    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.up = torch.nn.Linear(8, 16)
            self.down = torch.nn.Linear(16, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.bn(self.conv(x))) + x
            y = x.mean((2, 3))
            return x * torch.sigmoid(self.down(torch.relu(self.up(y))))[:, :, None, None]

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.blocks = torch.nn.ModuleList([Block(), Block()])
            self.head = torch.nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x)
            for b in self.blocks:
                x = b(x)
            return self.head(x.mean((2, 3)))

    def batch(g: torch.Generator) -> tuple[tuple, torch.Tensor]:
        return (torch.randn(4, 3, 8, 8, generator=g),), torch.randint(0, 10, (4,), generator=g)

    def loss(model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(*inputs), target)

    model = Net()
    return model, batch, loss, list(model.blocks), ("up", "up", "down")


def parallelize(plan: str, model: torch.nn.Module, parts: list, names: tuple) -> torch.nn.Module:
    world = dist.get_world_size()
    if plan == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    mesh = init_device_mesh("cpu", (world,))
    if plan == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for part in parts:
            fully_shard(part, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    colwise = {n: ColwiseParallel() for n in names[:-1]}
    for part in parts:
        parallelize_module(part, mesh, {**colwise, names[-1]: RowwiseParallel()})
    return model


def local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def train(plan: str, build: callable, compiled: bool) -> tuple[list[float], list[list[torch.Tensor]]]:
    torch.manual_seed(0)
    model, batch, loss_of, parts, names = build()
    model = parallelize(plan, model, parts, names)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run = torch.compile(model, backend="graphopt") if compiled else model
    # Data differs per rank (data parallel) except under tensor parallelism (one replica).
    g = torch.Generator().manual_seed(0 if plan == "tp" else dist.get_rank())
    losses, grads = [], []
    for _ in range(STEPS):
        inputs, target = batch(g)
        loss = loss_of(run, inputs, target)
        loss.backward()
        grads.append([local(p.grad).detach().clone() for p in model.parameters() if p.grad is not None])
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    torch._dynamo.reset()
    return losses, grads


RAN: dict[str, int] = {}  # collectives graphopt's compiled graphs ran, by type


def count_collectives() -> None:
    """Count each collective rule's calls (the cpu target's kernels come from these rules),
    so the check shows the compiled graphs themselves took part in the job."""
    from graphopt.semantics import all_rules

    rules = all_rules()
    for key in [k for k in rules if k.startswith("graphopt::") and k.removeprefix("graphopt::") in
                ("AllReduce", "AllGather", "ReduceScatter", "AllToAll", "Broadcast")]:
        def counted(*args, _rule=rules[key], _key=key, **kwargs):
            RAN[_key] = RAN.get(_key, 0) + 1
            return _rule(*args, **kwargs)

        rules[key] = counted


def main() -> None:
    dist.init_process_group("gloo")
    count_collectives()
    plans = sys.argv[1].split(",")
    models = {"llama": llama, "cnn": cnn}
    for name in sys.argv[2].split(","):
        for plan in plans:
            RAN.clear()
            eager_losses, eager_grads = train(plan, models[name], compiled=False)
            losses, grads = train(plan, models[name], compiled=True)
            torch.testing.assert_close(torch.tensor(losses), torch.tensor(eager_losses))
            assert len(grads) == len(eager_grads) == STEPS and all(len(a) == len(b) > 0 for a, b in zip(grads, eager_grads))
            for step, (ours, theirs) in enumerate(zip(grads, eager_grads)):
                for k, (a, b) in enumerate(zip(ours, theirs)):
                    torch.testing.assert_close(a, b, msg=lambda m, s=step, k=k: f"step {s} gradient {k}: {m}")
            ran = ",".join(f"{k.removeprefix('graphopt::')}={v}" for k, v in sorted(RAN.items())) or "none"
            print(f"OK {plan} {name} rank {dist.get_rank()} collectives {ran} losses {[round(x, 6) for x in losses]}",
                  flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
