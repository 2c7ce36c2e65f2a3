"""Context, printing and parsing of graphopt IR."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException, ParseError
from xdsl.utils.mlir_lexer import MLIRLexer

from graphopt.errors import GraphoptError
from graphopt.registry import all_dialects
from graphopt.weights import WeightStore

# xDSL 0.75 lexes a string literal with `"(?:[^"\\\n\v\f]+|escape)*"`: a `+` nested in a `*`,
# which backtracks exponentially over a string left unclosed before the line's end (a
# 40-character one took minutes). The same language without the nested `+` fails in
# linear time.
MLIRLexer._unescaped_characters_regex = re.compile(r'"(?:[^"\\\n\v\f]|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*"')

TEXT_MAX_BYTES = 256 << 20  # IR text beyond this is not something graphopt wrote (weights live apart)
_DENSE_BYTES_PER_ELEMENT = 16  # a splat's Python list (8 per element) and the packed copy built from it


class _BoundedParser(Parser):
    """xDSL's parser, with dense literals bounded by the memory limit: a splat such as
    ``dense<1.0> : tensor<100000x100000xf32>`` is expanded to the type's element count as
    a Python list, so 40 bytes of text would take all the memory."""

    def _parse_dense_literal_type(self) -> Any:
        t = super()._parse_dense_literal_type()
        self._check_dense(t)
        return t

    def parse_dense_int_or_fp_elements_attr(self, type: Any) -> Any:
        if type is not None:
            self._check_dense(type)
        return super().parse_dense_int_or_fp_elements_attr(type)

    def _check_dense(self, t: Any) -> None:
        from graphopt import limits

        cost = math.prod(t.get_shape()) * _DENSE_BYTES_PER_ELEMENT
        if cost > limits.max_memory():
            self.raise_error(f"a dense literal of type {t} would take {limits.human(cost)} to build, "
                             f"more than the memory limit of {limits.human(limits.max_memory())}")


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
    # The graph dialect (every ONNX op) and targets' dialects (graphopt.registry) load when
    # text names them.
    ctx.register_dialect("graph", _graph_dialect)
    for name, get in all_dialects().items():
        ctx.register_dialect(name, get)
    return ctx


def _graph_dialect() -> Any:
    from graphopt.dialects.graph import Graph

    return Graph


def print_module(module: ModuleOp) -> str:
    out = io.StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue() + "\n"


def read_text(path: Path, label: str | None = None) -> str:
    """An IR file's text: a regular file, at most TEXT_MAX_BYTES, UTF-8."""
    where = label or str(path)
    if not path.is_file():
        raise GraphoptError(f"{where}: no such file")
    size = path.stat().st_size
    if size > TEXT_MAX_BYTES:
        raise GraphoptError(f"{where}: {size} bytes is too large for IR text (at most {TEXT_MAX_BYTES})")
    return decode_text(path.read_bytes(), where)


def decode_text(data: bytes, where: str) -> str:
    if len(data) > TEXT_MAX_BYTES:
        raise GraphoptError(f"{where}: more than {TEXT_MAX_BYTES} bytes is too large for IR text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise GraphoptError(f"{where}:{line}: not UTF-8 text (byte {e.start}); IR text is UTF-8") from None


def parse_module(ctx: Context, text: str, source: str = "<input>") -> ModuleOp:
    """Parse IR text; any failure on the user's text is a one-line GraphoptError."""
    try:
        module = _BoundedParser(ctx, text, source).parse_module()
    except ParseError as e:
        # xDSL's message is "file:line:col", the offending line, a caret, then the reason.
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        where, why = (lines[0], lines[-1]) if lines else (source, str(e))
        raise GraphoptError(f"cannot parse the IR at {where}: {why}") from None
    except RecursionError:  # the parser recurses per bracket and region: about 150 levels
        raise GraphoptError(f"{source}: the IR nests too deeply to parse (brackets or regions)") from None
    except (DiagnosticException, ValueError, KeyError, IndexError, TypeError, AssertionError, OverflowError,
            NotImplementedError) as e:
        # Parsing builds ops and attributes as it goes, and their constructors check their
        # arguments with ordinary exceptions (a dense literal of the wrong size, an integer
        # out of its type's range): on the user's text those are errors in the text.
        raise GraphoptError(f"cannot parse the IR in {source}: {_first_line(e)}") from None
    return module


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def check_weights(module: ModuleOp, weights: WeightStore, source: str) -> None:
    """Refuse a graph.weight whose type differs from its array in the store (passes would
    fold the array as the type says it is). A weight absent from the store stays opaque."""
    from xdsl.dialects.builtin import TensorType

    from graphopt import dtypes
    from graphopt.dialects.graph import WeightOp

    for op in module.walk():
        if not isinstance(op, WeightOp) or op.ref.data not in weights:
            continue
        array, t = weights[op.ref.data], op.results[0].type
        elem = dtypes.BY_IR.get(t.element_type) if isinstance(t, TensorType) else None
        if elem is None or (tuple(t.get_shape()), elem.numpy) != (array.shape, array.dtype):
            raise GraphoptError(f"{source}: weight {op.ref.data!r} is {t} in the IR but {array.dtype}{list(array.shape)} "
                                "in weights.json; the folder's files do not belong together")


def check_defined_before_use(module: ModuleOp, source: str) -> None:
    """Refuse a use of a value before its definition in the same block (``%0 = graph.neg(%0)``,
    or a use of a later op's result): xDSL's verifier does not check dominance, and every pass
    assumes ops are in dataflow order. Regions see what is defined before their op; blocks of
    a multi-block region are not checked (no graphopt op has one)."""
    visible: set[int] = set()

    def walk(block: Any) -> None:
        added = [id(a) for a in block.args]
        visible.update(added)
        for op in block.ops:
            for k, v in enumerate(op.operands):
                if id(v) not in visible:
                    name = f"%{v.name_hint}" if v.name_hint else f"operand {k}"
                    raise GraphoptError(f"{source}: {op.name} uses {name} before it is defined; "
                                        "ops must come after the values they read")
            for region in op.regions:
                if len(region.blocks) == 1:
                    walk(region.blocks[0])
            visible.update(id(r) for r in op.results)
            added.extend(id(r) for r in op.results)
        visible.difference_update(added)

    for block in module.body.blocks:
        walk(block)
