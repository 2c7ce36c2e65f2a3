"""How a cube group (a MatMul / Gemm / MatMulBias / Conv and its elementwise epilogue) maps
onto the matmul kernel template: views of its GM operands as [batch, M, K] / [batch, K, N]
/ [batch, M, N] (``CubeSpec``), and the epilogue as vector steps (``EpiStep``).

- MatMul and MatMulBias with a 2-D right operand merge every leading dim into M (one big
  GEMM); with batched operands, leading dims broadcast to the output's (numpy rules).
- Gemm: transA/transB are transposed views; alpha, beta and C are epilogue steps.
- Conv (2-D): A is the im2col matrix [group, N*Ho*Wo, Cin/group*kh*kw] (made by the copy's
  ``im2col``, as Load3D does), B the weights viewed [group, K, Cout/group], C the output
  viewed [group, N*Ho*Wo, Cout/group]; the bias is an epilogue Add. A 1-D Conv is the 2-D
  one over H = 1 (its views hold the same elements; ``im2col`` reads [N, C, W] as [N, C, 1, W]).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from xdsl.dialects.builtin import NoneType

from graphopt.dialects import attrs as A
from graphopt.dialects.graph import ConstantOp, GraphOp
from graphopt.targets.ascend.group import Group, np_dtype, shape
from graphopt.targets.ascend.lower_cube import CubeSpec, EpiStep, Ref
from graphopt.targets.ascend.vector import VECTOR_OPS, Numerics
from graphopt.targets.ascend.vector_kernel import format_changes


def cube_group(g: Group, num: Numerics) -> tuple[CubeSpec, list[EpiStep], list[Ref]] | str:
    """The cube kernel of group ``g`` (lower.Group), or why it cannot be one."""

    first: GraphOp = g.ops[0]
    index = {a: k for k, a in enumerate(g.args)}
    if any(v not in index for v in first.operands[:2]):
        return "the cube operands are computed inside the group"
    out = list(shape(first.results[0]))
    a_s, b_s = list(shape(first.operands[0])), list(shape(first.operands[1]))
    ia, ib = index[first.operands[0]], index[first.operands[1]]
    steps: list[EpiStep] = []
    acc: Ref = ("acc",)
    t = first.ONNX_TYPE
    vdt = num.store(np_dtype(first.results[0]))
    if t in ("MatMul", "MatMulBias"):
        spec = _matmul(a_s, b_s, out, ia, ib)
        if isinstance(spec, str):
            return spec
        if t == "MatMulBias":
            k = index.get(first.operands[2])
            if k is None:
                return "the bias is computed inside the group"
            spec.arg_views[k] = operand_view(list(shape(first.operands[2])), out, spec.out_view)
            steps.append(EpiStep("Add", (acc, ("arg", k)), {}, num.compute("Add", vdt)))
    elif t == "Gemm":
        made = _gemm(first, a_s, b_s, out, ia, ib, index, num, vdt)
        if isinstance(made, str):
            return made
        spec, steps = made
    else:
        made_conv = _conv(first, a_s, b_s, out, ia, ib, index, num, vdt)
        if isinstance(made_conv, str):
            return made_conv
        spec, steps = made_conv
    refs: dict[Any, Ref] = {first.results[0]: ("step", len(steps) - 1) if steps else acc}
    same = format_changes(g)  # a TransData inside the group: the same logical tile
    for op in g.ops[1:]:
        row = VECTOR_OPS.get(op.ONNX_TYPE)
        if row is None or row.first_mixed_axis is not None or len(op.results) != 1:
            return f"epilogue op {op.ONNX_TYPE} is not elementwise"
        if list(shape(op.results[0])) != out:
            return f"epilogue op {op.ONNX_TYPE} changes the shape"
        ins: list[Ref] = []
        for v in (same.get(v, v) for v in op.operands):
            if v in refs:
                ins.append(refs[v])
            elif v in index:  # a kernel input (hoisted constants included)
                spec.arg_views[index[v]] = operand_view(list(shape(v)), out, spec.out_view)
                ins.append(("arg", index[v]))
            elif isinstance(v.owner, ConstantOp):
                if v.owner.array().size != 1:
                    return "a non-scalar constant in the epilogue"
                ins.append(("const", v.owner.value))
            else:
                return "an epilogue operand the kernel cannot load"
        dt = num.compute(op.ONNX_TYPE, num.store(np_dtype(op.results[0])))
        steps.append(EpiStep(op.ONNX_TYPE, tuple(ins), dict(op.properties), dt))
        refs[op.results[0]] = ("step", len(steps) - 1)
    results: list[Ref] = []
    for y in (same.get(y, y) for y in g.yields):
        if y not in refs or list(shape(y)) != out:
            return "the group yields a value the cube kernel does not compute"
        results.append(refs[y])
    return spec, steps, results


def operand_view(xs: list[int], out: list[int], out_view: dict[str, Any]) -> dict[str, Any]:
    """The view of an epilogue operand (numpy-broadcast to ``out``) matching ``out_view``."""
    padded = [1] * (len(out) - len(xs)) + xs
    if padded == out:
        return out_view
    # A row of the output's last dim, when that dim is the cube's N (not when a 1-D B dropped N).
    plain = "perm" not in out_view and "split" not in out_view and out_view["shape"][-1] == out[-1]
    if plain and all(d == 1 for d in padded[:-1]):
        return {"shape": [1] * (len(out_view["shape"]) - 1) + [padded[-1]]}
    return {"pre": padded, "bcast": out, **out_view}


def _matmul(a: list[int], b: list[int], out: list[int], ia: int, ib: int) -> CubeSpec | str:
    if len(b) == 1:  # numpy matmul: b as a [k, 1] column, that dim dropped from the result
        mt, k = math.prod(a[:-1]), b[0]
        return CubeSpec(1, mt, 1, k, ia, ib, {"shape": [1, mt, k]}, {"shape": [1, k, 1]}, {"shape": [1, mt, 1]})
    if len(a) == 1:  # a as a [1, k] row (broadcast over b's batch), that dim dropped from the result
        a, out = [1, a[0]], [*out[:-1], 1, out[-1]]
    m, k, n = a[-2], a[-1], b[-1]
    if len(b) == 2:
        mt = math.prod(a[:-1])
        return CubeSpec(1, mt, n, k, ia, ib, {"shape": [1, mt, k]}, {"shape": [1, k, n]}, {"shape": [1, mt, n]})
    lead, rank = out[:-2], len(out)
    bt = math.prod(lead)

    def view(s: list[int], last: list[int]) -> dict[str, Any]:
        p = [1] * (rank - len(s)) + s
        return {"shape": [bt, *last]} if p[:-2] == lead else {"pre": p, "bcast": lead + last, "shape": [bt, *last]}

    return CubeSpec(bt, m, n, k, ia, ib, view(a, [m, k]), view(b, [k, n]), {"shape": [bt, m, n]})


def _gemm(op: GraphOp, a: list[int], b: list[int], out: list[int], ia: int, ib: int, index: dict[Any, int],
          num: Numerics, vdt: np.dtype) -> tuple[CubeSpec, list[EpiStep]] | str:
    at = op.onnx_attrs()
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    m, n = out
    k = a[0] if at.get("transA", 0) else a[1]
    a_view = {"perm": [1, 0], "shape": [1, m, k]} if at.get("transA", 0) else {"shape": [1, m, k]}
    b_view = {"perm": [1, 0], "shape": [1, k, n]} if at.get("transB", 0) else {"shape": [1, k, n]}
    spec = CubeSpec(1, m, n, k, ia, ib, a_view, b_view, {"shape": [1, m, n]})
    steps: list[EpiStep] = []
    acc: Ref = ("acc",)
    dt = num.compute("Mul", vdt)
    if alpha != 1.0:
        steps.append(EpiStep("Mul", (acc, ("const", A.dense(np.array(alpha, np.float32)))), {}, dt))
        acc = ("step", 0)
    c = op.operands[2] if len(op.operands) > 2 and not isinstance(op.operands[2].type, NoneType) else None
    if c is not None:
        if c not in index:
            return "Gemm's C is computed inside the group"

        kc = index[c]
        spec.arg_views[kc] = operand_view(list(shape(c)), out, spec.out_view)
        cref: Ref = ("arg", kc)
        if beta != 1.0:
            steps.append(EpiStep("Mul", (cref, ("const", A.dense(np.array(beta, np.float32)))), {}, dt))
            cref = ("step", len(steps) - 1)
        steps.append(EpiStep("Add", (acc, cref), {}, dt))
    return spec, steps


def _conv(op: GraphOp, x: list[int], w: list[int], out: list[int], ia: int, ib: int, index: dict[Any, int],
          num: Numerics, vdt: np.dtype) -> tuple[CubeSpec, list[EpiStep]] | str:
    at = op.onnx_attrs()
    if len(x) == 3:  # 1-D (speech front ends, Whisper's encoder): a 2-D conv over H = 1
        x, w, out = [x[0], x[1], 1, x[2]], [*w[:2], 1, w[2]], [*out[:2], 1, out[2]]
        at = {**at, "strides": [1, *(at.get("strides") or [1])], "dilations": [1, *(at.get("dilations") or [1])],
              "pads": [0, *(at.get("pads") or [0, 0])[:1], 0, *(at.get("pads") or [0, 0])[1:]]}
    if len(x) != 4:
        return "a convolution that is not 1-D or 2-D"
    n, _, h, wd = x
    co, cig, kh, kw = w
    g = int(at.get("group", 1))
    ho, wo = out[2], out[3]
    s = list(at.get("strides") or [1, 1])
    d = list(at.get("dilations") or [1, 1])
    pads = list(at.get("pads") or [0, 0, 0, 0])
    auto = at.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i, (size, o, kk) in enumerate(((h, ho, kh), (wd, wo, kw))):
            total = max(0, (o - 1) * s[i] + (kk - 1) * d[i] + 1 - size)
            small = total // 2
            pads[i], pads[i + 2] = (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
    cog, k, m = co // g, cig * kh * kw, n * ho * wo
    im2col = {"kernel": [kh, kw], "strides": s, "pads": pads, "dilations": d, "group": g, "out": [ho, wo]}
    spec = CubeSpec(g, m, cog, k, ia, ib, {"shape": [g, m, k]}, {"pre": [g, cog, k], "perm": [0, 2, 1], "shape": [g, k, cog]},
                    {"split": [n, g, cog, ho, wo], "perm": [1, 0, 3, 4, 2], "shape": [g, m, cog]}, im2col)
    steps: list[EpiStep] = []
    bias = op.operands[2] if len(op.operands) > 2 and not isinstance(op.operands[2].type, NoneType) else None
    if bias is not None:
        if bias not in index:
            return "the conv bias is computed inside the group"
        spec.arg_views[index[bias]] = {"shape": [g, 1, cog]}
        steps.append(EpiStep("Add", (("acc",), ("arg", index[bias])), {}, num.compute("Add", vdt)))
    return spec, steps
