"""ONNX attributes as the Python values that semantic rules take.

onnx is imported where a proto is read, not with this module: ``rule_kwargs`` runs in
every compile, and a torch model's compile has no other use for onnx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from graphopt.dialects.attrs import AttrType  # numbered as onnx.AttributeProto.AttributeType

if TYPE_CHECKING:
    import onnx


def attribute_value(attr: onnx.AttributeProto) -> Any:
    """One attribute as a Python value: bytes become str, tensors numpy arrays.

    Graph attributes (If/Loop/Scan bodies) are returned as ``GraphProto``; the caller
    decides how to run them.
    """
    import onnx
    from onnx import numpy_helper

    kind = attr.type
    if kind == AttrType.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == AttrType.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == AttrType.TENSOR:
        return numpy_helper.to_array(attr.t)
    if kind == AttrType.TENSORS:
        return [numpy_helper.to_array(t) for t in attr.tensors]
    if kind == AttrType.SPARSE_TENSOR:
        return numpy_helper.to_array(attr.sparse_tensor.values), attr.sparse_tensor
    if kind == AttrType.INTS:
        return [int(i) for i in attr.ints]
    if kind == AttrType.FLOATS:
        return [float(f) for f in attr.floats]
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, np.generic):
        return value.item()
    return value


def schema_of(op_type: str, opset: int, domain: str = "") -> onnx.defs.OpSchema | None:
    import onnx.defs

    try:
        return onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None


def node_attributes(node: onnx.NodeProto, opset: int) -> dict[str, Any]:
    """The node's attributes with the schema's defaults filled in, named as in ONNX."""
    attrs: dict[str, Any] = {}
    schema = schema_of(node.op_type, opset, node.domain)
    if schema is not None:
        for name, spec in schema.attributes.items():
            if spec.default_value.type != 0:  # AttributeProto.UNDEFINED
                attrs[name] = attribute_value(spec.default_value)
    for attr in node.attribute:
        if attr.ref_attr_name:
            raise ValueError(f"attribute {attr.name} refers to an outer function attribute")
        attrs[attr.name] = attribute_value(attr)
    return attrs


# Rules that need to know how many outputs the op has (ONNX leaves it to the node).
_WANTS_NUM_OUTPUTS = frozenset({"Split", "MaxPool"})


def _newest_defaults(onnx_type: str, domain: str) -> dict[str, Any]:
    from graphopt.dialects.onnx_ops import OPS

    row = OPS.get(f"{domain}::{onnx_type}" if domain else onnx_type)
    return row[5] if row is not None else {}  # graphopt's own ops have no defaults


def rule_kwargs(op_cls: Any, attrs: dict[str, Any], n_results: int) -> dict[str, Any]:
    """The keyword arguments of a graph op's rule: the newest schema's defaults (graph ops
    have their op's newest meaning), then the op's attributes."""
    kwargs = {**_newest_defaults(op_cls.ONNX_TYPE, op_cls.ONNX_DOMAIN), **attrs}
    if op_cls.ONNX_TYPE in _WANTS_NUM_OUTPUTS:
        kwargs["_num_outputs"] = n_results
    return kwargs
