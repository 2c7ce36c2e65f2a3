"""Normalisation rules: batch, instance, layer, group, RMS and mean-variance normalisation, LRN, Dropout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.nn_common import channel, np_dtype, pad_spatial, scalar


@rule("BatchNormalization")
def batch_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray,
    input_mean: np.ndarray,
    input_var: np.ndarray,
    *,
    epsilon: float = 1e-5,
    momentum: float = 0.9,
    training_mode: int = 0,
    **_,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    nd = x.ndim
    if not training_mode:
        y = (x - channel(input_mean, nd)) / np.sqrt(channel(input_var, nd) + epsilon)
        return (y * channel(scale, nd) + channel(b, nd)).astype(x.dtype)
    axes = (0,) + tuple(range(2, nd))
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    y = (x - channel(mean, nd)) / np.sqrt(channel(var, nd) + epsilon)
    y = (y * channel(scale, nd) + channel(b, nd)).astype(x.dtype)
    running_mean = (input_mean * momentum + mean * (1 - momentum)).astype(input_mean.dtype)
    running_var = (input_var * momentum + var * (1 - momentum)).astype(input_var.dtype)
    return y, running_mean, running_var


@rule("InstanceNormalization")
def instance_normalization(
    x: np.ndarray, scale: np.ndarray, b: np.ndarray, *, epsilon: float = 1e-5
) -> np.ndarray:
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + epsilon)
    return (y * channel(scale, x.ndim) + channel(b, x.ndim)).astype(x.dtype)


def _stash(x: np.ndarray, stash_type: int) -> np.ndarray:
    return x.astype(np_dtype(stash_type) if stash_type else np.float32)


@rule("LayerNormalization")
def layer_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray | None = None,
    *,
    axis: int = -1,
    epsilon: float = 1e-5,
    stash_type: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis = axis % x.ndim
    axes = tuple(range(axis, x.ndim))
    xs = _stash(x, stash_type)
    mean = xs.mean(axis=axes, keepdims=True)
    var = ((xs - mean) ** 2).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + epsilon)
    y = ((xs - mean) * inv_std).astype(x.dtype) * scale
    if b is not None:
        y = y + b
    return y.astype(x.dtype), mean, inv_std


@rule("GroupNormalization")
def group_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    *,
    epsilon: float = 1e-5,
    num_groups: int = 1,
    stash_type: int = 1,
) -> np.ndarray:
    n, c = x.shape[:2]
    xs = _stash(x, stash_type).reshape((n, num_groups, -1))
    mean = xs.mean(axis=-1, keepdims=True)
    var = xs.var(axis=-1, keepdims=True)
    y = ((xs - mean) / np.sqrt(var + epsilon)).reshape(x.shape).astype(x.dtype)
    if scale.size == num_groups and num_groups != c:
        # Opset 18 gave one scale and bias per group.
        scale = np.repeat(scale, c // num_groups)
        bias = np.repeat(bias, c // num_groups)
    return (y * channel(scale, x.ndim) + channel(bias, x.ndim)).astype(x.dtype)


@rule("RMSNormalization")
def rms_normalization(
    x: np.ndarray, scale: np.ndarray, *, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1
) -> np.ndarray:
    axes = tuple(range(axis % x.ndim, x.ndim))
    xs = _stash(x, stash_type)
    rms = np.sqrt((xs * xs).mean(axis=axes, keepdims=True) + epsilon)
    return ((xs / rms).astype(x.dtype) * scale).astype(x.dtype)


@rule("MeanVarianceNormalization")
def mean_variance_normalization(x: np.ndarray, *, axes: Sequence[int] = (0, 2, 3)) -> np.ndarray:
    ax = tuple(axes)
    mean = x.mean(axis=ax, keepdims=True)
    std = np.sqrt((x * x).mean(axis=ax, keepdims=True) - mean * mean)
    return ((x - mean) / (std + 1e-9)).astype(x.dtype)


@rule("LRN")
def lrn(
    x: np.ndarray, *, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0, size: int = 1
) -> np.ndarray:
    before, after = (size - 1) // 2, -(-(size - 1) // 2)
    sq = pad_spatial(x.astype(np.float64) ** 2, [before] + [0] * (x.ndim - 2), [after] + [0] * (x.ndim - 2), 0)
    c = x.shape[1]
    square_sum = sum(sq[:, i : i + c] for i in range(size))
    return (x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)


@rule("Dropout")
def dropout(
    x: np.ndarray,
    ratio: np.ndarray | None = None,
    training_mode: np.ndarray | None = None,
    *,
    seed: int | None = None,
    is_test: int = 1,
    **_,
) -> tuple[np.ndarray, np.ndarray]:
    if training_mode is not None and bool(scalar(training_mode)):
        if ratio is not None and float(scalar(ratio)) == 0.0:
            return x.copy(), np.ones(x.shape, dtype=bool)
        # Nothing to reproduce: the mask is random.
        from graphopt.refused import TRAINING_DROPOUT

        raise ValueError(TRAINING_DROPOUT)
    return x.copy(), np.ones(x.shape, dtype=bool)
