"""The cpu target's kernel table: one kernel per op.

By default an op's kernel is its rule in ``graphopt.semantics`` (the reference meaning).
``KERNELS`` holds the ops for which the target owns a faster or different kernel, keyed
by IR op name; a row there wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


from graphopt.semantics import get_rule
from graphopt.semantics.onnx_attrs import rule_kwargs as default_kwargs

Kernel = Callable[..., Any]

KERNELS: dict[str, Kernel] = {}

def kernel_for(op_name: str, onnx_type: str | None, domain: str = "") -> Kernel | None:
    if op_name in KERNELS:
        return KERNELS[op_name]
    if onnx_type is None:
        return None
    return get_rule(onnx_type if not domain else f"{domain}::{onnx_type}")



def cpu_kernel_gap(op_type: str, domain: str = "") -> str | None:
    """Why the cpu target has no kernel for an ONNX op type, or None if it has one."""
    from graphopt.dialects.graph import ONNX_OPS

    domain = "" if domain == "ai.onnx" else domain
    if op_type == "Constant" and not domain:
        return None  # the frontend turns it into a graph.constant / graph.weight
    key = op_type if not domain else f"{domain}::{op_type}"
    cls = ONNX_OPS.get(key)
    if cls is None:
        return f"not an operator graphopt knows (domain {domain or 'ai.onnx'!r})"
    if kernel_for(cls.name, cls.ONNX_TYPE, cls.ONNX_DOMAIN) is None:
        return f"the cpu target has no kernel for {op_type}"
    return None


def _fused(*inputs: Any, body: Callable[..., list[Any]]) -> tuple[Any, ...]:
    """A graph.fused group runs its region's plan: on the cpu, fusion only saves the
    memory of intermediates that die inside the group."""
    return tuple(body(*inputs))


KERNELS["graph.fused"] = _fused
