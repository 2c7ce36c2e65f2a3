"""Rules of the ai.onnx.ml domain that the other families lack: LabelEncoder, TreeEnsemble."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphopt.semantics import rule


def _first(attrs: dict[str, Any], *names: str) -> tuple[str, Any] | None:
    for name in names:
        if attrs.get(name) is not None:
            return name, attrs[name]
    return None


@rule("ai.onnx.ml::LabelEncoder")
def label_encoder(x: np.ndarray, **attrs: Any) -> np.ndarray:
    """Map each element through keys -> values; unmatched elements get the default, which
    follows the values' type (-1, -0.0, "_Unused") unless ``default_tensor`` is set."""
    keys = _first(attrs, "keys_tensor", "keys_strings", "keys_int64s", "keys_floats")
    values = _first(attrs, "values_tensor", "values_strings", "values_int64s", "values_floats")
    if keys is None or values is None:
        raise ValueError("LabelEncoder needs keys_* and values_* attributes")
    vname, vlist = values
    if vname == "values_tensor":
        out_dtype = np.asarray(vlist).dtype
    else:
        out_dtype = {"values_strings": np.dtype(object), "values_int64s": np.dtype(np.int64)}.get(vname, np.dtype(np.float32))
    if attrs.get("default_tensor") is not None:
        default: Any = np.asarray(attrs["default_tensor"]).reshape(-1)[0]
    elif out_dtype == object:  # noqa: E721 (numpy dtype equality)
        default = attrs.get("default_string", "_Unused")
    elif out_dtype.kind in "iu":
        default = attrs.get("default_int64", -1)
    else:
        default = attrs.get("default_float", -0.0)
    table = {_key(k): v for k, v in zip(np.asarray(keys[1]).reshape(-1).tolist(), np.asarray(vlist).reshape(-1).tolist())}
    flat = [table.get(_key(k), default) for k in x.reshape(-1).tolist()]
    return np.array(flat, dtype=out_dtype).reshape(x.shape)


def _key(k: Any) -> Any:
    """Keys compare by value; NaN keys (floats) match NaN elements."""
    return "nan" if isinstance(k, float) and k != k else k


_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)


def _member_sets(roots: Sequence[int], modes: np.ndarray, true_ids: Sequence[int], false_ids: Sequence[int],
                 true_leaf: Sequence[int], false_leaf: Sequence[int], members: np.ndarray | None) -> dict[int, set[float]]:
    """The set of each MEMBER node. ``membership_values`` lists the sets, NaN-separated, in
    the order a depth-first walk (true branch first) from each root meets the nodes."""
    sets: list[set[float]] = [set()]
    for v in (members if members is not None else np.zeros(0)).reshape(-1).tolist():
        if v != v:
            sets.append(set())
        else:
            sets[-1].add(v)
    found: dict[int, set[float]] = {}
    it = iter(sets)

    def walk(i: int) -> None:
        if modes[i] == _MEMBER:
            found[i] = next(it)
        if not true_leaf[i]:
            walk(true_ids[i])
        if not false_leaf[i]:
            walk(false_ids[i])

    for root in roots:
        walk(root)
    return found


def _goes_true(mode: int, v: float, split: float, members: set[float] | None) -> bool:
    if mode == _LEQ:
        return v <= split
    if mode == _LT:
        return v < split
    if mode == _GTE:
        return v >= split
    if mode == _GT:
        return v > split
    if mode == _EQ:
        return v == split
    if mode == _NEQ:
        return v != split
    return members is not None and v in members


@rule("ai.onnx.ml::TreeEnsemble")
def tree_ensemble(
    x: np.ndarray,
    *,
    nodes_splits: np.ndarray,
    nodes_featureids: Sequence[int],
    nodes_modes: np.ndarray,
    nodes_truenodeids: Sequence[int],
    nodes_falsenodeids: Sequence[int],
    nodes_trueleafs: Sequence[int],
    nodes_falseleafs: Sequence[int],
    leaf_targetids: Sequence[int],
    leaf_weights: np.ndarray,
    tree_roots: Sequence[int],
    n_targets: int,
    aggregate_function: int = 1,
    post_transform: int = 0,
    nodes_missing_value_tracks_true: Sequence[int] | None = None,
    membership_values: np.ndarray | None = None,
    nodes_hitrates: Any = None,
) -> np.ndarray:
    """Each row walks every tree from its root to a leaf; the leaves' weights are
    aggregated per target (0 average, 1 sum, 2 min, 3 max)."""
    modes = np.asarray(nodes_modes).reshape(-1)
    splits = np.asarray(nodes_splits).reshape(-1).tolist()
    weights = np.asarray(leaf_weights).reshape(-1).tolist()
    tracks = list(nodes_missing_value_tracks_true or [0] * len(modes))
    sets = _member_sets(tree_roots, modes, nodes_truenodeids, nodes_falsenodeids, nodes_trueleafs, nodes_falseleafs,
                        membership_values)
    rows = x.reshape(x.shape[0], -1).astype(np.float64)
    if aggregate_function in (0, 1):
        out = np.zeros((len(rows), n_targets), np.float64)
    else:
        out = np.full((len(rows), n_targets), np.inf if aggregate_function == 2 else -np.inf)
    for r, row in enumerate(rows):
        for root in tree_roots:
            leaf = _walk(root, row.tolist(), modes, splits, nodes_featureids, nodes_truenodeids, nodes_falsenodeids,
                         nodes_trueleafs, nodes_falseleafs, tracks, sets)
            t, w = leaf_targetids[leaf], weights[leaf]
            if aggregate_function == 1:
                out[r, t] += w
            elif aggregate_function == 0:
                out[r, t] += w / len(tree_roots)
            elif aggregate_function == 2:
                out[r, t] = min(out[r, t], w)
            else:
                out[r, t] = max(out[r, t], w)
    return _post_transform(out, post_transform).astype(x.dtype)


def _walk(i: int, row: list[float], modes: np.ndarray, splits: list[float], features: Sequence[int],
          true_ids: Sequence[int], false_ids: Sequence[int], true_leaf: Sequence[int], false_leaf: Sequence[int],
          tracks: Sequence[int], sets: dict[int, set[float]]) -> int:
    """The leaf index row ``row`` reaches from node ``i``."""
    # A root whose both branches are the same leaf is that leaf (a one-leaf tree).
    if true_leaf[i] and false_leaf[i] and true_ids[i] == false_ids[i]:
        return true_ids[i]
    while True:
        v = row[features[i]]
        go = (v != v and bool(tracks[i])) or _goes_true(int(modes[i]), v, splits[i], sets.get(i))
        nxt, is_leaf = (true_ids[i], true_leaf[i]) if go else (false_ids[i], false_leaf[i])
        if is_leaf:
            return nxt
        i = nxt


def _post_transform(scores: np.ndarray, kind: int) -> np.ndarray:
    if kind == 0:
        return scores
    if kind == 2:
        return 1 / (1 + np.exp(-scores))
    if kind in (1, 3):
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"TreeEnsemble post_transform {kind} is not supported")
