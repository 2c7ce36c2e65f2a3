"""The cpu execution plan: a flat list of kernel calls over numbered slots.

Building the plan walks the IR once per block:
1. Every SSA value gets a slot. Slots are reused once their value is dead (a linear scan
   over the op list, as register allocation does), so memory is planned ahead.
2. Constants and weights are placed in their slots once, at build time.
3. Each op becomes a ``Step``: its kernel, the slots it reads and writes, its attributes
   as keyword arguments, and the slots to release after it.

An op with regions (If, Loop, Scan, SequenceMap) gets one nested plan per region, built
the same way (``plan_block``). Regions are not isolated, so a body may read values of the
enclosing blocks: those *captured* values become extra inputs of the nested plan, after
its block arguments, and extra inputs of the op's step, after its operands. The step's
kernel hands the op's semantic rule each body as a callable ``body(*block_args) -> list``
that runs the nested plan with the captured values appended.

Running is then a loop over the steps: no IR is walked, nothing is looked up by name.
Values are arrays, Python lists of arrays (sequences) and ``None`` (empty optionals).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, NoneType, TensorType, UnrankedTensorType
from xdsl.ir import Attribute, Block, Operation, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, GraphOp, NoneOp, WeightOp, YieldOp, node_results, provenance
from graphopt.dialects.types import OptionalType, SequenceType, shape_of
from graphopt.errors import GraphoptError
from graphopt.semantics.onnx_attrs import rule_kwargs
from graphopt.target import Observer
from graphopt.targets.cpu.kernels import kernel_for
from graphopt.weights import WeightStore

# What a slot must hold: a tensor's planned shape (-1: dynamic) and dtype, checked on the
# fast path; the IR type of a sequence or optional; None for an unused `none` result.
Want = tuple[tuple[int, ...], np.dtype] | Attribute | None


@dataclass(frozen=True)
class Step:
    kernel: Callable[..., Any]
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    kwargs: dict[str, Any]
    free: tuple[int, ...]
    label: str  # "graph.conv (node conv1)", for errors
    expect: tuple[Want, ...]
    # One sequence/optional result: the kernel's return value *is* it (a list is then a
    # sequence, not several outputs).
    whole: bool = False
    sources: tuple[tuple[str, int] | None, ...] = ()  # each result's source node, for an observer


@dataclass
class ExecutionPlan:
    n_slots: int
    constants: list[tuple[int, Any]]
    inputs: list[tuple[str, int, Want]]
    outputs: list[int]
    steps: list[Step]
    peak_bytes: int
    nested: bool = False  # a region's plan: its inputs come from kernels, not from users
    yields: tuple[Want, ...] = ()  # what each output must be (a Loop's rule shapes empty scans by it)
    # Steps whose results have been checked once against fully static planned types: with
    # every input's type static too (checked on each call), a kernel gives the same shapes
    # and dtypes on every call, so later calls skip the check (a third of the per-step work
    # of a small model). ``provable``: which steps qualify, fixed with the plan.
    proven: list[bool] = field(init=False, repr=False)
    provable: list[bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        static_inputs = _all_static(want for _, _, want in self.inputs)
        self.provable = [static_inputs and _all_static(step.expect) for step in self.steps]
        self.proven = [False] * len(self.steps)

    def run(self, inputs: Sequence[Any], observe: Observer | None = None) -> list[Any]:
        slots: list[Any] = [None] * self.n_slots
        for slot, value in self.constants:
            slots[slot] = value
        check = _check_result if self.nested else _check_input
        for (name, slot, want), value in zip(self.inputs, inputs, strict=True):
            slots[slot] = check(name, value, want)
        for k, step in enumerate(self.steps):
            try:
                result = step.kernel(*[slots[i] for i in step.ins], **step.kwargs)
            except GraphoptError:
                raise
            except Exception as e:  # a kernel refusing its data (an index out of range ...)
                raise GraphoptError(f"{step.label}: {type(e).__name__}: {e}") from None
            several = isinstance(result, tuple) or (isinstance(result, list) and not step.whole)
            results = result if several else (result,)
            if self.proven[k] and all(type(v) is np.ndarray for v in results):
                for slot, value in zip(step.outs, results):
                    slots[slot] = value
            else:
                for slot, value, want in zip(step.outs, results, step.expect):
                    slots[slot] = _check_result(step.label, value, want)
                self.proven[k] = self.provable[k]
            if observe is not None:
                for key, slot in zip(step.sources, step.outs):
                    if key is not None:
                        observe(key, slots[slot])
            for slot in step.free:
                slots[slot] = None
        return [slots[i] for i in self.outputs]


class _Mismatch(Exception):
    """A value that does not have its planned type."""


def _conform(value: Any, t: Attribute) -> Any:
    """``value`` as a value of IR type ``t`` (arrays made ndarrays), or _Mismatch."""
    if isinstance(t, SequenceType):
        if not isinstance(value, list | tuple):
            raise _Mismatch(f"a {type(value).__name__}, not a sequence")
        return [_conform(v, t.element_type) for v in value]
    if isinstance(t, OptionalType):
        return None if value is None else _conform(value, t.element_type)
    if isinstance(t, NoneType):
        return None
    if value is None or isinstance(value, list):
        raise _Mismatch(f"{'nothing' if value is None else 'a sequence'}, not a tensor")
    array = np.asarray(value)
    assert isinstance(t, TensorType | UnrankedTensorType)
    dtype = dtypes.from_ir(t.element_type).numpy
    shape = shape_of(t) if isinstance(t, TensorType) else None
    ok = shape is None or (len(shape) == array.ndim and all(d in (-1, v) for d, v in zip(shape, array.shape)))
    if array.dtype != dtype or not ok:
        raise _Mismatch(f"{array.dtype}{list(array.shape)}, not {t}")
    return array


def _check_input(name: str, value: Any, want: Want) -> Any:
    if want is None or not isinstance(want, tuple):
        try:
            return _conform(value, want) if want is not None else None
        except _Mismatch as e:
            raise GraphoptError(f"input {name}: {e}") from None
    shape, dtype = want
    if not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if value.dtype != dtype:
        raise GraphoptError(f"input {name}: dtype {value.dtype}, the model wants {dtype}; cast it first")
    if len(value.shape) != len(shape) or any(d not in (-1, v) for d, v in zip(shape, value.shape)):
        raise GraphoptError(f"input {name}: shape {value.shape}, the model was compiled for {shape}; recompile with --shape")
    return value


def _all_static(wants: Any) -> bool:
    """Whether every planned type is a tensor of a fully known shape."""
    return all(isinstance(w, tuple) and -1 not in w[0] for w in wants)


def _check_result(label: str, value: Any, want: Want) -> Any:
    if want is None:  # a `none` result: an optional output the model leaves unnamed
        return None
    if not isinstance(want, tuple):
        try:
            return _conform(value, want)
        except _Mismatch as e:  # an internal error: the op's kernel and its type rule disagree
            raise RuntimeError(f"{label}: kernel gave {e}") from None
    value = np.asarray(value)
    shape, dtype = want
    ok_shape = len(shape) == value.ndim and all(d in (-1, v) for d, v in zip(shape, value.shape))
    if value.dtype != dtype or not ok_shape:
        # An internal error: the op's kernel and its shape rule disagree.
        raise RuntimeError(f"{label}: kernel gave {value.dtype}{list(value.shape)}, planned {dtype}{list(shape)}")
    return value


def _want(v: SSAValue) -> Want:
    t = v.type
    if isinstance(t, TensorType):
        return shape_of(t), dtypes.from_ir(t.element_type).numpy
    return None if isinstance(t, NoneType) else t


def _nbytes(v: SSAValue) -> int:
    want = _want(v)
    if not isinstance(want, tuple):
        return 0  # sequences and optionals: their size is known only at run time
    shape, dtype = want
    return 0 if -1 in shape else int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def label(op: Operation) -> str:
    src = provenance(op)
    return f"{op.name} (node {', '.join(src)})" if src else op.name


def build_plan(module: ModuleOp, weights: WeightStore, input_names: Sequence[str]) -> ExecutionPlan:
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    block = fn.body.block
    return plan_block(block, weights, list(zip(input_names, block.args, strict=True)), nested=False)


def captures(op: Operation) -> list[SSAValue]:
    """Values defined outside ``op`` that its regions read, in order of first use."""
    defined: set[SSAValue] = set()
    used: dict[SSAValue, None] = {}
    for block in op.walk_blocks():
        defined.update(block.args)
    for inner in op.walk():
        if inner is not op:
            defined.update(inner.results)
            used.update(dict.fromkeys(inner.operands))
    return [v for v in used if v not in defined]


def plan_block(block: Block, weights: WeightStore, params: Sequence[tuple[str, SSAValue]], nested: bool) -> ExecutionPlan:
    """The plan of one block: ``params`` (name, value) are its inputs, in the order
    ``run`` takes them; the block's terminator (func.return or graph.yield) names its outputs."""
    body = list(block.ops)
    ret = body[-1]
    assert isinstance(ret, func.ReturnOp | YieldOp)
    captured = {op: captures(op) for op in body if op.regions}
    sources = {} if nested else node_results(block)

    # Liveness: the index of the last op that reads each value (a region reads its captures).
    last_use: dict[SSAValue, int] = {}
    for k, op in enumerate(body):
        for v in (*op.operands, *captured.get(op, ())):
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

    inputs: list[tuple[str, int, Want]] = []
    for name, value in params:
        inputs.append((name, assign(value), _want(value)))
        pinned.add(value)  # the caller owns the inputs

    # Constants get slots of their own before any step does: they are written once,
    # before the first step runs, so no step may reuse their slots.
    constants: list[tuple[int, Any]] = []
    for op in body:
        if isinstance(op, ConstantOp | WeightOp | NoneOp):
            value = op.array() if isinstance(op, ConstantOp) else None
            if isinstance(op, WeightOp):
                value = weights[op.ref.data]
            if isinstance(value, np.ndarray):
                # Every run shares it: an output that is (a view of) it must not be written.
                value = value.view()
                value.flags.writeable = False
            constants.append((assign(op.results[0]), value))
            pinned.add(op.results[0])

    steps: list[Step] = []
    for k, op in enumerate(body[:-1]):
        if isinstance(op, ConstantOp | WeightOp | NoneOp):
            continue
        extra = captured.get(op, [])
        kernel = _region_kernel(op, weights, extra) if op.regions else _kernel(op)
        if isinstance(op, GraphOp):
            kwargs = rule_kwargs(type(op), op.onnx_attrs(), len(op.results))
        else:
            kwargs = {}
        ins = tuple(slot_of[v] for v in (*op.operands, *extra))
        outs = tuple(assign(r) for r in op.results)
        live_bytes += sum(_nbytes(r) for r in op.results)
        peak = max(peak, live_bytes)
        dead = [v for v in {*op.operands, *extra, *op.results} if last_use.get(v, -1) <= k and v not in pinned]
        for v in dead:
            free_slots.append(slot_of[v])
            live_bytes -= _nbytes(v)
        expect = tuple(_want(r) for r in op.results)
        whole = len(op.results) == 1 and isinstance(op.results[0].type, SequenceType | OptionalType)
        steps.append(Step(kernel, ins, outs, kwargs, tuple(slot_of[v] for v in dead), label(op), expect, whole,
                          tuple(sources.get(r) for r in op.results)))
    outputs = [slot_of[v] for v in ret.operands]
    return ExecutionPlan(n_slots, constants, inputs, outputs, steps, peak, nested, tuple(_want(v) for v in ret.operands))


@dataclass(frozen=True)
class _Body:
    """A region as the callable a semantic rule takes: block arguments in, yields out."""

    plan: ExecutionPlan
    captured: tuple[Any, ...]

    def __call__(self, *args: Any) -> list[Any]:
        return self.plan.run([*args, *self.captured])

    @property
    def yields(self) -> tuple[Want, ...]:
        """Each yielded value's (shape, dtype), -1 where unknown; the IR type of a sequence
        or optional: a loop that runs no iteration shapes its empty scan outputs by these."""
        return self.plan.yields


def _region_kernel(op: Operation, weights: WeightStore, extra: list[SSAValue]) -> Callable[..., Any]:
    """The op's rule, with each region passed as a ``_Body`` keyword argument named like
    the ONNX attribute it came from; the step's inputs after the operands are ``extra``."""
    rule = _kernel(op)
    names = [name for name, _ in op.get_irdl_definition().regions]  # pyright: ignore[reportAttributeAccessIssue]
    where = label(op)
    plans = []
    for name, region in zip(names, op.regions):
        block = region.blocks[0]
        params = [(f"{where} {name} argument {k}", a) for k, a in enumerate(block.args)]
        params += [(f"{where} {name} captured value {k}", v) for k, v in enumerate(extra)]
        plans.append(plan_block(block, weights, params, nested=True))
    n = len(op.operands)

    def kernel(*args: Any, **kwargs: Any) -> Any:
        captured = tuple(args[n:])
        bodies = {name: _Body(plan, captured) for name, plan in zip(names, plans)}
        return rule(*args[:n], **kwargs, **bodies)

    return kernel


def _kernel(op: Operation) -> Callable[..., Any]:
    onnx_type = op.ONNX_TYPE if isinstance(op, GraphOp) else None
    domain = op.ONNX_DOMAIN if isinstance(op, GraphOp) else ""
    kernel = kernel_for(op.name, onnx_type, domain)
    if kernel is None:
        raise GraphoptError(f"{label(op)}: the cpu target has no kernel for {onnx_type or op.name}")
    return kernel
