"""ascend-channels-first: channels-last islands of a convolutional network, rewritten
channels-first so that they keep the convolutions' NC1HWC0 layout.

ConvNeXt (and its v2, and the PyTorch blocks written like it) runs each block's pointwise
part channels-last: a depthwise Conv, then

    t = Transpose(x, perm=[0, 2, 3, 1])           # NCHW -> NHWC
    t = LayerNormalization(t, axis=-1)            # per pixel, over C
    t = Gelu(MatMul(t, W1)); t = MatMul(t, W2)    # Linear layers over C
    t = Mul(t, gamma[C])                          # layer scale
    y = Transpose(t, perm=[0, 3, 1, 2])           # back to NCHW

On Ascend each Transpose of a blocked (NC1HWC0) tensor is a TransData out of the blocked
format and another back in. Every op between the two Transposes acts on each pixel
alone, so the island has a channels-first form with no Transpose at all:

    LayerNormalization over C        -> graphopt::ChannelLayerNorm(x)   (a vector op on NC1HWC0)
    MatMul(t, W[C, D]) (+ bias [D])  -> Conv(x, W^T as [D, C, 1, 1]) (+ bias)  (a 1x1 convolution)
    elementwise ops                  -> the same op, constant operands transposed alike
    Reduce* over NHWC axes, keepdims -> the same reduction over the matching NCHW axes
    Split, Concat along an axis      -> the same along the matching NCHW axis
    Reduce* without keepdims         -> the same reduction over the matching NCHW axes, when the
                                        axes it keeps come in the same order (N, C; N, H, W):
                                        its result is no longer channels-last, and leaves the island

MambaOut writes its whole network this way round: channels-last blocks (LayerNorm, a Linear
layer, a Split into gate, identity and conv channels, the conv part through a depthwise Conv
between Transposes, Concat, Gelu(gate) x ...), and a global mean over H and W at the end;
every stage is one island.

An island is the set of ops reached from channels-last Transposes of 4-D tensors through
those ops; it is rewritten only when every value in it ends at a Transpose back
(perm [0, 3, 1, 2]) or in another op of the island: a value that escapes anywhere else
(a return, an op with no channels-first form, a non-constant operand from outside) leaves
the island as it is, with a remark. A ChannelLayerNorm's vector kernel holds whole
rows of pixels with every channel (tiles [1, C, r, W]), so only a LayerNormalization whose
row of W pixels' channels does not fit the Unified Buffer keeps its island channels-last.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from graphopt.dialects.graph import ConstantOp, GraphOp, WeightOp, is_parameter
from graphopt.dialects.shapes import spec_of
from graphopt.dialects.traits import Elementwise, LayoutSensitive, Movement
from graphopt.rewrite import axes_of, build, constant_value, make_constant, remarks_of, sole_user, src_of, weights_of
from graphopt.targets.ascend.chip import Chip, pass_target
from graphopt.targets.ascend.layout import tile_fits
from graphopt.weights import WeightStore

TO_LAST, TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)
_REDUCTIONS = frozenset("ReduceMean ReduceSum ReduceMax ReduceMin ReduceL1 ReduceL2 ReduceSumSquare".split())
_LINEAR = frozenset({"MatMul", "MatMulBias"})
_ALONG_AXIS = frozenset({"Split", "Concat"})


def _shape(v: SSAValue) -> tuple[int, ...]:
    return tuple(v.type.get_shape()) if isinstance(v.type, TensorType) else ()


def _transpose(op: Operation, perm: tuple[int, ...]) -> bool:
    return (isinstance(op, GraphOp) and op.ONNX_TYPE == "Transpose" and not op.ONNX_DOMAIN
            and tuple(op.onnx_attrs().get("perm", ())) == perm and len(_shape(op.operands[0])) == 4)


@dataclass
class _Island:
    entries: list[GraphOp] = field(default_factory=list)  # Transpose to channels-last
    members: list[GraphOp] = field(default_factory=list)  # ops with a channels-first form
    exits: list[GraphOp] = field(default_factory=list)  # Transpose back to channels-first
    why_not: str = ""  # why the island stays channels-last
    rearranged: bool = True  # only data movement (Reshape, Slice ...) reads its values: by design

    def ops(self) -> Iterator[GraphOp]:
        yield from self.entries
        yield from self.members
        yield from self.exits


@dataclass
class _ChannelsFirst:
    chip: Chip
    precision: str
    weights: WeightStore | None
    remarks: list[dict[str, Any]]

    # -- finding islands ----------------------------------------------------------------
    def islands(self, block: Block) -> list[_Island]:
        """The islands of ``block``, joined where an op reads values of two of them."""
        owner: dict[SSAValue, _Island] = {}  # channels-last value -> its island
        found: list[_Island] = []

        def join(parts: list[_Island]) -> _Island:
            into = parts[0]
            for part in parts[1:]:
                into.entries += part.entries
                into.members += part.members
                into.exits += part.exits
                into.why_not = into.why_not or part.why_not
                into.rearranged = into.rearranged and part.rearranged
                for v, isl in owner.items():
                    if isl is part:
                        owner[v] = into
                found.remove(part)
            return into

        for op in block.ops:
            if _transpose(op, TO_LAST):
                assert isinstance(op, GraphOp)
                isl = _Island(entries=[op])
                found.append(isl)
                owner[op.results[0]] = isl
                continue
            parts = list({id(owner[v]): owner[v] for v in op.operands if v in owner}.values())  # each island once
            if not parts:
                continue
            isl = join(parts)
            if _transpose(op, TO_FIRST):
                assert isinstance(op, GraphOp)
                isl.exits.append(op)
                continue
            why = self.why_not(op, owner)
            if why:
                isl.why_not = isl.why_not or why
                isl.rearranged = isl.rearranged and isinstance(op, GraphOp) and op.has_trait(Movement)
                continue
            isl.rearranged = False
            assert isinstance(op, GraphOp)
            isl.members.append(op)
            for r in op.results:
                if r.uses and not self.leaves_island(op):
                    owner[r] = isl
        for v, isl in owner.items():  # uses inside regions are not walked above
            if any(u.operation.parent_block() is not block for u in v.uses):
                isl.why_not = isl.why_not or "a channels-last value is used inside a region"
        return found

    def why_not(self, op: Operation, owner: dict[SSAValue, _Island]) -> str:
        """Why ``op``, which reads a channels-last value, has no channels-first form ("" if it has)."""
        if not isinstance(op, GraphOp) or op.regions or op.ONNX_DOMAIN not in ("", "graphopt"):
            return f"{op.name} reads a channels-last value"
        for v in op.operands:
            if v not in owner and isinstance(v.type, TensorType) and not self.constant_like(v) \
                    and self.transposed_parameter(v) is None:
                return f"{op.ONNX_TYPE} also reads {v.type}, computed outside the island"
            if isinstance(v.type, TensorType) and len(_shape(v)) > 4:
                return f"{op.ONNX_TYPE} reads a tensor of rank {len(_shape(v))}"
        kind = op.ONNX_TYPE
        if op.has_trait(Elementwise) and len(op.results) == 1:
            for v in op.operands:
                if is_parameter(v) and sum(d != 1 for d in _shape(v)) > 1:
                    return f"{kind} reads a parameter of shape {list(_shape(v))}, which would need a Transpose per call"
            return ""
        if kind == "LayerNormalization":
            return self.layer_norm_why_not(op, owner)
        if kind in _LINEAR:
            weight_ok = len(_shape(op.operands[1])) == 2 and (self.constant(op.operands[1]) is not None
                                                             or self.transposed_parameter(op.operands[1]) is not None)
            bias_ok = kind != "MatMulBias" or len(_shape(op.operands[2])) == 1
            if op.operands[0] not in owner or not weight_ok or not bias_ok:
                return (f"{kind}: only x @ W with W a 2-D constant or the transpose of a parameter (a Linear layer's"
                        " weight), and a 1-D bias, is a 1x1 convolution")
            return ""
        if kind in _REDUCTIONS:
            axes = self.reduce_axes(op)
            if axes is None or (not op.onnx_attrs().get("keepdims", 1) and not self.leaves_island(op)):
                return (f"{kind}: only a reduction with constant axes, and keepdims or the axes it keeps in the"
                        " same order either way, has a channels-first form")
            return ""
        if kind in _ALONG_AXIS:
            if any(len(_shape(r)) != 4 for r in op.results):
                return f"{kind}: only one whose results are 4-D has a channels-first form"
            return ""
        return f"{kind} has no channels-first form"

    def leaves_island(self, op: GraphOp) -> bool:
        """A reduction without keepdims whose result is the same in either layout: the axes it
        keeps (N and C, say) come in the same order channels-first as channels-last."""
        axes = self.reduce_axes(op)
        if axes is None or op.ONNX_TYPE not in _REDUCTIONS or op.onnx_attrs().get("keepdims", 1):
            return False
        kept = [TO_LAST[k] for k in range(4) if k not in axes]
        return kept == sorted(kept)

    def layer_norm_why_not(self, op: GraphOp, owner: dict[SSAValue, _Island]) -> str:
        x = op.operands[0]
        attrs = op.onnx_attrs()
        c = _shape(x)[-1] if x in owner else -1
        params = [self.constant(v) for v in op.operands[1:]]
        if x not in owner or attrs.get("axis", -1) % 4 != 3 or attrs.get("stash_type", 1) != 1:
            return "LayerNormalization: only one over the last axis of the channels-last value, stashed in float32"
        params_ok = all(_shape(v) == (c,) or (p is not None and p.shape == ()) for v, p in zip(op.operands[1:], params))
        if not params_ok or any(r.uses for r in op.results[1:]):
            return "LayerNormalization: its scale and bias must hold one value per channel"
        _, _, w, _ = _shape(x)  # a kernel tile holds at least one row, [1, C, 1, W] (vector_kernel._build_per_pixel)
        if not tile_fits(self.chip, self.precision, x.type, "ChannelLayerNorm", c * w):  # pyright: ignore[reportArgumentType]
            return f"LayerNormalization over the channels of {list(_shape(x))}: a row of W pixels' channels does not fit UB"
        return ""

    def constant_like(self, v: SSAValue) -> bool:
        """A constant, or a parameter fed at run time (graph.PARAMETER: its value changes only
        between calls, so what is derived from it by views alone is as good as a constant)."""
        return isinstance(v.owner, ConstantOp | WeightOp) or is_parameter(v)

    def transposed_parameter(self, w: SSAValue) -> SSAValue | None:
        """P when ``w`` is Transpose(P, perm=[1, 0]) of a parameter P (torch's Linear: x @ W^T)."""
        t = w.owner
        if isinstance(t, GraphOp) and t.ONNX_TYPE == "Transpose" and not t.ONNX_DOMAIN \
                and tuple(t.onnx_attrs().get("perm", (1, 0))) == (1, 0) and is_parameter(t.operands[0]):
            return t.operands[0]
        return None

    def constant(self, v: SSAValue) -> np.ndarray | None:
        return constant_value(v, self.weights) if self.constant_like(v) else None

    def reduce_axes(self, op: GraphOp) -> list[int] | None:
        """The reduction's axes (of the channels-last value), when known at compile time."""
        axes = axes_of(op, self.weights)
        return None if axes is None else [a % 4 for a in axes]

    # -- rewriting ----------------------------------------------------------------------
    def rewrite(self, isl: _Island) -> None:
        first: dict[SSAValue, SSAValue] = {t.results[0]: t.operands[0] for t in isl.entries}
        for op in isl.members:
            new_ops, results = self.channels_first(op, first)
            Rewriter.insert_op(new_ops, InsertPoint.before(op))
            if self.leaves_island(op):
                op.results[0].replace_all_uses_with(results[0])
            first.update(zip(op.results, results))
        for t in isl.exits:
            t.results[0].replace_all_uses_with(first[t.operands[0]])
        feeding = [v.owner for op in isl.members for v in op.operands]
        for op in [*isl.exits, *reversed(isl.members), *isl.entries]:
            Rewriter.erase_op(op)
        for op in feeding:  # what only the old ops read (a Linear weight's Transpose)
            if isinstance(op, GraphOp) and op.parent is not None and not any(r.uses for r in op.results):
                Rewriter.erase_op(op)

    def channels_first(self, op: GraphOp, first: dict[SSAValue, SSAValue]) -> tuple[list[Operation], list[SSAValue]]:
        """``op``'s channels-first form: the ops to insert, and the values standing for its results."""
        src = src_of(op)
        consts: list[Operation] = []

        def operand(v: SSAValue) -> SSAValue:
            if v in first:
                return first[v]
            if not isinstance(v.type, TensorType) or not _shape(v):
                return v  # a scalar broadcasts the same either way
            padded = (1,) * (4 - len(_shape(v))) + _shape(v)
            a = self.constant(v)
            if a is None:  # a parameter with one axis longer than 1: the transpose is a reshape
                shape = make_constant(np.array([padded[k] for k in TO_FIRST], np.int64), src, self.weights, "shape")
                consts.extend([shape, build("Reshape", [v, shape.results[0]], {}, src)])
            else:
                consts.append(make_constant(a.reshape(padded).transpose(TO_FIRST), src, self.weights, "channels_first"))
            return consts[-1].results[0]

        kind, attrs = op.ONNX_TYPE, op.onnx_attrs()
        if kind == "LayerNormalization":
            c = _shape(op.operands[0])[-1]
            params = []
            for v in op.operands[1:]:  # one value per channel; a scalar one is broadcast to them
                if _shape(v) != (c,):
                    a = self.constant(v)
                    assert a is not None
                    consts.append(make_constant(np.broadcast_to(a, (c,)).copy(), src, self.weights, "channels_first"))
                    v = consts[-1].results[0]
                params.append(v)
            new = build("graphopt::ChannelLayerNorm", [first[op.operands[0]], *params], {"epsilon": attrs.get("epsilon", 1e-5)}, src)
        elif kind in _LINEAR:  # the conv's kernel [D, C, 1, 1] is W^T
            w = self.constant(op.operands[1])
            if w is not None:
                consts = [make_constant(np.ascontiguousarray(w.T).reshape((*w.T.shape, 1, 1)), src, self.weights, "conv1x1")]
            else:  # W = P^T, P [D, C] a parameter: the kernel is a view of P
                p = self.transposed_parameter(op.operands[1])
                assert p is not None
                shape = make_constant(np.array([*_shape(p), 1, 1], np.int64), src, self.weights, "shape")
                consts = [shape, build("Reshape", [p, shape.results[0]], {}, src)]
            ins = [first[op.operands[0]], consts[-1].results[0], *([op.operands[2]] if kind == "MatMulBias" else [])]
            new = build("Conv", ins, {"kernel_shape": [1, 1]}, src)
        elif kind in _ALONG_AXIS:
            axis = TO_LAST[int(attrs.get("axis", 0)) % 4]
            data = op.operands if kind == "Concat" else op.operands[:1]  # a Split's sizes stay as they are
            specs = [(tuple(_shape(r)[k] for k in TO_FIRST), spec_of(r.type)[1]) for r in op.results]  # pyright: ignore[reportOptionalSubscript]
            new = build(kind, [*map(operand, data), *op.operands[len(data):]], {**attrs, "axis": axis}, src,
                        result_specs=specs)
        elif kind in _REDUCTIONS:
            axes = sorted(TO_LAST[a] for a in self.reduce_axes(op) or [])
            keep = {k: v for k, v in attrs.items() if k != "axes"}
            if "axes" in attrs:
                new = build(kind, [first[op.operands[0]]], {**keep, "axes": axes}, src)
            else:
                consts = [make_constant(np.array(axes, np.int64), src, self.weights, "axes")]
                new = build(kind, [first[op.operands[0]], consts[0].results[0]], keep, src)
        else:  # elementwise
            new = build(kind, [operand(v) for v in op.operands], attrs, src)
        return [*consts, new], list(new.results)


def unflatten_linears(block: Block) -> None:
    """Reshape [a, b, c, K] -> [abc, K], MatMul by a 2-D W (+ bias), Reshape back to
    [a, b, c, D] (a Linear layer over the last axis as torch.export writes it: view, addmm,
    view) -> one MatMul of the 4-D value, which broadcasts over the leading axes alike."""
    for op in list(block.ops):
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in _LINEAR or op.ONNX_DOMAIN not in ("", "graphopt"):
            continue
        r1, r2 = op.operands[0].owner, sole_user(op.results[0], "Reshape")
        if not isinstance(r1, GraphOp) or r1.ONNX_TYPE != "Reshape" or r2 is None or len(list(op.operands[0].uses)) != 1:
            continue
        x, w = r1.operands[0], op.operands[1]
        xs, ws, ys = _shape(x), _shape(w), _shape(r2.results[0])
        if len(xs) != 4 or len(ws) != 2 or min(xs, default=-1) < 1 or _shape(op.operands[0]) != (math.prod(xs[:3]), xs[3]):
            continue
        if ys != (*xs[:3], ws[1]):
            continue
        new = build(op.onnx_key(), [x, *op.operands[1:]], {}, src_of(r1, op, r2))
        Rewriter.insert_op(new, InsertPoint.before(r2))
        r2.results[0].replace_all_uses_with(new.results[0])
        for dead in (r2, op, r1):
            Rewriter.erase_op(dead)


# How far through elementwise ops ``_beside_blocked`` looks for a blocked op.
_NEAR = 8


def _blocked_op(op: Operation | None) -> bool:
    """An op that keeps NC1HWC0 of its own accord: a convolution, pool or per-channel norm."""
    return isinstance(op, GraphOp) and op.has_trait(LayoutSensitive)


def _beside_blocked(isl: _Island) -> bool:
    """Whether the island borders an op that works in NC1HWC0 (through up to ``_NEAR``
    elementwise ops): what feeds its entries, or what reads its exits. Only then does the
    channels-first form save TransData; elsewhere (a Linear over attention heads, CaiT's
    talking heads on [B, N, N, H] scores) it would add a TransData on each side and pad
    the channels to C0."""
    def up(v: SSAValue, depth: int) -> bool:
        op = v.owner
        if _blocked_op(op):
            return True
        return (depth > 0 and isinstance(op, GraphOp) and op.has_trait(Elementwise)
                and any(up(w, depth - 1) for w in op.operands if len(_shape(w)) == 4))

    def down(v: SSAValue, depth: int) -> bool:
        for use in v.uses:
            op = use.operation
            if _blocked_op(op):
                return True
            if depth > 0 and isinstance(op, GraphOp) and op.has_trait(Elementwise) \
                    and any(down(r, depth - 1) for r in op.results):
                return True
        return False

    return any(up(t.operands[0], _NEAR) for t in isl.entries) or any(down(t.results[0], _NEAR) for t in isl.exits)


def whole_islands(block: Block, state: _ChannelsFirst) -> None:
    unflatten_linears(block)
    for isl in state.islands(block):
        if isl.rearranged and not isl.exits:
            continue  # channels-last data by design, rearranged further (windows, sequences)
        why = isl.why_not or ("" if isl.exits else "no Transpose back to channels-first")
        if not why and not _beside_blocked(isl):
            why = "no convolution, pool or channel norm next to it keeps NC1HWC0 (the channels-first form would add TransData)"
        if why:
            state.remarks.append({"pass": "ascend-channels-first", "ops": src_of(*isl.ops()), "reason": f"stays channels-last: {why}"})
            continue
        state.rewrite(isl)


@dataclass(frozen=True)
class ChannelsFirst(ModulePass):
    """Channels-last islands between Transposes rewritten channels-first (see the module doc)."""

    name = "ascend-channels-first"
    chip: str = ""
    precision: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, precision = pass_target(ctx, self.chip, self.precision)
        state = _ChannelsFirst(chip, precision, weights_of(ctx), remarks_of(ctx))
        for fn in op.ops:
            if isinstance(fn, func.FuncOp):
                whole_islands(fn.body.block, state)
