"""What the timing model reads off a lowered kernel without walking it: tensor sizes, the
tiling constants lowering recorded on it, the matmul tiling they describe, the model's FLOPs."""

from __future__ import annotations

import math
from typing import Any

from xdsl.dialects.builtin import MemRefType, TensorType
from xdsl.ir import SSAValue

from graphopt.targets.ascend.dialect import ForOp, KernelOp


def tensor_bytes(v: SSAValue) -> int:
    t = v.type
    if not isinstance(t, TensorType | MemRefType):
        return 0
    return math.prod(t.get_shape()) * elem_bytes(v)


def elem_bytes(v: SSAValue) -> int:
    el = v.type.element_type  # pyright: ignore[reportAttributeAccessIssue]
    return max(1, getattr(el, "bitwidth", 32) // 8)


def parallel_loops(kernel: KernelOp) -> list[ForOp]:
    """The loops of a kernel spread over cores, outermost first. Block index b runs
    coordinate (b / stride) mod cores of each, the stride the product of the cores of the
    loops before it (the first loop varies fastest)."""
    return [op for op in kernel.body.block.walk() if isinstance(op, ForOp) and op.core_count > 1]


def tiling_of(k: KernelOp) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in k.tiling.data.items():
        out[key] = v.value.data if hasattr(v, "value") else getattr(v, "data", None)  # pyright: ignore
    return out


def matmul_tiling_of(kernel: KernelOp) -> Any:
    """The MatmulTiling of a cube matmul kernel (from its tiling constants), else None."""
    from graphopt.targets.ascend.tiling import MatmulTiling

    t = tiling_of(kernel)
    if "base_m" not in t:
        return None
    return MatmulTiling(int(t["m"]), int(t["n"]), int(t["k"]), int(t["grid_m"]), int(t["grid_n"]), int(t["base_m"]),
                        int(t["base_n"]), int(t["base_k"]), int(t["step_k"]), str(t.get("dtype", "fp16")), "fp16",
                        l0c_buffers=int(t.get("l0c_buffers", 1)), order=str(t.get("order", "rows")),
                        batch=int(t.get("batch", 1)), grid_b=int(t.get("grid_b", 1)))


def model_flops(kernel: KernelOp) -> float:
    """The model's FLOPs of a kernel: 2MNK per matmul batch; attention 4 Sq Skv D per head
    (half when causal: the masked half is not the model's work)."""
    t = tiling_of(kernel)
    if "model_flops" in t:  # the cube does more than the model asks (conv_transpose.py)
        return float(t["model_flops"])
    if "base_m" in t:
        return 2.0 * int(t.get("batch", 1)) * int(t["m"]) * int(t["n"]) * int(t["k"])
    if "q_tile" in t:
        f = 2.0 * int(t["bh"]) * int(t["sq"]) * int(t["skv"]) * int(t["d"]) * 2
        return f * (0.5 if int(t.get("causal", 0)) else 1.0)
    return 0.0
