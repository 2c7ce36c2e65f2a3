"""AI CPU kernels in the timing model: inputs moved to the AI CPU, its work, outputs back."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue

from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import KernelOp
from graphopt.targets.ascend.kernel_facts import tensor_bytes
from graphopt.targets.ascend.l2 import L2State
from graphopt.targets.ascend.timing import Instr, Program


def op_work(result: SSAValue, operands: Sequence[SSAValue]) -> float:
    """An op's AI CPU work for one of its results: one operation per element of it and of
    each tensor operand."""
    return math.prod(result.type.get_shape()) + sum(  # pyright: ignore[reportAttributeAccessIssue]
        math.prod(o.type.get_shape()) for o in operands if isinstance(o.type, TensorType))


def aicpu_cycles(chip: Chip, in_bytes: float, work: float, out_bytes: float) -> tuple[float, float, float]:
    """(moving the inputs in, the work, moving the outputs back) in cycles, launch not included."""
    cyc_per_byte = chip.clock_ghz / chip.aicpu_gbps
    return (chip.dma_fixed_cycles + in_bytes * cyc_per_byte, work / chip.aicpu_ops_per_s * chip.clock_ghz * 1e9,
            chip.dma_fixed_cycles + out_bytes * cyc_per_byte)


def aicpu_program(chip: Chip, kernel: KernelOp, l2: L2State | None = None) -> Program:
    """An AI CPU kernel: inputs to the AI CPU, its work at the AI CPU rate, outputs back.

    Work is one operation per output element of each op (a lower bound for TopK/NonZero-like
    ops) at `aicpu.flops_per_s` [EST]; transfers at `aicpu.gbps` [EST], with a DMA fixed cost."""
    ins = sum(tensor_bytes(v) for v in kernel.inputs)
    outs = sum(tensor_bytes(r) for r in kernel.outputs)
    work = 0.0
    for op in kernel.body.block.ops:
        for r in op.results:
            if isinstance(r.type, TensorType):
                work += op_work(r, op.operands)
    into, compute, back = aicpu_cycles(chip, ins, work, outs)
    n = kernel.sym_name.data
    instrs = [
        Instr("MTE2", into, (), f"{n} aicpu in", 0, "GM", "AICPU", ins),
        Instr("S", compute, (0,), f"{n} aicpu compute", 0),
        Instr("MTE3", back, (1,), f"{n} aicpu out", 0, "AICPU", "GM", outs),
    ]
    if l2 is not None:
        for r in kernel.outputs:
            l2.touch(r, tensor_bytes(r))
    return Program(n, "aicpu", instrs, 1, {0: 1}, 0.0, hbm_bytes=ins + outs, hbm_write_bytes=outs, l2_bytes=ins + outs)
