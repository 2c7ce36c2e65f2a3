"""Storage formats: how a tensor's elements lie in memory, beside its origin (logical) shape.

A tensor type carries its format as the encoding: ``tensor<1x64x56x56xf16, "NC1HWC0">``;
no encoding means ND (row-major). The origin shape never changes; only storage does.

    ND          row-major, as numpy
    NC1HWC0     NCHW with C split into C1 = ceil(C / C0) blocks of C0 (16 for fp16), padded
    FRACTAL_NZ  a matrix [..., M, N] as [..., N1, M1, M0, N0] fractals (M0 = 16, N0 = C0)
    FRACTAL_Z   conv weights [O, C, H, W] as [C1*H*W, O1, O0, C0] fractals (O0 = 16)

C0 is one 32-byte block of the element type the chip computes in (``c0_for``): 16 for
fp16/bf16, 8 for fp32, 32 for int8; it equals the cube's K0 for that dtype [OFF
数据排布格式.md], so it is read from the chip (``chip.k0``). M0 = O0 = 16 is the cube's
fractal row count (``chip.fractal_m``).

``to_format`` and ``from_format`` convert numpy arrays between ND and a format, padding
with zeros; the functional simulator keeps GM tensors in their storage format and weights
are stored converted. ``storage_shape``/``storage_bytes`` say what a format costs (padding
included), ``same_storage`` when two formats lay the bytes out identically (a conversion
between them moves nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import NoneAttr, StringAttr, TensorType
from xdsl.ir import Attribute

FORMATS = ("ND", "NC1HWC0", "FRACTAL_NZ", "FRACTAL_Z")
FRACTAL_ROWS = 16  # M0 / O0: the cube's fractal rows, 16 on every DaVinci chip [OFF]

# Element type (IR name) -> the dtype the chip computes it in, per precision mode.
# force_fp16 and allow_mix_precision run the cube in fp16 (mix keeps only softmax/norms/
# reductions in fp32, which stay ND), so their float tensors are stored in 16-wide blocks.
_COMPUTE_DTYPE: dict[str, dict[str, str]] = {
    "force_fp16": {"f16": "fp16", "f32": "fp16", "f64": "fp16", "bf16": "bf16", "i8": "int8", "ui8": "int8"},
    "allow_mix_precision": {"f16": "fp16", "f32": "fp16", "f64": "fp16", "bf16": "bf16", "i8": "int8", "ui8": "int8"},
    "must_keep_origin_dtype": {"f16": "fp16", "f32": "fp32", "bf16": "bf16", "i8": "int8", "ui8": "int8"},
}


def format_of(t: Attribute) -> str:
    """The storage format of a tensor type (ND when it has no encoding)."""
    if isinstance(t, TensorType) and isinstance(t.encoding, StringAttr):
        return t.encoding.data
    return "ND"


def with_format(t: TensorType, fmt: str) -> TensorType:
    """The same tensor type stored in ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown storage format {fmt}")
    encoding: Attribute = StringAttr(fmt) if fmt != "ND" else NoneAttr()  # NoneAttr: printed as no encoding
    return TensorType(t.element_type, t.get_shape(), encoding)


def compute_dtype(element_type: Attribute, precision: str = "force_fp16") -> str | None:
    """The chip dtype ("fp16", "fp32", "int8" ...) a tensor of ``element_type`` is stored
    and computed in under ``precision``; None for types that have no blocked format."""
    return _COMPUTE_DTYPE.get(precision, _COMPUTE_DTYPE["force_fp16"]).get(str(element_type))


def c0_for(element_type: Attribute, k0: Mapping[str, int], precision: str = "force_fp16") -> int | None:
    """C0 for ``element_type``: the chip's K0 of its compute dtype (pass ``chip.k0``), or
    None when the type has no blocked format on this chip (int64, bool, bf16 without bf16)."""
    dtype = compute_dtype(element_type, precision)
    return k0.get(dtype) if dtype is not None else None


def _up(x: int, a: int) -> int:
    return -(-x // a) * a


def storage_shape(shape: Sequence[int], fmt: str, c0: int, m0: int = FRACTAL_ROWS) -> tuple[int, ...]:
    """The shape a tensor of origin ``shape`` occupies in ``fmt`` (padding included)."""
    shape = tuple(shape)
    if fmt == "ND":
        return shape
    if fmt == "NC1HWC0":
        _check_rank(shape, fmt, 4, exact=True)
        n, c, h, w = shape
        return (n, -(-c // c0), h, w, c0)
    if fmt == "FRACTAL_Z":
        _check_rank(shape, fmt, 4, exact=True)
        o, c, h, w = shape
        return (-(-c // c0) * h * w, -(-o // m0), m0, c0)
    if fmt == "FRACTAL_NZ":
        _check_rank(shape, fmt, 2, exact=False)
        *batch, m, n = shape
        return (*batch, -(-n // c0), -(-m // m0), m0, c0)
    raise ValueError(f"unknown storage format {fmt}")


def storage_bytes(shape: Sequence[int], fmt: str, c0: int, itemsize: int) -> int:
    """Bytes a tensor of origin ``shape`` occupies in ``fmt`` at ``itemsize`` bytes an element."""
    return math.prod(storage_shape(shape, fmt, c0)) * itemsize


def same_storage(shape: Sequence[int], a: str, b: str, c0: int, m0: int = FRACTAL_ROWS) -> bool:
    """Whether formats ``a`` and ``b`` put every element of ``shape`` at the same offset with
    no padding, so converting between them moves no bytes.

    NC1HWC0 equals ND when H*W = 1 and C0 divides C (offset n*C + c either way);
    FRACTAL_NZ equals ND when N = N0 (one column of fractals) and M0 divides M.
    """
    if a == b:
        return True
    if "ND" not in (a, b):
        return False
    other = b if a == "ND" else a
    shape = tuple(shape)
    if other == "NC1HWC0" and len(shape) == 4:
        return shape[1] % c0 == 0 and shape[2] * shape[3] == 1
    if other == "FRACTAL_NZ" and len(shape) >= 2:
        return shape[-1] == c0 and shape[-2] % m0 == 0
    return False


def to_format(array: np.ndarray, fmt: str, c0: int, m0: int = FRACTAL_ROWS) -> np.ndarray:
    """``array`` (ND, origin shape) laid out in ``fmt``, zero-padded to whole blocks."""
    a = np.asarray(array)
    if fmt == "ND":
        return a
    storage_shape(a.shape, fmt, c0, m0)  # checks the rank
    if fmt == "NC1HWC0":
        n, c, h, w = a.shape
        a = _pad(a, {1: _up(c, c0)})
        return np.ascontiguousarray(a.reshape(n, -1, c0, h, w).transpose(0, 1, 3, 4, 2))
    if fmt == "FRACTAL_Z":
        o, c, h, w = a.shape
        a = _pad(a, {0: _up(o, m0), 1: _up(c, c0)})
        blocks = a.reshape(-1, m0, _up(c, c0) // c0, c0, h, w)  # O1, O0, C1, C0, H, W
        return np.ascontiguousarray(blocks.transpose(2, 4, 5, 0, 1, 3)).reshape(-1, _up(o, m0) // m0, m0, c0)
    # FRACTAL_NZ
    *batch, m, n = a.shape
    nb = len(batch)
    a = _pad(a, {nb: _up(m, m0), nb + 1: _up(n, c0)})
    blocks = a.reshape(*batch, -1, m0, _up(n, c0) // c0, c0)  # M1, M0, N1, N0
    return np.ascontiguousarray(blocks.transpose(*range(nb), nb + 2, nb, nb + 1, nb + 3))


def from_format(array: np.ndarray, fmt: str, origin_shape: Sequence[int], c0: int, m0: int = FRACTAL_ROWS) -> np.ndarray:
    """The ND array of ``origin_shape`` stored as ``array`` in ``fmt`` (padding dropped)."""
    a = np.asarray(array)
    shape = tuple(int(d) for d in origin_shape)
    if fmt == "ND":
        return a.reshape(shape)
    expected = storage_shape(shape, fmt, c0, m0)
    if a.shape != expected:
        raise ValueError(f"a {fmt} array of origin shape {list(shape)} has shape {list(expected)}, got {list(a.shape)}")
    if fmt == "NC1HWC0":
        n, c, h, w = shape
        return np.ascontiguousarray(a.transpose(0, 1, 4, 2, 3).reshape(n, -1, h, w)[:, :c])
    if fmt == "FRACTAL_Z":
        o, c, h, w = shape
        c1 = _up(c, c0) // c0
        blocks = a.reshape(c1, h, w, -1, m0, c0)  # C1, H, W, O1, O0, C0
        full = blocks.transpose(3, 4, 0, 5, 1, 2).reshape(_up(o, m0), c1 * c0, h, w)
        return np.ascontiguousarray(full[:o, :c])
    *batch, m, n = shape
    nb = len(batch)
    full = a.transpose(*range(nb), nb + 1, nb + 2, nb, nb + 3).reshape(*batch, _up(m, m0), _up(n, c0))
    return np.ascontiguousarray(full[..., :m, :n])


def _pad(a: np.ndarray, sizes: dict[int, int]) -> np.ndarray:
    widths = [(0, sizes.get(axis, d) - d) for axis, d in enumerate(a.shape)]
    return np.pad(a, widths) if any(w for _, w in widths) else a


def _check_rank(shape: tuple[int, ...], fmt: str, rank: int, exact: bool) -> None:
    if len(shape) < rank or (exact and len(shape) != rank):
        need = f"rank {rank}" if exact else f"rank >= {rank}"
        raise ValueError(f"{fmt} needs a tensor of {need}, got shape {list(shape)}")
