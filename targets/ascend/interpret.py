"""The one walk over an ascend kernel body that every interpretation of the dialect shares.

An interpretation is a subclass of ``KernelInterpretation`` with a rule per op class,
marked ``@rule(OpClass)``: the functional simulator (sim.py: values), the timing model
(kernel_timing.py: instructions per pipe) and the AscendC writer (ascendc.py: statements).
The walk dispatches each op of a block to its rule, by class; an op without one goes to
``unknown`` (an error for the simulator, nothing for the others). What an op means on its
own (a loop's iterations per core, whether a guarded loop runs, how a copy views GM) lives
on the op (dialect.py: ``ForOp.runs``, ``ForOp.core_order``, ``CopyOp.view_spec``), so the
interpretations do not each decode it. xDSL's interpreter framework has the same shape: one
functions class per dialect and interpretation, an ``@impl`` per op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from xdsl.ir import Block, Operation


def rule(*op_types: type[Operation]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a method of a KernelInterpretation as the rule for ``op_types``."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn._rule_for = op_types  # type: ignore[attr-defined]
        return fn

    return mark


class KernelInterpretation:
    RULES: ClassVar[dict[type[Operation], Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        rules = dict(cls.RULES)  # a subclass of an interpretation keeps its rules
        for value in vars(cls).values():
            for op_type in getattr(value, "_rule_for", ()):
                rules[op_type] = value
        cls.RULES = rules

    def block(self, block: Block) -> None:
        for op in block.ops:
            self.apply(op)

    def apply(self, op: Operation) -> Any:
        fn = self.RULES.get(type(op))
        return self.unknown(op) if fn is None else fn(self, op)

    def unknown(self, op: Operation) -> Any:
        """An op without a rule: ignored unless the interpretation says otherwise."""
        return None
