"""Matrix product rules: MatMul, Gemm, Einsum."""

from __future__ import annotations

import numpy as np

from graphopt.semantics import rule
from graphopt.semantics.nn_common import compute_dtype


@rule("MatMul")
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dt = np.result_type(a, b)
    ct = compute_dtype(dt)
    return np.asarray(np.matmul(a.astype(ct, copy=False), b.astype(ct, copy=False))).astype(dt, copy=False)


@rule("Gemm")
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
    **_,
) -> np.ndarray:
    dt = a.dtype
    ct = compute_dtype(dt)
    a = (a.T if transA else a).astype(ct, copy=False)
    b = (b.T if transB else b).astype(ct, copy=False)
    y = a @ b
    if alpha != 1.0:
        y = alpha * y
    if c is not None and beta != 0.0:
        c = c.astype(ct, copy=False)
        y = y + (beta * c if beta != 1.0 else c)
    return np.asarray(y).astype(dt, copy=False)


@rule("Einsum")
def einsum(*inputs: np.ndarray, equation: str = "") -> np.ndarray:
    eq = equation.replace(" ", "")
    dt = np.result_type(*inputs)
    ct = compute_dtype(dt)
    return np.asarray(np.einsum(eq, *(i.astype(ct, copy=False) for i in inputs))).astype(dt, copy=False)
