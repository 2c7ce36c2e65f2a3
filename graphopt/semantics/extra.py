"""Rules of graphopt's own compute ops (domain "graphopt")."""

from __future__ import annotations

import numpy as np

from graphopt.semantics import rule


@rule("graphopt::MatMulBias")
def matmul_bias(a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
    # One rounding step per op, as the unfused MatMul then Add would do.
    return np.asarray(np.matmul(a, b) + bias)
