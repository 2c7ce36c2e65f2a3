"""Lowered kernels for the emitter tests, built with the ascend dialect's own constructors (the
emitter is tested on its own, apart from the lowering)."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, TensorType, f16, f32, i64
from xdsl.ir import Block, Region

from graphopt.targets.ascend.dialect import BufferOp, CopyOp, ForOp, KernelOp, MmadOp, VecOp


def _module(name: str, kind: str, ins: list[TensorType], outs: list[TensorType], tiling: dict[str, int], build: Callable[[Block], None]) -> ModuleOp:
    fn_block = Block(arg_types=ins)
    body = Block(arg_types=[*ins, *outs])
    build(body)
    k = KernelOp.create(operands=list(fn_block.args), result_types=outs, properties={
        "sym_name": StringAttr(name), "kind": StringAttr(kind), "block_dim": IntegerAttr(4, i64),
        "tiling": DictionaryAttr({key: IntegerAttr(v, i64) for key, v in tiling.items()})}, regions=[Region(body)])
    fn_block.add_ops([k, func.ReturnOp(*k.results)])
    return ModuleOp([func.FuncOp("main", (ins, outs), Region(fn_block))])


def vector_module() -> ModuleOp:
    t = TensorType(f16, [4096])
    def build(b: Block) -> None:
        x, y = b.args
        xin, yout = BufferOp("UB", [1024], f16, 2), BufferOp("UB", [1024], f16, 2)
        loop = ForOp(4, 4)
        i = loop.index
        loop.body.block.add_ops([
            CopyOp(x, xin.result, "MTE2", [i], [0], [1024]),
            VecOp("Exp", [xin.result], [yout.result]),
            VecOp("Relu", [yout.result], [yout.result]),
            CopyOp(yout.result, y, "MTE3", [i], [0], [1024]),
        ])
        b.add_ops([xin, yout, loop])
    return _module("k0_exp_relu", "vector", [t], [t], {"tile_rows": 1024}, build)


def cube_module() -> ModuleOp:
    a_t, c_t = TensorType(f16, [256, 128]), TensorType(f16, [256, 256])
    w_t = TensorType(f16, [128, 256], StringAttr("FRACTAL_NZ"))
    def build(b: Block) -> None:
        a, w, c = b.args
        a1, b1 = BufferOp("L1", [128, 64], f16, 2), BufferOp("L1", [64, 128], f16, 2)
        a2, b2 = BufferOp("L0A", [128, 64], f16, 2), BufferOp("L0B", [64, 128], f16, 2)
        c1 = BufferOp("L0C", [128, 128], f32, 1)
        tiles, ks = ForOp(4, 4), ForOp(2)
        t, k = tiles.index, ks.index
        ks.body.block.add_ops([
            CopyOp(a, a1.result, "MTE2", [k], [1], [64]),
            CopyOp(w, b1.result, "MTE2", [k], [0], [64]),
            CopyOp(a1.result, a2.result, "MTE1"), CopyOp(b1.result, b2.result, "MTE1"),
            MmadOp(c1.result, a2.result, b2.result, [k]),
        ])
        tiles.body.block.add_ops([ks, CopyOp(c1.result, c, "FIX", [t], [0], [128])])
        b.add_ops([a1, b1, a2, b2, c1, tiles])
    return _module("k1_matmul", "cube", [a_t, w_t], [c_t], {"base_m": 128, "base_n": 128, "base_k": 64, "step_k": 1}, build)
