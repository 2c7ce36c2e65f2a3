"""Reduction rules: Reduce*, ArgMax/ArgMin, CumSum/CumProd, TopK, Softmax family."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ml_dtypes
import numpy as np

from graphopt.semantics import rule

_NARROW_FLOATS = frozenset(np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16))


def _wide(x: np.ndarray) -> np.ndarray:
    """Accumulate narrow floats in float32; float16 sums lose digits fast."""
    return x.astype(np.float32) if x.dtype in _NARROW_FLOATS else x


def _out(value: object, dtype: np.dtype) -> np.ndarray:
    return np.asarray(value).astype(dtype, copy=False)


def _lowest(dtype: np.dtype) -> object:
    if dtype.kind == "b":
        return False
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return -np.inf


def _highest(dtype: np.dtype) -> object:
    if dtype.kind == "b":
        return True
    if dtype.kind in "iu":
        return np.iinfo(dtype).max
    return np.inf


# ---------------------------------------------------------------------------- Reduce*

ReduceFn = Callable[[np.ndarray, tuple[int, ...]], np.ndarray]


def _reduce_axes(
    data: np.ndarray,
    axes_input: np.ndarray | None,
    axes_attr: Sequence[int] | None,
    noop_with_empty_axes: int,
) -> tuple[int, ...]:
    """The axes to reduce. With noop_with_empty_axes and no axes that is the empty tuple:
    the reduction is the identity but ReduceL2, ReduceLogSum ... still do their other steps."""
    axes = axes_input if axes_input is not None else axes_attr
    if axes is None or len(axes) == 0:
        return () if noop_with_empty_axes else tuple(range(data.ndim))
    return tuple(sorted({int(a) % data.ndim if data.ndim else 0 for a in np.ravel(axes)}))


def _logsumexp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    # All -inf (or an empty set) leaves m infinite; shifting by 0 there avoids inf - inf.
    shift = np.where(np.isfinite(m), m, 0)
    s = np.sum(np.exp(x - shift), axis=axes, keepdims=True)
    return np.squeeze(np.log(s) + shift, axis=axes)


_REDUCERS: dict[str, ReduceFn] = {
    "ReduceSum": lambda x, ax: np.sum(x, axis=ax),
    "ReduceMean": lambda x, ax: np.mean(x, axis=ax),
    "ReduceProd": lambda x, ax: np.prod(x, axis=ax),
    "ReduceMax": lambda x, ax: np.max(x, axis=ax, initial=_lowest(x.dtype)),
    "ReduceMin": lambda x, ax: np.min(x, axis=ax, initial=_highest(x.dtype)),
    "ReduceL1": lambda x, ax: np.sum(np.abs(x), axis=ax),
    "ReduceL2": lambda x, ax: np.sqrt(np.sum(np.square(x), axis=ax)),
    "ReduceSumSquare": lambda x, ax: np.sum(np.square(x), axis=ax),
    "ReduceLogSum": lambda x, ax: np.log(np.sum(x, axis=ax)),
    "ReduceLogSumExp": _logsumexp,
}
# Integer inputs: exact int64 accumulation where the result is an integer anyway; the
# others are the float64 result truncated back to the input type.
_INTEGER_EXACT = frozenset({"ReduceSum", "ReduceProd", "ReduceL1", "ReduceSumSquare"})


def _reduce_rule(op: str) -> Callable[..., np.ndarray]:
    reducer = _REDUCERS[op]

    def reduce(
        data: np.ndarray,
        axes_input: np.ndarray | None = None,
        *,
        axes: Sequence[int] | None = None,
        keepdims: int = 1,
        noop_with_empty_axes: int = 0,
    ) -> np.ndarray:
        ax = _reduce_axes(data, axes_input, axes, noop_with_empty_axes)
        with np.errstate(all="ignore"):
            if data.dtype.kind not in "iu":
                src = _wide(data)
            elif op in ("ReduceMax", "ReduceMin"):
                src = data
            else:
                src = data.astype(np.int64 if op in _INTEGER_EXACT else np.float64)
            y = np.asarray(reducer(src, ax))
        if keepdims:
            y = y.reshape([1 if i in ax else n for i, n in enumerate(data.shape)])
        return _out(y, data.dtype)

    reduce.__name__ = op
    return reduce


for _op in _REDUCERS:
    rule(_op)(_reduce_rule(_op))


# ------------------------------------------------------------------------ Arg*, TopK


def _arg(pick: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def arg(
        data: np.ndarray, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
    ) -> np.ndarray:
        axis %= max(data.ndim, 1)
        x = _wide(data)
        if select_last_index:
            n = data.shape[axis]
            idx = n - 1 - pick(np.flip(x, axis=axis), axis=axis)
        else:
            idx = pick(x, axis=axis)
        if keepdims:
            idx = np.expand_dims(idx, axis)
        return _out(idx, np.int64)

    arg.__name__ = pick.__name__
    return arg


rule("ArgMax")(_arg(np.argmax))
rule("ArgMin")(_arg(np.argmin))


@rule("TopK")
def topk(
    x: np.ndarray, k: np.ndarray, *, axis: int = -1, largest: int = 1, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Ties go to the lower index; unsorted output (sorted=0) is returned sorted anyway."""
    axis %= x.ndim
    kk = int(np.ravel(k)[0])
    xw = _wide(x)
    if largest:
        # A stable ascending sort of the reversed axis, read backwards, is descending with
        # equal values in increasing index order.
        n = x.shape[axis]
        order = np.argsort(np.flip(xw, axis=axis), axis=axis, kind="stable")
        order = np.flip(n - 1 - order, axis=axis)
    else:
        order = np.argsort(xw, axis=axis, kind="stable")
    indices = np.take(order, np.arange(kk), axis=axis)
    values = np.take_along_axis(x, indices, axis=axis)
    return _out(values, x.dtype), _out(indices, np.int64)


# ---------------------------------------------------------------------------- scans


def _scan(ufunc: np.ufunc, identity: int) -> Callable[..., np.ndarray]:
    def scan(
        x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0, reverse: int = 0
    ) -> np.ndarray:
        ax = int(np.ravel(axis)[0]) % x.ndim
        y = np.flip(x, axis=ax) if reverse else x
        y = _wide(y)
        if exclusive:
            # Shift in the identity instead of undoing the op, so no rounding is added.
            pad = [(0, 0)] * x.ndim
            pad[ax] = (1, 0)
            y = np.pad(y, pad, constant_values=identity)
            y = np.take(y, np.arange(x.shape[ax]), axis=ax)
        y = ufunc.accumulate(y, axis=ax, dtype=y.dtype)
        if reverse:
            y = np.flip(y, axis=ax)
        return _out(y, x.dtype)

    return scan


rule("CumSum")(_scan(np.add, 0))
rule("CumProd")(_scan(np.multiply, 1))


# ---------------------------------------------------------------------- softmax family
# Opset >= 13 semantics: normalise along one axis (older opsets flattened to 2-D first;
# their callers rewrite them). Softmax and LogSoftmax compute natively in the input dtype,
# as ONNX's reference does: its float16/bfloat16 expectations (the Attention bodies) are
# within one ulp, so they need the same rounding rather than a float32 evaluation.


@rule("Softmax")
def softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return _out(e / np.sum(e, axis=axis, keepdims=True), x.dtype)


@rule("LogSoftmax")
def log_softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    with np.errstate(all="ignore"):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return _out(shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True)), x.dtype)


@rule("Hardmax")
def hardmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """1 at the first maximum along ``axis``, 0 elsewhere."""
    axis %= x.ndim
    idx = np.expand_dims(np.argmax(_wide(x), axis=axis), axis)
    y = np.zeros(x.shape, dtype=x.dtype)
    np.put_along_axis(y, idx, np.ones((), x.dtype), axis=axis)
    return y


@rule("LpNormalization")
def lp_normalization(x: np.ndarray, *, axis: int = -1, p: int = 2) -> np.ndarray:
    xw = _wide(x)
    with np.errstate(all="ignore"):
        if p == 1:
            norm = np.sum(np.abs(xw), axis=axis, keepdims=True)
        elif p == 2:
            norm = np.sqrt(np.sum(np.square(xw), axis=axis, keepdims=True))
        else:
            raise ValueError(f"LpNormalization supports p = 1 or 2, not {p}")
        # A zero vector stays zero rather than becoming NaN.
        return _out(np.where(norm == 0, 0, xw / norm), x.dtype)
