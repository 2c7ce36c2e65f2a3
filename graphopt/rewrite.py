"""Helpers every pass uses: reading constants, building ops with inferred types, provenance.

Passes mutate the IR only through xDSL's ``PatternRewriter``; these helpers only read the
IR or build detached ops for the rewriter to insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from graphopt.dialects import attrs as A
from graphopt.dialects.graph import ONNX_OPS, ConstantOp, GraphOp, WeightOp, provenance, provenance_attr
from graphopt.dialects.shapes import Spec, infer, spec_of, tensor_type
from graphopt.weights import WeightStore

INLINE_MAX = 64  # as the frontend: constants this small stay in the IR text


def weights_of(ctx: Context) -> WeightStore | None:
    """The weight store of a compile context (None under a plain xDSL context)."""
    return getattr(ctx, "weights", None)


def remarks_of(ctx: Context) -> list[dict[str, Any]]:
    """Where a pass records why it declined to act (collected into the report)."""
    remarks = getattr(ctx, "remarks", None)
    return remarks if remarks is not None else []


def producer(value: SSAValue, onnx_type: str | None = None) -> GraphOp | None:
    """The graph op defining ``value`` (of type ``onnx_type`` if given), else None."""
    owner = value.owner
    if not isinstance(owner, GraphOp):
        return None
    if onnx_type is not None and owner.ONNX_TYPE != onnx_type:
        return None
    return owner


def constant_value(value: SSAValue, weights: WeightStore | None) -> np.ndarray | None:
    """The array of a constant value (graph.constant, or a weight present in the store)."""
    owner = value.owner
    if isinstance(owner, ConstantOp):
        return owner.array()
    if isinstance(owner, WeightOp) and weights is not None and owner.ref.data in weights:
        return np.asarray(weights[owner.ref.data])
    return None


def axes_of(op: GraphOp, weights: WeightStore | None) -> list[int] | None:
    """An op's ``axes`` as given: its attribute (the older opsets' Reduce*, Unsqueeze,
    Squeeze), else its constant second input; None when absent or computed at run time."""
    axes = op.onnx_attrs().get("axes")
    if axes is None and len(op.operands) > 1:
        found = constant_value(op.operands[1], weights)
        axes = None if found is None else found.reshape(-1).tolist()
    return None if axes is None else [int(a) for a in axes]


def scalar_value(value: SSAValue, weights: WeightStore | None) -> float | None:
    """The value of a constant whose elements are all equal, else None."""
    array = constant_value(value, weights)
    if array is None or array.size == 0 or array.dtype.kind not in "biuf":
        return None
    first = array.reshape(-1)[0]
    return float(first) if np.all(array == first) else None


def src_of(*ops: Operation) -> list[str]:
    """The union of the ops' provenance, in order, without repeats."""
    seen: dict[str, None] = {}
    for op in ops:
        for s in provenance(op):
            seen.setdefault(s, None)
    return list(seen)


def make_constant(array: np.ndarray, src: Sequence[str], weights: WeightStore | None, name: str = "folded") -> Operation:
    """A constant op holding ``array``: inline when small, else a new weight."""
    array = np.asarray(array)
    if (array.size <= INLINE_MAX or weights is None) and A.can_inline(array):
        return ConstantOp(array, src)
    assert weights is not None, "large constants need a weight store"
    handle = weights.add(name, array)
    from graphopt import dtypes

    return WeightOp(handle, TensorType(dtypes.from_numpy(array.dtype).ir, array.shape), src)


def discard(*ops: Operation) -> None:
    """Drop ops that were built but will not be inserted: an op holds a use of each of its
    operands from the moment it is created, and a pattern walker later visits the users of a
    value it replaces, detached ones included (fuzz seed 28275: a recognized Attention whose
    type did not match, then fold-matmul-add replacing its query)."""
    for op in ops:
        if op.parent is None:
            op.drop_all_references()


def build(
    onnx_type: str,
    operands: Sequence[SSAValue],
    attrs: dict[str, Any] | None = None,
    src: Sequence[str] = (),
    n_results: int = 1,
    result_specs: Sequence[Spec] | None = None,
) -> GraphOp:
    """A detached graph op; result types come from the op's own rule unless given."""
    cls = ONNX_OPS[onnx_type]
    attrs = attrs or {}
    if result_specs is None:
        ins = [spec_of(v.type) for v in operands]
        consts = [v.owner.array() if isinstance(v.owner, ConstantOp) else None for v in operands]
        inferred = infer(cls, ins, attrs, consts, n_results)
        if any(s is None for s in inferred):
            raise ValueError(f"cannot infer the result types of {onnx_type}")
        result_specs = [s for s in inferred if s is not None]
    props = {k: A.to_ir(v, cls.ATTR_KINDS[k]) for k, v in attrs.items()}
    return cls.create(
        operands=list(operands),
        result_types=[tensor_type(s) for s in result_specs],
        properties=props,
        attributes=provenance_attr(src),
    )


class NewOps:
    """The ops a rewrite builds in order, each with provenance ``src``: ``ops`` is what
    ``rewriter.replace_op`` takes (constants included)."""

    def __init__(self, src: Sequence[str], weights: WeightStore | None) -> None:
        self.src, self.weights, self.ops = list(src), weights, []

    def op(self, onnx_type: str, operands: Sequence[SSAValue], attrs: dict[str, Any] | None = None) -> SSAValue:
        built = build(onnx_type, operands, attrs, self.src)
        self.ops.append(built)
        return built.results[0]

    def const(self, array: np.ndarray, name: str) -> SSAValue:
        made = make_constant(array, self.src, self.weights, name)
        self.ops.append(made)
        return made.results[0]

    def ints(self, values: Sequence[int], name: str) -> SSAValue:
        return self.const(np.asarray(list(values), np.int64), name)


def same_type(a: SSAValue, b: SSAValue) -> bool:
    return a.type == b.type


def sole_user(value: SSAValue, onnx_type: str | None = None) -> GraphOp | None:
    """The one graph op using ``value`` (of type ``onnx_type`` if given), else None."""
    uses = list(value.uses)
    if len(uses) != 1:
        return None
    user = uses[0].operation
    if not isinstance(user, GraphOp) or (onnx_type is not None and user.ONNX_TYPE != onnx_type):
        return None
    return user


def users(value: SSAValue, onnx_type: str) -> list[GraphOp]:
    """The graph ops of type ``onnx_type`` that use ``value``."""
    found = []
    for use in value.uses:
        op = use.operation
        if isinstance(op, GraphOp) and op.ONNX_TYPE == onnx_type and not op.ONNX_DOMAIN and op not in found:
            found.append(op)
    return found


def with_scalar(op: GraphOp | None, onnx_type: str, weights: WeightStore | None) -> tuple[SSAValue, float] | None:
    """For ``x <op> c`` with c a constant scalar: (x, c). Add and Mul also match ``c <op> x``."""
    if op is None or op.ONNX_TYPE != onnx_type or op.ONNX_DOMAIN or len(op.operands) != 2:
        return None
    positions = (1, 0) if onnx_type in ("Add", "Mul") else (1,)
    for pos in positions:
        c = scalar_value(op.operands[pos], weights)
        if c is not None:
            return op.operands[1 - pos], c
    return None


def close(a: float | None, b: float, rel: float = 1e-3) -> bool:
    return a is not None and abs(a - b) <= rel * abs(b)


def other_operand(op: Operation, value: SSAValue) -> SSAValue:
    """The operand of a two-operand op that is not ``value``."""
    a, b = op.operands
    return b if a == value else a
