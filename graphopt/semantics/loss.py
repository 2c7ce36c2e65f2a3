"""Loss rules: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both pick, at each position of ``target``, the entry of class ``target`` along axis 1 of
the input (N, C, d1 ... dk), negate it and weight it by ``weight[target]``. A position
whose target is ``ignore_index`` contributes 0 and weighs 0, so "mean" divides by the sum
of the weights of the positions that count (ONNX's definition, not by N).
"""

from __future__ import annotations

import numpy as np

from graphopt.semantics import rule


def _picked(x: np.ndarray, target: np.ndarray, ignore: np.ndarray) -> np.ndarray:
    """x[n, target[n, d...], d...]; ignored positions (any class index) read class 0."""
    safe = np.where(ignore, 0, target).astype(np.int64)
    return np.take_along_axis(x, np.expand_dims(safe, 1), axis=1).squeeze(1)


def _nll(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None, reduction: str, ignore_index: int | None
) -> np.ndarray:
    ignore = target == ignore_index if ignore_index is not None else np.zeros(target.shape, bool)
    w = np.ones(target.shape, x.dtype) if weight is None else weight[np.where(ignore, 0, target)]
    w = np.where(ignore, 0, w).astype(x.dtype)
    loss = -_picked(x, target, ignore) * w
    if reduction == "none":
        return loss.astype(x.dtype)
    if reduction == "sum":
        return np.asarray(loss.sum(), x.dtype)
    if reduction != "mean":
        raise ValueError(f"reduction {reduction!r} is not none, sum or mean")
    total = w.sum()
    return np.asarray(loss.sum() / total if total else np.zeros((), x.dtype), x.dtype)


@rule("NegativeLogLikelihoodLoss")
def negative_log_likelihood_loss(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    reduction: str = "mean",
    ignore_index: int | None = None,
) -> np.ndarray:
    return _nll(x, target, weight, reduction, ignore_index)


@rule("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy_loss(
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    reduction: str = "mean",
    ignore_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss and log_softmax(scores) along the class axis (the optional second output)."""
    with np.errstate(all="ignore"):
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_prob = (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(scores.dtype)
    return _nll(log_prob, labels, weights, reduction, ignore_index), log_prob
