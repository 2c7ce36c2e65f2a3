"""Sampling rules: GridSample, AffineGrid, DeformConv.

GridSample reads an image at fractional positions. Positions come normalised to [-1, 1]
(x first, i.e. the last spatial axis first) and are mapped to pixel coordinates: with
``align_corners`` -1 and 1 are the centres of the corner pixels, without it they are the
outer edges of the corner pixels. Each output value is a weighted sum over "taps" (1 for
nearest, 2 per axis for linear, 4 per axis for cubic), each tap reading one pixel through
the padding mode (zeros outside, clamped to the border, or reflected back inside).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from graphopt.semantics import rule

_CUBIC_A = -0.75  # Keys' cubic convolution coefficient, as ONNX (and PyTorch) use


def _denormalize(g: np.ndarray, size: int, align_corners: int) -> np.ndarray:
    return (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold ``x`` back into [lo, hi] by mirroring at the borders, as often as needed."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    d = np.where(below, lo - x, np.where(above, x - hi, 0))
    n = np.floor(d / span)
    r = d - n * span
    even = n % 2 == 0
    from_lo = np.where(even, lo + r, hi - r)
    from_hi = np.where(even, hi - r, lo + r)
    return np.where(below, from_lo, np.where(above, from_hi, x))


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Weights of taps at offsets -1, 0, 1, 2 for a fractional part ``t``."""
    a = _CUBIC_A

    def near(s: np.ndarray) -> np.ndarray:  # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s: np.ndarray) -> np.ndarray:  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(x: np.ndarray, mode: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixel index, weight) pairs along one axis for coordinates ``x``."""
    if mode == "nearest":
        return [(np.rint(x).astype(np.int64), np.ones_like(x))]
    base = np.floor(x)
    t = x - base
    if mode == "linear":
        return [(base.astype(np.int64), 1 - t), (base.astype(np.int64) + 1, t)]
    if mode == "cubic":
        return [(base.astype(np.int64) + k - 1, w) for k, w in enumerate(_cubic_weights(t))]
    raise ValueError(f"GridSample mode {mode!r} is not nearest, linear or cubic")


def _pixel_index(i: np.ndarray, size: int, padding_mode: str, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Where tap index ``i`` reads, and whether it reads at all (zeros padding)."""
    if padding_mode == "zeros":
        inside = (i >= 0) & (i < size)
        return np.clip(i, 0, size - 1), inside
    if padding_mode == "border":
        return np.clip(i, 0, size - 1), np.ones(i.shape, bool)
    if padding_mode == "reflection":
        folded = np.trunc(_reflect(i.astype(np.float64), lo, hi)).astype(np.int64)
        return np.clip(folded, 0, size - 1), np.ones(i.shape, bool)
    raise ValueError(f"GridSample padding_mode {padding_mode!r} is not zeros, border or reflection")


@rule("GridSample")
def grid_sample(
    x: np.ndarray, grid: np.ndarray, *, align_corners: int = 0, mode: str = "linear", padding_mode: str = "zeros"
) -> np.ndarray:
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)  # opset 16 names
    dims = x.shape[2:]
    n, c = x.shape[:2]
    out_spatial = grid.shape[1:-1]
    if 0 in (n, c, *out_spatial):
        return np.zeros((n, c, *out_spatial), x.dtype)
    coords = grid[..., ::-1].astype(np.float64)  # (N, *out, r), now in axis order
    per_axis = []
    for k, size in enumerate(dims):
        v = _denormalize(coords[..., k], size, align_corners)
        lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        if mode == "nearest":
            v = np.rint(v)
        outside = (v < lo) | (v > hi)
        if padding_mode == "border":
            v = np.where(outside, np.clip(v, 0, size - 1), v)
        elif padding_mode == "reflection":
            v = np.where(outside, _reflect(v, lo, hi), v)
        per_axis.append([(*_pixel_index(i, size, padding_mode, lo, hi), w) for i, w in _taps(v, mode)])
    batch = np.arange(n).reshape((n,) + (1,) * len(out_spatial))
    acc = np.zeros((n, *out_spatial, c), np.float64)
    for combo in itertools.product(*per_axis):
        weight = np.ones(acc.shape[:-1])
        index: list[np.ndarray] = [batch]
        for i, inside, w in combo:
            weight = weight * w * inside
            index.append(i)
        xt = np.moveaxis(x, 1, -1)  # (N, *dims, C): gather whole channel vectors at once
        acc += xt[tuple(index)] * weight[..., None]
    return np.moveaxis(acc, -1, 1).astype(x.dtype)


def _base_coords(size: int, align_corners: int) -> np.ndarray:
    """Normalised coordinates of the pixel centres along one axis."""
    if align_corners:
        return np.linspace(-1, 1, size) if size > 1 else np.zeros(1)
    return (np.arange(size) * 2 + 1) / size - 1


@rule("AffineGrid")
def affine_grid(theta: np.ndarray, size: np.ndarray, *, align_corners: int = 0) -> np.ndarray:
    """The sampling grid (N, *spatial, r) that theta (N, r, r+1) maps the output onto;
    the last axis is (x, y[, z]), x along the last spatial axis."""
    spatial = [int(s) for s in np.asarray(size).reshape(-1)[2:]]
    axes = np.meshgrid(*[_base_coords(s, align_corners) for s in spatial], indexing="ij")
    # Homogeneous coordinates in (x, y, z) order, i.e. the spatial axes reversed.
    points = np.stack([*axes[::-1], np.ones(axes[0].shape)], axis=-1)  # (*spatial, r+1)
    grid = np.einsum("...j,nij->n...i", points, theta.astype(np.float64))
    return grid.astype(theta.dtype)


def _bilinear_zero_padded(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """img (C, H, W) at fractional (ys, xs) -> (C, *ys.shape); pixels outside read 0."""
    h, w = img.shape[1:]
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    ty, tx = ys - y0, xs - x0
    out = np.zeros((img.shape[0], *ys.shape), np.float64)
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            yi, xi = y0 + dy, x0 + dx
            inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
            vals = img[:, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            out += vals * (wy * wx * inside)
    return out


@rule("DeformConv")
def deform_conv(
    x: np.ndarray,
    w: np.ndarray,
    offset: np.ndarray,
    b: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    *,
    dilations: Sequence[int] | None = None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
    offset_group: int = 1,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> np.ndarray:
    """2-D deformable convolution: each kernel tap reads the input at its regular
    position plus a learned (dy, dx) offset, bilinearly, scaled by an optional mask."""
    if x.ndim != 4:
        raise ValueError(f"DeformConv supports 2-D inputs (N, C, H, W), not rank {x.ndim}")
    n, c = x.shape[:2]
    oc, c_per_group, kh, kw = w.shape
    sh, sw = strides or (1, 1)
    dh, dw = dilations or (1, 1)
    pt, pl = (pads or (0, 0, 0, 0))[:2]
    oh, ow = offset.shape[2:]
    taps = kh * kw
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow).astype(np.float64)
    m = np.ones((n, offset_group, kh, kw, oh, ow)) if mask is None else mask.reshape(n, offset_group, kh, kw, oh, ow)
    base_y = (np.arange(oh) * sh - pt)[None, None, :, None] + (np.arange(kh) * dh)[:, None, None, None]
    base_x = (np.arange(ow) * sw - pl)[None, None, None, :] + (np.arange(kw) * dw)[None, :, None, None]
    c_per_off = c // offset_group
    cols = np.zeros((n, c, kh, kw, oh, ow), np.float64)  # the sampled input under each tap
    for i in range(n):
        for g in range(offset_group):
            ys = base_y + off[i, g, :, :, 0]
            xs = base_x + off[i, g, :, :, 1]
            chans = slice(g * c_per_off, (g + 1) * c_per_off)
            cols[i, chans] = _bilinear_zero_padded(x[i, chans].astype(np.float64), ys, xs) * m[i, g]
    oc_per_group = oc // group
    out = np.zeros((n, oc, oh, ow), np.float64)
    for g in range(group):
        ci = cols[:, g * c_per_group : (g + 1) * c_per_group].reshape(n, c_per_group * taps, oh * ow)
        wg = w[g * oc_per_group : (g + 1) * oc_per_group].reshape(oc_per_group, -1).astype(np.float64)
        out[:, g * oc_per_group : (g + 1) * oc_per_group] = (wg @ ci).reshape(n, oc_per_group, oh, ow)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out.astype(x.dtype)
