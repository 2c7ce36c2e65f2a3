"""Context, printing and parsing of graphopt IR."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError

from graphopt.errors import GraphoptError
from graphopt.weights import WeightStore


@dataclass
class CompileContext(Context):
    """An xDSL context that also carries the weight store, so passes can read weights,
    and the remarks passes make when they decline to act."""

    weights: WeightStore = field(default_factory=WeightStore)
    remarks: list[dict[str, Any]] = field(default_factory=list)
    target: Any = None  # the Target compiled for (target passes read its description)


def make_context(weights: WeightStore | None = None) -> CompileContext:
    ctx = CompileContext(weights=weights if weights is not None else WeightStore())
    for dialect in (Builtin, Func):
        ctx.load_dialect(dialect)
    # The graph dialect (every ONNX op) and targets' dialects load when text names them.
    ctx.register_dialect("graph", _graph_dialect)
    ctx.register_dialect("ascend", _ascend_dialect)
    return ctx


def _graph_dialect() -> Any:
    from graphopt.dialects.graph import Graph

    return Graph


def _ascend_dialect() -> Any:
    from graphopt.targets.ascend.dialect import Ascend

    return Ascend


def print_module(module: ModuleOp) -> str:
    out = io.StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue() + "\n"


def parse_module(ctx: Context, text: str, source: str = "<input>") -> ModuleOp:
    try:
        return Parser(ctx, text, source).parse_module()
    except ParseError as e:
        # xDSL's message is "file:line:col", the offending line, a caret, then the reason.
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        where, why = (lines[0], lines[-1]) if lines else (source, str(e))
        raise GraphoptError(f"cannot parse the IR at {where}: {why}") from None
