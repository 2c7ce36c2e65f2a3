"""graphopt's own shape rules agree with ONNX's inference functions, on random cases.

shapes.py has explicit rules for the ops every model is full of, so that a compile needing
nothing else never imports onnx; each must say what the op's ONNX schema says: the same
result specs where ONNX knows them, and an error where ONNX rejects the node."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt import dtypes
from graphopt.dialects.shapes import RULES, _onnx_infer

F32, I64 = dtypes.from_numpy(np.float32), dtypes.from_numpy(np.int64)
KINDS = {"perm": 7, "axis": 2, "allowzero": 2, "stash_type": 2, "epsilon": 1}


def _shape(rng: np.random.Generator, rank: int, zero: bool = False) -> tuple[int, ...]:
    low = 0 if zero else 1
    return tuple(int(d) for d in rng.integers(low, 5, size=rank))


def _transpose(rng):
    shape = _shape(rng, int(rng.integers(0, 5)))
    attrs = {}
    if rng.random() < 0.7:
        perm = rng.permutation(len(shape)).tolist()
        if rng.random() < 0.1 and perm:
            perm[0] = len(shape)  # not a permutation
        attrs["perm"] = perm
    return [(shape, F32)], attrs, [None]


def _reshape(rng):
    shape = _shape(rng, int(rng.integers(0, 5)), zero=rng.random() < 0.1)
    total = int(np.prod(shape))
    want = list(rng.permutation(list(shape)).tolist()) if rng.random() < 0.5 else [total]
    choice = rng.random()
    if choice < 0.3 and want:
        want[int(rng.integers(len(want)))] = -1
    elif choice < 0.5 and want:
        want[int(rng.integers(len(want)))] = 0
    elif choice < 0.6:
        want = [*want, 1, 1]
    elif choice < 0.7 and want:
        want[0] += 1  # wrong element count
    attrs = {"allowzero": 1} if rng.random() < 0.2 else {}
    target = np.array(want, np.int64)
    return [(shape, F32), ((len(want),), I64)], attrs, [None, target]


def _gather(rng):
    data = _shape(rng, int(rng.integers(1, 4)))
    indices = _shape(rng, int(rng.integers(0, 3)))
    attrs = {"axis": int(rng.integers(-len(data), len(data)))} if rng.random() < 0.7 else {}
    return [(data, F32), (indices, I64)], attrs, [None, None]


def _gather_elements(rng):
    data = _shape(rng, int(rng.integers(1, 4)))
    indices = tuple(int(rng.integers(1, d + 1)) for d in data)
    attrs = {"axis": int(rng.integers(-len(data), len(data)))} if rng.random() < 0.7 else {}
    return [(data, F32), (indices, I64)], attrs, [None, None]


def _slice(rng):
    shape = _shape(rng, int(rng.integers(1, 4)), zero=rng.random() < 0.1)
    n = int(rng.integers(1, len(shape) + 1))
    axes = rng.permutation(len(shape))[:n] - (len(shape) if rng.random() < 0.3 else 0)
    starts = rng.integers(-6, 7, size=n)
    ends = rng.integers(-6, 7, size=n)
    if rng.random() < 0.2:
        ends[0] = np.iinfo(np.int64).max
    steps = rng.choice([-3, -2, -1, 1, 2, 3], size=n)
    ins = [(shape, F32), ((n,), I64), ((n,), I64)]
    consts: list = [None, starts.astype(np.int64), ends.astype(np.int64)]
    if rng.random() < 0.8:
        ins.append(((n,), I64))
        consts.append(axes.astype(np.int64))
        if rng.random() < 0.8:
            ins.append(((n,), I64))
            consts.append(steps.astype(np.int64))
    if rng.random() < 0.1:
        consts[1] = None  # a start fed at run time
    return ins, {}, consts


def _layer_norm(rng):
    shape = _shape(rng, int(rng.integers(1, 4)))
    attrs = {"axis": int(rng.integers(-len(shape), len(shape)))} if rng.random() < 0.7 else {}
    if rng.random() < 0.3:
        attrs["stash_type"] = 1
    scale = shape[attrs.get("axis", -1) % len(shape):]
    return [(shape, F32), (scale, F32)], attrs, [None, None]


def _numpy_shape(op, ins, attrs, consts):
    """The shape numpy gives running the op on zeros, or "error"; None where numpy has no
    direct equivalent. Stricter than ONNX's inference, which lets some invalid nodes by."""
    x = np.zeros(ins[0][0], np.float32)
    try:
        if op == "Reshape":
            want = [int(d) for d in consts[1]]
            if not attrs.get("allowzero"):
                want = [x.shape[k] if d == 0 and k < x.ndim else d for k, d in enumerate(want)]
                if any(d == 0 and k >= x.ndim for k, d in enumerate(consts[1])):
                    return "error"
            elif 0 in want and -1 in want:
                return "error"
            return x.reshape(want).shape
        if op == "Transpose":
            return np.transpose(x, attrs.get("perm")).shape
        if op == "Gather":
            return np.take(x, np.zeros(ins[1][0], np.int64), axis=attrs.get("axis", 0)).shape
        steps = consts[4] if len(consts) > 4 else [1] * len(consts[1]) if consts[1] is not None else []
        # Python's clamping is ONNX's for positive steps only (see test_slice_negative_step).
        if op == "Slice" and all(c is not None for c in consts[1:]) and min(steps) > 0:
            n = len(consts[1])
            axes = consts[3] if len(consts) > 3 else range(n)
            index = [slice(None)] * x.ndim
            for a, b, e, st in zip(axes, consts[1], consts[2], steps):
                index[int(a)] = slice(int(b), int(e), int(st))
            return x[tuple(index)].shape
    except (ValueError, IndexError, TypeError):
        return "error"
    return None


CASES = {"Transpose": _transpose, "Reshape": _reshape, "Gather": _gather, "GatherElements": _gather_elements,
         "Slice": _slice, "LayerNormalization": _layer_norm}
N_OUT = {"LayerNormalization": 3}


def _agrees(ours, theirs) -> bool:
    """ONNX's unknown dimensions (-1) may be known to ours; everything else must match."""
    if theirs is None:
        return True
    (s1, t1), (s2, t2) = ours, theirs
    return t1 == t2 and len(s1) == len(s2) and all(b == -1 or a == b for a, b in zip(s1, s2))


@pytest.mark.parametrize("op", sorted(CASES))
def test_rule_agrees_with_onnx(op):
    rng = np.random.default_rng(sum(map(ord, op)))
    rule, n_out, checked = RULES[op], N_OUT.get(op, 1), 0
    for _ in range(300):
        ins, attrs, consts = CASES[op](rng)
        kinds = {k: KINDS[k] for k in attrs}
        try:
            theirs = _onnx_infer(op, "", ins, attrs, consts, kinds, n_out)
        except ValueError:
            theirs = "error"
        try:
            ours = list(rule(ins, attrs, consts))[:n_out]
        except ValueError:
            ours = "error"
        exact = _numpy_shape(op, ins, attrs, consts)
        case = f"{op} ins={ins} attrs={attrs} consts={consts}: ours {ours}, onnx {theirs}, numpy {exact}"
        if exact is not None:
            assert (ours == "error") == (exact == "error"), case
            assert ours == "error" or tuple(ours[0][0]) == tuple(exact), case
        if theirs == "error":
            assert ours == "error", case
            continue
        if ours == "error":  # ONNX's inference let an invalid node by (numpy refused it)
            assert exact == "error", case
            continue
        assert all(_agrees(o, t) for o, t in zip(ours, theirs)), case
        checked += 1
    assert checked > 100  # the generators make mostly valid nodes


def test_gather_elements_rejects_indices_of_another_rank():
    # The spec requires equal ranks; ONNX's inference function does not check it.
    with pytest.raises(ValueError, match="differ in rank"):
        RULES["GatherElements"]([((4, 1, 4), F32), ((3, 1, 1, 2), I64)], {}, [None, None])


def test_slice_negative_step_clamps_as_onnx_says():
    """A negative step's start before the first element is clamped to it (ONNX; onnxruntime
    agrees), where Python's slicing would give nothing: x[-5:-5:-1] of 1 element is 1."""
    from graphopt.semantics.tensor import slice_

    x = np.arange(12, dtype=np.float32).reshape(4, 1, 3)
    args = [np.array(v, np.int64) for v in ([1, -5], [2**63 - 1, -5], [2, 1], [2, -1])]
    y = slice_(x, *args)
    np.testing.assert_array_equal(y, x[:, 0:1, 1:2])
    spec = RULES["Slice"]([((4, 1, 3), F32)] + [((2,), I64)] * 4, {}, [None, *args])
    assert spec[0][0] == (4, 1, 1)


def test_group_normalization_has_a_type_onnx_cannot_infer():
    """ONNX's GroupNormalization has only a function body: its inference gives Y no type,
    and a model leaving Y undeclared did not import (timm's GroupNorm under the dynamo
    exporter; CPUBone). graphopt's rule: Y is X."""
    x = ((2, 8, 5, 5), F32)
    assert _onnx_infer("GroupNormalization", "", [x, ((8,), F32), ((8,), F32)], {"num_groups": 4},
                       [None] * 3, {"num_groups": 2}, 1) in ([None], [])
    assert RULES["GroupNormalization"]([x, ((8,), F32), ((8,), F32)], {"num_groups": 4}, [None] * 3) == [x]
    with pytest.raises(ValueError, match="do not divide"):
        RULES["GroupNormalization"]([x, ((8,), F32), ((8,), F32)], {"num_groups": 3}, [None] * 3)
