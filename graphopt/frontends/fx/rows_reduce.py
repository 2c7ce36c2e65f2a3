"""``FX_TO_GRAPH`` rows for reductions: sum/mean/max/min/prod, any, var, argmax/argmin,
cumsum, topk, sort."""

from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from graphopt.frontends.fx.lowering import Lowering, Row, aten, axis, rank, row, spec

# -- reductions ---------------------------------------------------------------------------


def _axes(dims: Any, r: int) -> list[int]:
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return list(range(r))
    return [axis(int(d), r) for d in ([dims] if isinstance(dims, int) else dims)]


def _reduce(onnx_type: str) -> Row:
    def lower(L: Lowering, x: SSAValue, dims: Any = None, keepdim: bool = False, *, dtype: Any = None) -> SSAValue:
        x = L.cast(x, L.out_dtype())
        if rank(x) == 0:
            return x
        return L.op(onnx_type, [x, L.ints(_axes(dims, rank(x)))], {"keepdims": int(bool(keepdim))}, specs=[L.out_spec()])

    return lower


row(aten.sum.dim_IntList)(_reduce("ReduceSum"))
row(aten.mean.dim)(_reduce("ReduceMean"))
row(aten.amax.default)(_reduce("ReduceMax"))
row(aten.amin.default)(_reduce("ReduceMin"))
row(aten.prod.dim_int)(_reduce("ReduceProd"))
row(aten.sum.default)(lambda L, x, *, dtype=None: _reduce("ReduceSum")(L, x, None, False))
row(aten.mean.default)(lambda L, x, *, dtype=None: _reduce("ReduceMean")(L, x, None, False))
row(aten.max.default)(lambda L, x: _reduce("ReduceMax")(L, x, None, False))
row(aten.min.default)(lambda L, x: _reduce("ReduceMin")(L, x, None, False))


@row(aten.any.dim, aten.any.dims, aten.any.default)
def _any(L: Lowering, x: SSAValue, dims: Any = None, keepdim: bool = False) -> SSAValue:
    m = L.cast(x, np.dtype(np.bool_))
    s = _reduce("ReduceMax")(L, L.cast(m, np.dtype(np.int32)), dims, keepdim) if rank(x) else L.cast(m, np.dtype(np.int32))
    return L.cast(s, np.dtype(np.bool_))


@row(aten.var.correction, aten.var.dim)
def _var(L: Lowering, x: SSAValue, dims: Any = None, *, correction: Any = None, keepdim: bool = False, unbiased: Any = None) -> SSAValue:
    r = rank(x)
    ax = _axes(dims, r)
    count = int(np.prod([spec(x)[0][a] for a in ax], dtype=np.int64))
    corr = 1 if correction is None and unbiased is None else (int(unbiased) if unbiased is not None else correction)
    d = L.op("Sub", [x, L.op("ReduceMean", [x, L.ints(ax)], {"keepdims": 1})])
    s = L.op("ReduceSum", [L.op("Mul", [d, d]), L.ints(ax)], {"keepdims": int(keepdim)})
    return L.op("Div", [s, L.const(np.asarray(max(count - corr, 0), L.out_dtype()))])


def _arg(onnx_type: str) -> Row:
    def lower(L: Lowering, x: SSAValue, dim: Any = None, keepdim: bool = False) -> SSAValue:
        if dim is None:
            x, dim = L.reshape(x, (-1,) if rank(x) else (1,)), 0
        return L.op(onnx_type, [x], {"axis": int(dim), "keepdims": int(bool(keepdim)), "select_last_index": 0})

    return lower


row(aten.argmax.default)(_arg("ArgMax"))
row(aten.argmin.default)(_arg("ArgMin"))


@row(aten.max.dim, aten.min.dim)
def _max_dim(L: Lowering, x: SSAValue, dim: int, keepdim: bool = False) -> tuple[SSAValue, SSAValue]:
    is_max = L.node is not None and L.node.target == aten.max.dim
    v = L.op("ReduceMax" if is_max else "ReduceMin", [x, L.ints([dim])], {"keepdims": int(bool(keepdim))})
    i = _arg("ArgMax" if is_max else "ArgMin")(L, x, dim, keepdim)
    return v, i


@row(aten.cumsum.default)
def _cumsum(L: Lowering, x: SSAValue, dim: int, *, dtype: Any = None) -> SSAValue:
    x = L.cast(x, L.out_dtype())
    return L.op("CumSum", [x, L.const(np.asarray(dim, np.int64))], specs=[L.out_spec()])


@row(aten.topk.default)
def _topk(L: Lowering, x: SSAValue, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> tuple[Any, Any]:
    return L.op("TopK", [x, L.ints([k])], {"axis": int(dim), "largest": int(largest), "sorted": int(sorted)},
                n_results=2, specs=[L.out_spec(0), L.out_spec(1)])


@row(aten.sort.default)
def _sort(L: Lowering, x: SSAValue, dim: int = -1, descending: bool = False) -> tuple[Any, Any]:
    n = spec(x)[0][axis(dim, rank(x))]
    return L.op("TopK", [x, L.ints([n])], {"axis": int(dim), "largest": int(descending), "sorted": 1}, n_results=2)
