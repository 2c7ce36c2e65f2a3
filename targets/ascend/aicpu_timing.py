"""AI CPU kernels in the timing model: inputs moved to the AI CPU, its work, outputs back."""

from __future__ import annotations

import math

from xdsl.dialects.builtin import TensorType

from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import KernelOp
from graphopt.targets.ascend.kernel_facts import tensor_bytes
from graphopt.targets.ascend.l2 import L2State
from graphopt.targets.ascend.timing import Instr, Program


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
                work += math.prod(r.type.get_shape()) + sum(math.prod(o.type.get_shape()) for o in op.operands if isinstance(o.type, TensorType))
    cyc_per_byte = chip.clock_ghz / chip.aicpu_gbps
    compute = work / chip.aicpu_ops_per_s * chip.clock_ghz * 1e9
    n = kernel.sym_name.data
    instrs = [
        Instr("MTE2", chip.dma_fixed_cycles + ins * cyc_per_byte, (), f"{n} aicpu in", 0, "GM", "AICPU", ins),
        Instr("S", compute, (0,), f"{n} aicpu compute", 0),
        Instr("MTE3", chip.dma_fixed_cycles + outs * cyc_per_byte, (1,), f"{n} aicpu out", 0, "AICPU", "GM", outs),
    ]
    if l2 is not None:
        for r in kernel.outputs:
            l2.touch(r, tensor_bytes(r))
    return Program(n, "aicpu", instrs, 1, {0: 1}, 0.0, hbm_bytes=ins + outs, hbm_write_bytes=outs, l2_bytes=ins + outs)
