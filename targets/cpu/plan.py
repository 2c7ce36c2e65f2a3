"""The cpu execution plan: a flat list of kernel calls over numbered slots.

Building the plan walks the IR once:
1. Every SSA value gets a slot. Slots are reused once their value is dead (a linear scan
   over the op list, as register allocation does), so memory is planned ahead.
2. Constants and weights are placed in their slots once, at build time.
3. Each op becomes a ``Step``: its kernel, the slots it reads and writes, its attributes
   as keyword arguments, and the slots to release after it.

Running is then a loop over the steps: no IR is walked, nothing is looked up by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, NoneType, TensorType
from xdsl.ir import Operation, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, GraphOp, NoneOp, WeightOp, provenance
from graphopt.errors import GraphoptError
from graphopt.targets.cpu.kernels import default_kwargs, kernel_for
from graphopt.weights import WeightStore


@dataclass(frozen=True)
class Step:
    kernel: Callable[..., Any]
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    kwargs: dict[str, Any]
    free: tuple[int, ...]
    label: str  # "graph.conv (node conv1)", for errors
    expect: tuple[tuple[tuple[int, ...], np.dtype], ...]  # planned shape (-1: dynamic) and dtype


@dataclass
class ExecutionPlan:
    n_slots: int
    constants: list[tuple[int, Any]]
    inputs: list[tuple[str, int, tuple[int, ...], np.dtype]]
    outputs: list[int]
    steps: list[Step]
    peak_bytes: int

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        slots: list[Any] = [None] * self.n_slots
        for slot, value in self.constants:
            slots[slot] = value
        for (name, slot, shape, dtype), value in zip(self.inputs, inputs, strict=True):
            slots[slot] = _check_input(name, value, shape, dtype)
        for step in self.steps:
            try:
                result = step.kernel(*[slots[i] for i in step.ins], **step.kwargs)
            except GraphoptError:
                raise
            except Exception as e:  # a kernel refusing its data (an index out of range ...)
                raise GraphoptError(f"{step.label}: {type(e).__name__}: {e}") from None
            results = result if isinstance(result, tuple | list) else (result,)
            for slot, value, want in zip(step.outs, results, step.expect):
                slots[slot] = _check_result(step.label, value, want)
            for slot in step.free:
                slots[slot] = None
        return [slots[i] for i in self.outputs]


def _check_input(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if value.dtype != dtype:
        raise GraphoptError(f"input {name}: dtype {value.dtype}, the model wants {dtype}; cast it first")
    if value.shape != shape:
        raise GraphoptError(f"input {name}: shape {value.shape}, the model was compiled for {shape}; recompile with --shape")
    return value


def _check_result(label: str, value: Any, want: tuple[tuple[int, ...], np.dtype]) -> np.ndarray:
    value = np.asarray(value)
    shape, dtype = want
    ok_shape = len(shape) == value.ndim and all(d in (-1, v) for d, v in zip(shape, value.shape))
    if value.dtype != dtype or not ok_shape:
        # An internal error: the op's kernel and its shape rule disagree.
        raise RuntimeError(f"{label}: kernel gave {value.dtype}{list(value.shape)}, planned {dtype}{list(shape)}")
    return value


def _spec(v: SSAValue) -> tuple[tuple[int, ...], np.dtype]:
    t = v.type
    assert isinstance(t, TensorType)
    return tuple(t.get_shape()), dtypes.from_ir(t.element_type).numpy


def _nbytes(v: SSAValue) -> int:
    shape, dtype = _spec(v)
    return 0 if -1 in shape else int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def label(op: Operation) -> str:
    src = provenance(op)
    return f"{op.name} (node {', '.join(src)})" if src else op.name


def build_plan(module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> ExecutionPlan:
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    body = list(fn.body.block.ops)
    ret = body[-1]
    assert isinstance(ret, func.ReturnOp)

    # Liveness: the index of the last op that reads each value.
    last_use: dict[SSAValue, int] = {}
    for k, op in enumerate(body):
        for v in op.operands:
            last_use[v] = k
    pinned = set(ret.operands)

    free_slots: list[int] = []
    slot_of: dict[SSAValue, int] = {}
    n_slots = 0
    live_bytes = peak = 0

    def assign(v: SSAValue) -> int:
        nonlocal n_slots
        if free_slots:
            slot = free_slots.pop()
        else:
            slot, n_slots = n_slots, n_slots + 1
        slot_of[v] = slot
        return slot

    inputs = []
    for name, arg in zip(input_names, fn.body.block.args, strict=True):
        shape, dtype = _spec(arg)
        inputs.append((name, assign(arg), shape, dtype))
        pinned.add(arg)  # the caller owns the input arrays

    # Constants get slots of their own before any step does: they are written once,
    # before the first step runs, so no step may reuse their slots.
    constants: list[tuple[int, Any]] = []
    for op in body:
        if isinstance(op, ConstantOp | WeightOp | NoneOp):
            value = op.array() if isinstance(op, ConstantOp) else None
            if isinstance(op, WeightOp):
                value = weights[op.ref.data]
            constants.append((assign(op.results[0]), value))
            pinned.add(op.results[0])

    steps: list[Step] = []
    for k, op in enumerate(body[:-1]):
        if isinstance(op, ConstantOp | WeightOp | NoneOp):
            continue
        kernel = _kernel(op)
        if isinstance(op, GraphOp):
            kwargs = default_kwargs(type(op), op.onnx_attrs(), len(op.results))
        else:
            kwargs = {}
        ins = tuple(slot_of[v] for v in op.operands)
        outs = tuple(assign(r) for r in op.results)
        live_bytes += sum(_nbytes(r) for r in op.results)
        peak = max(peak, live_bytes)
        dead = [v for v in {*op.operands, *op.results} if last_use.get(v, -1) <= k and v not in pinned]
        for v in dead:
            free_slots.append(slot_of[v])
            live_bytes -= _nbytes(v) if not isinstance(v.type, NoneType) else 0
        expect = tuple(_spec(r) for r in op.results)
        steps.append(Step(kernel, ins, outs, kwargs, tuple(slot_of[v] for v in dead), label(op), expect))
    outputs = [slot_of[v] for v in ret.operands]
    return ExecutionPlan(n_slots, constants, inputs, outputs, steps, peak)


def _kernel(op: Operation) -> Callable[..., Any]:
    onnx_type = op.ONNX_TYPE if isinstance(op, GraphOp) else None
    domain = op.ONNX_DOMAIN if isinstance(op, GraphOp) else ""
    kernel = kernel_for(op.name, onnx_type, domain)
    if kernel is None:
        raise GraphoptError(f"{label(op)}: the cpu target has no kernel for {onnx_type or op.name}")
    return kernel
