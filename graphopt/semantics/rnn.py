"""Recurrent and attention rules: RNN, GRU, LSTM, Attention."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from graphopt.semantics import rule

Act = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# name -> (default alpha[, beta] it takes, builder taking them)
_ACTIVATIONS: dict[str, tuple[tuple[float, ...], Callable[..., Act]]] = {
    "relu": ((), lambda: lambda x: np.maximum(x, 0)),
    "tanh": ((), lambda: np.tanh),
    "sigmoid": ((), lambda: _sigmoid),
    "affine": ((1.0, 0.0), lambda a, b: lambda x: a * x + b),
    "leakyrelu": ((0.01,), lambda a: lambda x: np.where(x >= 0, x, a * x)),
    "thresholdedrelu": ((1.0,), lambda a: lambda x: np.where(x >= a, x, 0)),
    "scaledtanh": ((1.0, 1.0), lambda a, b: lambda x: a * np.tanh(b * x)),
    "hardsigmoid": ((0.2, 0.5), lambda a, b: lambda x: np.clip(a * x + b, 0, 1)),
    "elu": ((1.0,), lambda a: lambda x: np.where(x >= 0, x, a * (np.exp(x) - 1))),
    "softsign": ((), lambda: lambda x: x / (1 + np.abs(x))),
    "softplus": ((), lambda: lambda x: np.log1p(np.exp(x))),
}


def _activations(
    names: Sequence[str] | None,
    defaults: Sequence[str],
    dirs: int,
    alpha: Sequence[float] | None,
    beta: Sequence[float] | None,
    clip: float | None,
) -> list[list[Act]]:
    """The activation functions of each direction, with the cell clip folded in."""
    names = list(names) if names else list(defaults) * dirs
    if len(names) == len(defaults):
        names = names * dirs
    alphas, betas = list(alpha or []), list(beta or [])
    fns: list[Act] = []
    for name in names:
        params, build = _ACTIVATIONS[name.lower()]
        # alpha and beta are consumed in order by the activations that take them.
        args = list(params)
        if args:
            args[0] = alphas.pop(0) if alphas else args[0]
        if len(args) > 1:
            args[1] = betas.pop(0) if betas else args[1]
        fn = build(*args)
        if clip is not None:
            fn = (lambda f: lambda x: f(np.clip(x, -clip, clip)))(fn)
        fns.append(fn)
    k = len(defaults)
    return [fns[d * k : (d + 1) * k] for d in range(dirs)]


def _run(
    x: np.ndarray,
    seq_lens: np.ndarray | None,
    direction: str,
    layout: int,
    initial: list[np.ndarray | None],
    hidden: int,
    make_step: Callable[[int], Callable[..., tuple[np.ndarray, ...]]],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Drive a recurrence; returns Y and the final states, in the node's layout.

    ``make_step(d)`` gives direction ``d``'s step ``(x_t, *states) -> states``, whose first
    state is the hidden state H.
    """
    if layout:
        x = x.swapaxes(0, 1)
        initial = [None if s is None else s.swapaxes(0, 1) for s in initial]
    t_len, batch = x.shape[:2]
    lens = np.full(batch, t_len, np.int64) if seq_lens is None else seq_lens.astype(np.int64)
    dirs = 2 if direction == "bidirectional" else 1
    ys, finals = [], [[] for _ in initial]
    t_idx = np.arange(t_len)[:, None]
    # Reversing each sequence's valid prefix lets a reverse pass run forward.
    rev_idx = np.where(t_idx < lens, lens - 1 - t_idx, t_idx)  # (T, B)
    b_idx = np.arange(batch)[None, :]
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        xs = x[rev_idx, b_idx] if reverse else x
        states = [np.zeros((batch, hidden), x.dtype) if s is None else s[d] for s in initial]
        step = make_step(d)
        y = np.zeros((t_len, batch, hidden), x.dtype)
        for t in range(t_len):
            new = step(xs[t], *states)
            live = (t < lens)[:, None]
            states = [np.where(live, n, s) for n, s in zip(new, states)]
            y[t] = np.where(live, new[0], 0)
        if reverse:
            y = y[rev_idx, b_idx]
        ys.append(y)
        for i, s in enumerate(states):
            finals[i].append(s)
    y = np.stack(ys, axis=1)  # (T, D, B, H)
    out = [np.stack(f) for f in finals]  # (D, B, H)
    if layout:
        y = y.transpose(2, 0, 1, 3)
        out = [s.swapaxes(0, 1) for s in out]
    return y.astype(x.dtype), [s.astype(x.dtype) for s in out]


def _biases(b: np.ndarray | None, dirs: int, width: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    if b is None:
        z = np.zeros((dirs, width), dtype)
        return z, z
    return b[:, :width], b[:, width:]


@rule("RNN")
def rnn(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    *,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    activations: Sequence[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    hidden = r.shape[-1]
    dirs = w.shape[0]
    acts = _activations(activations, ["Tanh"], dirs, activation_alpha, activation_beta, clip)
    wb, rb = _biases(b, dirs, hidden, x.dtype)

    def make_step(d: int):
        f = acts[d][0]
        bias = wb[d] + rb[d]
        return lambda xt, h: (f(xt @ w[d].T + h @ r[d].T + bias),)

    y, (y_h,) = _run(x, sequence_lens, direction, layout, [initial_h], hidden, make_step)
    return y, y_h


@rule("GRU")
def gru(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    *,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    activations: Sequence[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    layout: int = 0,
    linear_before_reset: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    hidden = r.shape[-1]
    dirs = w.shape[0]
    acts = _activations(activations, ["Sigmoid", "Tanh"], dirs, activation_alpha, activation_beta, clip)
    wb, rb = _biases(b, dirs, 3 * hidden, x.dtype)

    def make_step(d: int):
        f, g = acts[d]
        wd, rd = w[d], r[d]
        rh = rd[2 * hidden :]

        def step(xt, h):
            xw = xt @ wd.T + wb[d]
            hr = h @ rd[: 2 * hidden].T + rb[d][: 2 * hidden]
            z = f(xw[:, :hidden] + hr[:, :hidden])
            rr = f(xw[:, hidden : 2 * hidden] + hr[:, hidden:])
            if linear_before_reset:
                hh = g(xw[:, 2 * hidden :] + rr * (h @ rh.T + rb[d][2 * hidden :]))
            else:
                hh = g(xw[:, 2 * hidden :] + (rr * h) @ rh.T + rb[d][2 * hidden :])
            return ((1 - z) * hh + z * h,)

        return step

    y, (y_h,) = _run(x, sequence_lens, direction, layout, [initial_h], hidden, make_step)
    return y, y_h


@rule("LSTM")
def lstm(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    initial_c: np.ndarray | None = None,
    p: np.ndarray | None = None,
    *,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    activations: Sequence[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    input_forget: int = 0,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hidden = r.shape[-1]
    dirs = w.shape[0]
    acts = _activations(activations, ["Sigmoid", "Tanh", "Tanh"], dirs, activation_alpha, activation_beta, clip)
    wb, rb = _biases(b, dirs, 4 * hidden, x.dtype)
    peep = np.zeros((dirs, 3 * hidden), x.dtype) if p is None else p

    def make_step(d: int):
        f, g, h_act = acts[d]
        pi, po, pf = np.split(peep[d], 3)
        bias = wb[d] + rb[d]

        def step(xt, h, c):
            gates = xt @ w[d].T + h @ r[d].T + bias
            gi, go, gf, gc = np.split(gates, 4, axis=-1)
            i = f(gi + pi * c)
            fg = 1 - i if input_forget else f(gf + pf * c)
            c_new = fg * c + i * g(gc)
            o = f(go + po * c_new)
            return o * h_act(c_new), c_new

        return step

    y, (y_h, y_c) = _run(x, sequence_lens, direction, layout, [initial_h, initial_c], hidden, make_step)
    return y, y_h, y_c


def _heads(t: np.ndarray, n: int | None) -> np.ndarray:
    """(B, S, n*h) -> (B, n, S, h); 4-D tensors already are."""
    if t.ndim == 4:
        return t
    b, s, _ = t.shape
    return t.reshape(b, s, n, -1).transpose(0, 2, 1, 3)


@rule("Attention")
def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    attn_mask: np.ndarray | None = None,
    past_key: np.ndarray | None = None,
    past_value: np.ndarray | None = None,
    nonpad_kv_seqlen: np.ndarray | None = None,
    *,
    is_causal: int = 0,
    kv_num_heads: int | None = None,
    q_num_heads: int | None = None,
    qk_matmul_output_mode: int = 0,
    scale: float | None = None,
    softcap: float = 0.0,
    softmax_precision: int | None = None,
    left_window_size: int = -1,
    right_window_size: int = -1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out_t = q.dtype
    ct = np.float64 if out_t == np.float64 else np.float32
    qh, kh, vh = _heads(q, q_num_heads), _heads(k, kv_num_heads), _heads(v, kv_num_heads)
    if past_key is not None:
        kh = np.concatenate([past_key, kh], axis=2)
        vh = np.concatenate([past_value, vh], axis=2)
    present_key, present_value = kh, vh
    batch, n_q, s_q, head = qh.shape
    s_kv = kh.shape[2]
    if scale is None:
        scale = 1 / math.sqrt(head)
    group = n_q // kh.shape[1]
    kr = np.repeat(kh.astype(ct), group, axis=1)
    vr = np.repeat(vh.astype(ct), group, axis=1)
    # Scale Q and K by sqrt(scale) each, as the spec does, to match its rounding.
    root = math.sqrt(scale)
    qk = (qh.astype(ct) * root) @ (kr * root).swapaxes(-1, -2)
    modes = {0: qk}
    if softcap:
        qk = softcap * np.tanh(qk / softcap)
    modes[1] = qk

    # allowed: (B, 1, S_q, S_kv) structural mask from causality, windows and padding.
    allowed = np.ones((batch, 1, s_q, s_kv), bool)
    i = np.arange(s_q)[:, None]
    j = np.arange(s_kv)[None, :]
    if past_key is not None:
        offset = np.full(batch, past_key.shape[2])
    elif nonpad_kv_seqlen is not None:
        offset = nonpad_kv_seqlen.astype(np.int64) - s_q
    else:
        offset = np.zeros(batch, np.int64)
    pos = i[None] + offset[:, None, None]  # (B, S_q, 1) absolute query positions
    if is_causal:
        allowed &= (j[None] <= pos)[:, None]
    if left_window_size >= 0:
        allowed &= (j[None] >= pos - left_window_size)[:, None]
    if right_window_size >= 0:
        allowed &= (j[None] <= pos + right_window_size)[:, None]
    if nonpad_kv_seqlen is not None:
        allowed &= (j[None, None] < nonpad_kv_seqlen.reshape(-1, 1, 1, 1))
    bias = np.where(allowed, 0.0, -np.inf).astype(ct)
    if attn_mask is not None:
        m = attn_mask
        if m.shape[-1] < s_kv:
            fill = False if m.dtype == bool else -np.inf
            m = np.concatenate([m, np.full(m.shape[:-1] + (s_kv - m.shape[-1],), fill, m.dtype)], axis=-1)
        bias = bias + (np.where(m, 0.0, -np.inf).astype(ct) if m.dtype == bool else m.astype(ct))
    qk = qk + bias
    modes[2] = qk

    sm_t = _softmax_dtype(softmax_precision, ct)
    logits = qk.astype(sm_t).astype(np.float64 if sm_t == np.float64 else np.float32)
    peak = logits.max(axis=-1, keepdims=True)
    dead = ~np.isfinite(peak) & (peak < 0)  # every key masked
    e = np.exp(logits - np.where(dead, 0, peak))
    e = np.where(dead, 0, e)
    total = e.sum(axis=-1, keepdims=True)
    probs = (e / np.where(total == 0, 1, total)).astype(sm_t).astype(ct)
    modes[3] = probs
    y = probs @ vr
    if q.ndim == 3:
        y = y.transpose(0, 2, 1, 3).reshape(batch, s_q, -1)
    return (
        y.astype(out_t),
        present_key.astype(out_t),
        present_value.astype(out_t),
        modes[qk_matmul_output_mode].astype(out_t),
    )


def _softmax_dtype(precision: int | None, default) -> np.dtype:
    if not precision:
        return np.dtype(default)
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(precision))
