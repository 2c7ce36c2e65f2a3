"""The cpu target's kernel table: one kernel per op.

By default an op's kernel is its rule in ``graphopt.semantics`` (the reference meaning).
``KERNELS`` holds the ops for which the target owns a faster or different kernel, keyed
by IR op name; a row there wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

from graphopt.semantics import get_rule

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


# Faster kernels than the reference rules, for the ops that dominate real models. Each
# matches its rule to float32 rounding (tests/unit/test_cpu_kernels.py) and falls back to
# the rule for dtypes it does not cover.
def _fast_floats(x: Any) -> bool:
    return getattr(x, "dtype", None) in (np.float32, np.float64)


def _erf(x: Any) -> Any:
    if not _fast_floats(x):
        return get_rule("Erf")(x)  # type: ignore[misc]
    return np.asarray(scipy.special.erf(x), dtype=x.dtype)


def _gelu(x: Any, approximate: str = "none") -> Any:
    if not _fast_floats(x):
        return get_rule("Gelu")(x, approximate=approximate)  # type: ignore[misc]
    if approximate == "tanh":
        inner = np.asarray(np.sqrt(2 / np.pi), x.dtype) * (x + np.asarray(0.044715, x.dtype) * x * x * x)
        return np.asarray(0.5 * x * (1 + np.tanh(inner)), dtype=x.dtype)
    # x * Phi(x), Phi the standard normal CDF: scipy's ndtr keeps the far tails exact,
    # where 0.5 * (1 + erf(x / sqrt 2)) would round to 0.
    return np.asarray(x * scipy.special.ndtr(x), dtype=x.dtype)


KERNELS["graph.erf"] = _erf
KERNELS["graph.gelu"] = _gelu
