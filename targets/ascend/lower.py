"""ascend-lower: every compute op becomes an ``ascend.kernel`` (see dialect.py for the ops).

Which kernel an op or a ``graph.fused`` group becomes (decided from op types and traits,
never from the chip's name; the chip's capacities and copy paths shape the program):
- cube: a MatMul / Gemm / MatMulBias / 2-D Conv first, then elementwise vector ops on its
  result (its fused epilogue); Attention (no past state, float mask) as flash attention.
  Templates in ``lower_cube.py`` (matmuls) and ``lower_attention.py``.
- vector: a group of ``vector.VECTOR_OPS`` rows (elementwise, reductions, softmax, norms,
  pools), tiled by rows in UB (``_vector``); data movement (``vector.MOVE_OPS``) and
  ``ascend.trans_data`` as ``ascend.move`` kernels.
- ``ascend.view``: Reshape-like ops of ND tensors move no data.
- aicpu: everything else (TopK, NonZero, ScatterElements, control flow ...), or a group no
  template takes; the body keeps the graph ops, which run with the cpu target's kernels.
  A remark says why.
Afterwards ``check_lowered`` (R9) proves that no graph op survives outside aicpu kernels,
that each kernel's buffers fit the chip's memories, and that tiled UB/L1 accesses are aligned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, NoneType, TensorType, UnitAttr
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from graphopt.dialects.graph import (
    ConstantOp,
    FusedOp,
    GraphOp,
    NoneOp,
    WeightOp,
    YieldOp,
    is_collective,
    provenance,
    provenance_attr,
    result_sources,
    result_sources_attr,
)
from graphopt.errors import GraphoptError
from graphopt.rewrite import remarks_of
from graphopt.targets.ascend.builder import KernelBuilder
from graphopt.targets.ascend.chip import Chip, pass_target
from graphopt.targets.ascend.conv_transpose import MODEL_FLOPS
from graphopt.targets.ascend.cube_specs import cube_group
from graphopt.targets.ascend.dialect import BufferOp, CopyOp, ForOp, KernelOp, MoveOp, TransDataOp, ViewOp, space_of
from graphopt.targets.ascend.formats import format_of
from graphopt.targets.ascend.group import Group, np_dtype, shape
from graphopt.targets.ascend.keep_dtype import KEPT, is_kept
from graphopt.targets.ascend.lower_attention import AttentionSpec, build_attention
from graphopt.targets.ascend.lower_cube import build_matmul
from graphopt.targets.ascend.vector import MOVE_OPS, VECTOR_OPS, VIEW_OPS, Numerics
from graphopt.targets.ascend.vector_kernel import build_vector

CUBE_OPS = ("MatMul", "Gemm", "MatMulBias", "Conv")


@dataclass(frozen=True)
class LowerToAscend(ModulePass):
    """Lower graph ops to ascend kernels. ``chip`` (a bundled name or a .toml path),
    ``precision`` and ``tiling`` (model or naive) default to the compiling target's (the
    default chip, force_fp16 and model under `graphopt opt`)."""

    name = "ascend-lower"
    tiling: str = ""
    chip: str = ""
    precision: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, precision = pass_target(ctx, self.chip, self.precision)
        num = Numerics.of(precision)
        strategy = self.tiling or getattr(getattr(ctx, "target", None), "tiling", "model")
        if num.cube_in == np.float32 and "fp32" not in chip.macs_per_cycle:
            raise GraphoptError(f"--precision must_keep_origin_dtype: chip {chip.name} has no fp32 cube mode; use force_fp16")
        _Lowering(chip, num, strategy, remarks_of(ctx)).run(op)
        check_lowered(op, chip)


class _Lowering:
    def __init__(self, chip: Chip, num: Numerics, strategy: str, remarks: list[dict[str, Any]]):
        self.chip, self.num, self.strategy, self.remarks = chip, num, strategy, remarks
        self.count = 0

    def run(self, module: ModuleOp) -> None:
        for fn in module.ops:
            if isinstance(fn, func.FuncOp):
                for op in list(fn.body.block.ops):
                    self.lower(op)

    def lower(self, op: Operation) -> None:
        if isinstance(op, ConstantOp | WeightOp | NoneOp | func.ReturnOp | KernelOp | ViewOp):
            return
        if isinstance(op, TransDataOp):
            attrs = {"src_format": op.src_format, "dst_format": op.dst_format,
                     **({"per_update": op.per_update} if op.per_update is not None else {})}
            return self.replace(op, self.move_kernel(op, "TransData", attrs))
        if isinstance(op, FusedOp):
            block = op.body.block
            ops = [o for o in block.ops if isinstance(o, GraphOp)]
            last = block.last_op
            assert isinstance(last, YieldOp)
            group = Group(op, list(op.inputs), list(block.args), ops, list(last.values))
            self.hoist_constants(op, group)
        elif isinstance(op, GraphOp):
            # An op with regions (If, Loop) may read values of the function inside them:
            # the kernel is isolated, so those are its inputs too.
            ins = list(op.operands) + [v for v in _captured(op) if v not in op.operands]
            group = Group(op, ins, list(ins), [op], list(op.results))
        else:
            return
        if is_collective(op):
            # A collective: HCCL's, not a compute kernel. It runs on the communication stream
            # (report_timing prices it with the cluster's link model); its body keeps the op.
            return self.replace(op, self.aicpu(group, "comm"))
        kept = is_kept(op)
        if kept:  # --keep-dtype: this kernel computes and stores in the model's dtypes
            self.num, num = Numerics.of("must_keep_origin_dtype"), self.num
            try:
                kernel, why = self.kernel_for(group)
            finally:
                self.num = num
        else:
            kernel, why = self.kernel_for(group)
        if kernel is None and isinstance(op, FusedOp) and len(group.ops) > 1 and not kept:
            # A fused group no kernel holds (a scalar computed among rows, a reduction
            # across the rows) may still run as one kernel per op: unfuse before the AI CPU.
            self.remarks.append({"pass": "ascend-lower", "ops": provenance(op), "reason": f"unfused: {why}"})
            for inner in self.unfuse(op):
                self.lower(inner)
            return
        if kernel is None:
            self.remarks.append({"pass": "ascend-lower", "ops": provenance(op), "reason": f"AI CPU: {why}"})
            kernel = self.aicpu(group)
        if kept:
            kernel.attributes[KEPT] = UnitAttr()
        self.replace(op, kernel)

    def unfuse(self, fused: FusedOp) -> list[Operation]:
        """The fused op's body inlined before it (its arguments its inputs, its results what
        the body yields); returns the ops put in its place."""
        block = fused.body.block
        mapping: dict[SSAValue, SSAValue] = dict(zip(block.args, fused.inputs, strict=True))
        out: list[Operation] = []
        for inner in block.ops:
            if isinstance(inner, YieldOp):
                for res, v in zip(fused.results, inner.values, strict=True):
                    res.replace_all_uses_with(mapping.get(v, v))
                continue
            clone = inner.clone(value_mapper=mapping)
            Rewriter.insert_op(clone, _before(fused))
            out.append(clone)
        Rewriter.erase_op(fused, safe_erase=False)
        return out

    def hoist_constants(self, fused: FusedOp, g: Group) -> None:
        """Constants of more than one element become GM inputs of the kernel (a bias, a
        scale vector): they must be tiled like any operand; scalars stay in UB (ascend.const).
        So do weights inside the region: a small conv weight that fusion cloned in as a
        constant and ascend-layout stored as a FRACTAL_Z weight is the cube's L0B operand,
        read from GM in its storage format (and an AI CPU kernel gets it back in logical
        layout, as any input)."""
        for inner in fused.body.block.ops:
            if isinstance(inner, ConstantOp) and inner.array().size > 1:
                outer = ConstantOp(inner.array(), provenance(inner))
            elif isinstance(inner, WeightOp):
                outer = WeightOp(inner.ref.data, inner.result.type, provenance(inner))
            else:
                continue
            Rewriter.insert_op(outer, _before(fused))
            g.ins.append(outer.result)
            g.args.append(inner.result)

    def kernel_for(self, g: Group) -> tuple[Operation | None, str]:
        first = g.ops[0] if g.ops else None
        if first is None:
            return None, "empty group"
        kinds = {o.ONNX_TYPE for o in g.ops}
        if any(isinstance(v.type, TensorType) and any(d < 0 for d in v.type.get_shape()) for v in [*g.ins, *g.root.results]):
            return None, "a dimension known only at run time (a Loop's scan output): kernels are tiled for static shapes"
        if any(isinstance(v.type, NoneType) and k not in (VECTOR_OPS[o.ONNX_TYPE].params if o.ONNX_TYPE in VECTOR_OPS else ())
               for o in g.ops for k, v in enumerate(o.operands)):  # an absent parameter (Resize's roi) is fine
            kinds.add("<none operand>")
        if len(g.ops) == 1 and first.ONNX_TYPE in VIEW_OPS and _viewable(first):
            return ViewOp(first.operands[0], first.results[0].type, provenance(first)), ""
        if any(self.num.store(np_dtype(v)) == np.float64 for v in [*g.ins, *g.root.results] if isinstance(v.type, TensorType)):
            if not (kinds <= MOVE_OPS | VIEW_OPS):  # moving float64 bytes needs no float64 arithmetic
                return None, "float64 kept (must_keep_origin_dtype): the AI Core's cube and vector units have no float64"
        if first.ONNX_TYPE in CUBE_OPS:
            if self.num.cube_in == np.float32 and "fp32" not in self.chip.macs_per_cycle:
                return None, f"kept in float32 (--keep-dtype), and chip {self.chip.name} has no fp32 cube mode"
            return self.cube(g)
        if len(g.ops) == 1 and first.ONNX_TYPE == "Attention":
            return self.attention(first)
        if kinds <= set(VECTOR_OPS):
            return self.vector(g)
        if len(g.ops) == 1 and first.ONNX_TYPE in MOVE_OPS | VIEW_OPS and "<none operand>" not in kinds:
            return self.move_kernel(first, first.ONNX_TYPE, dict(first.properties)), ""
        return None, f"no cube or vector lowering for {', '.join(sorted(kinds - set(VECTOR_OPS)) or sorted(kinds))}"

    def name(self, ops: Sequence[Operation]) -> str:
        self.count += 1
        parts = [o.name.split(".")[-1] for o in ops if not isinstance(o, ConstantOp)][:3]
        return f"k{self.count - 1}_" + "_".join(parts)

    def replace(self, op: Operation, new: Operation) -> None:
        if isinstance(new, KernelOp):  # what each result holds, for `graphopt compare`
            # (a format change holds the value it reads, which its producer names already)
            sources = [None] * len(op.results) if isinstance(op, TransDataOp) else result_sources(op)
            new.attributes.update({**provenance_attr(provenance(op)), **result_sources_attr(sources)})
        Rewriter.insert_op(new, _before(op))
        for old, res in zip(op.results, new.results):
            old.replace_all_uses_with(res)
        Rewriter.erase_op(op, safe_erase=False)

    # -- kernels ------------------------------------------------------------------------

    def move_kernel(self, op: Operation, kind: str, attrs: dict[str, Attribute]) -> KernelOp:
        ins = [v for v in op.operands]
        kb = KernelBuilder(self.name([op]), "vector", ins, [r.type for r in op.results])
        kb.add(MoveOp(kind, list(kb.block.args[: len(ins)]), [kb.out(k) for k in range(len(op.results))], attrs))
        moved = sum(math.prod(shape(r)) * np_dtype(r).itemsize for r in op.results)
        # Spread over the vector cores, at least 16 KB per core (smaller DMAs lose bandwidth [OFF]).
        cores = max(1, min(self.chip.vector_cores, moved // self.chip.dma_full_bw_bytes))
        return kb.finish(cores, {"bytes": moved})

    def aicpu(self, g: Group, kind: str = "aicpu") -> KernelOp:
        kb = KernelBuilder(self.name(g.ops), kind, g.ins, [r.type for r in g.root.results])
        mapping: dict[SSAValue, SSAValue] = dict(zip(g.args, kb.block.args))
        if isinstance(g.root, FusedOp):
            for inner in g.root.body.block.ops:
                if isinstance(inner, ConstantOp | WeightOp) and inner.result in mapping:
                    continue  # hoisted (hoist_constants): a kernel input
                if isinstance(inner, TransDataOp):
                    # A format change inside the group (ascend-layout: an epilogue op that
                    # runs in ND after a conv in NC1HWC0). The AI CPU computes on logical
                    # values, where TransData is the identity.
                    mapping[inner.results[0]] = mapping.get(inner.operands[0], inner.operands[0])
                    continue
                kb.add(inner.clone(mapping))
        else:
            kb.add(clone := g.root.clone(mapping))
            kb.add(YieldOp(*clone.results))
        return kb.finish(1, {})

    def attention(self, op: GraphOp) -> tuple[Operation | None, str]:
        spec, why = attention_spec(op)
        if spec is None:
            return None, why
        ins = [*op.operands[:3]] + ([op.operands[3]] if spec.mask is not None else [])
        return build_attention(self.name([op]), self.chip, self.num, ins, [op.results[0].type], spec), ""

    def cube(self, g: Group) -> tuple[Operation | None, str]:
        made = cube_group(g, self.num)
        if isinstance(made, str):
            return None, made
        spec, steps, results = made
        out_types = [r.type for r in g.root.results]
        flops = g.ops[0].attributes.get(MODEL_FLOPS)
        model_flops = flops.value.data if isinstance(flops, IntegerAttr) else None
        return build_matmul(self.name(g.ops), self.chip, self.num, self.strategy, g.ins, out_types, spec, steps, results,
                            model_flops), ""

    def vector(self, g: Group) -> tuple[Operation | None, str]:
        made = build_vector(self.name(g.ops), self.chip, self.num, g)
        return (made, "") if not isinstance(made, str) else (None, made)


def _viewable(op: GraphOp) -> bool:
    return len(op.results) == 1 and format_of(op.operands[0].type) == "ND" and format_of(op.results[0].type) == "ND"


def _captured(op: Operation) -> list[SSAValue]:
    """Values defined outside ``op`` that ops in its regions read, in order of first use."""
    found: list[SSAValue] = []
    for inner in op.walk():
        if inner is op:
            continue
        for v in inner.operands:
            where = v.owner if isinstance(v.owner, Operation) else v.owner.parent_op()  # pyright: ignore
            if (where is None or not op.is_ancestor(where)) and v not in found:
                found.append(v)
    return found


def _before(op: Operation) -> Any:
    from xdsl.rewriter import InsertPoint

    return InsertPoint.before(op)


def attention_spec(op: GraphOp) -> tuple[AttentionSpec | None, str]:
    """The flash-attention view of an ONNX Attention op, or why it has none."""
    a = op.onnx_attrs()
    extra = [v for v in op.operands[4:] if not isinstance(v.type, NoneType)]
    if extra or any(r.uses for r in op.results[1:]):
        return None, "Attention with past key/value or extra outputs"
    if a.get("softcap", 0.0) or a.get("qk_matmul_output_mode", 0) or a.get("left_window_size", -1) >= 0 or a.get("right_window_size", -1) >= 0:
        return None, "Attention with softcap, windows or score outputs"
    q, k, v = (shape(x) for x in op.operands[:3])
    if len(q) == 4:
        b, hq, sq, d = q
        hkv, skv, dv = k[1], k[2], v[3]
    elif len(q) == 3 and a.get("q_num_heads") and a.get("kv_num_heads"):
        b, sq = q[0], q[1]
        hq, hkv = int(a["q_num_heads"]), int(a["kv_num_heads"])
        d, skv, dv = q[2] // hq, k[1], v[2] // hkv
    else:
        return None, "Attention of this rank"
    g, bh = hq // hkv, b * hq
    mask = op.operands[3] if len(op.operands) > 3 and not isinstance(op.operands[3].type, NoneType) else None
    if mask is not None and (np_dtype(mask).kind not in "fb" or shape(mask)[-1] != skv or len(shape(mask)) > 4):
        return None, "Attention mask shorter than the keys (or not float or boolean)"
    if len(q) == 4:
        qv, ov = {"shape": [bh, sq, d]}, {"shape": [bh, sq, dv]}
        kt = {"pre": [b, hkv, 1, skv, d], "bcast": [b, hkv, g, skv, d], "split": [bh, skv, d], "perm": [0, 2, 1], "shape": [bh, d, skv]}
        vv = {"pre": [b, hkv, 1, skv, dv], "bcast": [b, hkv, g, skv, dv], "shape": [bh, skv, dv]}
    else:
        qv = {"split": [b, sq, hq, d], "perm": [0, 2, 1, 3], "shape": [bh, sq, d]}
        ov = {"split": [b, sq, hq, dv], "perm": [0, 2, 1, 3], "shape": [bh, sq, dv]}
        kt = {"pre": [b, skv, hkv, 1, d], "bcast": [b, skv, hkv, g, d], "perm": [0, 2, 3, 4, 1], "shape": [bh, d, skv]}
        vv = {"pre": [b, skv, hkv, 1, dv], "bcast": [b, skv, hkv, g, dv], "perm": [0, 2, 3, 1, 4], "shape": [bh, skv, dv]}
    mv = None
    if mask is not None:
        ms = shape(mask)
        mv = {"pre": [1] * (4 - len(ms)) + list(ms), "bcast": [b, hq, sq, skv], "shape": [bh, sq, skv]}
    scale = a.get("scale") or 1 / math.sqrt(d)
    spec = AttentionSpec(bh, sq, skv, d, dv, float(scale), bool(a.get("is_causal", 0)), qv, kt, vv, ov,
                         3 if mask is not None else None, mv)
    return spec, ""


# ---------------------------------------------------------------------------------------
# R9: what must hold after lowering.


def check_lowered(module: ModuleOp, chip: Chip) -> None:
    """Raise GraphoptError naming the first offending op: a graph op outside an aicpu
    kernel, a kernel whose buffers overflow a memory, or an unaligned tiled UB/L1 access."""
    allowed = (WeightOp, ConstantOp, NoneOp, YieldOp)
    for fn in module.ops:
        if not isinstance(fn, func.FuncOp):
            continue
        for op in fn.body.block.ops:
            if isinstance(op, GraphOp | FusedOp) and not isinstance(op, allowed):
                _fail("a graph op survived lowering", op)
            if isinstance(op, KernelOp) and op.kind.data not in ("aicpu", "comm"):  # those keep graph ops
                _check_kernel(op, chip)


def _check_kernel(kernel: KernelOp, chip: Chip) -> None:
    used: dict[str, int] = {}
    for op in kernel.walk():
        if isinstance(op, GraphOp | FusedOp):
            _fail(f"kernel {kernel.sym_name.data}: a graph op inside a {kernel.kind.data} kernel", op)
        if isinstance(op, BufferOp):
            space = space_of(op.result.type)
            if space != "GM":  # each copy of a buffer starts on a block: its slots are rounded up
                slots = op.buffers.value.data
                used[space] = used.get(space, 0) + slots * _round(op.footprint() // slots, chip.alignment.get(space.lower(), 32))
        if isinstance(op, CopyOp) and op.dims.get_values():
            for buf in (op.source, op.dest):
                _check_alignment(kernel, op, buf, chip)
    for space, need in used.items():
        # A cube kernel's UB work is shared by the AIC's vector cores on split chips.
        have = chip.cube_kernel_ub() if space == "UB" and kernel.kind.data == "cube" else chip.buffers[space.lower()]
        if need > have:
            raise GraphoptError(f"ascend-lower: kernel {kernel.sym_name.data}: its {space} buffers need {need} bytes, chip {chip.name} has {have}")


def _check_alignment(kernel: KernelOp, copy: CopyOp, buf: SSAValue, chip: Chip) -> None:
    """A tiled copy into or out of L1 must move whole blocks. A UB tile of any size is
    fine: its slot is rounded up to a block (``_check_kernel``) and the copy is AscendC's
    DataCopyPad, which moves any byte count (a pooled plane of 111 x 111 halves; a
    depthwise conv's per-group bias under one block)."""
    space = space_of(buf.type)
    if space != "L1" or not isinstance(buf.owner, BufferOp):
        return
    loops = [i.owner.parent_op() for i in copy.index if isinstance(i.owner, Block)]
    looped = any(isinstance(f, ForOp) and f.trip.value.data > 1 for f in loops)
    per_copy = buf.owner.footprint() // buf.owner.buffers.value.data
    align = chip.alignment[space.lower()]
    if looped and per_copy % align:
        _fail(f"kernel {kernel.sym_name.data}: a tiled {space} access of {per_copy} bytes is not {align}-byte aligned", copy)


def _round(x: int, a: int) -> int:
    return -(-x // a) * a


def _fail(why: str, op: Operation) -> None:
    text = str(op).splitlines()[0] if op.regions else str(op)
    raise GraphoptError(f"ascend-lower: {why}: {text}")

