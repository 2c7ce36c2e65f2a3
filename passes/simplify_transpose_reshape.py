"""simplify-transpose-reshape: collapse chains of data-movement ops.

    transpose(transpose(x, p), q)          -> transpose(x, p∘q)   (nothing if the identity)
    reshape(reshape(x, s1), s2)            -> reshape(x, s2)
       (Reshape, Flatten, Squeeze and Unsqueeze all count as reshapes: shapes are static)
    a chain of them that only permutes x's axes -> transpose(x, q)
    a chain of them that only reorders x along one axis -> gather(x, indices, axis)
       (ShuffleNet's channel shuffle: reshape [N, g, C/g, H, W], transpose, reshape [N, C, H, W])

A reshape whose result equals its input is left to remove-identity.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from graphopt.dialects.graph import ConstantOp, GraphOp, Transpose
from graphopt.dialects.types import shape_of  # unknown dims as -1
from graphopt.rewrite import build, producer, src_of

_RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


class TransposeOfTranspose(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: Transpose, rewriter: PatternRewriter) -> None:
        inner = op.data.owner
        if not isinstance(inner, Transpose):
            return
        rank = len(op.results[0].type.get_shape())  # type: ignore[union-attr]
        p = inner.onnx_attrs().get("perm", list(range(rank))[::-1])
        q = op.onnx_attrs().get("perm", list(range(rank))[::-1])
        composed = [p[i] for i in q]
        x = inner.data
        if composed == list(range(rank)):
            rewriter.replace(op, [], [x])
            return
        rewriter.replace(op, build("Transpose", [x], {"perm": composed}, src_of(inner, op)))


class ReshapeOfReshape(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in _RESHAPES:
            return
        inner = producer(op.operands[0])
        if inner is None or inner.ONNX_TYPE not in _RESHAPES:
            return
        out = op.results[0].type
        if not isinstance(out, TensorType) or -1 in shape_of(out):
            return
        shape = ConstantOp(np.asarray(out.get_shape(), dtype=np.int64), src_of(op))
        new = build("Reshape", [inner.operands[0], shape.result], {}, src_of(inner, op))
        rewriter.replace(op, [shape, new])


_MOVES = _RESHAPES | {"Transpose"}
_PROBE_MAX = 1 << 20  # elements: the chain is checked by moving an index array through it


def _chain(op: GraphOp) -> list[GraphOp]:
    """The reshape/transpose ops ending at op whose intermediate results have one user."""
    chain = [op]
    while True:
        inner = producer(chain[0].operands[0])
        if inner is None or inner.ONNX_TYPE not in _MOVES or not inner.results[0].has_one_use():
            return chain
        chain.insert(0, inner)


def _moved(chain: list[GraphOp]) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """(where each element of the chain's result comes from in x, as flat indices; x's
    shape), or None when a shape in the chain is not static or the probe would be large."""
    x_type, y_type = chain[0].operands[0].type, chain[-1].results[0].type
    if not isinstance(x_type, TensorType) or not isinstance(y_type, TensorType):
        return None
    x_shape = shape_of(x_type)
    size = int(np.prod(x_shape))
    if len(x_shape) > 6 or size > _PROBE_MAX or -1 in x_shape:
        return None
    moved = np.arange(size).reshape(x_shape)
    for op in chain:
        if op.ONNX_TYPE == "Transpose":
            moved = np.transpose(moved, op.onnx_attrs().get("perm"))
        else:  # each reshape's result must be static too (a dynamic one is not a probe's shape)
            t = op.results[0].type
            if not isinstance(t, TensorType) or -1 in shape_of(t):
                return None
            moved = moved.reshape(shape_of(t))
    return moved, x_shape


def _as_transpose(chain: list[GraphOp]) -> list[int] | None:
    """The permutation q with chain(x) == transpose(x, q), if there is one.

    Moves an array of element indices through the chain and compares with every
    permutation that maps x's shape onto the result's (at most rank! of them)."""
    found = _moved(chain)
    if found is None:
        return None
    moved, x_shape = found
    if moved.ndim != len(x_shape):
        return None
    probe = np.arange(moved.size).reshape(x_shape)
    for q in itertools.permutations(range(len(x_shape))):
        if tuple(x_shape[i] for i in q) == moved.shape and np.array_equal(np.transpose(probe, q), moved):
            return list(q)
    return None


def _as_gather(chain: list[GraphOp]) -> tuple[int, np.ndarray] | None:
    """(axis, indices) with chain(x) == gather(x, indices, axis) and x's shape kept, if the
    chain only reorders x along one axis."""
    found = _moved(chain)
    if found is None or found[0].shape != found[1]:
        return None
    moved, x_shape = found
    source = np.unravel_index(moved, x_shape)  # per result element: its coordinates in x
    grid = np.indices(x_shape)
    for axis in range(len(x_shape)):
        others = all(np.array_equal(source[b], grid[b]) for b in range(len(x_shape)) if b != axis)
        if not others:
            continue
        index = np.moveaxis(source[axis], axis, 0).reshape(x_shape[axis], -1)
        if (index == index[:, :1]).all():  # the same source index all along the other axes
            return axis, index[:, 0].astype(np.int64)
    return None


class MovementChainToTranspose(RewritePattern):
    """reshape/transpose chains that only permute axes (exporters split and merge batch
    and head axes around a 3-D transpose) -> one transpose; chains that only reorder one
    axis (a channel shuffle) -> one gather with constant indices."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or op.ONNX_TYPE not in _MOVES:
            return
        full = _chain(op)
        # The longest tail of the chain that is a permutation of axes, or of the indices of
        # one axis (each rewrite removes ops, so this terminates).
        for start in range(len(full) - 1):
            chain = full[start:]
            perm = _as_transpose(chain)
            gather = _as_gather(chain) if perm is None else None
            if perm is not None or gather is not None:
                break
        else:
            return
        x = chain[0].operands[0]
        if perm == list(range(len(perm or []))) and perm is not None:
            rewriter.replace(op, [], [x])
        elif perm is not None:
            rewriter.replace(op, build("Transpose", [x], {"perm": perm}, src_of(*chain)))
        else:
            assert gather is not None
            axis, index = gather
            indices = ConstantOp(index, src_of(*chain))
            rewriter.replace(op, [indices, build("Gather", [x, indices.result], {"axis": axis}, src_of(*chain))])


@dataclass(frozen=True)
class SimplifyTransposeReshape(ModulePass):
    """Compose chains of transposes, and chains of reshapes, into one op each."""

    name = "simplify-transpose-reshape"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier([TransposeOfTranspose(), ReshapeOfReshape(), MovementChainToTranspose()])
        PatternRewriteWalker(patterns).rewrite_module(op)
