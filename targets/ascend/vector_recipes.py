"""Vector ops in the timing model: each as passes over its tile, by op class (the chip
file's [vector.bytes_per_cycle] rows)."""

from __future__ import annotations

import math

from xdsl.ir import SSAValue

from graphopt.targets.ascend.kernel_facts import elem_bytes

# Vector ops as passes over their tile: (op class, passes). Op classes are the chip file's
# [vector.bytes_per_cycle] rows; "exp" picks exp_fp16 or exp_fp32 by the tile's dtype.
VEC_RECIPES: dict[str, tuple[tuple[str, float], ...]] = {
    "RMSNormalization": (("elementwise", 3), ("reduce", 1)),
    "LayerNormalization": (("elementwise", 4), ("reduce", 2)),
    # over C of NC1HWC0: the C1 blocks summed lane-wise, then each C0 block (BlockReduceSum)
    "graphopt::ChannelLayerNorm": (("elementwise", 4), ("reduce", 2)),
    "SimplifiedLayerNormalization": (("elementwise", 3), ("reduce", 1)),
    # x^2, the window's sum over `size` channels (size - 1 adds, 5 in every CNN that uses it),
    # (bias + alpha / size * sum) ^ beta as exp(beta * log(.)), and x times its reciprocal
    "LRN": (("elementwise", 7), ("exp", 2), ("div", 1)),
    "Softmax": (("reduce", 2), ("elementwise", 1), ("exp", 1), ("div", 1)),
    "LogSoftmax": (("reduce", 2), ("elementwise", 2), ("exp", 1)),
    "Exp": (("exp", 1),),
    "Log": (("exp", 1),),  # pto-isa: TLOG 2.00 cycles/repeat + 33, as TEXP 2.00 + 31
    "Relu": (("tensor_scalar", 1),),  # vrelu, like vmaxs / vmuls: one repeat per cycle
    "Sigmoid": (("exp", 1), ("elementwise", 1), ("div", 1)),
    "Swish": (("exp", 1), ("elementwise", 2), ("div", 1)),
    "SwiGLU": (("exp", 1), ("elementwise", 3), ("div", 1)),
    "Gelu": (("exp", 1), ("elementwise", 4), ("div", 1)),
    "Tanh": (("exp", 1), ("elementwise", 2), ("div", 1)),
    "Erf": (("exp", 1), ("elementwise", 4)),
    # Per output value and resized axis: the taps gathered, weighted and summed (two taps
    # for linear, one for nearest, four for cubic: linear's cost taken for all, an assumption)
    "Resize": (("elementwise", 4),),
    "Div": (("div", 1),),
    "Reciprocal": (("div", 1),),
    "Sqrt": (("div", 1),),
    "Cast": (("cast", 1),),
    "attn.scale_q": (("elementwise", 1), ("cast", 1)),
    "attn.scores": (("elementwise", 1),),  # the worst case; per block see _Walk._scores_recipe
    "attn.online_softmax": (("reduce", 2), ("elementwise", 1), ("exp", 1), ("cast", 1)),  # see online_softmax_recipe
    "attn.rescale": (("elementwise", 2),),
    "attn.accumulate": (("elementwise", 2),),
    "attn.finalize": (("div", 1), ("cast", 1)),
}


REDUCE_PREFIX = ("Reduce", "ArgM", "GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool")


def recipe_of(op: str) -> tuple[tuple[str, float], ...]:
    if op in VEC_RECIPES:
        return VEC_RECIPES[op]
    if op.startswith(REDUCE_PREFIX):
        return (("reduce", 1),)
    return (("elementwise", 1),)


def row_reduce(n: int) -> list[tuple[str, float]]:
    """A row reduction (max or sum) over rows of ``n`` fp32 values, as AscendC kernels do it
    for wide rows: pairwise vmax/vadd of the row's halves down to one 256 B repeat (64 values)
    per row, then one whole-row reduce of what is left. As passes over the tile's bytes: the
    halving levels write n/2 + n/4 + ... + 64 values per row, the final reduce reads 64."""
    if n <= 64:
        return [("reduce", 1.0)]
    return [("elementwise", (n - 64) / n), ("reduce", 64 / n)]


def sort_recipe(n: int) -> list[tuple[str, float]]:
    """TopK over rows of ``n`` values, as AscendC sorts on the 910B: an index per value
    (CreateVecIndex), Sort32 on 32-value blocks (value-index pairs, twice the bytes),
    MrgSort merging four sorted lists a pass until one is left, and the first k pairs
    split back into values and indices. As passes over the tile's bytes; the sort
    instructions are costed as reductions (the closest measured class), an assumption."""
    merges = math.ceil(math.log(max(n, 32) / 32, 4) - 1e-9)
    return [("elementwise", 1.0), ("reduce", 2.0), ("elementwise", 2.0 * merges), ("elementwise", 1.0)]


def online_softmax_recipe(kv_tile: int) -> list[tuple[str, float]]:
    """attn.online_softmax on a q x kv_tile block: row max, S - max, exp, row sum, cast of P."""
    return [*row_reduce(kv_tile), ("elementwise", 1), ("exp", 1), *row_reduce(kv_tile), ("cast", 1)]


def op_class(cls: str, out: SSAValue) -> str:
    if cls == "exp":
        return "exp_fp32" if elem_bytes(out) == 4 else "exp_fp16"
    return cls
