"""The cpu target's kernel table: one kernel per op.

By default an op's kernel is its rule in ``graphopt.semantics`` (the reference meaning).
``KERNELS`` holds the ops for which the target owns a faster or different kernel, keyed
by IR op name; a row there wins.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import onnx.defs

from graphopt.semantics import get_rule
from graphopt.semantics.onnx_attrs import attribute_value

Kernel = Callable[..., Any]

KERNELS: dict[str, Kernel] = {}

# Rules that need to know how many outputs the op has (ONNX leaves it to the node).
_WANTS_NUM_OUTPUTS = frozenset({"Split"})


@functools.cache
def _schema_defaults(onnx_type: str, domain: str) -> dict[str, Any]:
    try:
        schema = onnx.defs.get_schema(onnx_type, 10_000, domain)
    except onnx.defs.SchemaError:
        return {}
    return {
        name: attribute_value(a.default_value)
        for name, a in schema.attributes.items()
        if a.default_value.type != onnx.AttributeProto.UNDEFINED
    }


def default_kwargs(op_cls: Any, attrs: dict[str, Any], n_results: int) -> dict[str, Any]:
    """The keyword arguments of a rule: schema defaults, then the op's attributes."""
    kwargs = {**_schema_defaults(op_cls.ONNX_TYPE, op_cls.ONNX_DOMAIN), **attrs}
    if op_cls.ONNX_TYPE in _WANTS_NUM_OUTPUTS:
        kwargs["_num_outputs"] = n_results
    return kwargs


def kernel_for(op_name: str, onnx_type: str | None, domain: str = "") -> Kernel | None:
    if op_name in KERNELS:
        return KERNELS[op_name]
    if onnx_type is None:
        return None
    return get_rule(onnx_type if not domain else f"{domain}::{onnx_type}")

