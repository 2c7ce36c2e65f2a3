"""Detection rules: RoiAlign, NonMaxSuppression."""

from __future__ import annotations

import math

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.nn_common import scalar


def _bilinear_samples(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of img (C, H, W) at each (ys[i], xs[j]): the four weighted corners
    as (4, C, len(ys), len(xs)), zero outside the [-1, size] border."""
    _, h, w = img.shape

    def axis(v: np.ndarray, size: int):
        outside = (v < -1) | (v > size)
        v = np.maximum(v, 0)
        lo = np.minimum(v.astype(np.int64), size - 1)
        hi = np.minimum(lo + 1, size - 1)
        frac = np.where(lo >= size - 1, 0.0, v - lo)
        return lo, hi, 1 - frac, frac, outside

    y0, y1, hy, ly, oy = axis(ys, h)
    x0, x1, hx, lx, ox = axis(xs, w)
    keep = ~(oy[:, None] | ox[None, :])
    corners = []
    for yi, wy in ((y0, hy), (y1, ly)):
        for xi, wx in ((x0, hx), (x1, lx)):
            corners.append(img[:, yi[:, None], xi[None, :]] * (wy[:, None] * wx[None, :] * keep))
    return np.stack(corners)


@rule("RoiAlign")
def roi_align(
    x: np.ndarray,
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    coordinate_transformation_mode: str = "half_pixel",
    mode: str = "avg",
    output_height: int = 1,
    output_width: int = 1,
    sampling_ratio: int = 0,
    spatial_scale: float = 1.0,
) -> np.ndarray:
    half = coordinate_transformation_mode == "half_pixel"
    out = np.zeros((rois.shape[0], x.shape[1], output_height, output_width), dtype=np.float64)
    for r, (roi, b) in enumerate(zip(rois.astype(np.float64), batch_indices)):
        x1, y1, x2, y2 = roi * spatial_scale - (0.5 if half else 0.0)
        roi_w, roi_h = x2 - x1, y2 - y1
        if not half:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / output_height, roi_w / output_width
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / output_height))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / output_width))
        ys = y1 + (np.arange(output_height)[:, None] * bin_h + (np.arange(gh) + 0.5) * bin_h / gh).ravel()
        xs = x1 + (np.arange(output_width)[:, None] * bin_w + (np.arange(gw) + 0.5) * bin_w / gw).ravel()
        s = _bilinear_samples(x[int(b)].astype(np.float64), ys, xs)  # (4, C, oh*gh, ow*gw)
        s = s.reshape(4, x.shape[1], output_height, gh, output_width, gw)
        if mode == "max":
            # As onnxruntime: the max over samples of the largest weighted corner.
            out[r] = s.max(axis=(0, 3, 5))
        else:
            out[r] = s.sum(axis=(0, 3, 5)) / max(gh * gw, 1)
    return out.astype(x.dtype)


@rule("NonMaxSuppression")
def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    max_output_boxes_per_class: np.ndarray | None = None,
    iou_threshold: np.ndarray | None = None,
    score_threshold: np.ndarray | None = None,
    *,
    center_point_box: int = 0,
) -> np.ndarray:
    limit = int(scalar(max_output_boxes_per_class)) if max_output_boxes_per_class is not None else 0
    iou_max = float(scalar(iou_threshold)) if iou_threshold is not None else 0.0
    b = boxes.astype(np.float64)
    if center_point_box:
        xc, yc, w, h = np.moveaxis(b, -1, 0)
        y_lo, x_lo, y_hi, x_hi = yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
    else:
        y1, x1, y2, x2 = np.moveaxis(b, -1, 0)
        # Corners may come in either order.
        y_lo, y_hi, x_lo, x_hi = np.minimum(y1, y2), np.maximum(y1, y2), np.minimum(x1, x2), np.maximum(x1, x2)
    area = (y_hi - y_lo) * (x_hi - x_lo)
    selected: list[tuple[int, int, int]] = []
    for n in range(scores.shape[0]):
        # Pairwise IoU of this batch's boxes, computed once for all classes.
        ih = np.clip(np.minimum(y_hi[n][:, None], y_hi[n]) - np.maximum(y_lo[n][:, None], y_lo[n]), 0, None)
        iw = np.clip(np.minimum(x_hi[n][:, None], x_hi[n]) - np.maximum(x_lo[n][:, None], x_lo[n]), 0, None)
        inter = ih * iw
        union = area[n][:, None] + area[n][None, :] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        for c in range(scores.shape[1]):
            sc = scores[n, c]
            order = np.argsort(-sc, kind="stable")
            if score_threshold is not None:
                order = order[sc[order] > float(scalar(score_threshold))]
            kept: list[int] = []
            for i in order:
                if len(kept) >= limit:
                    break
                if not kept or iou[i, kept].max() <= iou_max:
                    kept.append(int(i))
            selected.extend((n, c, i) for i in kept)
    return np.array(selected, dtype=np.int64).reshape(-1, 3)
