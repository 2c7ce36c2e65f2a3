"""Helpers the neural-network rules share: pooling and convolution window geometry, padding, the dtypes they compute in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphopt import dtypes


def np_dtype(onnx_type: int) -> np.dtype:
    return dtypes.from_onnx(onnx_type).numpy


def scalar(a: np.ndarray):
    """The one value of a scalar-like input (ONNX models often pass shape [1])."""
    return np.asarray(a).reshape(-1)[0].item()


def pool_geometry(
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int] | None,
    dilations: Sequence[int] | None,
    pads: Sequence[int] | None,
    auto_pad: str,
    ceil_mode: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """Output sizes and (begin, end) pads for a window sweep over ``spatial``.

    The end pads returned are what the sweep actually reads, so they include the extra
    cells a ceil_mode window hangs over the edge; callers that must tell the two apart
    compare against ``pads``.
    """
    d = len(spatial)
    strides = list(strides or [1] * d)
    dilations = list(dilations or [1] * d)
    pads = list(pads or [0] * (2 * d))
    out, begin, end = [], [], []
    for i in range(d):
        n, s, ek = spatial[i], strides[i], (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-n // s)
            total = max(0, (o - 1) * s + ek - n)
            small = total // 2
            pb = small if auto_pad == "SAME_UPPER" else total - small
            pe = total - pb
        elif auto_pad == "VALID":
            pb = pe = 0
            o = (n - ek) // s + 1
        else:
            pb, pe = pads[i], pads[i + d]
            span = n + pb + pe - ek
            if ceil_mode:
                o = -(-span // s) + 1
                # The last window must start inside the input or its left padding.
                if (o - 1) * s >= n + pb:
                    o -= 1
            else:
                o = span // s + 1
        out.append(max(o, 0))
        begin.append(pb)
        end.append(max(pe, (o - 1) * s + ek - n - pb))
    return out, begin, end


def pad_spatial(x: np.ndarray, begin: Sequence[int], end: Sequence[int], value) -> np.ndarray:
    lead = [(0, 0)] * (x.ndim - len(begin))
    width = lead + [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if any(w != (0, 0) for w in width):
        x = np.pad(x, width, constant_values=value)
    # Negative pads crop.
    crop = tuple(slice(None) for _ in lead) + tuple(
        slice(-min(b, 0), x.shape[len(lead) + i] + min(e, 0)) for i, (b, e) in enumerate(zip(begin, end))
    )
    return x[crop]


def windows(
    xp: np.ndarray, out: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> np.ndarray:
    """A read-only view ``(*lead, *out, *kernel)`` of the windows of padded ``xp``."""
    xp = np.ascontiguousarray(xp)
    d = len(kernel)
    lead = xp.ndim - d
    st = xp.strides
    shape = xp.shape[:lead] + tuple(out) + tuple(kernel)
    strides_ = (
        st[:lead]
        + tuple(st[lead + i] * strides[i] for i in range(d))
        + tuple(st[lead + i] * dilations[i] for i in range(d))
    )
    return np.lib.stride_tricks.as_strided(xp, shape, strides_, writeable=False)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """numpy's own dtype to compute in: ml_dtypes types (bfloat16, float8) go via float32."""
    return np.dtype(np.float32) if is_ml(dtype) else dtype


def is_ml(dtype: np.dtype) -> bool:
    # Not dtype.kind: ml_dtypes reports float8_e5m2 as "f" but the others as "V".
    return np.dtype(dtype).type.__module__.startswith("ml_dtypes")


def channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast against an (N, C, ...) tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))
