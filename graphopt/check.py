"""``graphopt check``: which ops a model uses and whether each target supports them,
answered before compiling, so users learn what is missing up front instead of from a
failure deep inside a compile.

For every (domain, op type) in the model, including the bodies of control-flow
subgraphs, it gathers the opset version that applies (the schema's ``since_version``),
the element types the op is used with (from onnx's shape inference) and the nodes that
use it; then it asks each target's ``supports(op_type, domain, dtypes)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import onnx
import onnx.shape_inference

from graphopt.target import Target


@dataclass
class OpUse:
    """One op type as the model uses it."""

    domain: str  # "" for the default ONNX domain
    op_type: str
    version: int | None  # the schema's since_version; None if onnx knows no such op
    dtypes: set[str] = field(default_factory=set)
    nodes: list[str] = field(default_factory=list)
    verdicts: dict[str, str | None] = field(default_factory=dict)  # target -> None (ok) or why not

    @property
    def label(self) -> str:
        return self.op_type if not self.domain else f"{self.domain}::{self.op_type}"


@dataclass
class CheckReport:
    uses: list[OpUse]
    targets: list[str]

    @property
    def unsupported(self) -> list[tuple[str, OpUse]]:
        return [(t, u) for u in self.uses for t in self.targets if u.verdicts.get(t) is not None]


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {("" if imp.domain == "ai.onnx" else imp.domain): imp.version for imp in model.opset_import}


def _element_types(model: onnx.ModelProto) -> dict[str, str]:
    """Value name -> ONNX element type name, wherever onnx's inference knows it."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # a model onnx cannot infer still gets checked, with fewer dtypes
        inferred = model
    found: dict[str, str] = {}

    def name(code: int) -> str | None:
        """ONNX's name of an element type; None for 0 (undefined) and codes ONNX does not have."""
        try:
            return onnx.helper.tensor_dtype_to_string(code).removeprefix("TensorProto.").lower() if code else None
        except (KeyError, ValueError):
            return None

    def visit(graph: onnx.GraphProto) -> None:
        for t in graph.initializer:
            if (dtype := name(t.data_type)) is not None:
                found[t.name] = dtype
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
            if (dtype := name(elem)) is not None:
                found[vi.name] = dtype
        for node in graph.node:
            for g in _subgraphs(node):
                visit(g)

    visit(inferred.graph)
    return found


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for g in _subgraphs(node):
            yield from _nodes(g)


def _since_version(op_type: str, domain: str, opset: int | None) -> int | None:
    if opset is None:
        return None
    try:
        return onnx.defs.get_schema(op_type, opset, domain).since_version
    except onnx.defs.SchemaError:
        return None


def survey(model: onnx.ModelProto) -> list[OpUse]:
    """Every op type the model uses, in order of first use."""
    opsets = _opsets(model)
    types = _element_types(model)
    uses: dict[tuple[str, str], OpUse] = {}
    for k, node in enumerate(_nodes(model.graph)):
        domain = "" if node.domain == "ai.onnx" else node.domain
        use = uses.get((domain, node.op_type))
        if use is None:
            version = _since_version(node.op_type, domain, opsets.get(domain))
            use = uses[(domain, node.op_type)] = OpUse(domain, node.op_type, version)
        use.nodes.append(node.name or (node.output[0] if node.output else f"#{k}"))
        use.dtypes.update(types[n] for n in [*node.input, *node.output] if n in types)
    return list(uses.values())


def check_model(model: onnx.ModelProto, targets: Sequence[Target]) -> CheckReport:
    """Survey the model and ask each target about each op type."""
    uses = survey(model)
    for use in uses:
        for target in targets:
            if use.version is None:
                opset = _opsets(model).get(use.domain)
                where = f"opset {opset} of domain {use.domain or 'ai.onnx'}" if opset else f"no imported opset of domain {use.domain or 'ai.onnx'}"
                use.verdicts[target.name] = f"onnx knows no {use.op_type} in {where}"
            else:
                use.verdicts[target.name] = target.supports(use.op_type, use.domain, sorted(use.dtypes))
    return CheckReport(uses, [t.name for t in targets])


def format_report(report: CheckReport) -> list[str]:
    """The table (one line per op type, one column per target), then one line per
    unsupported (target, op) naming its nodes and the reason."""
    head = f"{'op type':<32} {'opset':>5}  {'dtypes':<24}" + "".join(f" {t:<8}" for t in report.targets)
    lines = [head]
    for use in report.uses:
        cells = "".join(f" {'ok' if use.verdicts[t] is None else 'NO':<8}" for t in report.targets)
        version = str(use.version) if use.version is not None else "?"
        lines.append(f"{use.label:<32} {version:>5}  {','.join(sorted(use.dtypes)) or '-':<24}{cells}")
    for target, use in report.unsupported:
        nodes = ", ".join(use.nodes[:8]) + (f" and {len(use.nodes) - 8} more" if len(use.nodes) > 8 else "")
        lines.append(f"unsupported on {target}: {use.label} (nodes {nodes}): {use.verdicts[target]}")
    if not report.unsupported:
        lines.append(f"all {len(report.uses)} op types are supported on {', '.join(report.targets)}")
    return lines
