"""07 - Distributed training under torch.compile(backend="graphopt"): DDP, FSDP2, tensor parallel.

Run it with two processes on one machine (gloo, CPU):

    torchrun --nproc-per-node 2 examples/distributed_train.py [ddp|fsdp|tp] [--ascend-sim REPORTS]

A small transformer (transformers' LLaMA with random weights: 2 layers, hidden 64) is
trained for 3 SGD steps twice from the same weights on the same data: in eager and with
torch.compile(model, backend="graphopt"). Each rank prints both runs' losses; they agree to
torch's float32 tolerance.
- ddp: DistributedDataParallel. torch's DDPOptimizer splits the graph at bucket boundaries
  and runs the gradient all-reduces itself, outside the compiled graphs.
- fsdp: fully_shard per layer and on the model (FSDP2). Its all-gathers and reduce-scatters
  run in its hooks, outside the compiled graphs.
- tp: parallelize_module with ColwiseParallel (gate_proj, up_proj) and RowwiseParallel
  (down_proj) on every MLP. DTensor's all-reduces are in the captured graphs: graphopt
  lowers them to graph.all_reduce + graph.wait and the cpu target runs them through
  torch.distributed on the live group.
With ``--ascend-sim REPORTS`` the compiled run targets ascend-sim instead (float16, as the
chip computes by default, so the losses agree to ~1e-3 rather than float32's tolerance) and
each compiled graph's report.json, with its collectives priced on an Atlas 800T A2 cluster
and the part of them hidden behind compute, goes to REPORTS/rank<r>/ (docs/distributed.md).
"""

from __future__ import annotations

import argparse

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh


def build(plan: str) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config)
    world = dist.get_world_size()
    if plan == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    mesh = init_device_mesh("cpu", (world,))
    if plan == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    for layer in model.model.layers:
        parallelize_module(layer.mlp, mesh, {"gate_proj": ColwiseParallel(), "up_proj": ColwiseParallel(),
                                             "down_proj": RowwiseParallel()})
    return model


def train(plan: str, backend_options: dict | None) -> list[float]:
    model = build(plan)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run = model if backend_options is None else torch.compile(model, backend="graphopt", options=backend_options)
    g = torch.Generator().manual_seed(0 if plan == "tp" else dist.get_rank())  # TP: one replica, one batch
    losses = []
    for _ in range(3):
        ids = torch.randint(0, 128, (2, 16), generator=g)
        logits = run(ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 128), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    torch._dynamo.reset()
    return losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plan", nargs="?", default="tp", choices=["ddp", "fsdp", "tp"])
    ap.add_argument("--ascend-sim", metavar="REPORTS", help="compile for ascend-sim; write each graph's report here")
    args = ap.parse_args()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    options = {} if not args.ascend_sim else {"target": "ascend-sim", "report_dir": f"{args.ascend_sim}/rank{rank}"}
    eager = train(args.plan, None)
    compiled = train(args.plan, options)
    close = torch.allclose(torch.tensor(compiled), torch.tensor(eager), rtol=1e-3 if args.ascend_sim else 1.3e-6,
                           atol=1e-3 if args.ascend_sim else 1e-5)
    print(f"rank {rank} {args.plan}: eager {[round(x, 5) for x in eager]}, graphopt {[round(x, 5) for x in compiled]}"
          f" {'(match)' if close else '(DIFFER)'}", flush=True)
    dist.destroy_process_group()
    if not close:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
