"""``FX_TO_GRAPH`` rows for neural-network aten ops and their backwards: matmul, convolution,
normalisation, softmax, dropout, pooling, losses, attention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from graphopt.frontends.fx.lowering import Lowering, UnsupportedOp, aten, rank, row, spec

# -- linear algebra -----------------------------------------------------------------------


@row(aten.mm.default, aten.bmm.default, aten.matmul.default)
def _mm(L: Lowering, a: SSAValue, b: SSAValue) -> SSAValue:
    return L.op("MatMul", [a, b], specs=[L.out_spec()])


@row(aten.addmm.default, aten.baddbmm.default)
def _addmm(L: Lowering, bias: SSAValue, a: SSAValue, b: SSAValue, *, beta: Any = 1, alpha: Any = 1) -> SSAValue:
    dt = L.out_dtype()
    m = L.op("MatMul", [a, b])
    if alpha != 1:
        m = L.op("Mul", [m, L.const(np.asarray(alpha, dt))])
    if beta == 0:
        return m
    if beta != 1:
        bias = L.op("Mul", [bias, L.const(np.asarray(beta, dt))])
    return L.op("Add", [m, bias], specs=[L.out_spec()])


@row(aten.convolution.default)
def _convolution(L: Lowering, x: SSAValue, w: SSAValue, b: SSAValue | None, stride: Sequence[int], padding: Sequence[int],
                 dilation: Sequence[int], transposed: bool, output_padding: Sequence[int], groups: int) -> SSAValue:
    nd = rank(x) - 2
    stride, padding, dilation = _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    attrs: dict[str, Any] = {"strides": stride, "pads": [*padding, *padding], "dilations": dilation, "group": int(groups)}
    operands = [x, w] + ([b] if b is not None else [])
    if transposed:
        attrs["output_padding"] = _nd(output_padding, nd)
        return L.op("ConvTranspose", operands, attrs, specs=[L.out_spec()])
    return L.op("Conv", operands, attrs, specs=[L.out_spec()])


def _nd(v: Sequence[int] | int, nd: int) -> list[int]:
    v = [int(v)] if isinstance(v, int) else [int(i) for i in v]
    return v * nd if len(v) == 1 and nd > 1 else v


@row(aten.convolution_backward.default)
def _convolution_backward(L: Lowering, go: SSAValue, x: SSAValue, w: SSAValue, bias_sizes: Any, stride: Sequence[int],
                          padding: Sequence[int], dilation: Sequence[int], transposed: bool, output_padding: Any,
                          groups: int, mask: Sequence[bool]) -> tuple[Any, Any, Any]:
    """grad_input is a transposed convolution of the output gradient; grad_weight is a
    convolution of the input by the output gradient with stride and dilation swapped."""
    if transposed:
        raise UnsupportedOp(f"{L.where()}: the backward of a transposed convolution is not supported")
    nd = rank(x) - 2
    stride, padding, dilation = _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    xs, ws, gs = spec(x)[0], spec(w)[0], spec(go)[0]
    gx = gw = gb = None
    if mask[0]:
        natural = [(gs[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (ws[2 + i] - 1) + 1 for i in range(nd)]
        gx = L.op("ConvTranspose", [go, w], {"strides": stride, "pads": [*padding, *padding], "dilations": dilation,
                                              "group": int(groups), "output_padding": [xs[2 + i] - natural[i] for i in range(nd)]})
    if mask[1]:
        # The batch becomes the channels: a convolution of x, as (C/g, g*N, ...), by the
        # output gradient, as g groups of (M/g, N, ...) weights, is dW as (C/g, M, ...).
        g, perm = int(groups), [1, 0, *range(2, nd + 2)]
        if g == 1:
            xt = L.op("Transpose", [x], {"perm": perm})
        else:
            n, c = xs[0], xs[1]
            xg = L.reshape(x, [n, g, c // g, *xs[2:]])
            xt = L.reshape(L.op("Transpose", [xg], {"perm": [2, 1, 0, *range(3, nd + 3)]}), [c // g, g * n, *xs[2:]])
        gt = L.op("Transpose", [go], {"perm": perm})
        full = L.op("Conv", [xt, gt], {"strides": dilation, "dilations": stride, "pads": [*padding, *padding], "group": g})
        fs = spec(full)[0]
        if tuple(fs[2:]) != tuple(ws[2:]):  # rows the forward never reached
            full = L.op("Slice", [full, L.ints([0] * nd), L.ints(ws[2:]), L.ints(range(2, nd + 2))])
        gw = L.op("Transpose", [full], {"perm": perm})
    if mask[2]:
        gb = L.op("ReduceSum", [go, L.ints([0, *range(2, nd + 2)])], {"keepdims": 0})
    return gx, gw, gb


# -- normalisation, softmax ---------------------------------------------------------------------


@row(aten.native_layer_norm.default)
def _layer_norm(L: Lowering, x: SSAValue, shape: Sequence[int], w: SSAValue | None, b: SSAValue | None, eps: float) -> tuple[Any, ...]:
    dt = L.out_dtype(0)
    scale = w if w is not None else L.filled(1, shape, dt)
    operands = [x, scale] + ([b] if b is not None else [])
    attrs = {"axis": -len(shape), "epsilon": float(eps), "stash_type": 1}
    return L.op("LayerNormalization", operands, attrs, n_results=3, specs=[L.out_spec(0), L.out_spec(1), L.out_spec(2)])


@row(aten._native_batch_norm_legit_no_training.default)
def _batch_norm_eval(L: Lowering, x: SSAValue, w: Any, b: Any, mean: SSAValue, var: SSAValue, momentum: float, eps: float) -> tuple[Any, ...]:
    dt = L.out_dtype(0)
    c = spec(x)[0][1]
    w = w if w is not None else L.filled(1, (c,), dt)
    b = b if b is not None else L.filled(0, (c,), dt)
    y = L.op("BatchNormalization", [x, w, b, mean, var], {"epsilon": float(eps)}, specs=[L.out_spec(0)])
    empty = L.const(np.zeros((0,), dt))
    return y, empty, empty


@row(aten._native_batch_norm_legit_functional.default, aten._native_batch_norm_legit.default, aten.native_batch_norm.default)
def _batch_norm_train(L: Lowering, x: SSAValue, w: Any, b: Any, rmean: Any, rvar: Any, training: bool, momentum: float,
                      eps: float) -> tuple[Any, ...]:
    """Training batch norm from reductions: statistics over all but the channel axis,
    running statistics updated with the unbiased variance, as torch does."""
    if not training:
        y, _, _ = _batch_norm_eval(L, x, w, b, rmean, rvar, momentum, eps)
        empty = L.const(np.zeros((0,), L.out_dtype(0)))
        return (y, empty, empty, rmean, rvar)[: len(L.val())]
    dt = L.out_dtype(0)
    shape = spec(x)[0]
    r, c = len(shape), shape[1]
    axes = L.ints([0, *range(2, r)])
    count = int(np.prod(shape, dtype=np.int64)) // c
    mean = L.op("ReduceMean", [x, axes], {"keepdims": 1})
    d = L.op("Sub", [x, mean])
    var = L.op("ReduceMean", [L.op("Mul", [d, d]), axes], {"keepdims": 1})
    rstd = L.op("Reciprocal", [L.op("Sqrt", [L.op("Add", [var, L.const(np.asarray(eps, dt))])])])
    y = L.op("Mul", [d, rstd])
    bshape = [1, c] + [1] * (r - 2)
    if w is not None:
        y = L.op("Mul", [y, L.reshape(w, bshape)])
    if b is not None:
        y = L.op("Add", [y, L.reshape(b, bshape)])
    outs: list[Any] = [y, L.reshape(mean, (c,)), L.reshape(rstd, (c,))]
    if len(L.val()) == 5:
        m = L.const(np.asarray(momentum, dt))
        keep = L.const(np.asarray(1 - momentum, dt))
        unbiased = L.op("Mul", [L.reshape(var, (c,)), L.const(np.asarray(count / max(count - 1, 1), dt))])
        outs.append(L.op("Add", [L.op("Mul", [rmean, keep]), L.op("Mul", [L.reshape(mean, (c,)), m])]))
        outs.append(L.op("Add", [L.op("Mul", [rvar, keep]), L.op("Mul", [unbiased, m])]))
    return tuple(outs)


@row(aten._softmax.default, aten.softmax.int)
def _softmax(L: Lowering, x: SSAValue, dim: int, half_to_float: Any = False) -> SSAValue:
    return L.op("Softmax", [L.cast(x, L.out_dtype())], {"axis": int(dim)}, specs=[L.out_spec()])


@row(aten._log_softmax.default, aten.log_softmax.int)
def _log_softmax(L: Lowering, x: SSAValue, dim: int, half_to_float: Any = False) -> SSAValue:
    return L.op("LogSoftmax", [L.cast(x, L.out_dtype())], {"axis": int(dim)}, specs=[L.out_spec()])


@row(aten._softmax_backward_data.default)
def _softmax_backward(L: Lowering, g: SSAValue, y: SSAValue, dim: int, dtype: Any) -> SSAValue:
    gy = L.op("Mul", [g, y])
    s = L.op("ReduceSum", [gy, L.ints([dim])], {"keepdims": 1})
    return L.op("Sub", [gy, L.op("Mul", [y, s])])


@row(aten._log_softmax_backward_data.default)
def _log_softmax_backward(L: Lowering, g: SSAValue, y: SSAValue, dim: int, dtype: Any) -> SSAValue:
    s = L.op("ReduceSum", [g, L.ints([dim])], {"keepdims": 1})
    return L.op("Sub", [g, L.op("Mul", [L.op("Exp", [y]), s])])


@row(aten.native_dropout.default)
def _dropout(L: Lowering, x: SSAValue, p: float, train: bool | None) -> tuple[Any, Any]:
    if train and p > 0:
        raise UnsupportedOp(f"{L.where()}: dropout with p={p} in training draws random numbers, which graphopt "
                            "does not; use model.eval() or p=0")
    return x, L.filled(True, spec(x)[0], np.dtype(np.bool_))


# -- pooling ------------------------------------------------------------------------------


@row(aten.max_pool2d_with_indices.default, aten.max_pool3d_with_indices.default)
def _max_pool(L: Lowering, x: SSAValue, kernel: Sequence[int], stride: Sequence[int] = (), padding: Any = 0,
              dilation: Any = 1, ceil_mode: bool = False) -> tuple[SSAValue, SSAValue]:
    """ONNX indexes the whole tensor ((n*C + c)*H*W + ...); torch indexes each plane: modulo H*W."""
    nd = rank(x) - 2
    kernel = _nd(kernel, nd)
    stride = _nd(stride, nd) if stride else kernel
    padding = _nd(padding, nd)
    attrs = {"kernel_shape": kernel, "strides": stride, "pads": [*padding, *padding], "dilations": _nd(dilation, nd),
             "ceil_mode": int(bool(ceil_mode))}
    y, idx = L.op("MaxPool", [x], attrs, n_results=2, specs=[L.out_spec(0), L.out_spec(1)])
    plane = int(np.prod(spec(x)[0][2:], dtype=np.int64))
    return y, L.op("Mod", [idx, L.ints([plane])])


@row(aten.max_pool2d_with_indices_backward.default, aten.max_pool3d_with_indices_backward.default)
def _max_pool_backward(L: Lowering, g: SSAValue, x: SSAValue, *args: Any) -> SSAValue:
    idx = args[-1]
    xs, gs = spec(x)[0], spec(g)[0]
    n, c = xs[0], xs[1]
    zeros = L.filled(0, (n, c, int(np.prod(xs[2:], dtype=np.int64))), spec(g)[1].numpy)
    flat_shape = (n, c, int(np.prod(gs[2:], dtype=np.int64)))
    scattered = L.op("ScatterElements", [zeros, L.reshape(idx, flat_shape), L.reshape(g, flat_shape)],
                     {"axis": 2, "reduction": "add"})
    return L.reshape(scattered, xs)


@row(aten.avg_pool2d.default, aten.avg_pool3d.default)
def _avg_pool(L: Lowering, x: SSAValue, kernel: Sequence[int], stride: Sequence[int] = (), padding: Any = 0,
              ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Any = None) -> SSAValue:
    if divisor_override is not None:
        raise UnsupportedOp(f"{L.where()}: avg_pool with divisor_override is not supported")
    nd = rank(x) - 2
    kernel = _nd(kernel, nd)
    stride = _nd(stride, nd) if stride else kernel
    padding = _nd(padding, nd)
    attrs = {"kernel_shape": kernel, "strides": stride, "pads": [*padding, *padding], "ceil_mode": int(bool(ceil_mode)),
             "count_include_pad": int(bool(count_include_pad))}
    return L.op("AveragePool", [x], attrs, specs=[L.out_spec()])


@row(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg_pool(L: Lowering, x: SSAValue, size: Sequence[int]) -> SSAValue:
    xs = spec(x)[0]
    out = _nd(size, 2)
    if any(xs[2 + i] % out[i] for i in range(2)):
        raise UnsupportedOp(f"{L.where()}: adaptive pooling to {out} from {list(xs[2:])} has uneven windows")
    k = [xs[2 + i] // out[i] for i in range(2)]
    return L.op("AveragePool", [x], {"kernel_shape": k, "strides": k}, specs=[L.out_spec()])


# -- losses -------------------------------------------------------------------------------


@row(aten.nll_loss_forward.default)
def _nll_loss(L: Lowering, x: SSAValue, target: SSAValue, weight: Any, reduction: int, ignore_index: int) -> tuple[Any, Any]:
    """-x[i, target[i]] over rows whose target is not ignore_index; reduction 0 none, 1 mean, 2 sum."""
    if weight is not None or rank(x) != 2:
        raise UnsupportedOp(f"{L.where()}: nll_loss with class weights or more than 2 dimensions is not supported")
    dt = spec(x)[1].numpy
    keep = L.op("Not", [L.op("Equal", [target, L.const(np.asarray(ignore_index, np.int64))])])
    safe = L.op("Where", [keep, target, L.const(np.asarray(0, np.int64))])
    picked = L.op("GatherElements", [x, L.op("Unsqueeze", [safe, L.ints([1])])], {"axis": 1})
    picked = L.reshape(picked, spec(target)[0])
    losses = L.op("Where", [keep, L.op("Neg", [picked]), L.const(np.asarray(0, dt))])
    total = L.op("ReduceSum", [L.cast(keep, dt), L.ints([0])], {"keepdims": 0})
    if reduction == 0:
        return losses, total
    s = L.op("ReduceSum", [losses, L.ints([0])], {"keepdims": 0})
    return (L.op("Div", [s, total]) if reduction == 1 else s), total


@row(aten.nll_loss_backward.default)
def _nll_loss_backward(L: Lowering, g: SSAValue, x: SSAValue, target: SSAValue, weight: Any, reduction: int,
                       ignore_index: int, total: SSAValue) -> SSAValue:
    dt = spec(x)[1].numpy
    keep = L.op("Not", [L.op("Equal", [target, L.const(np.asarray(ignore_index, np.int64))])])
    safe = L.op("Where", [keep, target, L.const(np.asarray(0, np.int64))])
    per_row = L.op("Neg", [g])
    if reduction == 1:
        per_row = L.op("Div", [per_row, total])
    if rank(per_row) == 0:
        per_row = L.op("Expand", [per_row, L.ints(spec(target)[0])])
    per_row = L.op("Where", [keep, per_row, L.const(np.asarray(0, dt))])
    zeros = L.filled(0, spec(x)[0], dt)
    col = L.op("Unsqueeze", [safe, L.ints([1])])
    return L.op("ScatterElements", [zeros, col, L.op("Unsqueeze", [per_row, L.ints([1])])], {"axis": 1})


# -- attention -------------------------------------------------------------------------


def _attention_scores(L: Lowering, q: SSAValue, k: SSAValue, mask: Any, causal: bool, scale: Any) -> SSAValue:
    """scale * q @ k^T, with the additive or boolean mask and the causal mask applied."""
    dt = spec(q)[1].numpy
    e = spec(q)[0][-1]
    r = rank(k)
    kt = L.op("Transpose", [k], {"perm": [*range(r - 2), r - 1, r - 2]})
    s = L.op("Mul", [L.op("MatMul", [q, kt]), L.const(np.asarray(scale if scale is not None else 1 / np.sqrt(e), dt))])
    lq, lk = spec(s)[0][-2], spec(s)[0][-1]
    if causal:
        keep = L.const(np.tril(np.ones((lq, lk), dtype=bool)))
        s = L.op("Where", [keep, s, L.const(np.asarray(-np.inf, dt))])
    if mask is not None:
        if spec(mask)[1].numpy == np.bool_:
            s = L.op("Where", [mask, s, L.const(np.asarray(-np.inf, dt))])
        else:
            s = L.op("Add", [s, L.cast(mask, dt)])
    return s


@row(aten._scaled_dot_product_flash_attention_for_cpu.default)
def _sdpa_cpu(L: Lowering, q: SSAValue, k: SSAValue, v: SSAValue, dropout_p: float = 0.0, is_causal: bool = False, *,
              attn_mask: Any = None, scale: Any = None) -> tuple[SSAValue, SSAValue]:
    """softmax(scale * q k^T + mask) v as one ONNX Attention (which a target can run as a
    flash kernel), and the log-sum-exp of each row (saved for backward; when nothing reads
    it, the scores it is computed from are dead code)."""
    if dropout_p:
        raise UnsupportedOp(f"{L.where()}: attention dropout draws random numbers, which graphopt does not")
    attrs: dict[str, Any] = {"is_causal": int(bool(is_causal))}
    if scale is not None:
        attrs["scale"] = float(scale)
    mask = [attn_mask] if attn_mask is not None else []
    out = L.op("Attention", [q, k, v, *mask], attrs, specs=[L.out_spec(0)])
    s = _attention_scores(L, q, k, attn_mask, is_causal, scale)
    # torch keeps the log-sum-exp in float32 whatever q's dtype
    lse = L.op("ReduceLogSumExp", [L.cast(s, np.float32), L.ints([-1])], {"keepdims": 0})
    return out, lse


@row(aten._scaled_dot_product_flash_attention_for_cpu_backward.default)
def _sdpa_cpu_backward(L: Lowering, go: SSAValue, q: SSAValue, k: SSAValue, v: SSAValue, out: SSAValue, lse: SSAValue,
                       dropout_p: float = 0.0, is_causal: bool = False, *, attn_mask: Any = None,
                       scale: Any = None) -> tuple[SSAValue, SSAValue, SSAValue]:
    """The attention probabilities recomputed (not from the saved ``logsumexp``: after
    the core decompositions of the forward, that operand is not always the log-sum-exp),
    then the softmax and matmul gradients."""
    dt = spec(q)[1].numpy
    e = spec(q)[0][-1]
    sc = scale if scale is not None else 1 / np.sqrt(e)
    s = _attention_scores(L, q, k, attn_mask, is_causal, scale)
    p = L.op("Softmax", [s], {"axis": -1})
    r = rank(q)
    swap = {"perm": [*range(r - 2), r - 1, r - 2]}
    gv = L.op("MatMul", [L.op("Transpose", [p], swap), go])
    gp = L.op("MatMul", [go, L.op("Transpose", [v], swap)])
    row_dot = L.op("ReduceSum", [L.op("Mul", [gp, p]), L.ints([-1])], {"keepdims": 1})
    gs = L.op("Mul", [L.op("Mul", [p, L.op("Sub", [gp, row_dot])]), L.const(np.asarray(sc, dt))])
    gq = L.op("MatMul", [gs, k])
    gk = L.op("MatMul", [L.op("Transpose", [gs], swap), q])
    return gq, gk, gv
