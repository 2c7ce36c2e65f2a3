"""``graphopt train-sim``: one training step of a transformer on an Ascend cluster, composed
from ascend-sim's own kernel times.

- ``config``: a transformers ``config.json`` (llama, mistral, mixtral, qwen2, qwen2_moe,
  deepseek_v3) as the shapes of its layers;
- ``plan``: a parallel plan (tp, pp, vpp, dp, ep, cp, micro-batch, recompute) checked against
  the model and the cluster, and the plans ``--parallel auto`` searches;
- ``layers``: one layer's shard, built in torch on fake tensors, captured forward and
  backward by aot_autograd, compiled for ascend-sim and timed by its kernel model (cached on
  disk by shard shape);
- ``step``: the step: the collectives the plan implies (``cluster.collective_time``), the
  pipeline schedule with its bubble, the optimizer, memory per chip, MFU;
- ``cli``: the subcommand.

docs/train-sim.md says what is modelled and what is not.
"""
