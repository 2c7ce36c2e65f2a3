"""ONNX attributes as the Python values that semantic rules take."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper


def attribute_value(attr: AttributeProto) -> Any:
    """One attribute as a Python value: bytes become str, tensors numpy arrays.

    Graph attributes (If/Loop/Scan bodies) are returned as ``GraphProto``; the caller
    decides how to run them.
    """
    kind = attr.type
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == AttributeProto.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    if kind == AttributeProto.TENSORS:
        return [numpy_helper.to_array(t) for t in attr.tensors]
    if kind == AttributeProto.SPARSE_TENSOR:
        return numpy_helper.to_array(attr.sparse_tensor.values), attr.sparse_tensor
    if kind == AttributeProto.INTS:
        return [int(i) for i in attr.ints]
    if kind == AttributeProto.FLOATS:
        return [float(f) for f in attr.floats]
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, np.generic):
        return value.item()
    return value


def schema_of(op_type: str, opset: int, domain: str = "") -> onnx.defs.OpSchema | None:
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
            if spec.default_value.type != AttributeProto.UNDEFINED:
                attrs[name] = attribute_value(spec.default_value)
    for attr in node.attribute:
        if attr.ref_attr_name:
            raise ValueError(f"attribute {attr.name} refers to an outer function attribute")
        attrs[attr.name] = attribute_value(attr)
    return attrs


# Rules that need to know how many outputs the op has (ONNX leaves it to the node).
_WANTS_NUM_OUTPUTS = frozenset({"Split"})


@functools.cache
def _newest_defaults(onnx_type: str, domain: str) -> dict[str, Any]:
    try:
        schema = onnx.defs.get_schema(onnx_type, 10_000, domain)
    except onnx.defs.SchemaError:
        return {}
    return {
        name: attribute_value(a.default_value)
        for name, a in schema.attributes.items()
        if a.default_value.type != AttributeProto.UNDEFINED
    }


def rule_kwargs(op_cls: Any, attrs: dict[str, Any], n_results: int) -> dict[str, Any]:
    """The keyword arguments of a graph op's rule: the newest schema's defaults (graph ops
    have their op's newest meaning), then the op's attributes."""
    kwargs = {**_newest_defaults(op_cls.ONNX_TYPE, op_cls.ONNX_DOMAIN), **attrs}
    if op_cls.ONNX_TYPE in _WANTS_NUM_OUTPUTS:
        kwargs["_num_outputs"] = n_results
    return kwargs
