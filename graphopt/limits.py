"""The memory limit: how many bytes a single tensor may take.

Sizes declared by a model (an input's shape, an initializer's dims, a value's inferred
type) or by a file (an .npy header, weights.json) are checked against the limit before
anything is allocated, so a hostile or mistaken size is one ``GraphoptError`` naming the
value, not a MemoryError deep in numpy (or the machine swapping).

The limit is process-wide: ``--max-memory`` sets it for a CLI command, and
``graphopt.compile(max_memory=...)`` for the duration of one call (``limited``). The
default is half of the machine's physical memory.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from graphopt.errors import GraphoptError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_limit: int | None = None  # None: the default
F = TypeVar("F", bound=Callable[..., Any])


def default_max_memory() -> int:
    """Half of the machine's physical memory (8 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def max_memory() -> int:
    return _limit if _limit is not None else default_max_memory()


def set_max_memory(limit: int | str | None) -> None:
    """Set the process-wide limit (bytes, or text such as "8G"); None restores the default."""
    global _limit
    _limit = None if limit is None else parse_size(limit)


@contextmanager
def limited(limit: int | str | None) -> Iterator[None]:
    """The limit for the duration of a block (None: keep the current one)."""
    global _limit
    saved = _limit
    if limit is not None:
        _limit = parse_size(limit)
    try:
        yield
    finally:
        _limit = saved


def with_max_memory(fn: F) -> F:
    """Run ``fn`` under the limit its ``max_memory`` keyword argument gives (``compile``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with limited(kwargs.get("max_memory")):
            return fn(*args, **kwargs)

    return cast(F, wrapper)


def parse_size(text: int | str, option: str = "max_memory") -> int:
    """Bytes from an int or from text: 1048576, 512K, 64M, 8G, 1.5T (powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise GraphoptError(f"{option} {text}: give a positive number of bytes, e.g. 8G")
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), re.IGNORECASE)
    if m is None or float(m.group(1)) <= 0:
        raise GraphoptError(f"{option} {text!r}: write a size such as 8G, 512M or 1048576")
    return max(1, int(float(m.group(1)) * _UNITS[m.group(2).upper()]))


def human(nbytes: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if nbytes >= _UNITS[unit]:
            return f"{nbytes / _UNITS[unit]:.1f} {unit}iB"
    return f"{nbytes} B"


def nbytes(shape: Iterable[int], itemsize: int) -> int:
    """The bytes of a tensor, in Python ints (no overflow, whatever the dims)."""
    return math.prod(int(d) for d in shape) * int(itemsize)


def check_bytes(size: int, what: str) -> None:
    """Refuse ``size`` bytes for ``what`` (a phrase naming the value) above the limit."""
    limit = max_memory()
    if size > limit:
        raise GraphoptError(f"{what}: needs {human(size)}, more than the memory limit of {human(limit)}; "
                            "check its shape, or raise the limit with --max-memory")


def check_shape(shape: Iterable[int], dtype: Any, what: str) -> None:
    """Refuse a tensor of ``shape`` and ``dtype`` (numpy) above the limit."""
    import numpy as np

    check_bytes(nbytes(shape, np.dtype(dtype).itemsize), what)


def check_module(module: Any) -> None:
    """Refuse a module (graphopt IR) where any value's static type is a tensor above the limit."""
    from xdsl.dialects.builtin import TensorType

    from graphopt import dtypes

    for op in module.walk():
        values = [*op.results, *(a for r in op.regions for b in r.blocks for a in b.args)]
        for v in values:
            t = v.type
            if not isinstance(t, TensorType) or any(d < 0 for d in t.get_shape()):
                continue
            try:
                itemsize = dtypes.from_ir(t.element_type).numpy.itemsize
            except KeyError:
                continue
            size = nbytes(t.get_shape(), itemsize)
            if size > max_memory():
                check_bytes(size, _describe(op, v))


def _describe(op: Any, value: Any) -> str:
    from xdsl.dialects.builtin import ArrayAttr, StringAttr

    src = op.attributes.get("src")
    names = [s.data for s in src.data if isinstance(s, StringAttr)] if isinstance(src, ArrayAttr) else []
    label = f"value {value.name_hint}" if value.name_hint else "a value"
    return f"{label} of {op.name}" + (f" (from {', '.join(names)})" if names else "")
