"""The graph as Graphviz DOT: ops as boxes, fused groups as clusters labelled with their
kind, graph inputs and outputs as ellipses, edges labelled with tensor types (f32[1,16,64]).
Constants and weights are left out: they would bury the structure.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, FusedOp, NoneOp, WeightOp, YieldOp, provenance

_HIDDEN = (ConstantOp, WeightOp, NoneOp, YieldOp, func.ReturnOp)
_SHORT = {"float": "f32", "float16": "f16", "bfloat16": "bf16", "double": "f64", "int64": "i64", "int32": "i32", "bool": "i1"}


def type_label(t: Attribute) -> str:
    if not isinstance(t, TensorType):
        return str(t)
    try:
        name = dtypes.from_ir(t.element_type).name
    except KeyError:
        name = str(t.element_type)
    dims = ",".join("?" if d < 0 else str(d) for d in t.get_shape())
    return f"{_SHORT.get(name, name)}[{dims}]"


def _quote(text: str) -> str:
    # Backslashes are kept: labels use DOT's own "\\n" line break.
    return '"' + text.replace('"', '\\"') + '"'


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ids: dict[object, str] = {}

    def node_id(self, key: object) -> str:
        return self.ids.setdefault(key, f"n{len(self.ids)}")

    def source_of(self, v: SSAValue) -> str | None:
        """The DOT node producing v (the fused op's inner producer when v is its yield)."""
        owner = v.owner
        if isinstance(owner, _HIDDEN):
            return None
        if isinstance(owner, FusedOp):
            yielded = owner.body.block.last_op
            assert isinstance(yielded, YieldOp)
            return self.source_of(yielded.values[list(owner.results).index(v)])
        if isinstance(v, BlockArgument) and not isinstance(v.block.parent_op(), func.FuncOp):
            return None  # a fused region's argument: the edge comes from outside
        return self.node_id(owner if isinstance(owner, Operation) else v)

    def block(self, block: Block, indent: str) -> None:
        for op in block.ops:
            if isinstance(op, _HIDDEN):
                continue
            if isinstance(op, FusedOp):
                self.cluster(op, indent)
                continue
            label = op.name.removeprefix("graph.")
            src = provenance(op)
            if src:
                label += f"\\n{src[0]}"
            self.lines.append(f"{indent}{self.node_id(op)} [label={_quote(label)}];")

    def cluster(self, op: FusedOp, indent: str) -> None:
        self.lines.append(f"{indent}subgraph cluster_{self.node_id(op)} {{")
        self.lines.append(f'{indent}  label={_quote("fused: " + op.kind.data)}; style=rounded; color=blue;')
        self.block(op.body.block, indent + "  ")
        self.lines.append(f"{indent}}}")
        # Inside, block arguments stand for the fused op's operands.
        for arg, outer in zip(op.body.block.args, op.inputs):
            self.edges_from(outer, [u.operation for u in arg.uses])

    def edges_from(self, v: SSAValue, users: list[Operation]) -> None:
        src = self.source_of(v)
        if src is None:
            return
        for user in users:
            if isinstance(user, _HIDDEN) or isinstance(user, FusedOp):
                continue
            self.lines.append(f"  {src} -> {self.node_id(user)} [label={_quote(type_label(v.type))}];")


def to_dot(module: ModuleOp, name: str = "graphopt") -> str:
    w = _Writer()
    w.lines += [f"digraph {_quote(name)} {{", "  rankdir=TB;", "  node [shape=box, fontname=monospace];"]
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    for k, arg in enumerate(fn.body.block.args):
        w.lines.append(f"  {w.node_id(arg)} [shape=ellipse, label={_quote(arg.name_hint or f'input{k}')}];")
    w.block(fn.body.block, "  ")
    values = [*fn.body.block.args, *(r for op in fn.walk() for r in op.results)]
    for v in values:
        w.edges_from(v, [u.operation for u in v.uses if not isinstance(u.operation, func.ReturnOp)])
    ret = fn.body.block.last_op
    assert isinstance(ret, func.ReturnOp)
    for k, v in enumerate(ret.operands):
        out = f"out{k}"
        w.lines.append(f"  {out} [shape=ellipse, label={_quote(f'output {k}')}];")
        src = w.source_of(v)
        if src:
            w.lines.append(f"  {src} -> {out} [label={_quote(type_label(v.type))}];")
    w.lines.append("}")
    return "\n".join(w.lines) + "\n"


def write_dot(module: ModuleOp, path: Path) -> list[Path]:
    """Write DOT (and an SVG beside it when Graphviz's ``dot`` is installed)."""
    path.write_text(to_dot(module, path.stem))
    written = [path]
    dot = shutil.which("dot")
    if dot:
        svg = path.with_suffix(".svg")
        subprocess.run([dot, "-Tsvg", str(path), "-o", str(svg)], check=True, capture_output=True)
        written.append(svg)
    return written
