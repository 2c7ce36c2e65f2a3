"""Rules of graphopt's own compute ops (domain "graphopt")."""

from __future__ import annotations

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.norm import layer_normalization


@rule("graphopt::MatMulBias")
def matmul_bias(a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
    # One rounding step per op, as the unfused MatMul then Add would do.
    return np.asarray(np.matmul(a, b) + bias)


@rule("graphopt::ChannelLayerNorm")
def channel_layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None = None, *,
                       epsilon: float = 1e-5, stash_type: int = 1) -> np.ndarray:
    """LayerNormalization over axis 1 alone: that of the channels-last transpose, transposed back."""
    y = layer_normalization(np.moveaxis(x, 1, -1), scale, bias, axis=-1, epsilon=epsilon, stash_type=stash_type)[0]
    return np.ascontiguousarray(np.moveaxis(y, -1, 1))
