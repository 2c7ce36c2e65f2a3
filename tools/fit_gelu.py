"""Fit the polynomial of the cpu target's float32 GELU kernel (targets/cpu/gelu.py).

The kernel writes GELU(x) = x * Phi(x) as max(x, 0) - |x| * R(t) * exp(-x^2 / 2), with
R(a) = Phi(-a) * exp(a^2 / 2) (= erfcx(a / sqrt 2) / 2) and t = 1 / (B + a), a = |x|.
R is smooth in t on (0, 1 / B] and vanishes at t = 0 (a -> inf), so it is fitted as
t * S(t), S of degree DEGREE - 1, minimising the *relative* error over a in [0, A_MAX]
(past A_MAX, exp(-a^2 / 2) is below float32's smallest subnormal). Relative error is what
keeps the negative tail accurate, where GELU is tiny. The fit is a weighted least squares
with Lawson's reweighting toward the minimax solution; B is chosen by a scan.

    python tools/fit_gelu.py        # prints B, the coefficients and the max relative error (~1 min)
"""

from __future__ import annotations

import numpy as np
import scipy.special

A_MAX = 15.0
DEGREE = 8


def fit(b: float, degree: int = DEGREE, iters: int = 60) -> tuple[np.ndarray, float]:
    """Coefficients of R(t) ~ sum k_i t^i, i = degree .. 1 (highest first), and the max relative error."""
    a = np.concatenate([np.linspace(0, A_MAX, 20000), np.geomspace(1e-6, A_MAX, 20000)])
    t = 1 / (b + a)
    r = 0.5 * scipy.special.erfcx(a / np.sqrt(2))
    powers = np.vander(t, degree + 1)[:, :-1]
    weight = np.ones_like(t)
    err = np.zeros_like(t)
    coef = np.zeros(degree)
    for _ in range(iters):
        w = np.sqrt(weight) / r
        coef = np.linalg.lstsq(powers * w[:, None], r * w, rcond=None)[0]
        err = np.abs(powers @ coef - r) / r
        weight = weight * err
        weight /= weight.sum()
    return coef, float(err.max())


def main() -> None:
    best = min(np.linspace(2.0, 6.0, 41), key=lambda b: fit(float(b))[1])
    coef, err = fit(float(best), iters=200)
    print(f"B = {best:.2f}")
    print(f"COEFFS = {[float(k) for k in coef]}  # highest power first")
    print(f"max relative error of R: {err:.2e}")


if __name__ == "__main__":
    main()
