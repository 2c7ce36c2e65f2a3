"""The functional simulator: runs lowered ascend kernels with the chip's numerics.

``build_executable`` turns a lowered module into an ``AscendExecutable`` (the graphopt
Executable protocol: ``run(inputs) -> outputs``). Running walks the function once:
graph.weight / graph.constant values are GM tensors (floats narrowed to the precision
mode's storage dtype, ``Numerics``), ``ascend.view`` reshapes, and each ``ascend.kernel``
runs on its inputs:
- aicpu: the kernel's graph ops run with the cpu target's kernels (the op's semantic rule),
  in the model's dtypes (the AI CPU is an ARM core computing in fp32);
- ``ascend.move``: the op's semantic rule moves the values (TransData: the identity on
  logical values);
- cube and vector kernels: the body is interpreted (``_KernelRun``), in one of two modes:
  *tile* walks the loop nest, copying tiles between buffers (zero-padded on the cube
  path) and running ``mmad`` (fp32 accumulation of fp16/fp32 inputs) and vector ops on
  tiles; *whole* runs every loop once with every copy taking the whole view, which is the
  same computation on whole tensors (op by op; every tile index, ``ascend.index_add``
  ones included, is 0). ``mode="auto"`` picks tile for kernels
  with few tile iterations and whole otherwise; ``GRAPHOPT_ASCEND_SIM_MODE`` overrides.
GM tensors are held in their storage format (formats.to_format); kernels read and write
them as logical arrays at their boundary, as the DMA engines' format conversion does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr, MemRefType, ModuleOp, TensorType
from xdsl.ir import Attribute, Block, Operation, SSAValue

from graphopt import dtypes
from graphopt.dialects import attrs as A
from graphopt.dialects.graph import ONNX_OPS, ConstantOp, GraphOp, NoneOp, WeightOp, node_results, provenance
from graphopt.dialects.types import OptionalType, SequenceType
from graphopt.errors import GraphoptError
from graphopt.semantics.onnx_attrs import rule_kwargs
from graphopt.target import Observer
from graphopt.targets.ascend import formats, vector
from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import (
    BufferOp,
    ConstOp,
    CopyOp,
    CopyView,
    ForOp,
    IndexAddOp,
    KernelOp,
    MmadOp,
    MoveOp,
    SyncOp,
    VecOp,
    ViewOp,
)
from graphopt.targets.ascend.interpret import KernelInterpretation, rule
from graphopt.targets.ascend.keep_dtype import is_kept
from graphopt.targets.cpu.kernels import kernel_for
from graphopt.weights import WeightStore

TILE_ITERATIONS = 4096  # auto mode: kernels with at most this many loop iterations run tile by tile


def attn_accumulate(acc: np.ndarray, alpha: np.ndarray, pv: np.ndarray, kv: Any, final: int = 0) -> np.ndarray:
    """The software-pipelined flash-attention accumulator (lower_attention.build_attention): it runs
    after the softmax of the next block, so ``alpha`` is already the next block's rescale
    factor and the accumulator is kept pre-scaled to the newest running max:
    acc = (acc + P_j V_j) * alpha_{j+1}; the last block (``final``) adds without scaling.
    The first block (kv == 0) starts from zero."""
    pv = pv.astype(np.float32)
    base = pv if not kv else acc.astype(np.float32) + pv
    return (base if final else base * alpha).astype(np.float32)


INTERNAL = {
    "attn.scale_q": vector.attn_scale_q,
    "attn.scores": vector.attn_scores,
    "attn.online_softmax": vector.attn_online_softmax,
    "attn.rescale": vector.attn_rescale,
    "attn.accumulate": attn_accumulate,
    "attn.finalize": vector.attn_finalize,
}


def _np(t: Attribute) -> np.dtype:
    el = t.element_type if isinstance(t, TensorType | MemRefType) else t  # pyright: ignore
    return dtypes.from_ir(el).numpy


def _py(attrs: DictionaryAttr) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.data.items():
        out[k] = v.value.data if hasattr(v, "value") and not isinstance(v, A.DenseIntOrFPElementsAttr) else A.from_ir(v)  # pyright: ignore
    return out


@dataclass
class AscendExecutable:
    module: ModuleOp
    weights: WeightStore
    input_names: list[str]
    chip: Chip
    precision: str
    mode: str = "auto"
    num: vector.Numerics = field(init=False)
    _rules: dict[int, tuple[Any, dict[str, Any]]] = field(default_factory=dict, init=False)
    _plans: dict[int, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.num = vector.Numerics.of(self.precision)
        self._exact = vector.Numerics.of("must_keep_origin_dtype")  # kept kernels (--keep-dtype), constants
        self.mode = os.environ.get("GRAPHOPT_ASCEND_SIM_MODE", self.mode)
        if self.mode not in ("auto", "tile", "whole"):
            raise GraphoptError(f"simulator mode {self.mode}: use auto, tile or whole")
        self.fn = next(op for op in self.module.ops if isinstance(op, func.FuncOp))
        self._sources = node_results(self.fn.body.block)  # what an observer is told (Observer)

    @property
    def compute_dtype(self) -> np.dtype:
        """The dtype float tensors are stored and mostly computed in (validation's tolerance)."""
        return self.num.storage

    @property
    def kernels(self) -> list[KernelOp]:
        return [op for op in self.fn.body.block.ops if isinstance(op, KernelOp)]

    # -- GM tensors: storage format and dtype ---------------------------------------------
    def _c0(self, t: TensorType) -> int:
        return formats.c0_for(t.element_type, self.chip.k0, self.precision) or 16

    def to_gm(self, logical: Any, t: Attribute, num: vector.Numerics | None = None) -> Any:
        """``logical`` stored as ``t`` says, its floats in ``num``'s storage dtype (the
        precision mode's; a kept kernel's own, --keep-dtype)."""
        if not isinstance(t, TensorType):  # a sequence or optional: the AI CPU's values, as they are
            return logical
        a = np.asarray(logical)
        if a.dtype.kind == "f":
            a = a.astype((num or self.num).store(_np(t)))
        fmt = formats.format_of(t)
        return a if fmt == "ND" else formats.to_format(a, fmt, self._c0(t))  # pyright: ignore

    def from_gm(self, stored: Any, t: Attribute) -> Any:
        fmt = formats.format_of(t)
        if fmt == "ND" or not isinstance(t, TensorType):
            return stored
        return formats.from_format(stored, fmt, t.get_shape(), self._c0(t))

    def run(self, inputs: Sequence[np.ndarray], observe: Observer | None = None) -> list[np.ndarray]:
        block = self.fn.body.block
        env: dict[SSAValue, Any] = {}
        for arg, value in zip(block.args, inputs, strict=True):
            env[arg] = self.to_gm(value, arg.type)
        with np.errstate(all="ignore"):  # padded tiles compute on zeros: 1/0, log 0 are clipped away
            for op in block.ops:
                # Weights and constants are stored as a kernel reads them: each kernel casts
                # its float inputs to its own storage dtype below (a kept kernel reads float32).
                if isinstance(op, WeightOp):
                    env[op.result] = self.to_gm(np.asarray(self.weights[op.ref.data]), op.result.type, self._exact) \
                        if formats.format_of(op.result.type) == "ND" else self._weight(op)
                elif isinstance(op, ConstantOp):
                    env[op.result] = self.to_gm(op.array(), op.result.type, self._exact)
                elif isinstance(op, NoneOp):
                    env[op.result] = None
                elif isinstance(op, ViewOp):
                    env[op.output] = env[op.input].reshape(op.output.type.get_shape())  # pyright: ignore
                    if observe is not None and op.output in self._sources:
                        observe(self._sources[op.output], self._logical(env[op.output], op.output))
                elif isinstance(op, KernelOp):
                    num = self._exact if is_kept(op) else self.num
                    ins = [self._read(self.from_gm(env[v], v.type), num) for v in op.inputs]
                    outs = self.run_kernel(op, ins)
                    for r, value in zip(op.outputs, outs, strict=True):
                        env[r] = self.to_gm(value, r.type, num)
                        if observe is not None and r in self._sources:
                            observe(self._sources[r], self._logical(env[r], r))
                elif isinstance(op, func.ReturnOp):
                    return [self._logical(env[v], v) for v in op.operands]
                else:
                    raise GraphoptError(f"ascend-sim cannot run {op.name}: was the module lowered (ascend-lower)?")
        raise GraphoptError("the function has no return")

    def _logical(self, stored: Any, v: SSAValue) -> Any:
        """A GM value as the model's type describes it: origin layout, the model's dtype."""
        if not isinstance(v.type, TensorType):
            return stored
        return np.asarray(self.from_gm(stored, v.type)).astype(_np(v.type))

    @staticmethod
    def _read(value: Any, num: vector.Numerics) -> Any:
        """A kernel's input as it reads it: floats in its storage dtype (a kernel in float16
        reads a kept kernel's float32 result through the Cast ATC inserts)."""
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            return value.astype(num.store(value.dtype), copy=False)
        return value

    def _weight(self, op: WeightOp) -> np.ndarray:
        """A weight the layout pass stored converted: its bytes are already in storage format."""
        arr = np.asarray(self.weights[op.ref.data])
        return arr.astype(self._exact.store(arr.dtype)) if arr.dtype.kind == "f" else arr

    def run_kernel(self, k: KernelOp, ins: list[Any]) -> list[Any]:
        try:
            if k.kind.data in ("aicpu", "comm"):  # a collective: its rule runs it on torch.distributed's group
                return self._aicpu(k, ins)
            first = k.body.block.first_op
            if isinstance(first, MoveOp):
                return self._move(first, ins)
            tile = self.mode == "tile" or (self.mode == "auto" and _iterations(k.body.block) <= TILE_ITERATIONS)
            return _KernelRun(k, ins, tile).run()
        except GraphoptError:
            raise
        except Exception as e:
            raise GraphoptError(f"ascend-sim: kernel {k.sym_name.data}: {type(e).__name__}: {e}") from e

    def _aicpu(self, k: KernelOp, ins: list[Any]) -> list[Any]:
        from graphopt.targets.cpu.plan import plan_block

        plan = self._plans.get(id(k))
        if plan is None:
            block = k.body.block
            params = [(f"{k.sym_name.data} input {i}", a) for i, a in enumerate(block.args)]
            plan = self._plans[id(k)] = plan_block(block, self.weights, params, nested=True)
        # The AI CPU computes in the model's dtypes: widen what GM holds narrowed.
        return plan.run([_widened(x, v.type) for x, v in zip(ins, k.inputs)])

    def _move(self, op: MoveOp, ins: list[Any]) -> list[Any]:
        if op.op.data == "TransData":
            return [ins[0]]
        if id(op) not in self._rules:
            cls = ONNX_OPS[op.op.data]
            rule = kernel_for(cls.name, cls.ONNX_TYPE, cls.ONNX_DOMAIN)
            attrs = {k: A.from_ir(v) for k, v in op.attrs.data.items()}
            self._rules[id(op)] = (rule, rule_kwargs(cls, attrs, len(op.outs)))
        rule, kwargs = self._rules[id(op)]
        out = rule(*ins, **kwargs)
        return list(out) if isinstance(out, tuple | list) else [out]


def _iterations(block: Block) -> int:
    """Loop-body executions of a kernel's loop nest (how long tile mode takes)."""
    total = 0
    for op in block.ops:
        if isinstance(op, ForOp):
            total += op.trip_count * (1 + _iterations(op.body.block))
    return total


# ---------------------------------------------------------------------------------------


def im2col(x: np.ndarray, spec: DictionaryAttr) -> np.ndarray:
    """[N, C, H, W] (or [N, C, W]) -> [group, N*Ho*Wo, C/group*kh*kw], columns ordered (c, kh, kw) like the weights."""
    s = {k: [int(v) for v in A.from_ir(val)] if not hasattr(val, "value") else int(val.value.data)  # pyright: ignore
         for k, val in spec.data.items()}
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw), g, (ho, wo) = (
        s["kernel"], s["strides"], s["pads"], s["dilations"], s["group"], s["out"])
    if x.ndim == 3:  # a 1-D conv: [N, C, W] as [N, C, 1, W] (cube_specs._conv)
        x = x[:, :, None, :]
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cols = np.empty((n, c, kh, kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            cols[:, :, i, j] = xp[:, :, h0 : h0 + sh * (ho - 1) + 1 : sh, w0 : w0 + sw * (wo - 1) + 1 : sw]
    cols = cols.reshape(n, g, c // g, kh, kw, ho, wo).transpose(1, 0, 5, 6, 2, 3, 4)
    return cols.reshape(g, n * ho * wo, c // g * kh * kw)


class _KernelRun(KernelInterpretation):
    """One execution of a cube or vector kernel body (see the module docstring)."""

    def __init__(self, kernel: KernelOp, ins: list[Any], tile: bool):
        self.k, self.tile = kernel, tile
        block = kernel.body.block
        self.env: dict[SSAValue, Any] = dict(zip(block.args, ins))
        for arg, r in zip(kernel.out_args, kernel.outputs):
            t = r.type
            assert isinstance(t, TensorType)
            self.env[arg] = np.zeros(t.get_shape(), _np(t))
        self.views: dict[tuple[Any, ...], np.ndarray] = {}
        self.written: dict[tuple[Any, ...], tuple[SSAValue, CopyView]] = {}

    def run(self) -> list[Any]:
        self.block(self.k.body.block)
        for key, (arg, view) in self.written.items():
            self.env[arg] = view.unapply(self.views[key], self.env[arg].shape)
        return [self.env[a] for a in self.k.out_args]

    def unknown(self, op: Operation) -> None:
        raise GraphoptError(f"ascend-sim: cannot interpret {op.name} in kernel {self.k.sym_name.data}")

    @rule(ForOp)
    def loop(self, op: ForOp) -> None:
        # Whole mode runs every loop once, on whole tensors (every index is 0, so a guarded
        # loop runs too). Tiled, a parallel loop runs core by core, so a core's iterations
        # may hand state on to its next one (a prefetched Q tile).
        if self.tile and not op.runs(self.env.__getitem__):
            return
        for i in op.core_order() if self.tile else [0]:
            self.env[op.index] = i
            self.block(op.body.block)

    @rule(MmadOp)
    def mmad(self, op: MmadOp) -> None:
        prod = np.matmul(self.env[op.lhs].astype(np.float32), self.env[op.rhs].astype(np.float32))
        init = all(self.env[i] == 0 for i in op.init_when)
        self.env[op.acc] = prod if init else self.env[op.acc] + prod

    @rule(BufferOp)
    def buffer(self, op: BufferOp) -> None:
        t = op.result.type
        self.env[op.result] = np.zeros(t.get_shape(), _np(t)) if self.tile else None  # pyright: ignore

    @rule(ConstOp)
    def const(self, op: ConstOp) -> None:
        self.env[op.result] = A.dense_to_numpy(op.value)

    @rule(IndexAddOp)
    def index_add(self, op: IndexAddOp) -> None:
        # Whole mode runs each loop once on whole tensors: every index is 0, shifted ones too.
        self.env[op.result] = op.apply(self.env[op.index]) if self.tile else 0

    @rule(SyncOp)
    def sync(self, op: SyncOp) -> None:
        pass  # one thread runs the stages in order: nothing to wait for

    def _gm_view(self, v: SSAValue, op: CopyOp) -> tuple[tuple[Any, ...], np.ndarray]:
        key = (v, op.view, op.im2col)
        if key not in self.views:
            a = self.env[v]
            if op.im2col is not None:
                a = im2col(a, op.im2col)
            self.views[key] = np.array(op.view_spec.apply(a))  # a copy: writes go back at the end
        return key, self.views[key]

    def _region(self, shape: Sequence[int], op: CopyOp) -> tuple[slice, ...]:
        sl = [slice(None)] * len(shape)
        if not self.tile:
            return tuple(sl)
        for d, t, i in zip(op.dims.get_values(), op.tile.get_values(), op.index):
            d, t = int(d), int(t)
            sl[d] = slice(0, 1) if shape[d] == 1 else slice(self.env[i] * t, (self.env[i] + 1) * t)
        return tuple(sl)

    @rule(CopyOp)
    def copy(self, op: CopyOp) -> None:
        src, dst = op.source, op.dest
        if isinstance(src.type, TensorType):
            _, data = self._gm_view(src, op)
        else:
            data = self.env[src]
        if isinstance(dst.type, TensorType):
            key, target = self._gm_view(dst, op)
            self.written[key] = (dst, op.view_spec)
            region = self._region(target.shape, op)
            part = target[region]
            tile = _rank(data, part.ndim)
            tile = tile[tuple(slice(0, s) for s in part.shape)]
            target[region] = tile.reshape(part.shape).astype(target.dtype)
            return
        if op.into is not None:
            # The whole source into the destination's block (whole mode: the block is everything).
            t = dst.type
            assert isinstance(t, MemRefType)
            data = np.asarray(data).astype(_np(t))
            cur = self.env.get(dst)
            if not self.tile or cur is None:
                self.env[dst] = data
                return
            region = self._region(cur.shape, op)
            part = cur[region]
            cur[region] = data[tuple(slice(0, s) for s in part.shape)]
            return
        tile = data if isinstance(src.type, TensorType) and not self.tile else data[self._region(data.shape, op)]
        t = dst.type
        assert isinstance(t, MemRefType)
        shape = t.get_shape()
        tile = _rank(np.asarray(tile), len(shape)).astype(_np(t))
        if self.tile and tile.shape != tuple(shape):
            tile = np.pad(tile, [(0, max(b - a, 0)) for a, b in zip(tile.shape, shape)])
        self.env[dst] = tile

    @rule(VecOp)
    def vec(self, op: VecOp) -> None:
        ins = [self.env[v] for v in op.ins]
        outs = list(op.outs)
        if op.op.data in INTERNAL:
            res = INTERNAL[op.op.data](*ins, **_py(op.attrs))
        else:
            cls = ONNX_OPS[op.op.data]
            rule = kernel_for(cls.name, cls.ONNX_TYPE, cls.ONNX_DOMAIN)
            want = _np(outs[0].type)
            if want.kind == "f":
                ins = [x.astype(want) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in ins]
            attrs = {k: A.from_ir(v) for k, v in op.attrs.data.items()}
            res = rule(*ins, **rule_kwargs(cls, attrs, len(outs)))  # pyright: ignore
        results = res if isinstance(res, tuple) else (res,)
        for out, value in zip(outs, results):
            self.env[out] = np.asarray(value).astype(_np(out.type))


def _widened(x: Any, t: Attribute) -> Any:
    """A value GM holds narrowed (a float tensor in float16), in its IR type's dtype; inside
    an optional or a sequence too (OptionalHasElement of a float32 tensor)."""
    if isinstance(t, OptionalType):
        return None if x is None else _widened(x, t.element_type)
    if isinstance(t, SequenceType) and isinstance(x, list | tuple):
        return [_widened(e, t.element_type) for e in x]
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and isinstance(t, TensorType):
        return x.astype(_np(t))
    return x


def _rank(a: np.ndarray, rank: int) -> np.ndarray:
    """``a`` with leading unit dims added or dropped to have ``rank`` dims."""
    while a.ndim > rank and a.shape[0] == 1:
        a = a[0]
    if a.ndim < rank:
        a = a.reshape((1,) * (rank - a.ndim) + a.shape)
    return a


def build_executable(module: ModuleOp, weights: WeightStore, input_names: Sequence[str], chip: Chip,
                     precision: str, mode: str = "auto") -> AscendExecutable:
    return AscendExecutable(module, weights, list(input_names), chip, precision, mode)


def executable_report(exe: Any) -> dict[str, Any]:
    """report.json keys: ``kernels`` (name, kind, block_dim, tiling), ``aicpu`` (its ops and
    source nodes), ``layout`` ({transdata, transdata_bytes, ...}) and ``precision``."""
    assert isinstance(exe, AscendExecutable)
    kernels, aicpu = [], []
    for k in exe.kernels:
        tiling = {key: A.from_ir(v) if not hasattr(v, "value") else v.value.data for key, v in k.tiling.data.items()}  # pyright: ignore
        kernels.append({"name": k.sym_name.data, "kind": k.kind.data, "block_dim": k.block_dim.value.data, "tiling": tiling})
        if k.kind.data == "aicpu":
            ops = [o for o in k.body.block.ops if isinstance(o, GraphOp)]
            aicpu.append({"kernel": k.sym_name.data, "ops": [o.name for o in ops],
                          "nodes": sorted({n for o in ops for n in provenance(o)})})
    try:
        from graphopt.targets.ascend.layout import layout_report

        layout = layout_report(exe.module, exe.chip, exe.precision)
    except ImportError:
        moves = [o for o in exe.module.walk() if isinstance(o, MoveOp) and o.op.data == "TransData"]
        layout = {"transdata": len(moves), "transdata_bytes": 0}
    return {"kernels": kernels, "aicpu": aicpu, "layout": layout,
            "precision": {"mode": exe.precision, "compute_dtype": str(exe.compute_dtype)}}
