"""The weight store: handles -> numpy arrays. The IR names weights; it never holds their bytes.

On disk a store is two files: ``weights.bin`` (the raw bytes, each array 64-byte aligned)
and ``weights.json`` (name -> dtype, shape, offset). Loading maps the file, so a large
model is not read into memory up front, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from graphopt import dtypes
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
        store = cls()
        index = json.loads((folder / "weights.json").read_text())
        path = folder / "weights.bin"
        size = path.stat().st_size
        by_name = {d.name: d for d in dtypes.BY_ONNX.values()}
        for name, entry in index.items():
            dt = by_name[entry["dtype"]].numpy
            shape = tuple(int(d) for d in entry["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            end = entry["offset"] + count * dt.itemsize
            if end > size:
                raise GraphoptError(f"{path}: weight {name} ends at byte {end}, past the file's end; re-save it")
            store._arrays[name] = np.memmap(path, dtype=dt, mode="r", offset=entry["offset"], shape=shape)
        return store
