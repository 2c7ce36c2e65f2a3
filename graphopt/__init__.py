"""graphopt: a compiler-style graph optimizer for neural networks with retargetable backends.

    import graphopt
    compiled = graphopt.compile("model.onnx", target="cpu", validate=True)
    outputs = compiled.run({"x": x})

Heavy modules (xDSL, onnx, torch) load on first use, so ``import graphopt`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphopt.errors import GraphoptError, ValidationError
from graphopt.version import __version__

__all__ = ["Compiled", "GraphoptError", "ValidationError", "__version__", "compile"]

if TYPE_CHECKING:
    from graphopt.compiler import Compiled, compile


def __getattr__(name: str) -> Any:
    if name in ("compile", "Compiled"):
        from graphopt import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'graphopt' has no attribute {name!r}")
