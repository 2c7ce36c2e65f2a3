"""Result types of control flow, sequence and optional ops: the ops whose types are not
plain tensor specs, or that depend on their regions.

``dialects/shapes.py`` types tensor ops from ``Spec`` tuples. The ops here take or give
``!graph.seq`` / ``!graph.opt`` values, or have regions (If, Loop, Scan, SequenceMap)
whose block arguments and ``graph.yield`` operands decide their types, so their rules
work on IR types directly. The frontend calls ``result_types`` to type a new op and the
verifier calls ``verify_structured``; both use the same rules.

Region conventions (the frontend builds them; the cpu plan runs them):
- If: ``then_branch`` / ``else_branch`` take no arguments and yield the If's results.
- Loop: ``body(iter_num, cond, carried...)`` yields ``(cond, carried..., scan outputs...)``.
- Scan: ``body(states..., scan slices...)`` yields ``(states..., scan output slices...)``.
- SequenceMap: ``body(element or tensor per input...)`` yields one element per output.
Regions are not isolated: a body reads values of the enclosing graph directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import NoneType, TensorType, UnrankedTensorType
from xdsl.ir import Attribute, Operation
from xdsl.utils.exceptions import VerifyException

from graphopt import dtypes
from graphopt.dialects.shapes import const_value
from graphopt.dialects.types import OptionalType, SequenceType, compatible, holds, is_tensor, join, shape_of, tensor

REGION_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
STRUCTURED_OPS = REGION_OPS | frozenset(
    """SequenceConstruct SequenceEmpty SequenceAt SequenceInsert SequenceErase SequenceLength
    SplitToSequence ConcatFromSequence Optional OptionalHasElement OptionalGetElement""".split()
)

_BOOL = dtypes.BY_ONNX[9].ir
_I64 = dtypes.BY_ONNX[7].ir


@dataclass(frozen=True)
class RegionTypes:
    """What an op's rule needs to know of one of its regions."""

    args: list[Attribute]
    yields: list[Attribute]


def is_structured(op_type: str, domain: str, types: Sequence[Attribute]) -> bool:
    """Whether an op is typed here: a structured op, or any op on non-tensor values
    (``Identity`` of a sequence)."""
    if not domain and op_type in STRUCTURED_OPS:
        return True
    return any(isinstance(t, SequenceType | OptionalType) for t in types)


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def _element(t: Attribute) -> Attribute:
    if not isinstance(t, SequenceType):
        raise ValueError(f"expects a sequence, got {t}")
    return t.element_type


def _split_to_sequence(x: Attribute, split: np.ndarray | None, present: bool, attrs: dict[str, Any]) -> Attribute:
    if not isinstance(x, TensorType):
        return SequenceType(x)
    shape = list(shape_of(x))
    a = _axis(int(attrs.get("axis", 0)), len(shape))
    if not present:
        if int(attrs.get("keepdims", 1)):
            shape[a] = 1
        else:
            del shape[a]
        return SequenceType(tensor(x.element_type, shape))
    if split is None:
        shape[a] = -1
    elif split.ndim == 0:
        n = int(split)
        shape[a] = n if shape[a] >= 0 and n > 0 and shape[a] % n == 0 else -1
    else:
        sizes = {int(s) for s in split.reshape(-1)}
        shape[a] = sizes.pop() if len(sizes) == 1 else -1
    return SequenceType(tensor(x.element_type, shape))


def _concat_from_sequence(seq: Attribute, attrs: dict[str, Any]) -> Attribute:
    elem = _element(seq)
    if not isinstance(elem, TensorType):
        assert isinstance(elem, UnrankedTensorType)
        return elem
    shape = list(shape_of(elem))
    new_axis = bool(attrs.get("new_axis", 0))
    rank = len(shape) + new_axis
    a = _axis(int(attrs["axis"]), rank)
    if new_axis:
        shape.insert(a, -1)
    else:
        shape[a] = -1  # the sequence's length is known only at run time
    return tensor(elem.element_type, shape)


def _scan(ins: list[Attribute], attrs: dict[str, Any], body: RegionTypes) -> list[Attribute | None]:
    k = int(attrs["num_scan_inputs"])
    n = len(ins) - k
    in_axes = list(attrs.get("scan_input_axes") or [0] * k)
    out_axes = list(attrs.get("scan_output_axes") or [0] * (len(body.yields) - n))
    first = ins[n] if k else None
    length = -1
    if isinstance(first, TensorType):
        shape = shape_of(first)
        length = shape[_axis(in_axes[0], len(shape))]
    results: list[Attribute | None] = list(body.args[:n])
    for y, axis in zip(body.yields[n:], out_axes):
        if not isinstance(y, TensorType):
            results.append(y)
            continue
        shape = list(shape_of(y))
        shape.insert(_axis(axis, len(shape) + 1), length)
        results.append(tensor(y.element_type, shape))
    return results


def _loop(ins: list[Attribute], body: RegionTypes) -> list[Attribute | None]:
    n = len(ins) - 2
    results: list[Attribute | None] = list(body.args[2:])
    for y in body.yields[1 + n:]:
        results.append(tensor(y.element_type, [-1, *shape_of(y)]) if isinstance(y, TensorType) else y)
    return results


def result_types(
    op_type: str,
    ins: list[Attribute],
    attrs: dict[str, Any],
    consts: list[np.ndarray | None],
    regions: dict[str, RegionTypes],
) -> list[Attribute | None]:
    """The result types of a structured op; ``None`` where only the op itself can say
    (an empty ``Optional`` takes its type from the node)."""
    present = [t for t in ins if not isinstance(t, NoneType)]
    match op_type:
        case "If":
            then, other = regions["then_branch"].yields, regions["else_branch"].yields
            if len(then) != len(other):
                raise ValueError(f"the branches yield {len(then)} and {len(other)} values")
            return [join(a, b) for a, b in zip(then, other)]
        case "Loop":
            return _loop(ins, regions["body"])
        case "Scan":
            return _scan(ins, attrs, regions["body"])
        case "SequenceMap":
            return [SequenceType(y) for y in regions["body"].yields]
        case "SequenceConstruct":
            elem = present[0]
            for t in present[1:]:
                elem = join(elem, t)
            return [SequenceType(elem)]
        case "SequenceEmpty":
            return [SequenceType(UnrankedTensorType(dtypes.from_onnx(int(attrs.get("dtype", 1))).ir))]
        case "SequenceAt":
            return [_element(ins[0])]
        case "SequenceInsert":
            return [SequenceType(join(_element(ins[0]), ins[1]))]
        case "SequenceErase":
            _element(ins[0])
            return [ins[0]]
        case "SequenceLength":
            _element(ins[0])
            return [tensor(_I64, [])]
        case "SplitToSequence":
            has_split = len(ins) > 1 and not isinstance(ins[1], NoneType)
            return [_split_to_sequence(ins[0], consts[1] if has_split else None, has_split, attrs)]
        case "ConcatFromSequence":
            return [_concat_from_sequence(ins[0], attrs)]
        case "Optional":
            return [OptionalType(present[0]) if present else None]
        case "OptionalHasElement":
            return [tensor(_BOOL, [])]
        case "OptionalGetElement":
            t = ins[0]
            return [t.element_type if isinstance(t, OptionalType) else t]
        case "Identity":
            return [ins[0]]
    raise ValueError(f"{op_type} does not take sequences or optionals")


def region_types(op: Operation) -> dict[str, RegionTypes]:
    """Each region of ``op`` by its ONNX attribute name."""
    names = [name for name, _ in op.get_irdl_definition().regions]  # pyright: ignore[reportAttributeAccessIssue]
    found: dict[str, RegionTypes] = {}
    for name, region in zip(names, op.regions):
        if not region.blocks:
            raise VerifyException(f"{op.name}: region {name} is empty")
        block = region.blocks[0]
        last = block.last_op
        if last is None or last.name != "graph.yield":  # by name: the graph dialect imports this module
            raise VerifyException(f"{op.name}: region {name} must end with graph.yield")
        found[name] = RegionTypes([a.type for a in block.args], [v.type for v in last.operands])
    return found


def _check_bodies(op_type: str, ins: list[Attribute], attrs: dict[str, Any], regions: dict[str, RegionTypes]) -> None:
    """Loop and Scan carry values from one iteration to the next: each body argument must
    hold both the initial value and the value the body yields for it."""
    if op_type not in ("Loop", "Scan"):
        return
    body = regions["body"]
    if op_type == "Loop":
        n = len(ins) - 2
        initial, carried_args, carried_yields = ins[2:], body.args[2:], body.yields[1:1 + n]
        if len(body.args) != n + 2 or len(body.yields) < n + 1:
            raise ValueError(f"the body takes {len(body.args)} and yields {len(body.yields)} values for {n} carried ones")
    else:
        n = len(ins) - int(attrs["num_scan_inputs"])
        initial, carried_args, carried_yields = ins[:n], body.args[:n], body.yields[:n]
        if len(body.args) != len(ins) or len(body.yields) < n:
            raise ValueError(f"the body takes {len(body.args)} and yields {len(body.yields)} values for {len(ins)} inputs")
    for k, (init, arg, out) in enumerate(zip(initial, carried_args, carried_yields)):
        if not holds(arg, out) or not holds(arg, init):
            raise ValueError(f"carried value {k}: the body takes {arg} but starts from {init} and yields {out}")


def verify_structured(op: Any) -> bool:
    """Check a structured op's result types; False if ``op`` is a plain tensor op."""
    types = [v.type for v in (*op.operands, *op.results)]
    if not is_structured(op.ONNX_TYPE, op.ONNX_DOMAIN, types):
        return False
    ins = [v.type for v in op.operands]
    attrs = op.onnx_attrs()
    consts = [const_value(v.owner if isinstance(v.owner, Operation) else None) for v in op.operands]
    regions = region_types(op) if op.ONNX_TYPE in REGION_OPS else {}
    try:
        _check_bodies(op.ONNX_TYPE, ins, attrs, regions)
        derived = result_types(op.ONNX_TYPE, ins, attrs, consts, regions)
    except (ValueError, KeyError, IndexError) as e:
        raise VerifyException(f"{op.name}: {e}") from None
    for k, (result, want) in enumerate(zip(op.results, derived)):
        if want is not None and not compatible(result.type, want):
            raise VerifyException(f"{op.name} result {k} is declared {result.type}, but its inputs give {want}")
    if op.ONNX_TYPE == "Optional" and not isinstance(op.results[0].type, OptionalType):
        raise VerifyException(f"{op.name} must give an optional, not {op.results[0].type}")
    return True


__all__ = ["REGION_OPS", "STRUCTURED_OPS", "RegionTypes", "is_structured", "is_tensor", "result_types", "verify_structured"]
