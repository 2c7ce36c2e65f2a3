"""What one kernel computes (``Group``), and the tensor facts every kernel builder reads:
a leaf module, so that lower.py and the kernel builders it calls (cube_specs,
vector_kernel) import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, GraphOp


@dataclass
class Group:
    """What one kernel computes: ``ops`` over ``args`` (the values standing for the kernel's
    inputs ``ins``), producing ``yields`` (standing for the results of ``root``)."""

    root: Operation
    ins: list[SSAValue]
    args: list[SSAValue]
    ops: list[GraphOp]
    yields: list[SSAValue]

    def consts(self, op: Operation) -> list[np.ndarray | None]:
        return [o.owner.array() if isinstance(o.owner, ConstantOp) else None for o in op.operands]


def shape(v: SSAValue) -> tuple[int, ...]:
    t = v.type
    assert isinstance(t, TensorType)
    return tuple(t.get_shape())


def np_dtype(v: SSAValue) -> np.dtype:
    t = v.type
    assert isinstance(t, TensorType)
    return dtypes.from_ir(t.element_type).numpy
