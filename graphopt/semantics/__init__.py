"""The reference meaning of every op: one numpy rule per ONNX op type.

A rule is a plain function ``rule(*inputs, **attrs)``:

- ``inputs`` are numpy arrays in the node's input order; a missing optional input is
  ``None``; trailing missing inputs may be absent altogether.
- ``attrs`` are the node's attributes as Python values (int, float, str, list, numpy array
  for tensors), with the op schema's defaults filled in, named exactly as in ONNX.
- It returns one array, or a tuple of arrays for ops with several outputs (all of them, in
  schema order; the caller keeps the ones the node asks for).
- Output dtypes follow ONNX exactly (an ArgMax is int64, a Shape is int64 ...). Scalars are
  0-d arrays, never numpy scalars.

Ops with graph attributes (If, Loop, Scan, SequenceMap) receive each body as a keyword
argument named like the attribute (``then_branch``, ``body`` ...): a Python callable
``body(*inputs) -> list`` that runs the op's region on its block arguments (the values of
the enclosing graph it reads are bound already) and returns what its ``graph.yield``
yields. Sequences are Python lists of arrays and optionals ``None`` or the value; a rule
whose one output is a sequence returns the list itself (``control.py``, ``sequence.py``).

Rules are registered in ``RULES`` by op type (``"Add"``), or ``"domain::Op"`` for domains
other than the default one. They are used by constant folding, the cpu target's default
kernels and the Ascend AI CPU; nothing here imports onnxruntime or onnx.reference.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Rule = Callable[..., Any]
RULES: dict[str, Rule] = {}

# Modules that register rules; imported once, on first lookup.
_FAMILIES = ("elementwise", "reduce", "tensor", "matmul", "conv", "pool", "norm", "quant", "detection", "rnn", "signal", "extra", "loss", "vision", "linalg", "sequence_models", "text", "ml", "control", "sequence", "collectives")
_loaded = False


def rule(*op_types: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the rule of each of ``op_types``."""

    def register(fn: Rule) -> Rule:
        for op_type in op_types:
            if op_type in RULES:
                raise ValueError(f"two semantic rules for {op_type}")
            RULES[op_type] = fn
        return fn

    return register


def all_rules() -> dict[str, Rule]:
    global _loaded
    if not _loaded:
        for family in _FAMILIES:
            importlib.import_module(f"{__name__}.{family}")
        _loaded = True
    return RULES


def get_rule(op_type: str) -> Rule | None:
    return all_rules().get(op_type)
