"""Linear algebra rules: Det."""

from __future__ import annotations

import numpy as np

from graphopt.semantics import rule


@rule("Det")
def det(x: np.ndarray) -> np.ndarray:
    """Determinants of the trailing square matrices; LAPACK works in float32/64, so
    narrower floats go through float32 and come back."""
    wide = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    return np.asarray(np.linalg.det(wide)).astype(x.dtype)
