"""The emitter: the output folder's ``kernels/<name>.cpp`` (one per ``ascend.kernel``:
AscendC-style source for cube and vector kernels, rendered by ``ascendc.py``; a CpuKernel stub
for AI CPU kernels) and ``tiling.json`` (per kernel: kind, blockDim, tiling fields, buffer bytes
per memory space). The source is not compiled here; it shows what would run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, FloatAttr, IntegerAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute

from graphopt.targets.ascend.ascendc import render
from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import BufferOp, KernelOp, space_of


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


def _ints(attr: DenseArrayBase) -> list[int]:
    return [int(x) for x in attr.get_values()]  # pyright: ignore[reportUnknownArgumentType]


def _attr_value(a: Attribute) -> Any:
    if isinstance(a, IntegerAttr):
        return a.value.data
    if isinstance(a, FloatAttr):
        return a.value.data
    if isinstance(a, StringAttr):
        return a.data
    if isinstance(a, DenseArrayBase):
        return _ints(a)
    if isinstance(a, DictionaryAttr):
        return {k: _attr_value(v) for k, v in a.data.items()}
    return str(a)


def kernels_of(module: ModuleOp) -> list[KernelOp]:
    return [op for op in module.walk() if isinstance(op, KernelOp)]


def kernel_info(kernel: KernelOp) -> dict[str, Any]:
    """tiling.json's entry for one kernel: kind, blockDim, tiling fields, buffer bytes per space."""
    spaces: dict[str, int] = {}
    for op in kernel.walk():
        if isinstance(op, BufferOp):
            space = space_of(op.result.type)
            spaces[space] = spaces.get(space, 0) + op.footprint()
    return {
        "kind": kernel.kind.data,
        "block_dim": kernel.block_dim.value.data,
        "tiling": {k: _attr_value(v) for k, v in kernel.tiling.data.items()},
        "buffers": dict(sorted(spaces.items())),
    }


def emit_kernel(kernel: KernelOp, chip: Chip, precision: str = "force_fp16") -> str:
    """The AscendC-style source of one kernel (an AI CPU kernel gets a CpuKernel stub)."""
    if kernel.kind.data == "aicpu":
        return _aicpu_source(kernel)
    if kernel.kind.data == "comm":
        return _comm_source(kernel)
    return render(kernel, chip, precision)


HCCL_CALLS = {"AllReduce": "HcclAllReduce", "AllGather": "HcclAllGather", "ReduceScatter": "HcclReduceScatter",
              "AllToAll": "HcclAlltoAllV", "Broadcast": "HcclBroadcast", "Wait": "aclrtSynchronizeStream"}


def _comm_source(kernel: KernelOp) -> str:
    """A collective is no kernel of ours: the HCCL call that does it, on its own stream."""
    from graphopt.targets.ascend.comm_timing import collective_of

    op = collective_of(kernel)
    kind = getattr(op, "ONNX_TYPE", op.name)
    attrs = ", ".join(f"{k}={v}" for k, v in op.properties.items())
    return "\n".join([
        f"// {kernel.sym_name.data}: a collective on the HCCL stream, not a kernel ({attrs})",
        '#include "hccl/hccl.h"',
        f"// {HCCL_CALLS.get(kind, kind)}(sendBuf, recvBuf, count, dataType, op, comm, hcclStream);",
        "",
    ])


def _aicpu_source(kernel: KernelOp) -> str:
    ops = [op.name for op in kernel.body.block.ops if not op.name.endswith("yield")]
    cls = "".join(_cap(p) for p in re.split(r"[^A-Za-z0-9]", kernel.sym_name.data) if p) + "CpuKernel"
    return "\n".join([
        f"// {kernel.sym_name.data}: runs on the AI CPU ({', '.join(ops)}): the cube and vector units cannot.",
        '#include "cpu_kernel.h"',
        "namespace aicpu {",
        f"class {cls} : public CpuKernel {{",
        "public:",
        "    uint32_t Compute(CpuKernelContext &ctx) override;  // the op's reference semantics, in C++",
        "};",
        f'REGISTER_CPU_KERNEL("{kernel.sym_name.data}", {cls});',
        "}  // namespace aicpu",
        "",
    ])


def emit_kernels(module: ModuleOp, chip: Chip, folder: str | Path, precision: str = "force_fp16") -> list[Path]:
    """Write ``kernels/<name>.cpp`` per ``ascend.kernel`` and ``tiling.json`` into ``folder``."""
    root = Path(folder)
    kernels = kernels_of(module)
    written: list[Path] = []
    if kernels:
        (root / "kernels").mkdir(parents=True, exist_ok=True)
    for kernel in kernels:
        path = root / "kernels" / f"{_file_name(kernel.sym_name.data)}.cpp"
        path.write_text(emit_kernel(kernel, chip, precision))
        written.append(path)
    tiling = {"chip": chip.name, "kernels": {k.sym_name.data: kernel_info(k) for k in kernels}}
    (root / "tiling.json").write_text(json.dumps(tiling, indent=1) + "\n")
    return written


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
