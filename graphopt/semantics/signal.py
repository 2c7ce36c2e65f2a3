"""Signal-processing rules: DFT, STFT, window functions, mel filter banks."""

from __future__ import annotations

import numpy as np

from graphopt import dtypes
from graphopt.semantics import rule


def _scalar(a: np.ndarray):
    """The one value of a scalar-like input (ONNX models often pass shape [1])."""
    return np.asarray(a).reshape(-1)[0].item()


def _out_dtype(output_datatype: int) -> np.dtype:
    return dtypes.from_onnx(output_datatype).numpy


def _as_complex(x: np.ndarray) -> np.ndarray:
    """ONNX's (..., 1) real or (..., 2) re/im layout as a complex array without that axis."""
    # Single precision stays single: numpy's FFT then rounds as float32 kernels do.
    ct = np.complex128 if x.dtype == np.float64 else np.complex64
    z = x[..., 0].astype(ct)
    if x.shape[-1] == 2:
        z.imag = x[..., 1]
    return z


def _from_complex(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


@rule("DFT")
def dft(
    x: np.ndarray,
    dft_length: np.ndarray | None = None,
    axis_input: np.ndarray | None = None,
    *,
    axis: int | None = None,
    inverse: int = 0,
    onesided: int = 0,
) -> np.ndarray:
    # Opset 17 has an ``axis`` attribute counting dims of x; opset 20 an input whose
    # default, -2, counts from the end of x (so the signal dim before re/im).
    if axis_input is not None:
        ax = int(_scalar(axis_input))
    else:
        ax = -2 if axis is None else axis
    ax = ax % x.ndim
    z = _as_complex(x)
    if inverse and onesided:
        # A one-sided spectrum inverts to a real signal.
        n = int(_scalar(dft_length)) if dft_length is not None else 2 * (z.shape[ax] - 1)
        return np.fft.irfft(z, n=n, axis=ax)[..., None].astype(x.dtype)
    n = int(_scalar(dft_length)) if dft_length is not None else z.shape[ax]
    y = np.fft.ifft(z, n=n, axis=ax) if inverse else np.fft.fft(z, n=n, axis=ax)
    if onesided:
        y = np.take(y, np.arange(n // 2 + 1), axis=ax)
    return _from_complex(y, x.dtype)


@rule("STFT")
def stft(
    signal: np.ndarray,
    frame_step: np.ndarray,
    window: np.ndarray | None = None,
    frame_length: np.ndarray | None = None,
    *,
    onesided: int = 1,
) -> np.ndarray:
    z = _as_complex(signal)  # (B, L)
    step = int(_scalar(frame_step))
    if frame_length is not None:
        length = int(_scalar(frame_length))
    elif window is not None:
        length = window.shape[0]
    else:
        length = z.shape[1]
    frames = (z.shape[1] - length) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(length)[None, :]
    framed = z[:, idx]  # (B, frames, length)
    if window is not None:
        framed = framed * window.astype(np.float64)
    y = np.fft.fft(framed, axis=-1)
    if onesided:
        y = y[..., : length // 2 + 1]
    return _from_complex(y, signal.dtype)


def _cosine_window(size: np.ndarray, periodic: int, coeffs: tuple[float, ...], dtype: int) -> np.ndarray:
    """sum_k (-1)^k a_k cos(2 pi k n / N), the generalised cosine window."""
    n_size = int(_scalar(size))
    denom = n_size if periodic else n_size - 1
    n = np.arange(n_size, dtype=np.float64)
    w = np.zeros(n_size)
    for k, a in enumerate(coeffs):
        w += (-1) ** k * a * np.cos(2 * np.pi * k * n / denom)
    return w.astype(_out_dtype(dtype))


@rule("HannWindow")
def hann_window(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1) -> np.ndarray:
    return _cosine_window(size, periodic, (0.5, 0.5), output_datatype)


@rule("HammingWindow")
def hamming_window(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1) -> np.ndarray:
    return _cosine_window(size, periodic, (25 / 46, 21 / 46), output_datatype)


@rule("BlackmanWindow")
def blackman_window(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1) -> np.ndarray:
    return _cosine_window(size, periodic, (0.42, 0.5, 0.08), output_datatype)


@rule("MelWeightMatrix")
def mel_weight_matrix(
    num_mel_bins: np.ndarray,
    dft_length: np.ndarray,
    sample_rate: np.ndarray,
    lower_edge_hertz: np.ndarray,
    upper_edge_hertz: np.ndarray,
    *,
    output_datatype: int = 1,
) -> np.ndarray:
    bins, n_dft = int(_scalar(num_mel_bins)), int(_scalar(dft_length))
    rate = np.asarray(sample_rate)
    lo_mel = 2595 * np.log10(1 + np.asarray(lower_edge_hertz) / 700)
    hi_mel = 2595 * np.log10(1 + np.asarray(upper_edge_hertz) / 700)
    # bins + 2 mel points spaced (hi - lo) / (bins + 2) apart, as the ONNX reference does,
    # then snapped down to spectrogram bins.
    mel = np.arange(bins + 2) * ((hi_mel - lo_mel) / (bins + 2)) + lo_mel
    hz = 700 * (10 ** (mel / 2595) - 1)
    edge = (((n_dft + 1) * hz) // rate).astype(np.int64)
    left, center, right = edge[:-2], edge[1:-1], edge[2:]
    j = np.arange(n_dft // 2 + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where(center > left, (j - left) / (center - left), 1.0)
        falling = (right - j) / (right - center)
    out = np.where((j >= center) & (j < right), falling, np.where((j >= left) & (j <= center), rising, 0.0))
    return out.astype(_out_dtype(output_datatype))
