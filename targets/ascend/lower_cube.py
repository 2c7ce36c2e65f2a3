"""Cube kernels: tiled matmul (MatMul, Gemm, MatMulBias, Conv as im2col) with a vector
epilogue (flash attention: ``lower_attention.py``). See ``lower.py`` for what chooses them.

A matmul kernel computes, per batch b, C[b] = A[b] @ B[b] on views of its GM operands
(``CubeSpec``: A as [Ba, M, K], B as [Bb, K, N], C as [B, M, N]; a conv's A is the im2col
matrix of its input, one batch per group). The program, per core (DaVinci GEMM, as
AscendC's Matmul API and the pto-isa GEMM kernel do it):

    for b (grid_b core groups), for mi (grid_m cores), for ni (grid_n cores):  C tiles
                                       base_m x base_n (columns outer: ni, then mi)
      for ko:   MTE2 GM->L1 A panel [base_m, step_k*base_k], B panel   (L1 double buffered)
        for ki: MTE1 L1->L0A, L1->L0B; M mmad into L0C (init on the first K step)
      no epilogue:  FIX L0C->GM (coupled chips: V L0C->UB, MTE3 UB->GM)
      epilogue:     L0C->UB (split chips: FIX to a GM workspace, cross-core flag, MTE2 to
                    the AIV's UB), MTE2 epilogue operands GM->UB, vector ops, MTE3 UB->GM
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.ir import Attribute, SSAValue

from graphopt.targets.ascend.builder import KernelBuilder
from graphopt.targets.ascend.chip import Chip
from graphopt.targets.ascend.dialect import ConstOp, KernelOp
from graphopt.targets.ascend.tiling import MatmulTiling, choose_tiling
from graphopt.targets.ascend.vector import Numerics

# An epilogue operand: ("acc",) the cube result, ("arg", k) kernel input k (with its view in
# CubeSpec.arg_views), ("const", dense) a constant, ("step", j) the result of step j.
Ref = tuple[Any, ...]


@dataclass(frozen=True)
class EpiStep:
    op: str  # a VECTOR_OPS row
    ins: tuple[Ref, ...]
    attrs: dict[str, Attribute]
    dtype: np.dtype  # what the vector unit computes it in (its UB buffer's dtype)


@dataclass
class CubeSpec:
    batch: int
    m: int
    n: int
    k: int
    a: int  # kernel input index of A
    b: int
    a_view: dict[str, Any]
    b_view: dict[str, Any]
    out_view: dict[str, Any]
    a_im2col: dict[str, Any] | None = None
    arg_views: dict[int, dict[str, Any]] = field(default_factory=dict)


DTYPE_NAME = {np.dtype(np.float16): "fp16", np.dtype(np.float32): "fp32"}


def _up(x: int, a: int) -> int:
    return -(-x // a) * a


def build_matmul(
    name: str,
    chip: Chip,
    num: Numerics,
    strategy: str,
    ins: Sequence[SSAValue],
    out_types: Sequence[Attribute],
    spec: CubeSpec,
    steps: Sequence[EpiStep],
    results: Sequence[Ref],
    model_flops: int | None = None,
) -> KernelOp:
    """The cube kernel of ``spec`` whose outputs are ``results`` (refs into the epilogue);
    ``model_flops``: the model's FLOPs when the cube does more (see conv_transpose.py)."""
    dt = num.cube_in
    plain = not steps and all(r == ("acc",) for r in results)
    ub = 0 if plain and chip.path("L0C", "GM") is not None else _epilogue_ub(kb_args=ins, num=num, spec=spec, steps=steps, plain=plain)
    t = choose_tiling(chip, spec.m, spec.n, spec.k, DTYPE_NAME[np.dtype(dt)], "fp32", strategy, epilogue_ub=ub,
                      batch=spec.batch)
    bm, bn, bk, sk = t.base_m, t.base_n, t.base_k, t.step_k
    kb = KernelBuilder(name, "cube", ins, out_types)
    l1a = kb.buffer("L1", [bm, bk * sk], dt, t.l1_buffers)
    l1b = kb.buffer("L1", [bk * sk, bn], dt, t.l1_buffers)
    l0a = kb.buffer("L0A", [bm, bk], dt, t.l0_buffers)
    l0b = kb.buffer("L0B", [bk, bn], dt, t.l0_buffers)
    l0c = kb.buffer("L0C", [bm, bn], np.float32, t.l0c_buffers)
    panels = math.ceil(t.k_steps / sk)
    with kb.loop(spec.batch, t.grid_b) as b, _tile_loops(kb, t) as (mi, ni):
        with kb.loop(panels) as ko:
            kb.copy(kb.arg(spec.a), l1a, "MTE2", [b, mi, ko], [0, 1, 2], [1, bm, bk * sk], spec.a_view, spec.a_im2col)
            kb.copy(kb.arg(spec.b), l1b, "MTE2", [b, ko, ni], [0, 1, 2], [1, bk * sk, bn], spec.b_view)
            kb.flag("MTE2", "MTE1")
            with kb.loop(sk) as ki:
                kb.copy(l1a, l0a, "MTE1", [ki], [1], [bk])
                kb.copy(l1b, l0b, "MTE1", [ki], [0], [bk])
                kb.flag("MTE1", "M")
                kb.mmad(l0c, l0a, l0b, [ko, ki])
        kb.flag("M", "FIX" if chip.has_fixpipe else "V")
        where = ([b, mi, ni], [0, 1, 2], [1, bm, bn])
        if not steps and all(r == ("acc",) for r in results):
            for k in range(len(results)):
                _store_acc(kb, chip, num, l0c, kb.out(k), spec.out_view, where, [bm, bn], out_types[k])
        else:
            ub = _acc_to_ub(kb, chip, num, l0c, [bm, bn])
            _epilogue(kb, spec, steps, results, ub, where, [bm, bn], out_types)
    tiling = {
        "base_m": bm, "base_n": bn, "base_k": bk, "step_k": sk, "grid_m": t.grid_m, "grid_n": t.grid_n, "grid_b": t.grid_b,
        "batch": spec.batch, "m": spec.m, "n": spec.n, "k": spec.k, "dtype": DTYPE_NAME[np.dtype(dt)],
        "l0c_buffers": t.l0c_buffers, "strategy": strategy, "order": t.order,
    }
    if model_flops is not None:
        tiling["model_flops"] = model_flops
    return kb.finish(t.block_dim, tiling)


def _epilogue_ub(kb_args: Sequence[SSAValue], num: Numerics, spec: CubeSpec, steps: Sequence[EpiStep], plain: bool) -> int:
    """UB bytes per C element of the epilogue's double-buffered tiles (see _acc_to_ub, _epilogue):
    the accumulator, each loaded operand (a full tile at worst) and each step's result."""
    if plain:
        return 2 * np.dtype(num.storage).itemsize
    need = 2 * np.dtype(num.vector).itemsize
    for k in dict.fromkeys(r[1] for s in steps for r in s.ins if r[0] == "arg"):
        need += 2 * _np_of(kb_args[k].type).itemsize
    return need + sum(2 * np.dtype(s.dtype).itemsize for s in steps)


@contextmanager
def _tile_loops(kb: KernelBuilder, t: MatmulTiling) -> Iterator[tuple[SSAValue, SSAValue]]:
    """The two parallel loops over C tiles, rows outer or columns outer as the tiling says
    (which operand a strip of tiles re-reads from L2: ``matmul_kernel.matmul_traffic``)."""
    if t.order == "cols":
        with kb.loop(t.tiles_n, t.grid_n) as ni, kb.loop(t.tiles_m, t.grid_m) as mi:
            yield mi, ni
    else:
        with kb.loop(t.tiles_m, t.grid_m) as mi, kb.loop(t.tiles_n, t.grid_n) as ni:
            yield mi, ni


def _store_acc(kb: KernelBuilder, chip: Chip, num: Numerics, l0c: SSAValue, out: SSAValue, view: dict[str, Any],
               where: tuple[list[SSAValue], list[int], list[int]], tile: list[int], out_type: Attribute) -> None:
    """L0C -> GM along the chip's cube output path (FixPipe, or L0C->UB->GM)."""
    index, dims, sizes = where
    if chip.path("L0C", "GM") is not None:
        kb.copy(l0c, out, "FIX", index, dims, sizes, view)
        return
    ub = kb.buffer("UB", tile, num.storage, 2)
    kb.copy(l0c, ub, "V")
    kb.flag("V", "MTE3")
    kb.copy(ub, out, "MTE3", index, dims, sizes, view)


def _acc_to_ub(kb: KernelBuilder, chip: Chip, num: Numerics, l0c: SSAValue, tile: list[int]) -> SSAValue:
    """The accumulator tile in UB for the vector side: through a GM workspace with a
    cross-core flag on split chips (AIC and AIV share no SRAM [OFF]), directly on coupled ones."""
    ub = kb.buffer("UB", tile, num.vector, 2)
    if chip.path("L0C", "UB") is not None:
        kb.copy(l0c, ub, "V")
        return ub
    ws = kb.buffer("GM", tile, num.storage, 2)
    kb.copy(l0c, ws, "FIX")
    kb.flag("FIX", "MTE2", cross_core=True)
    kb.copy(ws, ub, "MTE2")
    return ub


def _epilogue(kb: KernelBuilder, spec: CubeSpec, steps: Sequence[EpiStep], results: Sequence[Ref], acc: SSAValue,
              where: tuple[list[SSAValue], list[int], list[int]], tile: list[int], out_types: Sequence[Attribute]) -> None:
    index, dims, sizes = where
    loaded: dict[Ref, SSAValue] = {("acc",): acc}
    # In first-use order: a set of tuples holding strings would order the loads by hash seed.
    for ref in dict.fromkeys(r for s in steps for r in s.ins if r[0] == "arg"):
        view = spec.arg_views[ref[1]]
        shape = view["shape"]
        buf_shape = [tile[0] if shape[-2] > 1 else 1, tile[1] if shape[-1] > 1 else 1]
        buf = kb.buffer("UB", buf_shape, _np_of(kb.arg(ref[1]).type), 2)
        kb.copy(kb.arg(ref[1]), buf, "MTE2", index, dims, sizes, view)
        loaded[ref] = buf
    if len(loaded) > 1:
        kb.flag("MTE2", "V")
    for j, step in enumerate(steps):
        ins = [_operand(kb, loaded, r) for r in step.ins]
        out = kb.buffer("UB", tile, step.dtype, 2)
        kb.vec(step.op, ins, [out], step.attrs)
        loaded[("step", j)] = out
    kb.flag("V", "MTE3")
    for k, ref in enumerate(results):
        kb.copy(_operand(kb, loaded, ref), kb.out(k), "MTE3", index, dims, sizes, spec.out_view)


def _operand(kb: KernelBuilder, loaded: dict[Ref, SSAValue], ref: Ref) -> SSAValue:
    if ref[0] == "const":
        return kb.add(ConstOp(ref[1])).results[0]
    return loaded[ref]


def _np_of(t: Attribute) -> np.dtype:
    from xdsl.dialects.builtin import TensorType

    from graphopt import dtypes

    assert isinstance(t, TensorType)
    return dtypes.from_ir(t.element_type).numpy
