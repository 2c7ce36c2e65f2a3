"""Rules of the sequence-model ops: RotaryEmbedding, LinearAttention, CausalConvWithState."""

from __future__ import annotations

import numpy as np

from graphopt.semantics import rule


@rule("RotaryEmbedding")
def rotary_embedding(
    x: np.ndarray,
    cos_cache: np.ndarray,
    sin_cache: np.ndarray,
    position_ids: np.ndarray | None = None,
    *,
    interleaved: int = 0,
    num_heads: int = 0,
    rotary_embedding_dim: int = 0,
) -> np.ndarray:
    """Rotate pairs of the first ``rotary_embedding_dim`` features of each head by the
    angle of its position. Pairs are (i, i + rd/2) by default, (2i, 2i+1) interleaved.
    x is (B, H, S, D) or (B, S, H*D); caches are (B, S, rd/2), or (P, rd/2) indexed by
    position_ids (B, S)."""
    four_d = x.ndim == 4
    t = x.transpose(0, 2, 1, 3) if four_d else x.reshape(*x.shape[:2], num_heads, -1)  # (B, S, H, D)
    rd = rotary_embedding_dim or t.shape[-1]
    if position_ids is not None:
        cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
    if cos_cache.shape[-1] != rd // 2:
        raise ValueError(f"RotaryEmbedding cos_cache has {cos_cache.shape[-1]} features, rotary dim/2 is {rd // 2}")
    cos, sin = cos_cache[:, :, None, :], sin_cache[:, :, None, :]
    part = t[..., :rd]
    a, b = (part[..., 0::2], part[..., 1::2]) if interleaved else (part[..., : rd // 2], part[..., rd // 2 :])
    ra, rb = cos * a - sin * b, sin * a + cos * b
    rotated = np.stack([ra, rb], axis=-1).reshape(part.shape) if interleaved else np.concatenate([ra, rb], axis=-1)
    out = np.concatenate([rotated, t[..., rd:]], axis=-1).astype(x.dtype)
    return out.transpose(0, 2, 1, 3) if four_d else out.reshape(x.shape)


@rule("CausalConvWithState")
def causal_conv_with_state(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    past_state: np.ndarray | None = None,
    *,
    activation: str = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Depthwise 1-D convolution (B, C, L) with kernel (C, 1, K) over the input prefixed
    by the K-1 previous steps (past_state, zeros if absent); returns the output and the
    last K-1 steps as the next state. ``silu``/``swish`` apply x * sigmoid(x)."""
    if activation not in ("none", "silu", "swish"):
        raise ValueError(f"CausalConvWithState activation {activation!r} is not none, silu or swish")
    batch, channels, length = x.shape
    k = weight.shape[2]
    past = np.zeros((batch, channels, k - 1), x.dtype) if past_state is None else past_state
    padded = np.concatenate([past, x], axis=2)
    wide = padded.astype(np.float64)
    out = sum(wide[:, :, j : j + length] * weight[:, 0, j].astype(np.float64)[None, :, None] for j in range(k))
    if bias is not None:
        out = out + bias.astype(np.float64)[None, :, None]
    out = np.asarray(out).astype(x.dtype)
    if activation != "none":
        f = out.astype(np.float32)
        out = (f / (1 + np.exp(-f))).astype(x.dtype)
    return out, padded[:, :, padded.shape[2] - (k - 1) :]


def _heads(t: np.ndarray, n: int) -> np.ndarray:
    """(B, T, n*d) -> (B, n, T, d) in float32, the op's compute type."""
    b, steps, _ = t.shape
    return t.reshape(b, steps, n, -1).transpose(0, 2, 1, 3).astype(np.float32)


@rule("LinearAttention")
def linear_attention(
    query: np.ndarray,
    key: np.ndarray,
    value: np.ndarray,
    past_state: np.ndarray | None = None,
    decay: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    chunk_size: int = 64,
    kv_num_heads: int = 1,
    q_num_heads: int = 1,
    scale: float = 0.0,
    update_rule: str = "gated_delta",
) -> tuple[np.ndarray, np.ndarray]:
    """A recurrent state S (B, H_kv, d_k, d_v) updated once per step t:
    gated rules first decay it by exp(decay_t); delta rules write beta_t * (v_t - S^T k_t)
    instead of v_t; then S += k_t v_t^T and the output is scale * q_t S (each query head
    reading its kv group's state). ``chunk_size`` is a tuning hint with no effect."""
    if update_rule not in ("linear", "gated", "delta", "gated_delta"):
        raise ValueError(f"LinearAttention update_rule {update_rule!r} is unknown")
    gated, delta = "gated" in update_rule, "delta" in update_rule
    b, steps, _ = query.shape
    q, k, v = _heads(query, q_num_heads), _heads(key, kv_num_heads), _heads(value, kv_num_heads)
    d_k, d_v = q.shape[-1], v.shape[-1]
    group = q_num_heads // kv_num_heads
    # decay is per head (last dim H_kv, giving d=1) or per key feature (H_kv*d_k).
    g = _heads(decay, kv_num_heads) if gated and decay is not None else None
    bt = _heads(beta, beta.shape[-1]) if delta and beta is not None else None
    state = np.zeros((b, kv_num_heads, d_k, d_v), np.float32) if past_state is None else past_state.astype(np.float32)
    scale = scale or 1 / np.sqrt(d_k)
    out = np.zeros((b, q_num_heads, steps, d_v), np.float32)
    for i in range(steps):
        k_t, v_t = k[:, :, i], v[:, :, i]
        if g is not None:
            state = state * np.exp(g[:, :, i])[..., None]
        if bt is not None:
            v_t = bt[:, :, i] * (v_t - np.einsum("bhkv,bhk->bhv", state, k_t))
        state = state + k_t[..., :, None] * v_t[..., None, :]
        read = np.repeat(state, group, axis=1) if group > 1 else state
        out[:, :, i] = scale * np.einsum("bhk,bhkv->bhv", q[:, :, i], read)
    y = out.transpose(0, 2, 1, 3).reshape(b, steps, q_num_heads * d_v).astype(query.dtype)
    return y, state.astype(past_state.dtype if past_state is not None else query.dtype)


@rule("ai.onnx.preview::FlexAttention")
def flex_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float | None = None,
    softmax_precision: int | None = None,
) -> np.ndarray:
    """softmax(scale * Q K^T) V over (B, H, L, E) heads, kv heads shared by groups of
    query heads. The score_mod/prob_mod subgraphs are control flow (not handled here:
    the frontend refuses graph attributes until regions exist)."""
    ct = np.float64 if q.dtype == np.float64 else np.float32
    group = q.shape[1] // k.shape[1]
    kr = np.repeat(k.astype(ct), group, axis=1)
    vr = np.repeat(v.astype(ct), group, axis=1)
    s = (1 / np.sqrt(q.shape[-1])) if not scale else scale
    scores = (q.astype(ct) @ kr.swapaxes(-1, -2)) * ct(s)
    if softmax_precision:
        from onnx import helper

        scores = scores.astype(helper.tensor_dtype_to_np_dtype(softmax_precision))
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = (e / e.sum(axis=-1, keepdims=True)).astype(ct)
    return (probs @ vr).astype(q.dtype)
