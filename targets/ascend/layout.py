"""ascend-layout: give every tensor a storage format beside its origin shape, as CANN's graph
engine does (reference/ascend.md, "GE format model").

    %w = graph.weight {name = "c.w"} : tensor<16x3x3x3xf32>
    %y = graph.fused(%x, %w) { conv, relu }                      (x: tensor<1x3x8x8xf32>)
  becomes
    %x5 = ascend.trans_data(%x) ND -> NC1HWC0                     (only at the graph input)
    %wz = graph.weight {name = "c.w.fractal_z"} : tensor<16x3x3x3xf32, "FRACTAL_Z">
    %y = graph.fused(%x5, %wz) { conv, relu } : tensor<1x16x8x8xf32, "NC1HWC0">

Which op works in which format (decided from traits, never from the chip's name):
- Convolutions (LayoutSensitive + Cube, 2-D ``Conv``): activations NC1HWC0, weights FRACTAL_Z
  (grouped convolutions keep ND weights: FRACTAL_Z here is the group = 1 layout).
- Channel-local LayoutSensitive ops (pools, BatchNormalization, InstanceNormalization, LRN):
  NC1HWC0 in and out; their per-channel parameters stay ND.
- Matmuls (Cube, not LayoutSensitive): activations stay ND, because the cube converts them on
  the way in (GM->L1 DataCopy with Nd2Nz on MTE2, NZ->ND in FixPipe on the way out), which
  is free when the inner axis is 256 B-aligned and costs no separate kernel otherwise; a
  runtime TransData would cost a full read and write. A constant right-hand operand (the
  weight) is stored FRACTAL_NZ, converted at compile time, unless padding would more than
  double it (a remark says so).
- Elementwise ops take the format of their same-shape operands when those share it; scalar
  operands stay ND, and an NC1HWC0 op also takes per-channel operands ([1, C, 1, 1], or a
  constant [C, 1, 1], stored as [1, C, 1, 1]) in NC1HWC0. Anything else (a broadcast across a blocked axis, a dtype change that changes C0)
  runs in ND, with a remark. Concat keeps NC1HWC0 (joining channels that are not whole
  C0 blocks shifts C0 lanes in its move kernel), and so do Split and Slice (its inverse); Pad keeps it when it pads H and W only, a reduction when it reduces H
  and W (keepdims): a global pool, and Gather when it reorders channels by constant indices
  (a channel shuffle). Every other op (reshape, softmax, other gathers, control flow ...) is ND.
- A vector op whose results are only returned, and whose blocked operands are returned too,
  runs in ND on the ND copies the return needs anyway (``nd_anyway``).
- Before the walk, a group norm as exporters write it (Reshape to [N, G, R],
  InstanceNormalization, Reshape back) becomes one GroupNormalization when a sample fits UB
  (``_group_norms``): its tiles hold whole samples, so it stays NC1HWC0 (``_WHOLE_SAMPLE``).
  A Resize of [N, C, H, W] that leaves N and C alone (an upsample) becomes its ``axes = [2,
  3]`` form (``_resize_planes``): it resizes each (n, c) plane alone, so it keeps the format
  its input has (NC1HWC0 after a convolution, ND elsewhere) and its vector kernel tiles
  planes, as CANN's ResizeBilinearV2 / ResizeNearestNeighborV2 do.

Algorithm (one walk in program order, which is a topological order, then a cleanup):
1. Forward propagation: visit each op after its operands. Graph inputs are ND. An op's
   rule (above) turns its operands' formats into the formats it wants for its operands and
   gives its results; results are retyped with the new encoding at once, so later ops see
   them. A ``graph.fused`` op takes its operands' formats as its block arguments', its body
   is walked the same way, and its results take what its yield returns.
2. Boundary insertion, for each operand whose format differs from the wanted one (`convert`):
   - formats that lay the bytes out identically (``same_storage``: NC1HWC0 of [N, C, 1, 1]
     with C0 | C, say) need nothing;
   - a weight or constant is converted now, into a new weight of the storage layout;
   - the output of a TransData from the wanted format is reused (A->B->A cancels), and a
     TransData's output is converted from its own input (A->B->C becomes A->C);
   - a region input is converted outside its region and passed in as a new input, so it
     can be shared or cancelled there;
   - anything else gets one ``ascend.trans_data`` after its definition, shared by every
     consumer that needs that format. The function's return wants ND.
3. Cleanup: drop region inputs, TransData ops and original weights left unused, then apply
   the local rewrites ``trans_data(x, A->A) -> x`` and ``trans_data(trans_data(x, A->B), B->A)
   -> x`` to what remains (they also clean IR that came in from text).
Channels that are not whole C0 blocks are zero-padded; ``layout_report`` counts the TransData
ops left, the bytes they read and write, and the padding bytes of every blocked tensor (at
the chip dtype's size: C0 elements make 32 B). Padding lanes hold zeros after TransData and
weight conversion; ops may write anything there (exp(0) = 1), so consumers that reduce over
C mask by the origin C (a convolution's FRACTAL_Z weights are zero there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, TensorType, i64
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint, Rewriter

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, FusedOp, GraphOp, WeightOp, is_parameter, provenance
from graphopt.dialects.shapes import spec_of
from graphopt.dialects.traits import Cube, Elementwise, LayoutSensitive
from graphopt.rewrite import build, constant_value, make_constant, remarks_of, sole_user, src_of, weights_of
from graphopt.targets.ascend.chip import DTYPE_BYTES, Chip, load_chip, pass_target
from graphopt.targets.ascend.dialect import TransDataOp
from graphopt.targets.ascend.formats import (
    c0_for,
    compute_dtype,
    format_of,
    same_storage,
    storage_bytes,
    to_format,
    with_format,
)
from graphopt.targets.ascend.keep_dtype import is_kept, mark_kept
from graphopt.targets.ascend.vector import Numerics
from graphopt.weights import WeightStore

ND, NC1HWC0, NZ, FZ = "ND", "NC1HWC0", "FRACTAL_NZ", "FRACTAL_Z"
# LayoutSensitive ops that act per channel or per spatial window, so C0 blocks of channels
# are independent (DepthToSpace or GroupNormalization mix channels across blocks).
# LRN mixes neighbouring channels, but within the C axis it keeps, as CANN's 5HD LRN does.
_CHANNEL_LOCAL = frozenset(
    "MaxPool AveragePool LpPool GlobalAveragePool GlobalMaxPool GlobalLpPool BatchNormalization "
    "InstanceNormalization LRN".split()
)
# LayoutSensitive ops that mix channels across C0 blocks but whose kernels' tiles hold every
# channel (GroupNormalization: whole samples [1, C, H, W]; ChannelLayerNorm: rows [1, C, r, W]),
# padding lanes masked by origin C.
_WHOLE_SAMPLE = frozenset({"GroupNormalization", "ChannelLayerNorm"})
# Cube ops whose right-hand operand is a matrix the cube reads as L0B (the weight of a layer).
_WEIGHT_OPERAND = {"MatMul": 1, "Gemm": 1, "MatMulBias": 1, "MatMulInteger": 1}
# Reductions that are a global pool when they reduce H and W of NC1HWC0 with keepdims.
_SPATIAL_REDUCTIONS = frozenset("ReduceMean ReduceMax ReduceMin ReduceSum ReduceL1 ReduceL2 ReduceSumSquare".split())
_MAX_NZ_PADDING = 2.0  # a weight stays ND when its NZ storage is more than this much larger
_SUMMARY = "ascend.layout"  # module attribute holding layout_report's numbers


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def _is_tensor(v: SSAValue) -> bool:
    return isinstance(v.type, TensorType)


@dataclass
class _Layout:
    chip: Chip
    precision: str
    weights: WeightStore | None
    remarks: list[dict[str, Any]]
    nz_weights: bool
    converted: dict[tuple[SSAValue, str], SSAValue] = field(default_factory=dict)
    replaced: set[Operation] = field(default_factory=set)
    touched: set[FusedOp] = field(default_factory=set)

    def c0(self, v: SSAValue) -> int | None:
        return c0_for(v.type.element_type, self.chip.k0, self.precision) if isinstance(v.type, TensorType) else None

    def remark(self, op: Operation, reason: str) -> None:
        self.remarks.append({"pass": "ascend-layout", "ops": src_of(op) or [op.name], "reason": reason})

    # -- step 1: forward propagation --------------------------------------------------
    def run_block(self, block: Block) -> None:
        for op in list(block.ops):
            if isinstance(op, FusedOp):
                self.run_fused(op)
            elif isinstance(op, func.ReturnOp):  # the function's results are ND, even where bytes agree
                self.demand(op, [ND] * len(op.operands), exact=True)
            elif isinstance(op, GraphOp):
                wanted, results = self.rule(op)
                self.demand(op, wanted)
                for r, fmt in zip(op.results, results, strict=True):
                    if _is_tensor(r) and format_of(r.type) != fmt:
                        assert isinstance(r.type, TensorType)
                        Rewriter.replace_value_with_new_type(r, with_format(r.type, fmt))

    def run_fused(self, op: FusedOp) -> None:
        for arg, operand in zip(op.body.block.args, op.inputs, strict=True):
            if arg.type != operand.type:
                Rewriter.replace_value_with_new_type(arg, operand.type)
        self.run_block(op.body.block)
        yielded = op.body.block.last_op
        assert yielded is not None
        for r, v in zip(op.outputs, yielded.operands, strict=True):
            if r.type != v.type:
                Rewriter.replace_value_with_new_type(r, v.type)

    def rule(self, op: GraphOp) -> tuple[list[str], list[str]]:
        """(formats wanted for the operands, formats of the results)."""
        nd = ([ND] * len(op.operands), [ND] * len(op.results))
        if op.regions or not op.operands or not _is_tensor(op.operands[0]):
            return nd
        if is_kept(op):
            self.remark(op, "stays ND: kept in its own dtype (--keep-dtype), where NC1HWC0 is float16's blocking")
            return nd
        if any(_is_tensor(v) and min(_shape(v), default=0) < 0 for v in [*op.operands, *op.results]):
            # A dimension known only at run time (a Loop's scan output): no blocked storage
            # size to give it, and its kernel runs on the AI CPU (ascend-lower).
            self.remark(op, "stays ND: a dimension is known only at run time")
            return nd
        if op.has_trait(Cube):  # convolutions and matmuls: the cube's formats, whoever consumes them
            if op.has_trait(LayoutSensitive):
                return self.blocked_rule(op) or nd
            return self.matmul_rule(op)
        blocked = None
        if resizes_planes(op):  # either format serves it: it keeps the one it is given
            blocked = self.blocked_rule(op) if format_of(op.operands[0].type) == NC1HWC0 else None
        elif op.has_trait(LayoutSensitive):
            blocked = self.blocked_rule(op)
        elif op.has_trait(Elementwise) and len(op.results) == 1:
            blocked = self.elementwise_rule(op)
        elif op.ONNX_TYPE == "Concat" and not op.ONNX_DOMAIN:  # movement ops kept blocked
            blocked = self.concat_rule(op)
        elif op.ONNX_TYPE in ("Split", "Slice") and not op.ONNX_DOMAIN:
            blocked = self.split_rule(op)
        elif op.ONNX_TYPE == "Pad" and not op.ONNX_DOMAIN:
            blocked = self.pad_rule(op)
        elif op.ONNX_TYPE in _SPATIAL_REDUCTIONS and not op.ONNX_DOMAIN:
            blocked = self.reduce_rule(op)
        elif op.ONNX_TYPE == "Gather" and not op.ONNX_DOMAIN:
            blocked = self.gather_rule(op)
        if blocked is None or self.nd_anyway(op, blocked[0]):
            return nd
        return blocked

    def nd_anyway(self, op: GraphOp, wanted: list[str]) -> bool:
        """Whether a vector op would be kept blocked only to have every result converted to ND
        for the function's return, while each blocked operand is returned too (so its ND
        copy exists anyway): it then runs on those ND copies, one TransData fewer
        (transformers' ResNet returns its last feature map and its global pool)."""
        if not isinstance(op.parent_op(), func.FuncOp):
            return False
        returned = lambda v: any(isinstance(u.operation, func.ReturnOp) for u in v.uses)  # noqa: E731
        if not all(r.uses and all(isinstance(u.operation, func.ReturnOp) for u in r.uses) for r in op.results):
            return False
        blocked = [v for v, fmt in zip(op.operands, wanted) if fmt != ND and _is_tensor(v) and not self.looks_nd(v)]
        return bool(blocked) and all(returned(v) for v in blocked)

    def blocked_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        x = op.operands[0]
        if len(_shape(x)) != 4 or self.c0(x) is None:
            self.remark(op, f"stays ND: NC1HWC0 needs a 4-D tensor of a dtype the chip blocks, got {x.type}")
            return None
        rest = [ND] * (len(op.operands) - 1)
        results = [NC1HWC0 if _is_tensor(r) and len(_shape(r)) == 4 and self.c0(r) else ND for r in op.results]
        if op.has_trait(Cube):
            if op.ONNX_TYPE != "Conv" or op.ONNX_DOMAIN:
                self.remark(op, f"stays ND: {op.ONNX_TYPE} has no FRACTAL_Z rule here")
                return None
            weight = FZ
            if op.onnx_attrs().get("group", 1) != 1:
                weight = ND
                self.remark(op, "weights stay ND: FRACTAL_Z is the layout of group = 1 convolutions")
            return [NC1HWC0, weight, *rest[1:]], results
        if op.ONNX_TYPE not in _CHANNEL_LOCAL | _WHOLE_SAMPLE and not resizes_planes(op):
            self.remark(op, f"stays ND: {op.ONNX_TYPE} mixes channels across C0 blocks")
            return None
        return [NC1HWC0, *rest], results

    def matmul_rule(self, op: GraphOp) -> tuple[list[str], list[str]]:
        wanted = [ND] * len(op.operands)
        index = _WEIGHT_OPERAND.get(op.ONNX_TYPE)
        if not self.nz_weights or index is None or index >= len(op.operands):
            return wanted, [ND] * len(op.results)
        w = op.operands[index]
        c0 = self.c0(w)
        if not _is_tensor(w) or len(_shape(w)) < 2 or c0 is None or not _is_constant(w):
            return wanted, [ND] * len(op.results)
        padded = storage_bytes(_shape(w), NZ, c0, 1) / max(1, math.prod(_shape(w)))
        if padded > _MAX_NZ_PADDING:
            self.remark(op, f"weight stays ND: FRACTAL_NZ would pad {list(_shape(w))} to {padded:.1f}x its size")
        else:
            wanted[index] = NZ
        return wanted, [ND] * len(op.results)

    def elementwise_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        out = op.results[0]
        shape, c0 = _shape(out), self.c0(out)
        fmt = next((format_of(v.type) for v in op.operands if _is_tensor(v) and _shape(v) == shape
                    and format_of(v.type) != ND), ND)
        if fmt == ND:
            return None
        wanted: list[str] = []
        for v in op.operands:
            if not _is_tensor(v) or math.prod(_shape(v)) == 1:
                wanted.append(ND)  # scalars broadcast in any format
            elif self.c0(v) != c0 or c0 is None:
                self.remark(op, f"runs in ND: its operands are blocked by different C0 ({v.type} vs {out.type})")
                return None
            elif _shape(v) == shape or (fmt == NC1HWC0 and _per_channel(_shape(v), shape)):
                wanted.append(fmt)
            elif fmt == NC1HWC0 and _per_channel(_leading_ones(_shape(v), 4), shape) and _is_constant(v):
                wanted.append(fmt)  # a constant [C, 1, 1]: converted as [1, C, 1, 1] (convert_constant)
            elif fmt == NC1HWC0 and _spatial_map(_shape(v), shape):
                # A map of one channel [N, 1, H, W] (a spatial gate: CBAM, FocalNet's focal
                # levels): the kernel reads it as it is stored and broadcasts each pixel's
                # value across the C0 lanes (GatherMask of lane 0 when blocked, then Brcb).
                wanted.append(format_of(v.type))
            else:
                self.remark(op, f"runs in ND: operand {v.type} broadcasts across a blocked axis of {fmt}")
                return None
        return wanted, [fmt]

    def concat_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        if not any(format_of(v.type) == NC1HWC0 for v in op.operands):
            return None
        c0s = {self.c0(v) for v in op.operands} | {self.c0(op.results[0])}
        axis = op.onnx_attrs().get("axis", 0) % 4
        if len(c0s) != 1 or None in c0s or any(len(_shape(v)) != 4 for v in op.operands):
            return None
        c0 = c0s.pop()
        assert c0 is not None
        if axis == 1 and any(_shape(v)[1] % c0 for v in op.operands[:-1]):
            # The later inputs' channels start mid-block: the move kernel shifts them across
            # C0 lanes on their way through UB (a lane gather, as for a channel shuffle),
            # where a TransData on every input and on the result would move it all 2 more times.
            self.remark(op, f"stays NC1HWC0: it joins channels that are not whole C0 = {c0} blocks, "
                            "shifting C0 lanes in its move kernel")
        return [NC1HWC0] * len(op.operands), [NC1HWC0]

    def split_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        """A Split or Slice of an NC1HWC0 value stays NC1HWC0, the inverse of Concat's rule:
        parts along H or W are planes' rows or columns, and parts of the channels that start
        mid-block are shifted across C0 lanes by the move kernel (dual-path networks slice
        each block's output into its residual and dense channels; FasterNet's partial
        convolution splits off a quarter of them: 50 and 40 TransData in ND)."""
        x = op.operands[0]
        if format_of(x.type) != NC1HWC0 or len(_shape(x)) != 4:
            return None
        c0 = self.c0(x)
        tensors = [r for r in op.results if _is_tensor(r)]
        if c0 is None or any(len(_shape(r)) != 4 or self.c0(r) != c0 for r in tensors) or len(tensors) != len(op.results):
            return None
        # Blocked parts read by ND ops cost a TransData each, an ND split one for its input
        # and one for each part a convolution reads: the cheaper, ND on a tie (MobileViT-v2
        # splits q, k, v for a softmax, FasterNet a quarter of the channels for a convolution).
        # Only the parts' own readers are counted; ops that follow their operands' format
        # (elementwise, Concat, Slice ...) count for neither.
        readers = [_readers(r) for r in tensors]
        wants_nd = sum(any(_nd_only(u) for u in rs) for rs in readers)
        if wants_nd and wants_nd >= 1 + sum(any(_blocked_only(u) for u in rs) for rs in readers):
            return None
        if any(_shape(r)[1] != _shape(x)[1] for r in tensors) and any(_shape(r)[1] % c0 for r in tensors):
            self.remark(op, f"stays NC1HWC0: its parts are not whole C0 = {c0} blocks of channels, "
                            "shifted across C0 lanes in its move kernel")
        return [NC1HWC0] + [ND] * (len(op.operands) - 1), [NC1HWC0] * len(op.results)

    def pad_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        """A Pad of an NC1HWC0 value over H and W only stays NC1HWC0: every mode pads each
        (n, c) plane on its own (transformers' MobileNetV2 pads before each strided conv,
        "same" padding as TensorFlow's: 32 TransData went in and out of ND around them)."""
        x = op.operands[0]
        if format_of(x.type) != NC1HWC0 or len(_shape(x)) != 4 or len(op.operands) < 2:
            return None
        pads = self.constant(op.operands[1])
        axes = self.constant(op.operands[3]) if len(op.operands) > 3 and _is_tensor(op.operands[3]) else np.arange(4)
        if pads is None or axes is None or pads.size != 2 * axes.size:
            return None
        padded = {int(a) % 4 for a, before, after in zip(axes, pads[: axes.size], pads[axes.size :]) if before or after}
        if padded & {0, 1}:
            self.remark(op, "runs in ND: it pads the batch or channel axis of NC1HWC0")
            return None
        return [NC1HWC0] + [ND] * (len(op.operands) - 1), [NC1HWC0]

    def reduce_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        """A reduction of an NC1HWC0 value over H and W with keepdims is a global pool (each
        (n, c) plane on its own): it stays NC1HWC0. Exporters write squeeze-and-excitation's
        squeeze so (torch's x.mean((2, 3), keepdim=True)); in ND it cost a TransData before
        it, and one after it where C is not whole C0 blocks (EfficientNet: 6 of its 7)."""
        x = op.operands[0]
        attrs = op.onnx_attrs()
        if format_of(x.type) != NC1HWC0 or len(_shape(x)) != 4 or not attrs.get("keepdims", 1):
            return None
        axes = attrs.get("axes")
        if axes is None and len(op.operands) > 1 and _is_tensor(op.operands[1]):
            found = self.constant(op.operands[1])
            axes = None if found is None else found.tolist()
        if not axes or {int(a) % 4 for a in axes} != {2, 3}:
            return None
        return [NC1HWC0] + [ND] * (len(op.operands) - 1), [NC1HWC0]

    def gather_rule(self, op: GraphOp) -> tuple[list[str], list[str]] | None:
        """A Gather of an NC1HWC0 value along C with constant 1-D indices (a channel shuffle,
        which simplify-transpose-reshape writes as one: ShuffleNet has 16) stays NC1HWC0:
        every (n, h, w) position reorders its channels the same way, C0 lanes included, so
        a move kernel does it in place of a TransData on each side."""
        x = op.operands[0]
        if format_of(x.type) != NC1HWC0 or len(_shape(x)) != 4 or op.onnx_attrs().get("axis", 0) % 4 != 1:
            return None
        indices = self.constant(op.operands[1])
        if indices is None or indices.ndim != 1 or _shape(op.results[0]) != _shape(x) or self.c0(op.results[0]) != self.c0(x):
            return None
        return [NC1HWC0, ND], [NC1HWC0]

    def constant(self, v: SSAValue) -> np.ndarray | None:
        """The value of a constant or weight operand (looking through fused-region inputs), or None."""
        while isinstance(v, BlockArgument):
            parent = v.block.parent_op()
            if not isinstance(parent, FusedOp):
                return None
            v = parent.inputs[v.index]
        owner = v.owner
        if isinstance(owner, ConstantOp):
            return np.asarray(owner.array()).reshape(-1)
        if isinstance(owner, WeightOp) and self.known(owner):
            assert self.weights is not None
            return np.asarray(self.weights[owner.ref.data]).reshape(-1)
        return None

    def looks_nd(self, v: SSAValue) -> bool:
        c0 = self.c0(v)
        return c0 is None or same_storage(_shape(v), format_of(v.type), ND, c0)

    # -- step 2: boundary insertion -----------------------------------------------------
    def demand(self, op: Operation, wanted: list[str], exact: bool = False) -> None:
        """Convert the operands of ``op`` to the ``wanted`` formats; with ``exact``, also
        those whose bytes are already laid out alike (the types must then match too)."""
        for i, fmt in enumerate(wanted):
            v = op.operands[i]
            if not _is_tensor(v) or format_of(v.type) == fmt:
                continue
            c0 = self.c0(v)
            if c0 is None or (same_storage(_shape(v), format_of(v.type), fmt, c0) and not exact):
                continue
            op.operands[i] = self.convert(v, fmt)

    def convert(self, v: SSAValue, fmt: str) -> SSAValue:
        """``v`` in storage format ``fmt`` (see step 2 of the module docstring)."""
        key = (v, fmt)
        if key in self.converted:
            return self.converted[key]
        owner = v.owner
        if isinstance(owner, TransDataOp):
            # trans_data(trans_data(x, A->B), B->A) -> x; A->B->C becomes A->C
            new = owner.input if owner.src_format.data == fmt else self.convert(owner.input, fmt)
        elif isinstance(owner, WeightOp | ConstantOp) and self.known(owner):
            new = self.convert_constant(owner, fmt)
        elif isinstance(v, BlockArgument) and isinstance(owner, Block) and isinstance(owner.parent_op(), FusedOp):
            new = self.convert_region_input(v, fmt)
        else:
            td = TransDataOp(v, fmt, src_of(owner) if isinstance(owner, Operation) else [], per_update=is_parameter(v))
            where = InsertPoint.after(owner) if isinstance(owner, Operation) else InsertPoint.at_start(owner)
            Rewriter.insert_op(td, where)
            new = td.output
        self.converted[key] = new
        return new

    def known(self, owner: WeightOp | ConstantOp) -> bool:
        """Whether the constant's value is at hand (IR from text has no weight bytes)."""
        return self.weights is not None and (isinstance(owner, ConstantOp) or owner.ref.data in self.weights)

    def convert_constant(self, owner: WeightOp | ConstantOp, fmt: str) -> SSAValue:
        assert self.weights is not None
        v = owner.results[0]
        c0 = self.c0(v)
        assert c0 is not None and isinstance(v.type, TensorType)
        array = owner.array() if isinstance(owner, ConstantOp) else np.asarray(self.weights[owner.ref.data])
        base = owner.ref.data if isinstance(owner, WeightOp) else "const"
        t = v.type
        if fmt == NC1HWC0 and array.ndim < 4:  # a per-channel [C, 1, 1] broadcasts as [1, C, 1, 1]
            padded = _leading_ones(array.shape, 4)
            array, t = array.reshape(padded), TensorType(v.type.element_type, padded)
        handle = self.weights.add(f"{base}.{fmt.lower()}", to_format(array, fmt, c0, self.chip.fractal_m))
        new = WeightOp(handle, with_format(t, fmt), provenance(owner))
        Rewriter.insert_op(new, InsertPoint.after(owner))
        self.replaced.add(owner)
        return new.result

    def convert_region_input(self, arg: BlockArgument, fmt: str) -> SSAValue:
        fused = arg.block.parent_op()
        assert isinstance(fused, FusedOp)
        outer = self.convert(fused.inputs[arg.index], fmt)
        for existing, inner in zip(fused.inputs, fused.body.block.args, strict=True):
            if existing == outer:
                return inner
        fused.operands = [*fused.operands, outer]
        self.touched.add(fused)
        return fused.body.block.insert_arg(outer.type, len(fused.body.block.args))

    # -- step 3: cleanup --------------------------------------------------------------
    def cleanup(self) -> None:
        for fused in self.touched:
            block = fused.body.block
            for arg in reversed(block.args):
                if not arg.uses:
                    index = arg.index
                    block.erase_arg(arg)
                    fused.operands = [*fused.operands[:index], *fused.operands[index + 1 :]]
        for op in self.replaced:
            if all(not r.uses for r in op.results) and op.parent is not None:
                Rewriter.erase_op(op)
        for td in dict.fromkeys(v.owner for v in self.converted.values() if isinstance(v.owner, TransDataOp)):
            if not td.output.uses and td.parent is not None:
                Rewriter.erase_op(td)


class CancelTransData(RewritePattern):
    """trans_data(x, A->A) -> x;  trans_data(trans_data(x, A->B), B->A) -> x."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TransDataOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if op.src_format.data == op.dst_format.data:
            rewriter.replace(op, [], [op.input])
        elif isinstance(inner, TransDataOp) and inner.src_format.data == op.dst_format.data:
            rewriter.replace(op, [], [inner.input])
            if not inner.output.uses:
                rewriter.erase(inner)


@dataclass(frozen=True)
class AssignLayout(ModulePass):
    """Assign storage formats (ND, NC1HWC0, FRACTAL_NZ, FRACTAL_Z) and insert TransData only
    where a consumer needs another format; see the module docstring for the algorithm."""

    name = "ascend-layout"
    nz_weights: bool = True  # store constant matmul weights as FRACTAL_NZ
    chip: str = ""  # a bundled chip's name or a .toml path (default: the compiling target's)
    precision: str = ""  # default: the compiling target's

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, precision = pass_target(ctx, self.chip, self.precision)
        if precision != "must_keep_origin_dtype":
            mark_kept(op, getattr(getattr(ctx, "target", None), "keep_dtype", ()))
        layout = _Layout(chip, precision, weights_of(ctx), remarks_of(ctx), self.nz_weights)
        for fn in op.ops:
            if isinstance(fn, func.FuncOp):
                _group_norms(fn.body.block, layout)
                _resize_planes(fn.body.block, layout.weights)
                _resize_separable(fn.body.block, layout)
                layout.run_block(fn.body.block)
        layout.cleanup()
        PatternRewriteWalker(CancelTransData()).rewrite_module(op)
        summary = _measure(op, chip.k0, precision)
        op.attributes[_SUMMARY] = DictionaryAttr({k: IntegerAttr(v, i64) for k, v in summary.items()})


def _group_norms(block: Block, layout: _Layout) -> None:
    """Reshape [N, C, H, W] -> [N, G, R], InstanceNormalization (per-group scale and bias),
    Reshape back: a GroupNormalization (torch's group_norm as both ONNX exporters write it),
    rewritten into one so that it can stay NC1HWC0 (``_WHOLE_SAMPLE``) where the Reshapes
    would have cost a TransData on each side (PoolFormer, BiT). Only when a sample's tile
    fits UB (input and float32 result, double buffered); a larger one keeps the
    InstanceNormalization, whose rows are single groups."""
    weights = layout.weights
    for r1 in list(block.ops):
        if not isinstance(r1, GraphOp) or r1.ONNX_TYPE != "Reshape" or r1.ONNX_DOMAIN or r1.parent is None:
            continue
        x = r1.operands[0]
        norm = sole_user(r1.results[0], "InstanceNormalization")
        r2 = sole_user(norm.results[0], "Reshape") if norm is not None else None
        if norm is None or r2 is None or not _is_tensor(x) or r2.results[0].type != x.type or len(norm.operands) != 3:
            continue
        shape, grouped = _shape(x), _shape(r1.results[0])
        if len(shape) != 4 or min(shape) < 1 or len(grouped) != 3 or grouped[0] != shape[0]:
            continue
        c, g = shape[1], grouped[1]
        scale, bias = (constant_value(v, weights) for v in norm.operands[1:])
        if g < 1 or c % g or scale is None or bias is None or scale.size != g or bias.size != g:
            continue
        if not tile_fits(layout.chip, layout.precision, x.type, "GroupNormalization", math.prod(shape[1:])):  # pyright: ignore[reportArgumentType]
            continue
        src = src_of(r1, norm, r2)
        consts = [make_constant(np.repeat(a.reshape(-1), c // g).astype(a.dtype), src, weights, "group_norm")
                  for a in (scale, bias)]
        gn = build("GroupNormalization", [x, *(k.results[0] for k in consts)],
                   {"num_groups": g, "epsilon": norm.onnx_attrs().get("epsilon", 1e-5)}, src,
                   result_specs=[spec_of(x.type)])
        Rewriter.insert_op([*consts, gn], InsertPoint.before(r2))
        r2.results[0].replace_all_uses_with(gn.results[0])
        for dead in (r2, norm, r1):
            Rewriter.erase_op(dead)


def resizes_planes(op: Operation, axes: tuple[list[int], ...] = ([2, 3], [2], [3])) -> bool:
    """A Resize of the last two axes of a 4-D tensor only (its ``axes = [2, 3]`` form), or of
    one of them (``_resize_separable``): each (n, c) plane on its own."""
    return (isinstance(op, GraphOp) and op.ONNX_TYPE == "Resize" and not op.ONNX_DOMAIN
            and len(_shape(op.operands[0])) == 4 and sorted(int(a) % 4 for a in op.onnx_attrs().get("axes") or []) in axes)


def _resize_params(op: GraphOp, weights: WeightStore | None) -> tuple[np.ndarray | None, ...] | None:
    """A Resize's (roi, scales, sizes) as constants, each None when absent or empty; None
    when one of them is computed at run time."""
    given = ([*op.operands[1:], None, None])[:3]
    got = [None if v is None or not _is_tensor(v) else constant_value(v, weights) for v in given]
    if any(v is not None and _is_tensor(v) and a is None for v, a in zip(given, got)):
        return None
    return tuple(a if a is not None and a.size else None for a in got)


def _resize_planes(block: Block, weights: WeightStore | None) -> None:
    """Resize(x [N, C, H, W], roi, scales, sizes) with scales 1 (or sizes equal to x's) for N
    and C -> the same Resize over ``axes = [2, 3]`` (ONNX 18's form, the same result): roi,
    scales and sizes keep their H and W entries; an absent or empty one stays as it is.
    Only with constant operands, and sizes only under the "stretch" aspect policy (the other
    policies take one scale for all resized axes, which N and C would join)."""
    for op in list(block.walk()):
        if not isinstance(op, GraphOp) or op.ONNX_TYPE != "Resize" or op.ONNX_DOMAIN or len(op.operands) < 3:
            continue
        x, attrs = op.operands[0], op.onnx_attrs()
        if not _is_tensor(x) or len(_shape(x)) != 4 or attrs.get("axes") is not None:
            continue
        params = _resize_params(op, weights)
        if params is None:
            continue  # computed at run time
        r, sc, sz = params
        n, c = _shape(x)[:2]
        if sz is not None and (sz.size != 4 or list(sz[:2]) != [n, c] or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch"):
            continue
        if sz is None and (sc is None or sc.size != 4 or list(sc[:2]) != [1, 1]):
            continue
        if r is not None and (r.size != 8 or list(r[[0, 1, 4, 5]]) != [0, 0, 1, 1]):
            continue
        src = src_of(op)
        consts = [None if a is None else make_constant(a[keep], src, weights, "resize")
                  for a, keep in ((r, [2, 3, 6, 7]), (sc, slice(2, None)), (sz, slice(2, None)))]
        ins = [x] + [v if k is None else k.results[0] for v, k in zip(op.operands[1:4], consts)]
        new = build("Resize", ins, {**attrs, "axes": [2, 3]}, src, result_specs=[spec_of(op.results[0].type)])
        Rewriter.insert_op([*(k for k in consts if k is not None), new], InsertPoint.before(op))
        op.results[0].replace_all_uses_with(new.results[0])
        Rewriter.erase_op(op)


def tile_fits(chip: Chip, precision: str, t: TensorType, op_type: str, elements: int, results: int | None = None) -> bool:
    """Whether the smallest tile of a vector kernel of ``op_type`` over ``t``, ``elements``
    values (a whole sample for GroupNormalization, a row of pixels' channels for
    ChannelLayerNorm, a plane for Resize) and ``results`` result values (as many when not
    given), fits the Unified Buffer: the input as GM stores it and the result as the kernel
    computes it, double buffered."""
    num = Numerics.of(precision)
    stored = num.store(dtypes.from_ir(t.element_type).numpy)
    out = elements if results is None else results
    return 2 * (elements * stored.itemsize + out * num.compute(op_type, stored).itemsize) <= chip.buffers["ub"]


def _resize_separable(block: Block, layout: _Layout) -> None:
    """A Resize of H and W (its ``axes = [2, 3]`` form) whose planes do not fit UB -> a Resize
    of one axis, then of the other: ONNX's interpolation is a product of one-axis ones (the
    reference evaluator computes it axis by axis), so the two give its result, as CANN's
    resize kernels tile large planes. Each one-axis Resize tiles in UB: W's over rows of
    the plane, H's over runs of columns (``vector_kernel._build_columns``); the axis whose
    resize leaves the smaller intermediate goes first. Not under a keep-aspect-ratio policy
    with sizes (its scale is shared by both axes) or with parameters computed at run time."""
    for op in list(block.walk()):
        if not resizes_planes(op, ([2, 3],)) or op.parent is None:
            continue
        assert isinstance(op, GraphOp)
        x, y, attrs = op.operands[0], op.results[0], op.onnx_attrs()
        (n, c, hi, wi), (_, _, ho, wo) = _shape(x), _shape(y)
        if min(hi, wi, ho, wo) < 1 or tile_fits(layout.chip, layout.precision, x.type, "Resize", hi * wi, ho * wo):  # pyright: ignore[reportArgumentType]
            continue
        params = _resize_params(op, layout.weights)
        if params is None:
            continue
        r, sc, sz = params
        if (sz is not None and attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch") or (sz is None and sc is None):
            continue
        axes = [int(a) % 4 for a in attrs["axes"]]
        src, x_dt = src_of(op), spec_of(x.type)[1]  # pyright: ignore[reportOptionalSubscript]
        order = [3, 2] if hi * wo <= ho * wi else [2, 3]
        cur, dims, new_ops = x, [n, c, hi, wi], []
        for axis in order:
            k = axes.index(axis)
            # this axis's entries of roi ([start, end]), scales and sizes
            consts = [None if a is None else make_constant(a[[k, k + 2]] if a is r else a[[k]], src, layout.weights, "resize")
                      for a in (r, sc, sz)]
            ins = [cur] + [v if c_ is None else c_.results[0] for v, c_ in zip(op.operands[1:4], consts)]
            dims[axis] = _shape(y)[axis]
            one = build("Resize", ins, {**attrs, "axes": [axis]}, src, result_specs=[(tuple(dims), x_dt)])
            new_ops += [*(c_ for c_ in consts if c_ is not None), one]
            cur = one.results[0]
        Rewriter.insert_op(new_ops, InsertPoint.before(op))
        y.replace_all_uses_with(cur)
        Rewriter.erase_op(op)


def _is_constant(v: SSAValue) -> bool:
    """Whether ``v`` is a weight or constant, looking through fused-region inputs."""
    while isinstance(v, BlockArgument):
        parent = v.block.parent_op()
        if not isinstance(parent, FusedOp):
            return False
        v = parent.inputs[v.index]
    return isinstance(v.owner, WeightOp | ConstantOp)


def _leading_ones(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """``shape`` as numpy broadcasting sees it against a tensor of ``rank`` dims."""
    return (1,) * (rank - len(shape)) + tuple(shape)


# Ops that keep whatever format their operands have (the layout rules above).
_FOLLOWING = frozenset({"Concat", "Split", "Slice", "Pad", *_SPATIAL_REDUCTIONS})


def _readers(v: SSAValue) -> list[Operation]:
    """The ops reading ``v``; inside a fused group, the ops of its body reading it."""
    found: list[Operation] = []
    for use in v.uses:
        op = use.operation
        if isinstance(op, FusedOp):
            found += [u.operation for u in op.body.block.args[use.index].uses]
        else:
            found.append(op)
    return found


def _blocked_only(op: Operation) -> bool:
    """An op that reads NC1HWC0 only (a convolution, a pool, a per-channel norm)."""
    return isinstance(op, GraphOp) and op.has_trait(LayoutSensitive) and op.ONNX_TYPE != "Resize"


def _nd_only(op: Operation) -> bool:
    """An op that reads ND only: neither blocked by nature nor following its operands'
    format (a Reshape, a Softmax, a MatMul ...)."""
    if not isinstance(op, GraphOp):
        return True
    return not (op.has_trait(LayoutSensitive) or op.has_trait(Elementwise) or op.ONNX_TYPE in _FOLLOWING)


def _spatial_map(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """[N or 1, 1, H, W] against an [N, C, H, W] result: one value per pixel, for every channel."""
    return len(shape) == len(out) == 4 and shape[1] == 1 and out[1] > 1 and shape[0] in (1, out[0]) \
        and shape[2:] == out[2:]


def _per_channel(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """[1, C, 1, 1]-like: broadcasts over N, H and W of ``out`` but keeps its channels."""
    return len(shape) == 4 and len(out) == 4 and shape[1] == out[1] and all(d in (1, o) for d, o in zip(shape, out, strict=True))


def _measure(module: ModuleOp, k0: Mapping[str, int], precision: str) -> dict[str, int]:
    """TransData ops left, the bytes they read and write, and the padding bytes of every
    blocked tensor, at the size of the dtype the chip stores each in."""
    count = moved = padding = params = params_moved = 0
    seen: set[SSAValue] = set()
    for op in module.walk():
        for v in [*op.results, *(a for r in op.regions for b in r.blocks for a in b.args)]:
            blocked = _blocking(v, k0, precision)
            if blocked is None or v in seen or format_of(v.type) == ND:
                continue
            seen.add(v)
            c0, size = blocked
            padding += storage_bytes(_shape(v), format_of(v.type), c0, size) - math.prod(_shape(v)) * size
        if isinstance(op, TransDataOp):
            c0, size = _blocking(op.input, k0, precision) or (16, 2)  # an unblockable dtype: fp16's
            nbytes = sum(storage_bytes(_shape(op.input), fmt, c0, size) for fmt in (op.src_format.data, op.dst_format.data))
            if op.per_update is not None:  # a parameter's: not per call
                params, params_moved = params + 1, params_moved + nbytes
            else:
                count, moved = count + 1, moved + nbytes
    summary = {"transdata": count, "transdata_bytes": moved, "padding_bytes": padding}
    if params:
        summary |= {"parameter_transdata": params, "parameter_transdata_bytes": params_moved}
    return summary


def _blocking(v: SSAValue, k0: Mapping[str, int], precision: str) -> tuple[int, int] | None:
    """(C0, bytes per element) of the chip dtype ``v`` is stored in, or None."""
    if not isinstance(v.type, TensorType):
        return None
    dtype = compute_dtype(v.type.element_type, precision)
    c0 = k0.get(dtype) if dtype is not None else None
    return (c0, DTYPE_BYTES[dtype]) if c0 is not None and dtype is not None else None


def layout_report(module: ModuleOp, chip: Chip | None = None, precision: str = "force_fp16") -> dict[str, int]:
    """report.json's ``layout``: {transdata, transdata_bytes, padding_bytes}.

    The numbers the layout pass recorded on the module (lowering may turn TransData ops into
    kernels), else counted from the ``ascend.trans_data`` ops in ``module``."""
    recorded = module.attributes.get(_SUMMARY)
    if isinstance(recorded, DictionaryAttr):
        return {k: v.value.data for k, v in recorded.data.items() if isinstance(v, IntegerAttr)}
    return _measure(module, (chip or load_chip()).k0, precision)
