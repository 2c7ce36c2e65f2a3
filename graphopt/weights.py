"""The weight store: handles -> numpy arrays. The IR names weights; it never holds their bytes.

On disk a store is two files: ``weights.bin`` (the raw bytes, each array 64-byte aligned)
and ``weights.json`` (name -> dtype, shape, offset). Loading maps the file, so a large
model is not read into memory up front, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from graphopt import dtypes, limits
from graphopt.errors import GraphoptError

_ALIGN = 64


class WeightStore:
    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def add(self, name: str, array: np.ndarray) -> str:
        """Store ``array`` under ``name`` (made unique if taken); returns the handle."""
        handle, k = name, 1
        while handle in self._arrays:
            handle, k = f"{name}_{k}", k + 1
        self._arrays[handle] = array
        return handle

    def __getitem__(self, handle: str) -> np.ndarray:
        return self._arrays[handle]

    def __contains__(self, handle: str) -> bool:
        return handle in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def keep_only(self, handles: set[str]) -> None:
        """Drop the weights no op refers to any more."""
        self._arrays = {k: v for k, v in self._arrays.items() if k in handles}

    def save(self, folder: Path) -> None:
        index: dict[str, dict[str, object]] = {}
        offset = 0
        with open(folder / "weights.bin", "wb") as f:
            for name, array in self._arrays.items():
                dt = dtypes.from_numpy(array.dtype)
                if dt.name == "string":
                    raise GraphoptError(f"weight {name}: string tensors cannot be saved to weights.bin")
                pad = -offset % _ALIGN
                f.write(b"\0" * pad)
                offset += pad
                data = np.ascontiguousarray(array).tobytes()
                f.write(data)
                index[name] = {"dtype": dt.name, "shape": list(array.shape), "offset": offset}
                offset += len(data)
        (folder / "weights.json").write_text(json.dumps(index, indent=1))

    @classmethod
    def load(cls, folder: Path) -> WeightStore:
        """Map a saved store. weights.json is checked whole first (every entry's dtype, shape
        and extent inside weights.bin): it only says how to view the bytes, and a wrong view
        (an object dtype, an extent past the file's end) would make numpy read garbage."""
        store = cls()
        path = folder / "weights.bin"
        entries = _read_index(folder / "weights.json")
        if not path.is_file():
            raise GraphoptError(f"{path}: missing; weights.json names {len(entries)} weights stored there; re-save the folder")
        size = path.stat().st_size
        for name, (dt, shape, offset) in entries.items():
            end = offset + limits.nbytes(shape, dt.itemsize)
            if end > size:
                raise GraphoptError(f"{path}: weight {_brief(name)} ends at byte {end}, past the file's end ({size}); re-save it")
            if size == 0:  # only empty weights: an empty file cannot be mapped
                array = np.zeros(shape, dt)
                array.flags.writeable = False
                store._arrays[name] = array
                continue
            store._arrays[name] = np.memmap(path, dtype=dt, mode="r", offset=offset, shape=shape)
        return store


_INDEX_MAX_BYTES = 64 << 20  # about a million weights' entries
_MAX_RANK = 32
_KEYS = ("dtype", "shape", "offset")
# Fixed-size element types only: a "string" weight would be a view of raw bytes as pointers.
_DTYPES = {d.name: d.numpy for d in dtypes.BY_ONNX.values() if d.numpy.kind != "O"}


def _read_index(path: Path) -> dict[str, tuple[np.dtype, tuple[int, ...], int]]:
    """weights.json as name -> (dtype, shape, offset), every field checked."""
    if not path.is_file():
        raise GraphoptError(f"{path}: missing; a saved folder has weights.json beside weights.bin")
    if path.stat().st_size > _INDEX_MAX_BYTES:
        raise GraphoptError(f"{path}: {path.stat().st_size} bytes is too large for a weight index; is it the right file?")
    try:
        index = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        raise GraphoptError(f"{path}: not UTF-8 text; re-save the folder") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, a duplicate name, nesting too deep
        raise GraphoptError(f"{path}: not a valid weight index ({str(e).splitlines()[0] if str(e) else type(e).__name__}); re-save the folder") from None
    if not isinstance(index, dict):
        raise GraphoptError(f"{path}: must hold a JSON object of weight name -> {{dtype, shape, offset}}")
    return {name: _entry(path, name, entry) for name, entry in index.items()}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{key!r} appears twice")
        out[key] = value
    return out


def _entry(path: Path, name: str, entry: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    where = f"{path}: weight {_brief(name)}"
    if not isinstance(entry, dict):
        raise GraphoptError(f"{where}: must be an object {{dtype, shape, offset}}, not {type(entry).__name__}")
    missing = [k for k in _KEYS if k not in entry]
    unknown = sorted(set(entry) - set(_KEYS))
    if missing or unknown:
        raise GraphoptError(f"{where}: " + (f"missing {', '.join(missing)}" if missing else f"unknown field {_brief(unknown[0])}"))
    dt, shape, offset = entry["dtype"], entry["shape"], entry["offset"]
    if not isinstance(dt, str) or dt not in _DTYPES:
        raise GraphoptError(f"{where}: dtype {_brief(dt)} is not a numeric or bool element type (float, float16, int64, bool, ...)")
    if not isinstance(shape, list) or len(shape) > _MAX_RANK or not all(_is_count(d) for d in shape):
        raise GraphoptError(f"{where}: shape {_brief(shape)} must be a list of at most {_MAX_RANK} non-negative integers")
    if not _is_count(offset):
        raise GraphoptError(f"{where}: offset {_brief(offset)} must be a non-negative integer")
    return _DTYPES[dt], tuple(shape), offset


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _brief(x: Any) -> str:
    """A value from the file, quoted for a one-line message and cut short."""
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."
