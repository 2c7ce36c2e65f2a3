"""The torch integration tests: skipped only where torch is not installed."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tmodels


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test starts with dynamo's caches empty, so it sees its own compiles."""
    import torch

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
