"""ascend-dft-matmul: a DFT of moderate length as a matmul by its constant Fourier matrix.

The AI Core has no FFT; the cube does dense matmuls at its peak. A DFT of length L along one
axis is the matmul of that axis with the L x L Fourier matrix, O(L^2) work against the
FFT's O(L log L), but on the cube instead of the AI CPU the DFT would otherwise run on
(FNet mixes tokens with two DFTs per layer; TPUs run it the same way). FNet-base's mixing,
[1, 512, 768] in force_fp16 on the 910B: 833 us on the AI CPU, 73 us as two matmuls.
With a = re(x), b = im(x) stacked along the DFT axis (b absent for a real input), one
matmul by a real block matrix gives both halves of the result:

    forward   y_re = C a + S b      y_im = C b - S a        C[k, n] = cos(2 pi k n / L)
    inverse   y_re = (C a - S b)/L  y_im = (C b + S a)/L    S[k, n] = sin(2 pi k n / L)

with k < L (L/2 + 1 when ``onesided``) and n over x's length N along the axis: a
``dft_length`` L > N zero-pads the signal (those columns are absent), L < N truncates it
(columns n >= L are zero). The axis is brought second to last when it is not last, the
matrix multiplies from the left there (broadcast over the leading axes), from the right
when it is the last signal axis, and the halves are joined as [..., 2].

Only DFTs with a constant axis and length, L <= ``MAX_LENGTH``, and not the inverse of a
one-sided spectrum (a real output, irfft), and only where the timing model's rough account
puts the matmul form ahead (``_ToMatmul.costs``: a small DFT's AI CPU kernel beats the
launches of the kernels its matmul form makes); the others stay as they are (the AI CPU).
A remark names each DFT rewritten, with both estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NoneType, TensorType
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from graphopt.dialects.graph import GraphOp, provenance
from graphopt.rewrite import NewOps, axes_of, build, constant_value, remarks_of, weights_of
from graphopt.targets.ascend.aicpu_timing import aicpu_cycles, op_work
from graphopt.targets.ascend.chip import Chip, pass_target
from graphopt.targets.ascend.group import np_dtype, shape
from graphopt.targets.ascend.lower_cube import DTYPE_NAME
from graphopt.targets.ascend.vector import Numerics
from graphopt.weights import WeightStore

# The longest DFT run as a matmul: its complex block matrix is then 4 L^2 values (16 MB
# of float16 at 1024); past it the quadratic work outgrows what the FFT saves.
MAX_LENGTH = 1024


def fourier_matrix(n: int, length: int, *, inverse: bool, onesided: bool, complex_input: bool) -> np.ndarray:
    """The real block matrix mapping [a; b] (each n long along the axis) to [y_re; y_im]
    (each K long), as the module docstring says; float64."""
    k_out = length // 2 + 1 if onesided else length
    k = np.arange(k_out)[:, None]
    cols = np.arange(n)[None, :]
    theta = 2 * np.pi * ((k * cols) % length) / length
    live = cols < length  # a truncated signal's tail contributes nothing
    c, s = np.where(live, np.cos(theta), 0.0), np.where(live, np.sin(theta), 0.0)
    if inverse:
        c, s, sign = c / length, s / length, -1.0
    else:
        sign = 1.0
    if not complex_input:  # b = 0: y_re = C a, y_im = -sign S a
        return np.concatenate([c, -sign * s])
    return np.block([[c, sign * s], [-sign * s, c]])


def _axis_and_length(op: GraphOp, weights: WeightStore | None) -> tuple[int, int] | None:
    """(the signal axis of x, counting its dims, L), when both are known at compile time."""
    x = op.operands[0]
    rank = len(shape(x))
    operands = [v if not isinstance(v.type, NoneType) else None for v in op.operands[1:]]
    length_v, axis_v = ([*operands, None, None])[:2]
    attrs = op.onnx_attrs()
    if axis_v is not None:  # opset 20: an input, default -2, counting from the end of x
        found = constant_value(axis_v, weights)
        if found is None:
            return None
        axis = int(found.reshape(-1)[0])
    else:
        axis = int(attrs["axis"]) if attrs.get("axis") is not None else -2
    axis %= rank
    if axis == rank - 1:
        return None  # the re/im axis itself: ill-formed
    if length_v is None:
        return axis, shape(x)[axis]
    found = constant_value(length_v, weights)
    return None if found is None else (axis, int(found.reshape(-1)[0]))


@dataclass
class _ToMatmul(RewritePattern):
    chip: Chip
    num: Numerics
    weights: WeightStore | None
    remarks: list[dict[str, Any]]
    by_cost: bool = True

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: GraphOp, rewriter: PatternRewriter) -> None:
        if op.ONNX_TYPE != "DFT" or op.ONNX_DOMAIN or not isinstance(op.operands[0].type, TensorType):
            return
        x = op.operands[0]
        xs, attrs = shape(x), op.onnx_attrs()
        found = _axis_and_length(op, self.weights)
        inverse, onesided = bool(attrs.get("inverse", 0)), bool(attrs.get("onesided", 0))
        if found is None or min(xs, default=0) < 1 or xs[-1] not in (1, 2) or np_dtype(x).kind != "f":
            return
        axis, length = found
        if not 1 <= length <= MAX_LENGTH or (inverse and onesided):
            return
        picks = _picked_half(op, self.weights)
        free = _given_parts(x, self.weights)
        complex_input = (free[1] is not None) if free is not None else xs[-1] == 2
        matmul_us, aicpu_us = self.costs(op, axis, length, onesided=onesided, complex_input=complex_input,
                                         split=free is None and complex_input, half=picks is not None)
        if matmul_us is None or (self.by_cost and matmul_us >= aicpu_us):
            return
        new = NewOps(provenance(op), self.weights)
        y = _as_matmul(new, x, free or _split_parts(new, x), axis, length, inverse=inverse, onesided=onesided,
                       half=None if picks is None else picks[1])
        self.remarks.append({"pass": "ascend-dft-matmul", "ops": provenance(op),
                             "reason": f"DFT of length {length} along axis {axis}: a matmul by its Fourier matrix on the cube"
                                       f" (about {matmul_us:.1f} us against {aicpu_us:.1f} us on the AI CPU)"})
        rewriter.insert_op(new.ops, InsertPoint.before(op))
        if picks is not None:  # only the real (or imaginary) half is read: Gather's result is y
            for gather in picks[0]:
                gather.results[0].replace_all_uses_with(y)
                rewriter.erase_op(gather)
        else:
            op.results[0].replace_all_uses_with(y)
        rewriter.erase_op(op)

    def costs(self, op: GraphOp, axis: int, length: int, *, onesided: bool, complex_input: bool, split: bool,
              half: bool) -> tuple[float | None, float]:
        """(the matmul form's time, the DFT's on the AI CPU) in us, as the timing model would
        roughly put them: a launch per kernel the matmul form makes (the matmul, and each
        Split, Concat and Transpose, a data-movement kernel, that ``_as_matmul`` adds) plus
        its FLOPs at the cube's peak, against the AI CPU's launch, transfers and work
        (``aicpu_timing``). None when the cube has no mode for the dtype (float32 on the 310P)."""
        chip, dtype = self.chip, DTYPE_NAME.get(np.dtype(self.num.cube_in))
        if dtype is None or dtype not in chip.macs_per_cycle:
            return None, 0.0
        x, y = op.operands[0], op.results[0]
        xs = shape(x)
        rank = len(xs) - 1
        rows = (length // 2 + 1 if onesided else length) * (1 if half else 2)
        cols = xs[axis] * (2 if complex_input else 1)
        flops = 2.0 * rows * cols * math.prod(xs[:-1]) / xs[axis]
        moved = axis < rank - 2
        kernels = 1 + split + complex_input + (0 if half else 2) + moved * (2 if complex_input else 1) + moved
        cube = kernels * chip.launch_cycles(chip.cube_cores) + flops / chip.peak_flops(dtype) * chip.clock_ghz * 1e9
        store = self.num.store(np_dtype(x)).itemsize
        nbytes = [math.prod(shape(v)) * store for v in (x, y)]
        aicpu = chip.launch_cycles(1) + sum(aicpu_cycles(chip, nbytes[0], op_work(y, [x]), nbytes[1]))
        return chip.cycles_to_us(cube), chip.cycles_to_us(aicpu)


def _given_parts(x: SSAValue, weights: WeightStore | None) -> tuple[SSAValue, SSAValue | None] | None:
    """(re, im) of x when x is Concat(Unsqueeze(re), Unsqueeze(im)) on its last axis (a
    complex signal built from two real ones, or a DFT this pass rewrote before), im None
    where it is a constant zero: taken as they are, with no Split. None otherwise."""
    last = len(shape(x)) - 1
    cat = x.owner
    if not isinstance(cat, GraphOp) or cat.ONNX_TYPE != "Concat" or len(cat.operands) != 2 \
            or int(cat.onnx_attrs().get("axis", 0)) % (last + 1) != last:
        return None
    halves: list[SSAValue | None] = []
    for v in cat.operands:
        u = v.owner
        zero = constant_value(v, weights)
        if zero is not None and not zero.any():
            halves.append(None)
        elif isinstance(u, GraphOp) and u.ONNX_TYPE == "Unsqueeze" and len(shape(u.operands[0])) == last \
                and _axes(u, weights) == [last]:
            halves.append(u.operands[0])
        else:
            return None
    re, im = halves
    return None if re is None else (re, im)


def _split_parts(new: NewOps, x: SSAValue) -> tuple[SSAValue, SSAValue | None]:
    """(re, im) of x [..., 1 or 2] without the last axis, im None for a real x."""
    if shape(x)[-1] == 1:
        return new.op("Squeeze", [x, new.ints([-1], "dft.squeeze")]), None
    a, b = (new.op("Squeeze", [h, new.ints([-1], "dft.squeeze")]) for h in _split(new, x, [1, 1], -1))
    return a, b


def _axes(op: GraphOp, weights: WeightStore | None) -> list[int] | None:
    """An Unsqueeze's axes (attribute before opset 13, input after), counted from the front."""
    rank = len(shape(op.results[0]))
    axes = axes_of(op, weights)
    return None if axes is None else sorted(a % rank for a in axes)


def _picked_half(op: GraphOp, weights: WeightStore | None) -> tuple[list[GraphOp], int] | None:
    """(the Gathers, 0 or 1) when every use of the DFT's result is a Gather of the same
    scalar index on its last axis: torch's ``.real`` (FNet keeps the real part only)."""
    y = op.results[0]
    last = len(shape(y)) - 1
    gathers, picked = [], set()
    for use in y.uses:
        g = use.operation
        if not isinstance(g, GraphOp) or g.ONNX_TYPE != "Gather" or use.index != 0 \
                or int(g.onnx_attrs().get("axis", 0)) % (last + 1) != last:
            return None
        index = constant_value(g.operands[1], weights)
        if index is None or index.shape != () or int(index) % 2 not in (0, 1):
            return None
        gathers.append(g)
        picked.add(int(index) % 2)
    return (gathers, picked.pop()) if gathers and len(picked) == 1 else None


def _as_matmul(new: NewOps, x: SSAValue, parts: tuple[SSAValue, SSAValue | None], axis: int, length: int, *,
               inverse: bool, onesided: bool, half: int | None) -> SSAValue:
    """The DFT as a matmul; ``half`` 0 or 1: only the real or imaginary part, without the
    re/im axis (what a Gather of it on that axis gives)."""
    xs, dt = shape(x), np_dtype(x)
    rank = len(xs) - 1  # of the signal, without re/im
    a, b = parts
    last = axis == rank - 1
    perm = None
    if not last and axis != rank - 2:  # bring the axis second to last
        perm = [d for d in range(rank) if d != axis]
        perm.insert(rank - 2, axis)
        a = new.op("Transpose", [a], {"perm": perm})
        b = new.op("Transpose", [b], {"perm": perm}) if b is not None else None
    along = -1 if last else -2
    signal = new.op("Concat", [a, b], {"axis": along}) if b is not None else a
    w = fourier_matrix(xs[axis], length, inverse=inverse, onesided=onesided, complex_input=b is not None).astype(dt)
    k_out = w.shape[0] // 2
    if half is not None:
        w = w[half * k_out:(half + 1) * k_out]
    if last:  # [..., n] @ W^T
        y = new.op("MatMul", [signal, new.const(np.ascontiguousarray(w.T), "dft.fourier")])
    else:  # W @ [..., n, m], W broadcast over the leading axes
        y = new.op("MatMul", [new.const(w, "dft.fourier"), signal])
    if half is None:
        re, im = (new.op("Unsqueeze", [h, new.ints([-1], "dft.unsqueeze")]) for h in _split(new, y, [k_out, k_out], along))
        y = new.op("Concat", [re, im], {"axis": -1})
    if perm is not None:  # the axis back from second to last to where it was
        back = [int(p) for p in np.argsort(perm)]
        y = new.op("Transpose", [y], {"perm": back if half is not None else [*back, rank]})
    return y


def _split(new: NewOps, v: SSAValue, sizes: list[int], axis: int) -> list[SSAValue]:
    """Split ``v`` into parts of ``sizes`` along ``axis``."""
    split = build("Split", [v, new.ints(sizes, "dft.split")], {"axis": axis}, new.src, n_results=len(sizes))
    new.ops.append(split)
    return list(split.results)


@dataclass(frozen=True)
class DftMatmulPass(ModulePass):
    """A DFT of moderate length as a matmul by its Fourier matrix (see the module doc)."""

    name = "ascend-dft-matmul"
    chip: str = ""
    precision: str = ""
    by_cost: bool = True  # false: every DFT the matmul form can express, whatever the estimates say

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip, precision = pass_target(ctx, self.chip, self.precision)
        pattern = _ToMatmul(chip, Numerics.of(precision), weights_of(ctx), remarks_of(ctx), self.by_cost)
        PatternRewriteWalker(pattern).rewrite_module(op)
