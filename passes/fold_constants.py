"""fold-constants: evaluate ops whose inputs are all constants.

    %a = "graph.constant"() <{value = dense<2.0> : tensor<f32>}> : () -> tensor<f32>
    %b = "graph.sqrt"(%a) : (tensor<f32>) -> tensor<f32>
  becomes
    %b = "graph.constant"() <{value = dense<1.41421354> : tensor<f32>}> : () -> tensor<f32>

The op is evaluated with its rule in graphopt.semantics (the same meaning every target
implements). Results larger than ``max-elements`` and than every operand are left alone:
folding them would trade a cheap op for a large weight (an Expand of a scalar). A result no
larger than an operand it reads is folded whatever its size (up to SOURCE_MAX_ELEMENTS): a
weight standardised, scaled or transposed at run time (timm's NF-Nets standardise every
convolution's weight with a training-mode BatchNormalization) is a weight, as CANN's graph
engine folds it. Impure ops (random) are never folded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NoneType, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.traits import Pure

from graphopt.dialects.graph import GraphOp
from graphopt.dialects.types import shape_of  # unknown dims as -1
from graphopt.rewrite import constant_value, make_constant, src_of, weights_of
from graphopt.semantics import get_rule
from graphopt.semantics.onnx_attrs import rule_kwargs
from graphopt.weights import WeightStore


def _numel(op: Operation) -> int:
    total = 0
    for r in op.results:
        if not isinstance(r.type, TensorType) or -1 in shape_of(r.type):
            return -1
        total += int(np.prod(r.type.get_shape(), dtype=np.int64))
    return total


def _within_operands(op: Operation) -> bool:
    """No result larger than the largest operand: folding makes no tensor bigger than one it
    reads (a weight standardised or cast), where an Expand or a Tile would."""
    sizes = [int(np.prod(shape_of(v.type), dtype=np.int64)) for v in op.operands
             if isinstance(v.type, TensorType) and -1 not in shape_of(v.type)]
    return bool(sizes) and all(isinstance(r.type, TensorType) and int(np.prod(r.type.get_shape(), dtype=np.int64)) <= max(sizes)
                               for r in op.results)


# Ops that make a tensor from attributes and a shape alone: a model's weights written as
# ConstantOfShape (onnx's light model zoo) are weights, folded whatever their size, as
# CANN's graph engine folds them, up to this many elements (64 MB of float32).
_SOURCES = frozenset({"ConstantOfShape"})
SOURCE_MAX_ELEMENTS = 1 << 24


@dataclass
class FoldOp(RewritePattern):
    weights: WeightStore | None
    max_elements: int
    only_types: frozenset[str] | None = None  # restrict folding to these op types
    # past max_elements, fold a result no larger than an operand (fold-constants does;
    # fold-shapes, which folds shape-sized values only, does not)
    within_operands: bool = False

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or not op.has_trait(Pure) or not op.results:
            return
        if self.only_types is not None and op.ONNX_TYPE not in self.only_types:
            return
        size = _numel(op)
        if size < 0:
            return
        if op.ONNX_TYPE in _SOURCES:
            if size > SOURCE_MAX_ELEMENTS:
                return
        elif size > self.max_elements and not (self.within_operands and size <= SOURCE_MAX_ELEMENTS and _within_operands(op)):
            return
        args = []
        for v in op.operands:
            if isinstance(v.type, NoneType):
                args.append(None)
                continue
            value = constant_value(v, self.weights)
            if value is None:
                return
            args.append(value)
        key = op.onnx_key()
        rule = get_rule(key)
        if rule is None:
            return
        try:
            out = rule(*args, **rule_kwargs(type(op), op.onnx_attrs(), len(op.results)))
        except Exception:  # an op that refuses its constant inputs stays for run time to report
            return
        outs = out if isinstance(out, tuple | list) else (out,)
        src = src_of(op)
        new_ops = [make_constant(np.asarray(v), src, self.weights) for v in outs[: len(op.results)]]
        rewriter.replace(op, new_ops, [o.results[0] for o in new_ops])


@dataclass(frozen=True)
class FoldConstants(ModulePass):
    """Evaluate ops whose inputs are all constants (up to max-elements results)."""

    name = "fold-constants"
    max_elements: int = 1 << 16

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FoldOp(weights_of(ctx), self.max_elements, within_operands=True)).rewrite_module(op)
