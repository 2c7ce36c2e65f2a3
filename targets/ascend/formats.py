"""Storage formats: how a tensor's elements lie in memory, beside its origin (logical) shape.

A tensor type carries its format as the encoding: ``tensor<1x64x56x56xf16, "NC1HWC0">``;
no encoding means ND (row-major). The origin shape never changes; only storage does.

    ND          row-major, as numpy
    NC1HWC0     NCHW with C split into C1 = ceil(C / C0) blocks of C0 (16 for fp16), padded
    FRACTAL_NZ  a matrix [..., M, N] as [..., N1, M1, M0, N0] fractals (M0 = 16, N0 = C0)
    FRACTAL_Z   conv weights [O, C, H, W] as [C1*H*W, O1, O0, C0] fractals

``to_format`` and ``from_format`` convert numpy arrays between ND and a format (padding
with zeros); the functional simulator keeps GM tensors in their storage format.
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Attribute

FORMATS = ("ND", "NC1HWC0", "FRACTAL_NZ", "FRACTAL_Z")


def format_of(t: Attribute) -> str:
    """The storage format of a tensor type (ND when it has no encoding)."""
    if isinstance(t, TensorType) and isinstance(t.encoding, StringAttr):
        return t.encoding.data
    return "ND"


def with_format(t: TensorType, fmt: str) -> TensorType:
    """The same tensor type stored in ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown storage format {fmt}")
    encoding = StringAttr(fmt) if fmt != "ND" else None
    return TensorType(t.element_type, t.get_shape(), encoding)  # type: ignore[arg-type]
