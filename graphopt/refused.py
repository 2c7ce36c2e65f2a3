"""Ops graphopt refuses on purpose, with the reason: the one list of them.

The ONNX frontend raises a GraphoptError naming the node when a model uses one of these,
and ``graphopt check`` reports them as unsupported on every target. They are refused
because they do not belong in an inference graph compiler, not because they are missing:

- training-only ops (optimizer steps, gradients) describe training, not inference;
- random ops draw numbers, so no compiled result can be checked against a reference;
- ImageDecoder decodes image files: a codec library's job, not a tensor computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_TRAINING = "training-only op (ai.onnx.preview.training); graphopt compiles inference graphs"
_RANDOM = "random op: its outputs are random draws, which no compiled result can be checked against"

REFUSED: dict[str, str] = {
    "ai.onnx.preview.training::Adagrad": _TRAINING,
    "ai.onnx.preview.training::Adam": _TRAINING,
    "ai.onnx.preview.training::Momentum": _TRAINING,
    "ai.onnx.preview.training::Gradient": _TRAINING,
    "Bernoulli": _RANDOM,
    "Multinomial": _RANDOM,
    "RandomNormal": _RANDOM,
    "RandomNormalLike": _RANDOM,
    "RandomUniform": _RANDOM,
    "RandomUniformLike": _RANDOM,
    "ImageDecoder": "decodes image files (JPEG, PNG, BMP ...): a codec's job, not a tensor computation",
}
"""Refused op types, keyed like semantic rules: ``"Op"`` or ``"domain::Op"``."""

TRAINING_DROPOUT = "Dropout with training_mode true drops at random (training only); graphopt compiles inference graphs"


def op_key(op_type: str, domain: str = "") -> str:
    return op_type if domain in ("", "ai.onnx") else f"{domain}::{op_type}"


def refusal(op_type: str, domain: str = "", consts: Sequence[np.ndarray | None] = ()) -> str | None:
    """Why graphopt refuses this op, or None. ``consts`` are the node's inputs known at
    compile time (None where not): Dropout is refused only when its training_mode is a
    constant true; a training_mode fed at run time is checked by the Dropout rule."""
    why = REFUSED.get(op_key(op_type, domain))
    if why is None and op_type == "Dropout" and domain in ("", "ai.onnx") and len(consts) > 2:
        mode, ratio = consts[2], consts[1]
        drops = ratio is None or float(np.asarray(ratio).reshape(-1)[0]) != 0.0  # ratio 0 keeps everything
        if mode is not None and bool(np.asarray(mode).any()) and drops:
            why = TRAINING_DROPOUT
    return why
