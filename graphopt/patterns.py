"""A small declarative pattern language for rewriting graph ops (the recognizers use it).

A pattern is a tree of matchers rooted at the op to replace, read from the root up through
the producers of its operands:

    x = Var("x")
    silu = Pattern("silu", Op("Mul", x, Op("Sigmoid", x)), lambda m: build("Swish", [m["x"]], {}, m.src))

- ``Op(type, *operands)`` matches a graph op of that ONNX type (or types, ``"Div|Mul"``; a
  typed op class, ``Op(Conv, ...)``; or any op with a trait, ``Op(Elementwise, x)``) whose
  operands match in order; Add, Mul, Max, Min,
  And, Or, Xor and Equal also match with their two operands swapped. ``rest=`` accepts
  (and names) further operands; ``attrs=`` checks attributes (a value, or a predicate on
  the value; an attribute not set reads as ONNX's default, None if it has none);
  ``one_use=True`` requires the op's result to have no other user.
- ``Var(name)`` matches any value. A name bound twice must bind the same value, so
  ``Op("Mul", x, x)`` is a square; an ``Op`` with a name binds its result the same way.
- ``Const(value)`` matches a constant whose elements are all equal, to ``value`` within a
  relative tolerance (``rel``, 1e-3 by default); ``Const()`` matches any such scalar and
  ``Tensor()`` any constant array.
- ``OneOf(a, b, ...)`` tries alternatives in order; ``where=`` (on any matcher, and on a
  Pattern) is a predicate on the match so far.

Matching backtracks over operand orders and alternatives until the pattern's ``where`` and
its ``rewrite`` accept. ``rewrite(m)`` returns the new ops, or an existing value, or None
to decline. The new ops' last results (or the value) replace the root's and must keep
their types (root results beyond them must be unused); matched ops left without users are
erased. ``m.src`` is the provenance of every matched op.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, OpTrait, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.utils.exceptions import VerifyException

from graphopt.dialects.graph import GraphOp
from graphopt.errors import GraphoptError
from graphopt.rewrite import constant_value, discard, remarks_of, scalar_value, src_of, weights_of
from graphopt.weights import WeightStore

COMMUTATIVE = frozenset({"Add", "Mul", "Max", "Min", "And", "Or", "Xor", "Equal"})

Where = Callable[["Match"], bool]


@dataclass
class Match:
    """What a pattern bound: values by name (``m["x"]``), ops (``m.op("mean")``), constants
    (``m.const("eps")``, ``m.array("gamma")``), extra operands (``m.rest["mask"]``), and
    every matched op in ``m.ops``."""

    weights: WeightStore | None
    memo: dict[Any, Any]  # shared by every match of one pass run (e.g. constants made once)
    remarks: list[dict[str, Any]]  # why a rewrite was declined where a user may expect it (report.json)
    values: dict[str, SSAValue] = field(default_factory=dict)
    ops_by_name: dict[str, GraphOp] = field(default_factory=dict)
    consts: dict[str, float] = field(default_factory=dict)
    rest: dict[str, list[SSAValue]] = field(default_factory=dict)
    ops: list[GraphOp] = field(default_factory=list)

    def fork(self) -> Match:
        return Match(self.weights, self.memo, self.remarks, dict(self.values), dict(self.ops_by_name), dict(self.consts),
                     dict(self.rest), list(self.ops))

    def __getitem__(self, name: str) -> SSAValue:
        return self.values[name]

    def get(self, name: str) -> SSAValue | None:
        return self.values.get(name)

    def op(self, name: str) -> GraphOp:
        return self.ops_by_name[name]

    def const(self, name: str) -> float:
        return self.consts[name]

    def array(self, name: str) -> np.ndarray:
        array = constant_value(self.values[name], self.weights)
        assert array is not None, name
        return array

    @property
    def src(self) -> list[str]:
        """The provenance of the matched ops, each op's producers (in operand order) before it."""
        matched, order = set(self.ops), []

        def visit(op: GraphOp) -> None:
            if op in matched:
                matched.discard(op)
                for v in op.operands:
                    if isinstance(v.owner, GraphOp):
                        visit(v.owner)
                order.append(op)

        visit(self.ops[0])
        return src_of(*order)

    def bound(self, name: str | None, value: SSAValue) -> Match | None:
        """A copy of this match with ``name`` bound to ``value``; None if the name is bound
        to another value already."""
        if name is not None and self.values.get(name, value) != value:
            return None
        found = self.fork()
        if name is not None:
            found.values[name] = value
        return found


class Matcher(ABC):
    name: str | None
    where: Where | None

    def match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        for found in self._match(value, m):
            if self.where is None or self.where(found):
                yield found

    @abstractmethod
    def _match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        """The matches of ``value`` extending ``m`` (before ``where``)."""

    def root_types(self) -> frozenset[str] | None:
        """The ONNX op types a value this matches can come from (None: any), so that a
        pattern is not tried at ops it cannot match."""
        return None


@dataclass
class Var(Matcher):
    name: str | None = None
    where: Where | None = None

    def _match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        found = m.bound(self.name, value)
        if found is not None:
            yield found


@dataclass
class Const(Matcher):
    """A constant whose elements are all equal (to ``value`` within ``rel``, if given)."""

    value: float | None = None
    name: str | None = None
    rel: float = 1e-3
    where: Where | None = None

    def _match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        c = scalar_value(value, m.weights)
        if c is None or (self.value is not None and not math.isclose(c, self.value, rel_tol=self.rel, abs_tol=0.0)):
            return
        found = m.bound(self.name, value)
        if found is not None:
            if self.name is not None:
                found.consts[self.name] = c
            yield found


@dataclass
class Tensor(Matcher):
    """Any constant (an inline graph.constant or a weight in the store)."""

    name: str | None = None
    where: Where | None = None

    def _match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        if constant_value(value, m.weights) is None:
            return
        found = m.bound(self.name, value)
        if found is not None:
            yield found


class OneOf(Matcher):
    def __init__(self, *alternatives: Matcher, where: Where | None = None):
        self.alternatives, self.name, self.where = alternatives, None, where

    def _match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        for alt in self.alternatives:
            yield from alt.match(value, m)

    def root_types(self) -> frozenset[str] | None:
        types = [alt.root_types() for alt in self.alternatives]
        return None if any(t is None for t in types) else frozenset().union(*types)  # type: ignore[arg-type]


class Op(Matcher):
    def __init__(self, types: str | type[GraphOp] | type[OpTrait], *operands: Matcher, name: str | None = None,
                 rest: str | None = None, attrs: dict[str, Any] | None = None, one_use: bool = False,
                 where: Where | None = None):
        self.trait = types if isinstance(types, type) and issubclass(types, OpTrait) else None
        self.types = None if self.trait is not None else frozenset(
            types.split("|") if isinstance(types, str) else [types.ONNX_TYPE])  # type: ignore[union-attr]
        self.operands, self.name, self.rest, self.attrs = operands, name, rest, attrs or {}
        self.one_use, self.where = one_use, where

    def _match(self, value: SSAValue, m: Match) -> Iterator[Match]:
        op = value.owner
        if not isinstance(op, GraphOp) or op.ONNX_DOMAIN:
            return
        if not (op.has_trait(self.trait) if self.trait is not None else op.ONNX_TYPE in (self.types or ())):
            return
        if value is not op.results[0] or (self.one_use and not value.has_one_use()):
            return
        n = len(self.operands)
        if len(op.operands) < n or (len(op.operands) > n and self.rest is None):
            return
        if self.attrs and not self._attrs_match(op):
            return
        found = m.bound(self.name, value)
        if found is None:
            return
        m = found
        if self.name is not None:
            m.ops_by_name[self.name] = op
        if self.rest is not None:
            m.rest[self.rest] = list(op.operands[n:])
        if op not in m.ops:
            m.ops.append(op)
        orders = [list(op.operands[:n])]
        if n == 2 and op.ONNX_TYPE in COMMUTATIVE:
            orders.append(orders[0][::-1])
        for order in orders:
            yield from _match_all(self.operands, order, m)

    def root_types(self) -> frozenset[str] | None:
        return self.types

    def _attrs_match(self, op: GraphOp) -> bool:
        attrs = op.onnx_attrs()
        for key, want in self.attrs.items():
            got = attrs[key] if key in attrs else schema_default(op.ONNX_TYPE, key)
            if callable(want):
                if not want(got):
                    return False
            elif isinstance(want, float) and isinstance(got, float):
                if not math.isclose(got, want, rel_tol=1e-6):
                    return False
            elif got != want:
                return False
        return True


def schema_default(onnx_type: str, key: str) -> Any:
    """The default the newest ONNX schema gives attribute ``key`` (None if it has none)."""
    from graphopt.dialects.onnx_ops import OPS

    row = OPS.get(onnx_type)
    return row[5].get(key) if row is not None else None


def _match_all(matchers: Sequence[Matcher], values: Sequence[SSAValue], m: Match) -> Iterator[Match]:
    if not matchers:
        yield m
        return
    for found in matchers[0].match(values[0], m):
        yield from _match_all(matchers[1:], values[1:], found)


Rewrite = Callable[[Match], "Operation | Sequence[Operation] | SSAValue | None"]


@dataclass
class Pattern:
    """One rewrite: ``root`` (an ``Op`` matcher, or ``OneOf`` of them) and what replaces it."""

    name: str
    root: Matcher
    rewrite: Rewrite
    where: Where | None = None

    def __post_init__(self) -> None:
        self._types = self.root.root_types()

    def apply(self, op: Operation, rewriter: PatternRewriter, start: Match) -> bool:
        if not isinstance(op, GraphOp) or not op.results or (self._types is not None and op.ONNX_TYPE not in self._types):
            return False
        for m in self.root.match(op.results[0], start):
            if self.where is not None and not self.where(m):
                continue
            made = self.rewrite(m)
            if made is None:
                continue
            # The replacement: new ops whose last one's results stand for the root's, or an
            # existing value (then the root must have that one result).
            new = [] if isinstance(made, SSAValue) else [made] if isinstance(made, Operation) else list(made)
            results: list[SSAValue] = [made] if isinstance(made, SSAValue) else list(new[-1].results)
            unused = op.results[len(results):]  # e.g. a BatchNormalization's training outputs
            if (not new and unused) or [r.type for r in results] != [r.type for r in op.results[:len(results)]] or any(
                    r.uses for r in unused) or not _verifies(new):
                discard(*reversed(new))  # users first
                continue
            rewriter.replace_op(op, new, [*results, *[None] * len(unused)])
            _erase_dead([o for o in m.ops if o is not op], rewriter)
            return True
        return False


def _verifies(ops: Sequence[Operation]) -> bool:
    """Whether the ops a rewrite built are valid IR (a rule may build an op its shape rule
    accepts but its definition does not, e.g. a two-operand op with one)."""
    try:
        for o in ops:
            o.verify()
    except VerifyException:
        return False
    return True


def _erase_dead(ops: list[GraphOp], rewriter: PatternRewriter) -> None:
    """Erase the ops the replacement left without users (users first, so repeat: the
    match order is not a topological one where the pattern shares a value)."""
    erased = True
    while erased:
        erased = False
        for dead in ops:
            if dead.parent is not None and not any(r.uses for r in dead.results):
                rewriter.erase_op(dead)
                erased = True


@dataclass
class _Applier(RewritePattern):
    patterns: Sequence[Pattern]
    start: Match  # what every match starts from: the weights, the pass run's memo and remarks
    pass_name: str
    budget: int  # rewrites allowed in one run: a rule that rebuilds what it matches never ends
    done: int = 0
    last_pattern: str = ""  # the pattern of the latest rewrite (graphopt bisect names it)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        for pattern in self.patterns:
            if pattern.apply(op, rewriter, self.start):
                self.done += 1
                self.last_pattern = pattern.name
                if self.done > self.budget:
                    raise GraphoptError(f"pass {self.pass_name}: pattern '{pattern.name}' keeps rewriting ({self.done} "
                                        "rewrites); a rule whose result it matches again never ends")
                return


@dataclass(frozen=True)
class PatternPass(ModulePass):
    """A pass applying ``patterns`` until none matches; each entry of ``phases`` runs to its
    own fixed point in turn. ``walk_reverse`` visits ops last first (the largest root
    first, e.g. a norm with its scale and bias before the norm alone)."""

    name = "patterns"
    phases: ClassVar[Sequence[Sequence[Pattern | RewritePattern]]] = ()
    walk_reverse: ClassVar[bool] = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        start = Match(weights_of(ctx), {}, remarks_of(ctx))
        budget = 10_000 + 50 * sum(1 for _ in op.walk())
        for phase in self.phases:
            ours = [p for p in phase if isinstance(p, Pattern)]
            theirs = [p for p in phase if not isinstance(p, Pattern)]
            applier = GreedyRewritePatternApplier([_Applier(ours, start, self.name, budget), *theirs])
            PatternRewriteWalker(applier, walk_reverse=self.walk_reverse).rewrite_module(op)


def patterns_pass(name: str, patterns: Sequence[Pattern], doc: str = "") -> type[PatternPass]:
    """A PatternPass class named ``name`` applying ``patterns`` (e.g. a loaded patterns file)."""
    cls = type(name.title().replace("-", "") + "Pass", (PatternPass,), {"name": name, "phases": (tuple(patterns),), "__module__": __name__,
                                                                          "__doc__": doc or f"Apply the patterns of {name}."})
    return dataclass(frozen=True)(cls)
