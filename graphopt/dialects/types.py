"""Types of the graph dialect that builtin has no spelling for."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from xdsl.dialects.builtin import DYNAMIC_INDEX, TensorType, UnrankedTensorType
from xdsl.ir import Attribute, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import irdl_attr_definition


@irdl_attr_definition
class StringType(ParametrizedAttribute, TypeAttribute):
    """The element type of ONNX string tensors: ``tensor<3x!graph.string>``."""

    name = "graph.string"


def shape_of(t: TensorType) -> tuple[int, ...]:
    """A ranked tensor type's shape, an unknown dimension as -1 (as in ``Spec``)."""
    return tuple(-1 if d < 0 else d for d in t.get_shape())


def tensor(element_type: Attribute, shape: Sequence[int]) -> TensorType:
    """A ranked tensor type; -1 is an unknown dimension (printed ``?``)."""
    return _tensor(element_type, tuple(int(d) for d in shape))


@functools.lru_cache(maxsize=8192)
def _tensor(element_type: Attribute, shape: tuple[int, ...]) -> TensorType:
    # Types are immutable values, and building one verifies every dimension attribute; a
    # model repeats its types (densenet121's import: 444 ms without this cache, 400 with it).
    return TensorType(element_type, [DYNAMIC_INDEX if d < 0 else d for d in shape])


@irdl_attr_definition
class SequenceType(ParametrizedAttribute, TypeAttribute):
    """An ONNX sequence: ``!graph.seq<tensor<?x3xf32>>``.

    One element type stands for every element, so a dimension in which elements differ is
    unknown (``?``), and elements of different ranks make it ``tensor<*xf32>``. At run time
    a sequence is a Python list of arrays.
    """

    name = "graph.seq"
    element_type: Attribute


@irdl_attr_definition
class OptionalType(ParametrizedAttribute, TypeAttribute):
    """An ONNX optional: ``!graph.opt<tensor<2xf32>>`` or ``!graph.opt<!graph.seq<...>>``.

    At run time an optional is ``None`` (empty) or its value.
    """

    name = "graph.opt"
    element_type: Attribute


def is_tensor(t: Attribute) -> bool:
    return isinstance(t, TensorType | UnrankedTensorType)


def join(a: Attribute, b: Attribute) -> Attribute:
    """The most specific type that holds values of both ``a`` and ``b``.

    Used where one value can come from several places: the two branches of an If, the
    initial and the yielded value of a loop-carried variable, the elements of a sequence.
    Dimensions that differ become unknown; ranks that differ make the tensor unranked.
    """
    if a == b:
        return a
    if isinstance(a, SequenceType) and isinstance(b, SequenceType):
        return SequenceType(join(a.element_type, b.element_type))
    if isinstance(a, OptionalType) or isinstance(b, OptionalType):
        # A present value is a value of the optional too (a loop may carry either).
        ia = a.element_type if isinstance(a, OptionalType) else a
        ib = b.element_type if isinstance(b, OptionalType) else b
        return OptionalType(join(ia, ib))
    if is_tensor(a) and is_tensor(b):
        ea, eb = a.element_type, b.element_type  # pyright: ignore[reportAttributeAccessIssue]
        if ea != eb:
            raise ValueError(f"{a} and {b} have different element types")
        if isinstance(a, TensorType) and isinstance(b, TensorType) and len(shape_of(a)) == len(shape_of(b)):
            return tensor(ea, [x if x == y else -1 for x, y in zip(shape_of(a), shape_of(b))])
        return UnrankedTensorType(ea)
    raise ValueError(f"{a} and {b} are different kinds of value")


def holds(general: Attribute, specific: Attribute) -> bool:
    """Whether every value of type ``specific`` is a value of type ``general``."""
    try:
        return join(general, specific) == general
    except ValueError:
        return False


def compatible(a: Attribute, b: Attribute) -> bool:
    """Whether some value could have both types (unknown dimensions match anything)."""
    if isinstance(a, SequenceType) and isinstance(b, SequenceType):
        return compatible(a.element_type, b.element_type)
    if isinstance(a, OptionalType) or isinstance(b, OptionalType):
        ia = a.element_type if isinstance(a, OptionalType) else a
        ib = b.element_type if isinstance(b, OptionalType) else b
        return compatible(ia, ib)
    if is_tensor(a) and is_tensor(b):
        if a.element_type != b.element_type:  # pyright: ignore[reportAttributeAccessIssue]
            return False
        if not (isinstance(a, TensorType) and isinstance(b, TensorType)):
            return True
        sa, sb = shape_of(a), shape_of(b)
        return len(sa) == len(sb) and all(x == y or -1 in (x, y) for x, y in zip(sa, sb))
    return a == b
