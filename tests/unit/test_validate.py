"""The validation judge's comparison (graphopt.validate.compare)."""

from __future__ import annotations

import numpy as np

from graphopt.validate import compare

F16 = np.dtype(np.float16)


def test_fp16_overflow_is_the_value_to_expect():
    """A float32 value beyond float16's range is +-inf when computed in float16 (an attention
    mask's float32 minimum): that matches; any other value there does not."""
    ref = np.array([1.0, np.finfo(np.float32).min, 3e5], np.float32)
    ours = np.array([1.0, -np.inf, np.inf], np.float32)
    assert compare("y", ours, ref, depth=1, compute_dtype=F16)["passed"]
    wrong = np.array([1.0, -65504.0, np.inf], np.float32)
    assert not compare("y", wrong, ref, depth=1, compute_dtype=F16)["passed"]
    assert not compare("y", -ours, ref, depth=1, compute_dtype=F16)["passed"]


def test_overflowed_values_do_not_widen_the_tolerance():
    """The absolute tolerance scales with the largest magnitude float16 holds, not with a
    mask value it cannot: an error of 0.5 on values of 1 is still an error."""
    ref = np.array([1.0, np.finfo(np.float32).min], np.float32)
    ours = np.array([1.5, np.finfo(np.float32).min], np.float32)
    assert not compare("y", ours, ref, depth=1, compute_dtype=F16)["passed"]


def test_float32_targets_keep_exact_infinities():
    ref = np.array([np.finfo(np.float32).min], np.float32)
    assert not compare("y", np.array([-np.inf], np.float32), ref, depth=1)["passed"]
