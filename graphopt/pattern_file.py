"""Patterns files: rewrites written as text, loaded without running any code.

    # examples/silu.patterns
    pass recognize-silu-text "Rewrite x * sigmoid(x) into graph.swish (SiLU)."
    silu:       Mul(x, Sigmoid(x)) -> Swish(x)
    neg-neg:    Neg(Neg(x)) -> x
    soft-plus:  Log(Add(Exp(x), 1.0)) -> Softplus(x)

One rule per line, ``name: SOURCE -> TARGET``. In SOURCE, ``Type(a, b, attr=value)``
matches an op of that ONNX type (``Div|Mul`` either; Add, Mul, ... either operand order)
whose attributes equal the given values; a lower-case name matches any value, the same
value wherever it recurs; ``_`` matches anything; a number matches a constant whose
elements all equal it (to 1e-3 relative). TARGET builds ops from the names SOURCE bound,
with attributes as given; or it is a name, whose value replaces the root. A replacement
must keep the root's type, or the rule does not apply there. The optional ``pass`` line
names the pass and documents it; without it the pass is named after the file's stem.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError

MAX_BYTES = 1 << 20  # a patterns file is a page of rules, not data
MAX_NESTING = 64  # ops inside ops in one rule: far beyond any real pattern, well within Python's stack
_TOKEN = re.compile(r"\s*(?:(->)|([A-Za-z_][A-Za-z0-9_.|]*)|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(\"[^\"]*\")|(\S))")


class _Reader:
    def __init__(self, text: str, where: str):
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(text):
            kind = ("arrow", "name", "number", "string", "punct")[m.lastindex - 1]  # type: ignore[operator]
            self.tokens.append((kind, m.group(m.lastindex)))  # type: ignore[arg-type]
        self.i, self.where = 0, where

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (text is not None and token[1] != text):
            raise self.error(f"expected {text!r}" if text else "unexpected end of line")
        self.i += 1
        return token

    def error(self, what: str) -> GraphoptError:
        at = self.peek()[1] or "the end of the line"
        return GraphoptError(f"{self.where}: {what} at {at!r}")


def _value(r: _Reader) -> Any:
    kind, text = r.take()
    if kind in ("number", "string"):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:  # e.g. an integer of more digits than Python converts
            raise r.error(f"not a usable value ({e})") from None
    if text == "[":
        items = []
        while r.peek()[1] != "]":
            items.append(_value(r))
            if r.peek()[1] == ",":
                r.take(",")
        r.take("]")
        return items
    raise r.error("expected an attribute value (a number, a \"string\" or a [list])")


def _attribute(r: _Reader, types: list[str], key: str, value: Any) -> Any:
    """``value``, checked to be a valid ``key`` attribute of each op type."""
    from graphopt.dialects import attrs as A
    from graphopt.dialects.graph import ONNX_OPS

    for t in types:
        kind = ONNX_OPS[t].ATTR_KINDS.get(key)
        if kind is None:
            raise GraphoptError(f"{r.where}: {t} has no attribute {key!r}")
        try:
            A.to_ir(value, kind)
        except (TypeError, ValueError):
            raise GraphoptError(f"{r.where}: {t}'s {key} is {kind.name.lower()}, not {value!r}") from None
    return value


def _term(r: _Reader, source: bool) -> tuple[Any, ...]:
    """("op", types, [terms], {attrs}) | ("var", name) | ("any",) | ("const", value)."""
    kind, text = r.take()
    if kind == "number":
        if not source:
            raise GraphoptError(f"{r.where}: a number on the right of -> ({text}): bind the constant to a name on the left")
        return ("const", float(text))
    if kind != "name":
        raise r.error("expected an op, a name or a number")
    if text == "_":
        return ("any",)
    if text[0].islower():
        return ("var", text)
    from graphopt.dialects.graph import ONNX_OPS

    for t in text.split("|"):
        if t not in ONNX_OPS:
            raise GraphoptError(f"{r.where}: {t} is not an ONNX op type graphopt knows")
    if not source and "|" in text:
        raise GraphoptError(f"{r.where}: {text} on the right of ->: build one op type")
    r.take("(")
    operands, attrs = [], {}
    while r.peek()[1] != ")":
        if r.peek()[0] == "name" and r.i + 1 < len(r.tokens) and r.tokens[r.i + 1][1] == "=":
            key = r.take()[1]
            r.take("=")
            attrs[key] = _attribute(r, text.split("|"), key, _value(r))
        else:
            operands.append(_term(r, source))
        if r.peek()[1] != ")":
            r.take(",")
    r.take(")")
    for t in text.split("|"):
        _check_arity(r.where, t, len(operands))
    return ("op", text, operands, attrs)


def _check_arity(where: str, onnx_type: str, n: int) -> None:
    from graphopt.dialects.graph import CORE_OPERANDS, ONNX_OPS

    names = CORE_OPERANDS.get(onnx_type)
    if names is not None:
        required = [x for x in names if not x.endswith("?")]
        if not len(required) <= n <= len(names):
            count = f"{len(required)}" if len(required) == len(names) else f"{len(required)}-{len(names)}"
            raise GraphoptError(f"{where}: {onnx_type} takes {count} operand{'' if count == '1' else 's'} "
                                f"({', '.join(names)}), not {n}")
    elif n > ONNX_OPS[onnx_type].MAX_INPUTS:
        raise GraphoptError(f"{where}: {onnx_type} takes at most {ONNX_OPS[onnx_type].MAX_INPUTS} operands, not {n}")


def _matcher(term: tuple[Any, ...]) -> Any:
    from graphopt.patterns import Const, Op, Var

    if term[0] == "op":
        return Op(term[1], *(_matcher(t) for t in term[2]), attrs=term[3])
    if term[0] == "var":
        return Var(term[1])
    return Var() if term[0] == "any" else Const(term[1])


def _names(term: tuple[Any, ...]) -> set[str]:
    if term[0] == "op":
        return set().union(*(_names(t) for t in term[2]))
    return {term[1]} if term[0] == "var" else set()


def _rewrite(term: tuple[Any, ...]) -> Any:
    from graphopt.rewrite import build

    def make(m: Any, t: tuple[Any, ...], made: list[Any]) -> Any:
        if t[0] == "var":
            return m[t[1]]
        op = build(t[1], [make(m, o, made) for o in t[2]], t[3], m.src)
        made.append(op)
        return op.results[0]

    def rewrite(m: Any) -> Any:
        made: list[Any] = []
        try:
            value = make(m, term, made)
        except ValueError:  # the shape rule refused these operands: the rule does not apply here
            from graphopt.rewrite import discard

            discard(*reversed(made))
            return None
        return made if made else value

    return rewrite


def parse_patterns(text: str, path: str = "<patterns>") -> tuple[str | None, str, list[Any]]:
    """(pass name or None, its doc, [Pattern]) of a patterns file's text."""
    from graphopt.patterns import Pattern

    name, doc, patterns = None, "", []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        where = f"{path}:{lineno}"
        if not line:
            continue
        if line.startswith("pass "):
            name, _, rest = line[5:].strip().partition(" ")
            if not re.fullmatch(r"[a-z][a-z0-9-]*", name) or (rest.strip() and not re.fullmatch(r'"[^"]*"', rest.strip())):
                raise GraphoptError(f'{where}: write `pass kebab-case-name "what it does"`')
            doc = rest.strip()[1:-1]
            continue
        rule, colon, body = line.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z0-9_-]+", rule.strip()):
            raise GraphoptError(f"{where}: write a rule as `name: Source(...) -> Target(...)`")
        depth = max(itertools.accumulate((c in "([") - (c in ")]") for c in body), default=0)
        if depth > MAX_NESTING:
            raise GraphoptError(f"{where}: the rule nests too deeply ({depth} levels; at most {MAX_NESTING})")
        r = _Reader(body, where)
        source = _term(r, source=True)
        r.take("->")
        target = _term(r, source=False)
        if r.peek()[0] != "end":
            raise r.error("unexpected text after the rule")
        if source[0] != "op":
            raise GraphoptError(f"{where}: the left of -> must be an op, e.g. Neg(Neg(x))")
        unbound = _names(target) - _names(source)
        if unbound:
            raise GraphoptError(f"{where}: {', '.join(sorted(unbound))} on the right of -> is not bound on the left")
        patterns.append(Pattern(rule.strip(), _matcher(source), _rewrite(target)))
    if not patterns:
        raise GraphoptError(f"{path}: no rules (write one per line: `name: Source(...) -> Target(...)`)")
    return name, doc, patterns


def load_patterns(path: str) -> type:
    """The pass a patterns file defines (registered by graphopt.registry.load_patterns)."""
    from graphopt.patterns import patterns_pass

    p = Path(path)
    if not p.is_file():
        raise GraphoptError(f"--load-patterns {path}: no such file")
    if p.stat().st_size > MAX_BYTES:
        raise GraphoptError(f"--load-patterns {path}: {p.stat().st_size} bytes is too large for a patterns file "
                            f"(at most {MAX_BYTES})")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GraphoptError(f"--load-patterns {path}: cannot read it as UTF-8 text ({e})") from None
    name, doc, patterns = parse_patterns(text, str(path))
    return patterns_pass(name or p.stem.replace("_", "-"), patterns, doc)
