"""Sequences and optionals.

At run time a sequence is a Python list of arrays and an optional is ``None`` (empty) or
its value. A rule whose one output is a sequence returns the list itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from graphopt.semantics import rule


def _index(position: Any, length: int, *, insert: bool = False) -> int:
    k = int(np.asarray(position).reshape(-1)[0])
    top = length if insert else length - 1
    if not -length <= k <= top:
        raise IndexError(f"position {k} is out of range for a sequence of {length}")
    return k + length if k < 0 else k


@rule("SequenceConstruct")
def sequence_construct(*inputs: np.ndarray) -> list[np.ndarray]:
    return list(inputs)


@rule("SequenceEmpty")
def sequence_empty(*, dtype: int = 1) -> list[np.ndarray]:
    return []


@rule("SequenceAt")
def sequence_at(seq: list[np.ndarray], position: np.ndarray) -> np.ndarray:
    return seq[_index(position, len(seq))]


@rule("SequenceInsert")
def sequence_insert(seq: list[np.ndarray], tensor: np.ndarray, position: np.ndarray | None = None) -> list[np.ndarray]:
    out = list(seq)
    out.insert(len(out) if position is None else _index(position, len(out), insert=True), tensor)
    return out


@rule("SequenceErase")
def sequence_erase(seq: list[np.ndarray], position: np.ndarray | None = None) -> list[np.ndarray]:
    out = list(seq)
    del out[len(out) - 1 if position is None else _index(position, len(out))]
    return out


@rule("SequenceLength")
def sequence_length(seq: list[np.ndarray]) -> np.ndarray:
    return np.array(len(seq), dtype=np.int64)


@rule("SplitToSequence")
def split_to_sequence(x: np.ndarray, split: np.ndarray | None = None, *, axis: int = 0, keepdims: int = 1) -> list[np.ndarray]:
    axis %= x.ndim
    if split is None:
        parts = np.split(x, x.shape[axis], axis=axis)
        return [np.squeeze(p, axis) if not keepdims else p for p in parts]
    if split.ndim == 0:
        step = int(split)
        return np.split(x, list(range(step, x.shape[axis], step)), axis=axis)
    return np.split(x, np.cumsum(split.astype(np.int64))[:-1].tolist(), axis=axis)


@rule("ConcatFromSequence")
def concat_from_sequence(seq: list[np.ndarray], *, axis: int, new_axis: int = 0) -> np.ndarray:
    return np.stack(seq, axis=axis) if new_axis else np.concatenate(seq, axis=axis)


@rule("SequenceMap")
def sequence_map(seq: list[np.ndarray], *others: Any, body: Callable[..., list[Any]]) -> tuple[list[Any], ...]:
    """``body`` on each element; a sequence among ``others`` is walked in step, a tensor is
    passed whole each time."""
    outs = [body(seq[i], *[o[i] if isinstance(o, list) else o for o in others]) for i in range(len(seq))]
    n_out = len(outs[0]) if outs else 0
    return tuple([step[j] for step in outs] for j in range(n_out))


@rule("Optional")
def optional(x: Any = None, *, type: Any = None) -> Any:
    return x


@rule("OptionalHasElement")
def optional_has_element(x: Any = None) -> np.ndarray:
    return np.array(x is not None)


@rule("OptionalGetElement")
def optional_get_element(x: Any) -> Any:
    if x is None:
        raise ValueError("the optional is empty")
    return x
