"""Complex tensors as real pairs: a torch complex64 tensor of shape [..., n] is a float32
tensor [..., n, 2] here (``torch.view_as_real``'s layout), so Meta's original LLaMA rotary
(``view_as_complex``, a complex product, ``view_as_real``) lowers to real arithmetic that
every target runs. ``view_as_complex`` and ``view_as_real`` are then the identity.

``COMPLEX_ROWS`` holds the rows used when an op reads or makes a complex tensor; ``walk.py``
dispatches there. A complex graph input (Meta's ``freqs_cis``, which torch.compile passes in)
is fed as its real pairs (``to_numpy``); a complex graph output is refused (return
``torch.view_as_real(x)``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from xdsl.ir import SSAValue

from graphopt.frontends.fx.lowering import Lowering, UnsupportedOp, aten, axis, row, spec
from graphopt.frontends.fx.rows_tensor import _bounds

COMPLEX_ROWS: dict[Any, Callable[..., Any]] = {}


def complex_row(*targets: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for t in targets:
            COMPLEX_ROWS[t] = fn
        return fn

    return register


def is_complex(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.dtype.is_complex


def part_dtype(dt: torch.dtype) -> np.dtype:
    """The real dtype of a complex dtype's parts."""
    return np.dtype(np.float64 if dt == torch.complex128 else np.float32)


def _crank(x: SSAValue) -> int:
    """The complex rank of a pair tensor (its last axis holds real and imaginary parts)."""
    return len(spec(x)[0]) - 1


def _out_shape(L: Lowering) -> list[int]:
    return [int(d) for d in L.val().shape] + [2]


def _parts(L: Lowering, x: SSAValue) -> tuple[SSAValue, SSAValue]:
    """(real, imaginary), each [..., n, 1]."""
    r = len(spec(x)[0])
    re = L.op("Slice", [x, L.ints([0]), L.ints([1]), L.ints([r - 1])])
    im = L.op("Slice", [x, L.ints([1]), L.ints([2]), L.ints([r - 1])])
    return re, im


def _pair(L: Lowering, re: SSAValue, im: SSAValue) -> SSAValue:
    return L.op("Concat", [re, im], {"axis": len(spec(re)[0]) - 1})


# view_as_complex / view_as_real: the representation is already the pair tensor.
@row(aten.view_as_complex.default, aten.view_as_real.default)
@complex_row(aten.view_as_complex.default, aten.view_as_real.default, aten.clone.default, aten.alias.default,
             aten.detach.default, aten.contiguous.default, aten.lift_fresh_copy.default)
def _identity(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    return x


@complex_row(aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.unsqueeze.default,
             aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.flatten.using_ints, aten.view_copy.default)
def _view(L: Lowering, x: SSAValue, *args: Any) -> SSAValue:
    return L.reshape(x, _out_shape(L))


@complex_row(aten.expand.default, aten.expand_copy.default)
def _expand(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    shape = _out_shape(L)
    return x if list(spec(x)[0]) == shape else L.op("Expand", [x, L.ints(shape)])


@complex_row(aten.permute.default)
def _permute(L: Lowering, x: SSAValue, dims: Sequence[int]) -> SSAValue:
    r = _crank(x)
    return L.op("Transpose", [x], {"perm": [axis(int(d), r) for d in dims] + [r]})


@complex_row(aten.transpose.int, aten.t.default)
def _transpose(L: Lowering, x: SSAValue, d0: int = 0, d1: int = 1) -> SSAValue:
    r = _crank(x)
    perm = list(range(r + 1))
    a, b = axis(d0, r), axis(d1, r)
    perm[a], perm[b] = perm[b], perm[a]
    return x if a == b else L.op("Transpose", [x], {"perm": perm})


@complex_row(aten.slice.Tensor)
def _slice(L: Lowering, x: SSAValue, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> SSAValue:
    d = axis(dim, _crank(x))
    size = spec(x)[0][d]
    lo, hi = _bounds(start, end, size)
    if lo == 0 and hi == size and step == 1:
        return x
    return L.op("Slice", [x, L.ints([lo]), L.ints([hi]), L.ints([d]), L.ints([step])])


@complex_row(aten.select.int)
def _select(L: Lowering, x: SSAValue, dim: int, index: int) -> SSAValue:
    return L.op("Gather", [x, L.const(np.asarray(index, np.int64))], {"axis": axis(int(dim), _crank(x))})


@complex_row(aten.cat.default)
def _cat(L: Lowering, tensors: Sequence[SSAValue], dim: int = 0) -> SSAValue:
    return L.op("Concat", list(tensors), {"axis": axis(int(dim), _crank(tensors[0]))})


@complex_row(aten._to_copy.default, aten.to.dtype, aten.type_as.default)
def _to(L: Lowering, x: SSAValue, *args: Any, **kwargs: Any) -> SSAValue:
    want = L.val()
    if not is_complex(want):
        raise UnsupportedOp(f"{L.where()}: a complex tensor cast to {want.dtype} (torch drops the imaginary part) "
                            "is not supported; take torch.view_as_real(x)[..., 0] instead")
    return L.cast(x, part_dtype(want.dtype))


def _operand(L: Lowering, v: Any, like: SSAValue) -> tuple[SSAValue, bool]:
    """(operand, is it complex): a real tensor gains a unit pair axis to broadcast over both parts."""
    if isinstance(v, SSAValue):
        if v in L.pairs:
            return v, True
        real = L.cast(v, spec(like)[1].numpy)
        return L.op("Unsqueeze", [real, L.ints([len(spec(real)[0])])]), False
    if isinstance(v, complex):
        return L.const(np.asarray([v.real, v.imag], spec(like)[1].numpy)), True
    return L.const(np.asarray(v, spec(like)[1].numpy)), False


@complex_row(aten.mul.Tensor, aten.mul.Scalar)
def _mul(L: Lowering, a: Any, b: Any) -> SSAValue:
    like = a if isinstance(a, SSAValue) else b
    (x, xc), (y, yc) = _operand(L, a, like), _operand(L, b, like)
    if not (xc and yc):  # complex times real: both parts scale
        return L.op("Mul", [x, y])
    xr, xi = _parts(L, x)
    yr, yi = _parts(L, y)
    re = L.op("Sub", [L.op("Mul", [xr, yr]), L.op("Mul", [xi, yi])])
    im = L.op("Add", [L.op("Mul", [xr, yi]), L.op("Mul", [xi, yr])])
    return _pair(L, re, im)


@complex_row(aten.add.Tensor, aten.sub.Tensor)
def _add(L: Lowering, a: Any, b: Any, alpha: Any = 1) -> SSAValue:
    like = a if isinstance(a, SSAValue) else b
    (x, xc), (y, yc) = _operand(L, a, like), _operand(L, b, like)
    if not (xc and yc):
        raise UnsupportedOp(f"{L.where()}: adding a real tensor to a complex one is not supported")
    if alpha != 1:
        y = L.op("Mul", [y, L.const(np.asarray(alpha, spec(y)[1].numpy))])
    sub = L.node is not None and L.node.target is aten.sub.Tensor
    return L.op("Sub" if sub else "Add", [x, y])

