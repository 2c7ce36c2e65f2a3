"""The cpu target's kernel table: one kernel per op.

By default an op's kernel is its rule in ``graphopt.semantics`` (the reference meaning).
``KERNELS`` holds the ops for which the target owns a faster or different kernel, keyed
by IR op name; a row there wins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from graphopt.semantics import get_rule
from graphopt.targets.cpu import native
from graphopt.targets.cpu.gelu import gelu_f32

Kernel = Callable[..., Any]

KERNELS: dict[str, Kernel] = {}

def kernel_for(op_name: str, onnx_type: str | None, domain: str = "") -> Kernel | None:
    if op_name in KERNELS:
        return KERNELS[op_name]
    if onnx_type is None:
        return None
    return get_rule(onnx_type if not domain else f"{domain}::{onnx_type}")



def cpu_kernel_gap(op_type: str, domain: str = "") -> str | None:
    """Why the cpu target has no kernel for an ONNX op type, or None if it has one."""
    from graphopt.dialects.graph import ONNX_OPS

    domain = "" if domain == "ai.onnx" else domain
    if op_type == "Constant" and not domain:
        return None  # the frontend turns it into a graph.constant / graph.weight
    key = op_type if not domain else f"{domain}::{op_type}"
    cls = ONNX_OPS.get(key)
    if cls is None:
        return f"not an operator graphopt knows (domain {domain or 'ai.onnx'!r})"
    if kernel_for(cls.name, cls.ONNX_TYPE, cls.ONNX_DOMAIN) is None:
        return f"the cpu target has no kernel for {op_type}"
    return None


def _fused(*inputs: Any, body: Callable[..., list[Any]]) -> tuple[Any, ...]:
    """A graph.fused group runs its region's plan: on the cpu, fusion only saves the
    memory of intermediates that die inside the group."""
    return tuple(body(*inputs))


KERNELS["graph.fused"] = _fused


# Faster kernels than the reference rules, for the ops that dominate real models. Each
# matches its rule to float32 rounding (tests/unit/test_cpu_kernels.py) and falls back to
# the rule for dtypes it does not cover.
def _fast_floats(x: Any) -> bool:
    return getattr(x, "dtype", None) in (np.float32, np.float64)


def _erf(x: Any) -> Any:
    if not _fast_floats(x):
        return get_rule("Erf")(x)  # type: ignore[misc]
    import scipy.special  # here: importing it costs ~0.1 s of a JIT compile's first call

    return np.asarray(scipy.special.erf(x), dtype=x.dtype)


def _gelu(x: Any, approximate: str = "none") -> Any:
    if not _fast_floats(x):
        return get_rule("Gelu")(x, approximate=approximate)  # type: ignore[misc]
    if approximate == "tanh":
        inner = np.asarray(np.sqrt(2 / np.pi), x.dtype) * (x + np.asarray(0.044715, x.dtype) * x * x * x)
        return np.asarray(0.5 * x * (1 + np.tanh(inner)), dtype=x.dtype)
    if x.dtype == np.float32:
        return gelu_f32(x)
    import scipy.special

    # x * Phi(x), Phi the standard normal CDF: scipy's ndtr keeps the far tails exact,
    # where 0.5 * (1 + erf(x / sqrt 2)) would round to 0.
    return np.asarray(x * scipy.special.ndtr(x), dtype=x.dtype)


KERNELS["graph.erf"] = _erf
KERNELS["graph.gelu"] = _gelu


# The kernels below compute what their rules do, operation for operation, but into one
# output array (and a reused scratch array) instead of a fresh array per operation: on a
# large model, allocating and first touching memory costs as much as the arithmetic.
_scratch = threading.local()
_SCRATCH_MAX = 1 << 24  # bytes kept per thread and dtype; larger scratch is allocated each time


def _scratch_like(a: np.ndarray) -> np.ndarray:
    """A per-thread scratch array of ``a``'s shape and dtype (its contents are garbage)."""
    if a.nbytes > _SCRATCH_MAX:
        return np.empty_like(a)
    key = f"buf_{a.dtype.str}"
    buf = getattr(_scratch, key, None)
    if buf is None or buf.size < a.size:
        buf = np.empty(a.size, a.dtype)
        setattr(_scratch, key, buf)
    return buf[: a.size].reshape(a.shape)


def _matmul_bias(a: Any, b: Any, bias: Any) -> Any:
    out = np.matmul(a, b)
    # The bias goes into the product in place when that is what out + bias would give.
    if isinstance(out, np.ndarray) and out.dtype == bias.dtype and np.broadcast_shapes(out.shape, bias.shape) == out.shape:
        out += bias
        return out
    return get_rule("graphopt::MatMulBias")(a, b, bias)  # type: ignore[misc]


def _layer_normalization(x: Any, scale: Any, b: Any = None, *, axis: int = -1, epsilon: float = 1e-5,
                         stash_type: int = 1) -> Any:
    params = (scale,) if b is None else (scale, b)
    fast = x.dtype == np.float32 and stash_type == 1 and all(p.dtype == np.float32 for p in params)
    last = x.shape[-1:]
    if fast and axis % x.ndim == x.ndim - 1 and all(p.shape == last for p in params) and (lib := native.library()):
        xc = np.ascontiguousarray(x)
        y, stats = np.empty_like(xc), np.empty((2, *x.shape[:-1], 1), np.float32)
        lib.layer_norm(native.ptr(xc), native.ptr(scale if scale.flags.c_contiguous else np.ascontiguousarray(scale)),
                       native.ptr(b if b is None or b.flags.c_contiguous else np.ascontiguousarray(b)), native.ptr(y),
                       native.ptr(stats[0]), native.ptr(stats[1]), xc.size // max(last[0], 1), last[0], epsilon,
                       native.threads_for(xc.size))
        return y, stats[0], stats[1]
    if not fast or np.broadcast_shapes(x.shape, *(p.shape for p in params)) != x.shape:
        return get_rule("LayerNormalization")(x, scale, b, axis=axis, epsilon=epsilon, stash_type=stash_type)  # type: ignore[misc]
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    y = np.subtract(x, mean)
    var = np.square(y, out=_scratch_like(y)).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + epsilon)
    y *= inv_std
    y *= scale
    if b is not None:
        y += b
    return y, mean, inv_std


def _softmax(x: Any, *, axis: int = -1) -> Any:
    if x.dtype not in (np.float32, np.float64):
        return get_rule("Softmax")(x, axis=axis)  # type: ignore[misc]
    if x.dtype == np.float32 and x.ndim and axis % x.ndim == x.ndim - 1 and (lib := native.library()):
        xc = np.ascontiguousarray(x)
        y = np.empty_like(xc)
        lib.softmax(native.ptr(xc), native.ptr(y), xc.size // max(x.shape[-1], 1), x.shape[-1], native.threads_for(xc.size))
        return y
    with np.errstate(all="ignore"):
        e = np.subtract(x, np.max(x, axis=axis, keepdims=True))
        np.exp(e, out=e)
        e /= np.sum(e, axis=axis, keepdims=True)
    return e


KERNELS["graph.matmul_bias"] = _matmul_bias
KERNELS["graph.layer_normalization"] = _layer_normalization
KERNELS["graph.softmax"] = _softmax


# Convolution, by shape: a 1x1 convolution is one matmul of the weights with the input as it
# lies in memory; a depthwise one is k*k multiply-adds over the output; any other is im2col
# into a scratch buffer (one strided copy per kernel position, not a transpose of a 6-D
# window view) and one matmul per group, batched over the groups.
def _conv(x: Any, w: Any, b: Any = None, *, auto_pad: str = "NOTSET", dilations: Any = None, group: int = 1,
          kernel_shape: Any = None, pads: Any = None, strides: Any = None) -> Any:
    from graphopt.semantics.nn_common import pad_spatial, pool_geometry

    fast = x.dtype in (np.float32, np.float64) and w.dtype == x.dtype and (b is None or b.dtype == x.dtype)
    if not fast or x.ndim != 4:
        return get_rule("Conv")(x, w, b, auto_pad=auto_pad, dilations=dilations, group=group,  # type: ignore[misc]
                                kernel_shape=kernel_shape, pads=pads, strides=strides)
    n, c, _, _ = x.shape
    m, cg, kh, kw = w.shape
    sh, sw = strides or (1, 1)
    dh, dw = dilations or (1, 1)
    (oh, ow), begin, end = pool_geometry(x.shape[2:], (kh, kw), (sh, sw), (dh, dw), pads, auto_pad)
    depthwise = group == c == m and cg == 1
    if depthwise and x.dtype == np.float32 and min(begin) >= 0 and (lib := native.library()):
        xc, wc = np.ascontiguousarray(x), np.ascontiguousarray(w)
        bc = None if b is None else np.ascontiguousarray(b)
        y = np.empty((n, m, oh, ow), np.float32)
        lib.dw_conv2d(native.ptr(xc), native.ptr(wc), native.ptr(bc), native.ptr(y), n, c, *x.shape[2:], kh, kw, oh, ow,
                      sh, sw, dh, dw, begin[0], begin[1], native.threads_for(y.size * kh * kw))
        return y
    if kh == kw == 1 and sh == sw == 1 and not any(begin) and not any(end) and group == 1:
        y = np.matmul(w.reshape(m, c), x.reshape(n, c, oh * ow)).reshape(n, m, oh, ow)
    else:
        xp = pad_spatial(x, begin, end, 0)
        if depthwise:
            y = _depthwise(xp, w, (oh, ow), (sh, sw), (dh, dw))
        else:
            cols = np.empty((n, c, kh, kw, oh, ow), x.dtype)
            for i in range(kh):
                for j in range(kw):
                    cols[:, :, i, j] = xp[:, :, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw]
            cols = cols.reshape(n, group, cg * kh * kw, oh * ow)
            y = np.matmul(w.reshape(group, m // group, cg * kh * kw), cols).reshape(n, m, oh, ow)
    if b is not None:
        y += b.reshape(1, m, 1, 1)
    return y


def _depthwise(xp: np.ndarray, w: np.ndarray, out: tuple[int, int], strides: tuple[int, int],
               dilations: tuple[int, int]) -> np.ndarray:
    """A depthwise convolution as k*k multiply-adds over each channel's plane read flat: the
    window at kernel position (i, j) is the flat padded plane shifted by i * dh * Wp + j * dw,
    one contiguous run per channel, so numpy's inner loop runs over rows x Wp values, not
    over OW strided ones. Columns past the output's (wrapped into the next row) and, with a
    stride, the rows and columns between outputs are computed and dropped."""
    (oh, ow), (sh, sw), (dh, dw) = out, strides, dilations
    n, c, hp, wp = xp.shape
    kh, kw = w.shape[2:]
    rows = (oh - 1) * sh + 1
    extra = (kw - 1) * dw
    flat = np.zeros((n, c, hp * wp + extra), xp.dtype)
    flat[..., : hp * wp] = xp.reshape(n, c, hp * wp)
    acc = np.zeros((n, c, rows * wp), xp.dtype)
    tmp = np.empty_like(acc)
    for i in range(kh):
        for j in range(kw):
            off = i * dh * wp + j * dw
            np.multiply(flat[..., off: off + rows * wp], w[:, 0, i, j].reshape(1, c, 1), out=tmp)
            acc += tmp
    return np.ascontiguousarray(acc.reshape(n, c, rows, wp)[:, :, ::sh, : (ow - 1) * sw + 1: sw])


KERNELS["graph.conv"] = _conv


# Pools over float32 [N, C, H, W] in one native pass (no window view, no padded copy).
def _pool_native(x: Any, kw: dict[str, Any], mode: int) -> Any:
    from graphopt.semantics.nn_common import pool_geometry
    from graphopt.semantics.pool import declared_end_pads

    k = kw.get("kernel_shape") or ()
    if not (getattr(x, "dtype", None) == np.float32 and x.ndim == 4 and len(k) == 2) or kw.get("storage_order", 0):
        return None
    lib = native.library()
    if lib is None:
        return None
    strides, dil = kw.get("strides") or (1, 1), kw.get("dilations") or (1, 1)
    auto_pad = kw.get("auto_pad", "NOTSET")
    (oh, ow), begin, end = pool_geometry(x.shape[2:], k, strides, dil, kw.get("pads"), auto_pad, kw.get("ceil_mode", 0))
    if min(begin) < 0:
        return None
    declared = declared_end_pads(kw.get("pads"), auto_pad, end)
    xc = np.ascontiguousarray(x)
    y = np.empty((*x.shape[:2], oh, ow), np.float32)
    lib.pool2d(native.ptr(xc), native.ptr(y), x.shape[0] * x.shape[1], *x.shape[2:], *k, oh, ow, *strides, *dil,
               begin[0], begin[1], declared[0], declared[1], mode, native.threads_for(y.size * k[0] * k[1]))
    return y


def _max_pool(x: Any, **kw: Any) -> Any:
    if kw.get("_num_outputs", 2) < 2 and (y := _pool_native(x, kw, 0)) is not None:
        return y
    return get_rule("MaxPool")(x, **kw)  # type: ignore[misc]


def _average_pool(x: Any, **kw: Any) -> Any:
    if (y := _pool_native(x, kw, 2 if kw.get("count_include_pad", 0) else 1)) is not None:
        return y
    return get_rule("AveragePool")(x, **kw)  # type: ignore[misc]


KERNELS["graph.max_pool"] = _max_pool
KERNELS["graph.average_pool"] = _average_pool
