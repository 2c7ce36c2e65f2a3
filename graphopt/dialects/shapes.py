"""Result types of graph ops: one shape/dtype rule per op.

The common families have explicit rules here (elementwise, broadcasting, matmul, reduce,
and the movement ops and LayerNormalization that every transformer is full of). Every
other ONNX-mirroring op uses the inference function of its own ONNX op schema, called
through ``onnx.shape_inference.infer_node_outputs`` (about 10 us a call): that function
*is* the op's shape rule in the ONNX spec, so re-deriving it for a rare op would only add
a second, possibly different, copy of the same fact. The explicit rules exist because a
compile that needs no other rule never imports onnx (a torch model's, usually), and
tests/unit/test_shape_rules.py checks each against ONNX's own inference.

Rules see constant operands (``graph.constant``) so that data-dependent shapes (Reshape,
Expand, Tile ...) resolve. A dimension a rule cannot know is ``-1``; the verifier only
checks what a rule knows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import NoneType, TensorType
from xdsl.ir import Attribute, Operation
from xdsl.traits import ConstantLike
from xdsl.utils.exceptions import VerifyException

from graphopt import dtypes
from graphopt.dialects.attrs import AttrType
from graphopt.dialects.types import shape_of, tensor
from graphopt.semantics.tensor import slice_bounds

if TYPE_CHECKING:
    import onnx

Spec = tuple[tuple[int, ...], dtypes.DType]  # shape (-1 = unknown) and element type
Rule = Callable[[list[Spec | None], dict[str, Any], list[np.ndarray | None]], list[Spec]]

BOOL = dtypes.BY_ONNX[9]


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy/ONNX multidirectional broadcasting; -1 (unknown) stays unknown."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0} - {1}
        known = dims - {-1}
        if len(known) > 1:
            raise ValueError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
        out.append(known.pop() if known else (-1 if -1 in dims else 1))
    return tuple(out)


def _same(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    assert ins[0] is not None
    return [ins[0]]


def _predicate(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    assert ins[0] is not None
    return [(ins[0][0], BOOL)]


def _broadcast(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    present = [s for s in ins if s is not None]
    return [(broadcast_shapes(*(s[0] for s in present)), present[0][1])]


def _compare(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    return [(_broadcast(ins, attrs, consts)[0][0], BOOL)]


def _where(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    assert ins[1] is not None
    return [(_broadcast(ins, attrs, consts)[0][0], ins[1][1])]


def _cast(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    assert ins[0] is not None
    return [(ins[0][0], dtypes.from_onnx(attrs["to"]))]


def _matmul(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    a, b = ins[0], ins[1]
    assert a is not None and b is not None
    sa, sb = list(a[0]), list(b[0])
    if not sa or not sb:
        raise ValueError("MatMul operands must have rank >= 1")
    a1, b1 = len(sa) == 1, len(sb) == 1
    sa = [1, *sa] if a1 else sa
    sb = [*sb, 1] if b1 else sb
    if -1 not in (sa[-1], sb[-2]) and sa[-1] != sb[-2]:
        raise ValueError(f"MatMul inner dimensions differ: {a[0]} @ {b[0]}")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    out = [*batch, *([] if a1 else [sa[-2]]), *([] if b1 else [sb[-1]])]
    return [(tuple(out), a[1])]


def _matmul_bias(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    (shape, dtype), bias = _matmul(ins[:2], attrs, consts)[0], ins[2]
    assert bias is not None
    if len(bias[0]) > 1 and any(d != 1 for d in bias[0][:-1]):
        raise ValueError(f"MatMulBias bias {bias[0]} must broadcast along the last axis only")
    return [(broadcast_shapes(shape, bias[0]), dtype)]


def _same(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    assert ins[0] is not None
    return [ins[0]]


def _recv(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    if "shape" not in attrs or "dtype" not in attrs:
        raise ValueError("Recv needs the shape and dtype (an ONNX TensorProto type) of what it receives")
    return [(tuple(int(d) for d in attrs["shape"]), dtypes.from_onnx(int(attrs["dtype"])))]


def _group_size(attrs: dict[str, Any]) -> int:
    size = int(attrs.get("group_size") or len(attrs.get("ranks") or ()) or 0)
    if size < 1:
        raise ValueError("a collective needs its group_size (or its ranks)")
    return size


def _all_gather(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    (shape, dtype) = ins[0]  # type: ignore[misc]
    if not shape:
        raise ValueError("AllGather concatenates along axis 0: a scalar has none")
    return [((shape[0] * _group_size(attrs), *shape[1:]), dtype)]


def _reduce_scatter(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    (shape, dtype) = ins[0]  # type: ignore[misc]
    n = _group_size(attrs)
    if not shape or shape[0] % n:
        raise ValueError(f"ReduceScatter splits axis 0 of {list(shape)} into {n} equal parts")
    return [((shape[0] // n, *shape[1:]), dtype)]


def _all_to_all(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    (shape, dtype) = ins[0]  # type: ignore[misc]
    sent, received = attrs.get("input_split_sizes") or [], attrs.get("output_split_sizes") or []
    if not shape:
        raise ValueError("AllToAll splits axis 0: a scalar has none")
    if sent and sum(sent) != shape[0]:
        raise ValueError(f"AllToAll input_split_sizes {list(sent)} do not add up to axis 0 of {list(shape)}")
    return [((sum(received) if received else shape[0], *shape[1:]), dtype)]


def _channel_layer_norm(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    x, scale = ins[0], ins[1]
    assert x is not None and scale is not None
    channels = x[0][1] if len(x[0]) >= 2 else None
    if channels is None or (channels != -1 and scale[0] not in ((channels,), (-1,))):
        raise ValueError(f"ChannelLayerNorm of {x[0]} takes one scale per channel, got {scale[0]}")
    return [x]


def _reduce(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    """Reduce* with axes as an input. Axes known at compile time give the exact shape.
    Axes fed at run time still have a static length L, which fixes the rank (rank - L
    without keepdims, duplicates being invalid); the dimensions are then unknown (-1)."""
    x = ins[0]
    assert x is not None
    shape, dtype = x
    keep = attrs.get("keepdims", 1)
    axes_spec = ins[1] if len(ins) > 1 else None
    axes = consts[1] if len(consts) > 1 and axes_spec is not None else None
    if axes_spec is not None and axes is None and axes_spec[0] != (0,):
        if not axes_spec[0] or axes_spec[0][0] < 0:
            raise ValueError("Reduce axes fed at run time need a static length")
        rank = len(shape) if keep else len(shape) - axes_spec[0][0]
        return [((-1,) * rank, dtype)]
    picked = [] if axes is None else [int(a) % max(len(shape), 1) for a in axes.reshape(-1)]
    if not picked:
        if attrs.get("noop_with_empty_axes", 0):
            return [(shape, dtype)]
        picked = list(range(len(shape)))
    out = [1 if k in picked else d for k, d in enumerate(shape)] if keep else [d for k, d in enumerate(shape) if k not in picked]
    return [(tuple(out), dtype)]


def _axis(axis: int, rank: int, op: str) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"{op} axis {axis} is out of range for rank {rank}")
    return axis % rank


def _transpose(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    assert ins[0] is not None
    shape, dtype = ins[0]
    perm = attrs.get("perm")
    perm = list(range(len(shape)))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"Transpose perm {perm} is not a permutation of rank {len(shape)}")
    return [(tuple(shape[p] for p in perm), dtype)]


def _reshape(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    x, target = ins[0], ins[1]
    assert x is not None and target is not None
    shape, dtype = x
    if consts[1] is None:  # fed at run time: the rank is the shape input's length
        if len(target[0]) != 1 or target[0][0] < 0:
            raise ValueError("Reshape shape fed at run time needs a static length")
        return [((-1,) * target[0][0], dtype)]
    want = [int(d) for d in consts[1].reshape(-1)]
    allowzero = attrs.get("allowzero", 0)
    if allowzero and 0 in want and -1 in want:
        raise ValueError("Reshape with allowzero cannot have both 0 and -1 in its shape")
    out: list[int] = []
    for k, d in enumerate(want):
        if d == 0 and not allowzero:
            if k >= len(shape):
                raise ValueError(f"Reshape copies dimension {k} (a 0), but the input has rank {len(shape)}")
            d = shape[k]
        elif d < -1:
            raise ValueError(f"Reshape shape {want} has a negative dimension")
        out.append(d)
    if want.count(-1) > 1:
        raise ValueError(f"Reshape shape {want} has more than one -1")
    total = math.prod(shape) if -1 not in shape else None
    known = [d for k, d in enumerate(out) if want[k] != -1]  # a copied dimension may be unknown
    if -1 in want:
        k = want.index(-1)
        if total is not None and -1 not in known:
            rest = math.prod(known)
            if rest == 0 or total % rest:
                raise ValueError(f"Reshape cannot infer -1: {shape} has {total} elements, {want} fixes {rest}")
            out[k] = total // rest
    elif total is not None and -1 not in out and math.prod(out) != total:
        raise ValueError(f"Reshape from {shape} to {out}: element counts differ")
    return [(tuple(out), dtype)]


def _gather(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    data, indices = ins[0], ins[1]
    assert data is not None and indices is not None
    shape = data[0]
    axis = _axis(attrs.get("axis", 0), len(shape), "Gather")
    return [((*shape[:axis], *indices[0], *shape[axis + 1 :]), data[1])]


def _gather_elements(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    data, indices = ins[0], ins[1]
    assert data is not None and indices is not None
    if len(data[0]) != len(indices[0]):
        raise ValueError(f"GatherElements data {data[0]} and indices {indices[0]} differ in rank")
    _axis(attrs.get("axis", 0), len(data[0]), "GatherElements")
    return [(indices[0], data[1])]


def _slice(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    x = ins[0]
    assert x is not None
    shape, dtype = x
    rank = len(shape)
    given = [consts[k] if k < len(ins) and ins[k] is not None else None for k in range(1, 5)]
    starts, ends, axes, steps = given
    fed = [k for k in range(1, min(len(ins), 5)) if ins[k] is not None and consts[k] is None]
    if fed:  # a bound fed at run time: the rank stays, the dimensions are unknown
        return [((-1,) * rank, dtype)]
    assert starts is not None and ends is not None
    starts_l, ends_l = [int(v) for v in starts.reshape(-1)], [int(v) for v in ends.reshape(-1)]
    axes_l = list(range(len(starts_l))) if axes is None else [_axis(int(a), rank, "Slice") for a in axes.reshape(-1)]
    steps_l = [1] * len(starts_l) if steps is None else [int(v) for v in steps.reshape(-1)]
    if not len(starts_l) == len(ends_l) == len(axes_l) == len(steps_l) or len(set(axes_l)) != len(axes_l):
        raise ValueError("Slice starts, ends, axes and steps must have one entry per distinct axis")
    out = list(shape)
    for start, end, a, step in zip(starts_l, ends_l, axes_l, steps_l):
        if step == 0:
            raise ValueError("Slice step cannot be 0")
        if shape[a] >= 0:
            start, end = slice_bounds(start, end, step, shape[a])
            out[a] = max(0, -(-(end - start) // step))
    return [(tuple(out), dtype)]


def _layer_norm(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    x = ins[0]
    assert x is not None
    shape = x[0]
    axis = _axis(attrs.get("axis", -1), len(shape), "LayerNormalization")
    stats = ((*shape[:axis], *[1] * (len(shape) - axis)), dtypes.from_onnx(attrs.get("stash_type", 1)))
    return [x, stats, stats]


def _group_norm(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None]) -> list[Spec]:
    """GroupNormalization: Y is X. ONNX's schema has no inference function for it (only a
    function body), so a model whose GroupNormalization output is undeclared had no type."""
    x = ins[0]
    assert x is not None
    shape, dtype = x
    groups = int(attrs.get("num_groups", 0))
    if len(shape) < 2 or groups < 1 or (shape[1] >= 0 and shape[1] % groups):
        raise ValueError(f"GroupNormalization: {groups} groups do not divide the channels of {list(shape)}")
    for name, p in zip(("scale", "bias"), ins[1:3]):
        if p is not None and (len(p[0]) != 1 or p[1] != dtype):
            raise ValueError(f"GroupNormalization: {name} must be 1-D of X's type, got {list(p[0])} {p[1].name}")
    return [x]


RULES: dict[str, Rule] = {
    **{t: _same for t in "Abs Neg Exp Log Sqrt Reciprocal Floor Ceil Round Sign Sin Cos Tan Asin Acos "
       "Atan Sinh Cosh Tanh Asinh Acosh Atanh Erf Not BitwiseNot Relu LeakyRelu Elu Selu Celu Sigmoid "
       "HardSigmoid HardSwish Softplus Softsign ThresholdedRelu Gelu Mish Swish Shrink Identity "
       "Softmax LogSoftmax Hardmax Clip".split()},
    **{t: _predicate for t in ("IsNaN", "IsInf")},
    **{t: _broadcast for t in "Add Sub Mul Div Pow Mod Max Min Sum Mean BitShift BitwiseAnd BitwiseOr "
       "BitwiseXor PRelu".split()},
    **{t: _compare for t in "And Or Xor Equal Less Greater LessOrEqual GreaterOrEqual".split()},
    "Where": _where,
    "Cast": _cast,
    "MatMul": _matmul,
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Gather": _gather,
    "GatherElements": _gather_elements,
    "Slice": _slice,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    **{t: _reduce for t in "ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum "
       "ReduceLogSumExp ReduceSumSquare".split()},
    "graphopt::AllReduce": _same,
    "graphopt::Broadcast": _same,
    "graphopt::Wait": _same,
    "graphopt::Send": _same,
    "graphopt::Recv": _recv,
    "graphopt::AllGather": _all_gather,
    "graphopt::ReduceScatter": _reduce_scatter,
    "graphopt::AllToAll": _all_to_all,
    "graphopt::MatMulBias": _matmul_bias,
    "graphopt::ChannelLayerNorm": _channel_layer_norm,
}


def _split(ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None], n_out: int) -> list[Spec]:
    """Split, given how many results the op has: with neither a ``split`` input nor
    ``num_outputs`` (opset 13 and later), ONNX splits into that many equal parts, a
    count its own inference cannot know because it is not a property of the node."""
    x = ins[0]
    assert x is not None
    shape, dtype = x
    axis = _axis(attrs.get("axis", 0), len(shape), "Split")
    dim = shape[axis]
    given = len(ins) > 1 and ins[1] is not None
    sizes: list[int]
    if given and consts[1] is not None:
        sizes = [int(v) for v in consts[1].reshape(-1)]
        if dim >= 0 and sum(sizes) != dim:
            raise ValueError(f"Split sizes {sizes} do not add up to dimension {dim}")
    elif given or dim < 0:
        sizes = [-1] * n_out
    elif attrs.get("num_outputs") is not None:
        chunk = -(-dim // attrs["num_outputs"])
        sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(attrs["num_outputs"])]
    else:
        if dim % n_out:
            raise ValueError(f"Split cannot cut dimension {dim} into {n_out} equal parts")
        sizes = [dim // n_out] * n_out
    return [((*shape[:axis], size, *shape[axis + 1 :]), dtype) for size in sizes]


# Rules that also need the number of results (ONNX leaves it to the node).
COUNTED_RULES: dict[str, Callable[[list[Spec | None], dict[str, Any], list[np.ndarray | None], int], list[Spec]]] = {
    "Split": _split,
}


def spec_of(t: Attribute) -> Spec | None:
    if isinstance(t, NoneType):
        return None
    if not isinstance(t, TensorType):
        raise ValueError(f"not a tensor type: {t}")
    return shape_of(t), dtypes.from_ir(t.element_type)


def tensor_type(spec: Spec) -> TensorType:
    return tensor(spec[1].ir, spec[0])  # -1 (unknown) prints as ?


def _type_proto(spec: Spec) -> onnx.TypeProto:
    from onnx import helper

    shape = [d if d >= 0 else None for d in spec[0]]
    return helper.make_tensor_type_proto(spec[1].onnx, shape)


class _Unkeyable(Exception):
    """A value that cannot be part of a memo key."""


_MEMO_CONST_MAX = 4096  # elements: larger constant operands are not worth keying
_MEMO_MAX = 100_000  # entries, a few hundred bytes each
_onnx_memo: dict[tuple[Any, ...], tuple[Spec | None, ...]] = {}


def _frozen(v: Any) -> Any:
    """``v`` (an attribute or a constant operand) as a hashable key, or _Unkeyable."""
    if v is None or isinstance(v, bool | int | float | str | bytes):
        return type(v).__name__, v
    if isinstance(v, list | tuple):
        return tuple(_frozen(x) for x in v)
    if isinstance(v, np.ndarray | np.generic) and v.size <= _MEMO_CONST_MAX and v.dtype != object:
        return v.dtype.str, v.shape, v.tobytes()
    raise _Unkeyable


def _memo_onnx_infer(
    onnx_type: str,
    domain: str,
    ins: list[Spec | None],
    attrs: dict[str, Any],
    consts: list[np.ndarray | None],
    attr_kinds: dict[str, AttrType],
    n_out: int,
) -> list[Spec | None]:
    """``_onnx_infer``, memoized: it is a pure function of its arguments, and a model
    repeats op signatures (a transformer, once per layer), each met again by the verifier."""
    try:
        key = (onnx_type, domain, tuple(ins), _frozen(sorted(attrs.items())), _frozen(consts), n_out)
    except _Unkeyable:
        return _onnx_infer(onnx_type, domain, ins, attrs, consts, attr_kinds, n_out)
    found = _onnx_memo.get(key)
    if found is None:
        if len(_onnx_memo) >= _MEMO_MAX:
            _onnx_memo.clear()
        found = _onnx_memo[key] = tuple(_onnx_infer(onnx_type, domain, ins, attrs, consts, attr_kinds, n_out))
    return list(found)


def _onnx_infer(
    onnx_type: str,
    domain: str,
    ins: list[Spec | None],
    attrs: dict[str, Any],
    consts: list[np.ndarray | None],
    attr_kinds: dict[str, AttrType],
    n_out: int,
) -> list[Spec | None]:
    # onnx loads here, on the first op without a rule of its own: a compile that meets
    # none (a torch model's, usually) never imports it.
    import onnx.defs
    import onnx.shape_inference
    from onnx import helper, numpy_helper

    names = [f"i{k}" if s is not None else "" for k, s in enumerate(ins)]
    outs = [f"o{k}" for k in range(n_out)]
    node = helper.make_node(onnx_type, names, outs, domain=domain or None)
    for key, value in attrs.items():
        if attr_kinds.get(key) == AttrType.TENSOR:
            node.attribute.append(helper.make_attribute(key, numpy_helper.from_array(np.asarray(value))))
        else:
            node.attribute.append(helper.make_attribute(key, value, attr_type=attr_kinds.get(key)))
    version = onnx.defs.onnx_opset_version() if not domain else None
    schema = onnx.defs.get_schema(onnx_type, version or 1000, domain)
    types = {n: _type_proto(s) for n, s in zip(names, ins) if s is not None}
    data = {n: numpy_helper.from_array(c) for n, c in zip(names, consts) if c is not None and n}
    imports = [helper.make_opsetid(domain, schema.since_version)]
    if domain:
        imports.append(helper.make_opsetid("", onnx.defs.onnx_opset_version()))
    try:
        result = onnx.shape_inference.infer_node_outputs(schema, node, types, data, None, imports)
    except Exception as e:  # onnx raises several kinds; all mean the same here
        raise ValueError(str(e).strip().splitlines()[-1]) from None
    specs: list[Spec | None] = []
    for name in outs:
        proto = result.get(name)
        if proto is None or not proto.tensor_type.elem_type:
            specs.append(None)
            continue
        tt = proto.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        specs.append((shape, dtypes.from_onnx(tt.elem_type)) if tt.HasField("shape") else None)
    return specs


def infer(
    op_cls: Any, ins: list[Spec | None], attrs: dict[str, Any], consts: list[np.ndarray | None], n_out: int
) -> list[Spec | None]:
    """The result specs of an op of class ``op_cls`` (a generated ``GraphOp``)."""
    key = op_cls.onnx_key()
    counted = COUNTED_RULES.get(key)
    if counted is not None:
        return list(counted(ins, attrs, consts, n_out))[:n_out]
    rule = RULES.get(key)
    if rule is not None:
        return list(rule(ins, attrs, consts))[:n_out]
    return _memo_onnx_infer(op_cls.ONNX_TYPE, op_cls.ONNX_DOMAIN, ins, attrs, consts, op_cls.ATTR_KINDS, n_out)


def const_value(op: Operation | None) -> np.ndarray | None:
    """The array of a graph.constant (by its ConstantLike trait and ``array``: this module
    sits below the graph dialect, which imports it); None for anything else, a weight included."""
    return op.array() if op is not None and op.has_trait(ConstantLike) and hasattr(op, "array") else None  # pyright: ignore


def _compatible(declared: Spec, inferred: Spec) -> bool:
    if declared[1] != inferred[1] or len(declared[0]) != len(inferred[0]):
        return False
    return all(a == b or -1 in (a, b) for a, b in zip(declared[0], inferred[0]))


def _signature(op: Any) -> tuple[Any, ...]:
    # Operand identities, not just types: a constant operand's value feeds the rule.
    return (tuple(op.operands), tuple(r.type for r in op.results), tuple(op.properties.items()))


def check_result_types(op: Any) -> None:
    """The verifier's type check: the declared result types agree with the op's rule.

    The pipeline verifies after every pass and most ops are untouched by most passes, so
    an op remembers what it was checked against. On the op itself, not in a module-level
    weak map: the signature refers to the op's operands, which would keep every module
    ever verified alive."""
    signature = _signature(op)
    if getattr(op, "_checked_signature", None) == signature:
        return
    _check_result_types(op)
    op._checked_signature = signature


def _check_result_types(op: Any) -> None:
    ins = [spec_of(v.type) for v in op.operands]
    consts = [const_value(v.owner if isinstance(v.owner, Operation) else None) for v in op.operands]
    try:
        inferred = infer(type(op), ins, op.onnx_attrs(), consts, len(op.results))
    except (ValueError, KeyError) as e:
        raise VerifyException(f"{op.name}: {e}") from None
    for k, (result, spec) in enumerate(zip(op.results, inferred)):
        if spec is None or not isinstance(result.type, TensorType):
            continue
        declared = spec_of(result.type)
        assert declared is not None
        if not _compatible(declared, spec):
            raise VerifyException(
                f"{op.name} result {k} is declared {result.type}, but its inputs give {tensor_type(spec)}"
            )
