"""fold-conv-bn: fold an inference BatchNormalization into the Conv before it.

    y = BatchNormalization(Conv(x, W, b), scale, B, mean, var, epsilon)
  becomes
    y = Conv(x, W * s[:, None, ...], (b - mean) * s + B)   with s = scale / sqrt(var + eps)

Needs W, b, scale, B, mean and var to be constants, the Conv's result to have no other
user, and BatchNormalization in inference mode (training_mode = 0, one output used).
The folded weights are computed in float64 and stored in the Conv's dtype.

A batch norm written as a per-channel Mul and Add (Caffe's Scale layer, and so onnx's own
Inception v2 and DenseNet-121) folds the same way, as onnxruntime's ConvMulFusion and
ConvAddFusion do:

    Mul(Conv(x, W, b), s) -> Conv(x, W * s, b * s)      Add(Conv(x, W, b), c) -> Conv(x, W, b + c)

for constants s and c that hold one value per output channel or one in all ([M, 1, 1],
[1, M, 1, 1], a scalar): nothing they broadcast adds an axis or a size to the Conv's result.
"""

from __future__ import annotations

import numpy as np

from graphopt.dialects.graph import BatchNormalization, Conv
from graphopt.patterns import Match, Op, Pattern, PatternPass, Tensor, Var
from graphopt.rewrite import build, constant_value, make_constant, src_of
from graphopt.weights import WeightStore


def _fold(m: Match):
    bn, conv = m.op("bn"), m.op("conv")
    why = _why_not(bn, conv, m.weights)
    if why:
        m.remarks.append({"ops": src_of(conv, bn), "reason": why})
        return None
    w = constant_value(conv.w, m.weights)
    consts = [constant_value(v, m.weights) for v in (bn.scale, bn.b, bn.input_mean, bn.input_var)]
    assert w is not None and all(c is not None for c in consts)
    scale, shift, mean, var = (np.asarray(c, np.float64) for c in consts)  # type: ignore[arg-type]
    s = scale / np.sqrt(var + bn.onnx_attrs().get("epsilon", 1e-5))
    b = constant_value(conv.b, m.weights) if conv.b is not None else None
    bias = np.zeros_like(s) if b is None else np.asarray(b, np.float64)
    new_w = _scaled(w, s)
    new_b = ((bias - mean) * s + shift).astype(w.dtype)
    w_op = make_constant(new_w, m.src, m.weights, "conv_bn.w")
    b_op = make_constant(new_b, m.src, m.weights, "conv_bn.b")
    return [w_op, b_op, build("Conv", [conv.x, w_op.results[0], b_op.results[0]], conv.onnx_attrs(), m.src)]


def _scaled(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Conv weights [M, ...] with output channel m scaled by s[m], computed in float64."""
    return (w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)


def _why_not(bn: BatchNormalization, conv: Conv, weights: WeightStore | None) -> str | None:
    if not conv.results[0].has_one_use():
        return "not folded: the Conv's output has other users"
    if bn.onnx_attrs().get("training_mode", 0) or any(r.uses for r in bn.results[1:]):
        return "not folded: BatchNormalization is in training mode"
    operands = [conv.w, *([conv.b] if conv.b is not None else []), bn.scale, bn.b, bn.input_mean, bn.input_var]
    if any(constant_value(v, weights) is None for v in operands):
        return "not folded: the Conv weights or the BatchNormalization statistics are not constants"
    return None


def _per_channel(c: np.ndarray, conv: Conv) -> np.ndarray | None:
    """``c`` as one value per output channel [M], or None when it broadcasts any other way."""
    out = conv.results[0].type.get_shape()  # type: ignore[attr-defined]
    if c.ndim > len(out):
        return None
    padded = (1,) * (len(out) - c.ndim) + c.shape
    if any(d != 1 for k, d in enumerate(padded) if k != 1) or padded[1] not in (1, out[1]):
        return None
    return np.broadcast_to(c.reshape(-1).astype(np.float64), (out[1],))


def _fold_scale(m: Match):
    conv, op = m.op("conv"), m.op("op")
    c = constant_value(m["c"], m.weights)
    w = constant_value(conv.w, m.weights)
    b = constant_value(conv.b, m.weights) if conv.b is not None else None
    if not conv.results[0].has_one_use() or c is None or w is None or (conv.b is not None and b is None):
        return None
    v = _per_channel(np.asarray(c), conv)
    if v is None or np.asarray(c).dtype != w.dtype:
        return None
    bias = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    if op.ONNX_TYPE == "Mul":
        w_op = make_constant(_scaled(w, v), m.src, m.weights, "conv_mul.w")
        b_op = make_constant((bias * v).astype(w.dtype), m.src, m.weights, "conv_mul.b")
        return [w_op, b_op, build("Conv", [conv.x, w_op.results[0], b_op.results[0]], conv.onnx_attrs(), m.src)]
    b_op = make_constant((bias + v).astype(w.dtype), m.src, m.weights, "conv_add.b")
    return [b_op, build("Conv", [conv.x, conv.w, b_op.results[0]], conv.onnx_attrs(), m.src)]


CONV_SCALE = Pattern("conv-mul-add", Op("Mul|Add", Op(Conv, Var(), Var(), name="conv", rest="b"), Tensor("c"), name="op"),
                     _fold_scale)

# Matched loosely, so that a near miss leaves a remark saying why it was not folded.
CONV_BN = Pattern("conv-bn", Op(BatchNormalization, Op(Conv, Var(), Var(), name="conv", rest="b"), Var(), Var(), Var(),
                                Var(), name="bn"), _fold)


class FoldConvBN(PatternPass):
    """Fold inference BatchNormalization into the preceding Conv's weights and bias."""

    name = "fold-conv-bn"
    phases = ((CONV_BN, CONV_SCALE),)
