"""Traits of graph ops that passes ask for, instead of lists of op classes.

A new op joins every pass that fits it by carrying the right trait: the fuser asks for
``Elementwise``, the layout pass for ``LayoutSensitive``, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.traits import OpTrait


@dataclass(frozen=True)
class Elementwise(OpTrait):
    """Each output element depends only on the input elements at the same index
    (after broadcasting)."""


@dataclass(frozen=True)
class Broadcasting(OpTrait):
    """Inputs broadcast numpy-style (ONNX multidirectional broadcasting)."""


@dataclass(frozen=True)
class Reduction(OpTrait):
    """Reduces one or more axes of its first input."""


@dataclass(frozen=True)
class Cube(OpTrait):
    """Matmul-like: runs on a matrix unit (matmul, gemm, conv, attention)."""


@dataclass(frozen=True)
class Movement(OpTrait):
    """Only moves or copies elements (reshape, transpose, slice, concat ...)."""


@dataclass(frozen=True)
class LayoutSensitive(OpTrait):
    """Its meaning depends on which axis is which (NCHW convolutions, pools, norms)."""
