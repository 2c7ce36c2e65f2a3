"""ONNX subgraphs as regions, and the ops typed on IR types (sequences, optionals).

An ONNX GRAPH attribute (If's branches, the body of Loop, Scan and SequenceMap) becomes
the op's region of the same name: one block whose arguments are the subgraph's formal
inputs, its nodes imported in order by the same ``_Importer``, and a ``graph.yield`` of
its outputs. Regions are not isolated from above: a name the subgraph does not define
resolves to the enclosing graph's value, used directly. Names the subgraph defines shadow
outer ones (the importer's name maps are copied per subgraph, never shared).

Loop and Scan carry values between iterations, so a body argument must hold the value
the body yields for it as well as the initial one. The body is imported with the initial
types first; where a yielded type is not held by its argument (a tensor that grows each
iteration), the arguments are widened (``join``) and the body imported again, until
they hold: at most a few rounds, since types only widen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import onnx
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects.builtin import NoneType, TensorType, UnrankedTensorType
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from graphopt import dtypes
from graphopt.dialects import attrs as A
from graphopt.dialects.graph import YieldOp, provenance_attr
from graphopt.dialects.structured import RegionTypes, result_types
from graphopt.dialects.types import OptionalType, SequenceType, compatible, holds, join, shape_of, tensor
from graphopt.errors import GraphoptError
from graphopt.frontends.legalize import Node
from graphopt.names import ssa_hint

if TYPE_CHECKING:
    from graphopt.frontends.onnx import _Importer

_MAX_ROUNDS = 4  # body imports per op until carried types settle
_BOOL = dtypes.BY_ONNX[9].ir
_I64 = dtypes.BY_ONNX[7].ir


def ir_type(tp: onnx.TypeProto) -> Attribute | None:
    """An ONNX value type as an IR type (unknown dims ``?``, no shape: unranked)."""
    if tp.HasField("tensor_type"):
        tt = tp.tensor_type
        if not tt.elem_type:
            return None
        elem = dtypes.from_onnx(tt.elem_type).ir
        if not tt.HasField("shape"):
            return UnrankedTensorType(elem)
        return tensor(elem, [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim])
    if tp.HasField("sequence_type"):
        inner = ir_type(tp.sequence_type.elem_type)
        return SequenceType(inner) if inner is not None else None
    if tp.HasField("optional_type"):
        inner = ir_type(tp.optional_type.elem_type)
        return OptionalType(inner) if inner is not None else None
    return None


def emit_structured(imp: _Importer, cls: Any, n: Node, operands: list[SSAValue], where: str) -> Operation | None:
    """Add a control flow, sequence or optional op (typed by ``dialects/structured.py``)."""
    graphs = {k: v for k, v in n.attrs.items() if isinstance(v, onnx.GraphProto)}
    cond = imp.known.get(n.inputs[0]) if n.op_type == "If" and n.inputs else None
    if cond is not None and cond.size == 1:
        # The condition is known at compile time: only the branch taken can be typed for
        # these shapes (expanded functions branch on rank), so it replaces the If.
        _inline_branch(imp, n, graphs["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"], where)
        return None
    declared = n.attrs.get("type") if n.op_type == "Optional" else None  # an empty optional's type
    attrs = {k: v for k, v in n.attrs.items() if k not in graphs and not (k == "type" and declared is not None)}
    try:
        props = {k: A.to_ir(v, cls.ATTR_KINDS[k]) for k, v in attrs.items()}
    except (KeyError, ValueError) as e:
        raise GraphoptError(f"{where}: attribute {e} is not valid for this op") from None
    ins = [v.type for v in operands]
    consts = [imp.known.get(name) if name else None for name in n.inputs]
    names = [name for name, _ in cls.get_irdl_definition().regions]
    regions: dict[str, Region] = {}
    kinds: dict[str, RegionTypes] = {}
    try:
        for name in names:
            if name not in graphs:
                raise ValueError(f"attribute {name} (a graph) is missing")
            regions[name], kinds[name] = _import_region(imp, n.op_type, ins, attrs, graphs[name], where)
        types = result_types(n.op_type, ins, attrs, consts, kinds)
    except ValueError as e:
        raise GraphoptError(f"{where}: {e}") from None
    if n.op_type == "Loop":
        _check_scan_memory(consts[0] if consts else None, len(ins) - 2, kinds["body"], where)
    if n.op_type == "Optional" and types[0] is None:
        inner = ir_type(declared) if isinstance(declared, onnx.TypeProto) else None
        if inner is None:
            raise GraphoptError(f"{where}: an Optional without input needs a type attribute")
        types[0] = OptionalType(inner)
    result_types_ = [t if t is not None else NoneType() for t in types[: len(n.outputs)]]
    op = cls.create(
        operands=operands,
        result_types=result_types_,
        properties=props,
        attributes=provenance_attr([n.src]),
        regions=[regions[name] for name in names],
    )
    imp.builder.insert(op)
    for name, result in zip(n.outputs, op.results):
        if name:
            imp.values[name] = result
            imp.known.pop(name, None)
    return op


def _check_scan_memory(trip_count: Any, carried: int, body: RegionTypes, where: str) -> None:
    """Refuse a Loop whose constant trip count times what its scan outputs take per
    iteration is above the memory limit (they are stacked whole: 2**40 iterations of a
    float each would be 4 TiB). A loop without scan outputs runs in constant memory."""
    from graphopt import limits

    if trip_count is None or trip_count.size != 1:
        return
    count = int(trip_count.reshape(-1)[0])
    per_iteration = sum(
        limits.nbytes(shape_of(y), dtypes.from_ir(y.element_type).numpy.itemsize)
        for y in body.yields[1 + carried:]
        if isinstance(y, TensorType) and -1 not in shape_of(y)
    )
    if count > 0 and per_iteration:
        limits.check_bytes(count * per_iteration, f"{where}: its scan outputs over {count} iterations (trip count M)")


def _import_region(
    imp: _Importer, op_type: str, ins: list[Attribute], attrs: dict[str, Any], graph: onnx.GraphProto, where: str
) -> tuple[Region, RegionTypes]:
    args = _initial_args(op_type, ins, attrs, graph)
    for _ in range(_MAX_ROUNDS):
        region, yields = import_body(imp, graph, args, where)
        wider = _widen(op_type, ins, attrs, args, yields)
        if wider == args:
            return region, RegionTypes(args, yields)
        region.drop_all_references()  # a discarded attempt must not count as a use of outer values
        args = wider
    raise ValueError(f"the types carried by {graph.name or 'the body'} do not settle")


def _element_or_self(t: Attribute) -> Attribute:
    return t.element_type if isinstance(t, SequenceType) else t


def _initial_args(op_type: str, ins: list[Attribute], attrs: dict[str, Any], graph: onnx.GraphProto) -> list[Attribute]:
    """Body argument types from the op's operands, widened by what the body declares."""
    if op_type == "If":
        base: list[Attribute] = []
    elif op_type == "Loop":
        base = [tensor(_I64, []), tensor(_BOOL, []), *ins[2:]]
    elif op_type == "Scan":
        k = int(attrs["num_scan_inputs"])
        n = len(ins) - k
        axes = list(attrs.get("scan_input_axes") or [0] * k)
        base = [*ins[:n], *(_slice(t, axis) for t, axis in zip(ins[n:], axes))]
    elif op_type == "SequenceMap":
        base = [_element_or_self(t) for t in ins]
    else:
        raise ValueError(f"{op_type} has no body")
    if len(graph.input) != len(base):
        raise ValueError(f"the body declares {len(graph.input)} inputs; the op passes it {len(base)}")
    declared = [ir_type(vi.type) for vi in graph.input]
    # A declaration without a shape says nothing; one with unknown dims widens the base.
    return [join(b, d) if d is not None and _ranked(d) and compatible(b, d) else b for b, d in zip(base, declared)]


def _ranked(t: Attribute) -> bool:
    if isinstance(t, SequenceType | OptionalType):
        return _ranked(t.element_type)
    return not isinstance(t, UnrankedTensorType)


def _slice(t: Attribute, axis: int) -> Attribute:
    if not isinstance(t, TensorType):
        return t
    shape = list(shape_of(t))
    del shape[axis % len(shape)]
    return tensor(t.element_type, shape)


def _widen(op_type: str, ins: list[Attribute], attrs: dict[str, Any], args: list[Attribute], yields: list[Attribute]) -> list[Attribute]:
    """The body arguments, widened to hold what the body yields for the carried values."""
    if op_type == "Loop":
        first, n = 2, len(ins) - 2
        carried = yields[1 : 1 + n]
    elif op_type == "Scan":
        first, n = 0, len(ins) - int(attrs["num_scan_inputs"])
        carried = yields[:n]
    else:
        return args
    wider = list(args)
    for k, out in enumerate(carried):
        arg = args[first + k]
        if not holds(arg, out):
            wider[first + k] = join(arg, out)
    return wider


def _inline_branch(imp: _Importer, n: Node, graph: onnx.GraphProto, where: str) -> None:
    """Import ``graph`` (an If branch) and move its ops into the current block."""
    known: dict[str, Any] = {}
    region, _ = import_body(imp, graph, [], where, known)
    block = region.blocks[0]
    last = block.last_op
    assert isinstance(last, YieldOp)
    yielded = list(last.operands)
    block.erase_op(last)
    for op in list(block.ops):
        op.detach()
        imp.builder.insert(op)
    for name, value, vi in zip(n.outputs, yielded, graph.output):
        if name:
            imp.values[name] = value
            imp.known.pop(name, None)
            if vi.name in known:
                imp.known[name] = known[vi.name]


def import_body(
    imp: _Importer, graph: onnx.GraphProto, arg_types: list[Attribute], where: str, known_out: dict[str, Any] | None = None
) -> tuple[Region, list[Attribute]]:
    """Import ``graph`` into a new block with arguments of ``arg_types``; returns the
    region and the types it yields. ``known_out`` receives the compile-time values of
    the graph's outputs."""
    saved = (imp.block, imp.builder, imp.values, imp.known, imp.inferred, imp._none)
    block = Block(arg_types=arg_types)
    imp.block, imp.builder, imp._none = block, Builder(InsertPoint.at_end(block)), None
    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    defined |= {o for node in graph.node for o in node.output}
    # Inner names shadow outer ones: copies, so nothing the body defines leaks out.
    imp.values = dict(imp.values)
    imp.known = {k: v for k, v in imp.known.items() if k not in defined}
    imp.inferred = {k: v for k, v in imp.inferred.items() if k not in defined}
    try:
        for arg, vi in zip(block.args, graph.input):
            arg.name_hint = ssa_hint(vi.name)
            imp.values[vi.name] = arg
        for tensor in graph.initializer:
            imp.values[tensor.name] = imp.constant(tensor.name, onnx.numpy_helper.to_array(tensor), tensor.name)
        for node in graph.node:
            imp.add_node(node)
        outs = [imp.operand(vi.name, f"{where}: subgraph {graph.name!r} output") for vi in graph.output]
        imp.builder.insert(YieldOp(*outs))
        if known_out is not None:
            known_out.update({vi.name: imp.known[vi.name] for vi in graph.output if vi.name in imp.known})
    finally:
        imp.block, imp.builder, imp.values, imp.known, imp.inferred, imp._none = saved
    return Region(block), [v.type for v in outs]
