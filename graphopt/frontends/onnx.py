"""ONNX ModelProto -> graph IR.

Algorithm:
1. Read the file (checked: exists, parses, external data only inside the model's folder).
2. Bind dynamic input dimensions from ``shapes``; any dimension left unbound is an error.
3. Run onnx's shape inference (with data propagation) over the bound model.
4. Walk the nodes in order. Each node is legalized to its op's newest opset form
   (``legalize.py``), then becomes one graph op whose result types come from onnx's
   inference where it knew them, else from the op's own rule (``dialects/shapes.py``),
   fed with every value known at compile time. Values that only depend on constants
   and static shapes (the Shape/Gather/Concat chains exporters write) are evaluated with
   the semantic rules *for typing only*; the ops stay in the IR for the passes to fold.
5. Initializers and Constant nodes become ``graph.constant`` when small and exactly
   printable, otherwise ``graph.weight`` handles into the weight store.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.shape_inference
from google.protobuf.message import DecodeError, Message
from onnx import numpy_helper
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, NoneType, TensorType, i32
from xdsl.ir import Block, Region, SSAValue

from graphopt import dtypes, limits
from graphopt.dialects import attrs as A
from graphopt.dialects.graph import ONNX_OPS, ConstantOp, NoneOp, WeightOp, provenance_attr
from graphopt.dialects.shapes import Spec, infer, tensor_type
from graphopt.dialects.structured import is_structured
from graphopt.dialects.types import shape_of
from graphopt.errors import GraphoptError
from graphopt.frontends.legalize import LEGALIZE, Node
from graphopt.frontends.subgraphs import emit_structured, ir_type
from graphopt.names import ssa_hint
from graphopt.refused import refusal
from graphopt.semantics import get_rule
from graphopt.semantics.onnx_attrs import attribute_value, node_attributes, rule_kwargs, schema_of
from graphopt.weights import WeightStore

INLINE_MAX = 64  # constants up to this many elements live in the IR text
KNOWN_MAX = 4096  # values up to this many elements are evaluated at import for typing


@dataclass
class Imported:
    module: ModuleOp
    weights: WeightStore
    inputs: list[tuple[str, Spec | None]]  # None: a sequence or optional input
    outputs: list[str]
    opset: int
    histogram: dict[str, int] = field(default_factory=dict)


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read an .onnx file; every failure is a one-line GraphoptError."""
    p = Path(path)
    try:
        p.resolve(strict=True)
        found = p.is_file()
    except (OSError, RuntimeError) as e:  # a symbolic link loop, a name too long for the system
        raise GraphoptError(f"{p}: cannot be opened ({getattr(e, 'strerror', None) or e}); check the path") from None
    if not found:
        raise GraphoptError(f"{p}: no such file; check the path")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError) as e:
        raise GraphoptError(f"{p}: not a valid ONNX model ({type(e).__name__}); is the file truncated or corrupt?") from None
    if not model.graph.node and not model.graph.output:
        raise GraphoptError(f"{p}: the file holds no ONNX graph; is it an .onnx model?")
    _load_external_data(model, p.parent)
    return model


def _load_external_data(model: onnx.ModelProto, folder: Path) -> None:
    """Read every external tensor of the model (initializers, Constant values, sparse
    tensors, attributes, subgraphs and functions: all of them) into the model, each checked
    before a byte is read: its file inside the model's folder, its size from its dims and
    element type, the file long enough."""
    root = folder.resolve()
    for tensor, where in external_tensors(model):
        size = _external_size(tensor, where)
        info = {e.key: e.value for e in tensor.external_data}
        target = _external_file(root, info.get("location", ""), where)
        offset = _external_int(info, "offset", where)
        length = _external_int(info, "length", where)
        if length is not None and length != size:
            raise GraphoptError(f"{where}: external data length {length} does not match its dims and type ({size} bytes)")
        offset = offset or 0
        file_size = target.stat().st_size
        if offset + size > file_size:
            raise GraphoptError(f"{where}: external data {target.name} holds {file_size} bytes, "
                                f"fewer than the {size} declared at offset {offset}; is the file truncated?")
        with open(target, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:  # the file shrank while being read
            raise GraphoptError(f"{where}: external data {target.name} is shorter than declared")
        tensor.raw_data = data
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def external_tensors(message: Any, where: str = "") -> Iterator[tuple[onnx.TensorProto, str]]:
    """Every TensorProto stored externally anywhere inside ``message``, with a phrase naming
    it. The walk goes through all message fields (not a list of the places tensors live), so
    a tensor in a sparse attribute of a node in a function's subgraph is found too."""
    for field_desc, value in message.ListFields():
        if field_desc.message_type is None:
            continue
        items = [value] if isinstance(value, Message) else value  # one message, or a repeated field
        for item in items:
            if isinstance(item, onnx.TensorProto):
                if item.data_location == onnx.TensorProto.EXTERNAL:
                    yield item, _tensor_label(where, field_desc.name, item)
            else:
                yield from external_tensors(item, _label(where, item))


def _label(where: str, item: Any) -> str:
    if isinstance(item, onnx.NodeProto):
        part = f"node {item.name or (item.output[0] if item.output else item.op_type)!r}"
    elif isinstance(item, onnx.AttributeProto):
        part = f"attribute {item.name}"
    elif isinstance(item, onnx.FunctionProto):
        part = f"function {item.name}"
    elif isinstance(item, onnx.GraphProto) and where:  # the main graph needs no words
        part = f"subgraph {item.name!r}"
    else:
        return where
    return f"{where}, {part}" if where else part


def _tensor_label(where: str, field_name: str, tensor: onnx.TensorProto) -> str:
    kind = {"initializer": "initializer", "values": "sparse values", "indices": "sparse indices"}.get(field_name, "tensor")
    own = f"{kind} {tensor.name}" if tensor.name else kind
    return f"{where}, {own}" if where else own


_PACKED = {21: 2, 22: 2, 23: 2, 25: 4, 26: 4}  # 4-bit and 2-bit types: elements per byte


def _external_size(tensor: onnx.TensorProto, where: str) -> int:
    """The bytes an external tensor's raw data must have: its dims times its element size."""
    if any(d < 0 for d in tensor.dims):
        raise GraphoptError(f"{where}: negative dimension in dims {list(tensor.dims)}")
    if tensor.data_type not in dtypes.BY_ONNX or tensor.data_type == onnx.TensorProto.STRING:
        raise GraphoptError(f"{where}: element type {tensor.data_type} cannot be stored as external data; "
                            "give a numeric or bool data_type")
    count = math.prod(tensor.dims)
    per_byte = _PACKED.get(tensor.data_type)
    size = -(-count // per_byte) if per_byte else count * dtypes.BY_ONNX[tensor.data_type].numpy.itemsize
    limits.check_bytes(size, where)
    return size


def _external_file(root: Path, location: str, where: str) -> Path:
    """The file ``location`` names, refused unless it is a regular file inside ``root``
    (relative, no ``..``, no symlink leading out)."""
    if not location:
        raise GraphoptError(f"{where}: external data without a location")
    parts = location.replace("\\", "/").split("/")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ".." in parts or "\0" in location:
        raise GraphoptError(f"{where}: external data {location!r} is outside the model's folder; "
                            "give a path relative to the folder, without '..'")
    target = (root / location).resolve()
    if root not in target.parents:
        raise GraphoptError(f"{where}: external data {location!r} is outside the model's folder (a symlink out of it?)")
    if not target.is_file():
        raise GraphoptError(f"{where}: external data file {location!r} is missing (or not a regular file)")
    return target


def _external_int(info: dict[str, str], key: str, where: str) -> int | None:
    if key not in info:
        return None
    text = info[key].strip()
    if not text.isdigit() or not text.isascii():
        raise GraphoptError(f"{where}: external data {key} {info[key]!r} must be a non-negative integer")
    return int(text)


def _check_single_assignment(graph: onnx.GraphProto, outer: dict[str, str], label: str = "") -> None:
    """Each value name defined once, as onnx.checker has it: a graph's inputs are distinct,
    and so are its initializers (an initializer may share an input's name: the input's
    default); a node output may not reuse any name in scope: this graph's inputs,
    initializers and earlier outputs, nor the enclosing graphs' names (a subgraph's own
    inputs and initializers may shadow those). ``outer``: name -> what defines it."""
    where = f" of subgraph {label!r}" if label else ""
    defined: dict[str, str] = {}
    for vi in graph.input:
        if vi.name in defined:
            raise GraphoptError(f"value {vi.name!r}: declared twice as an input{where}; give each input its own name")
        defined[vi.name] = f"input {vi.name!r}{where}"
    initializers = [*graph.initializer, *(s.values for s in graph.sparse_initializer)]
    seen: set[str] = set()
    for t in initializers:
        if t.name in seen:
            raise GraphoptError(f"value {t.name!r}: two initializers{where} have this name; give each its own")
        seen.add(t.name)
        defined.setdefault(t.name, f"initializer {t.name!r}{where}")
    scope = {**outer, **defined}
    for node in graph.node:
        producer = f"node {node.name or (node.output[0] if node.output else '')!r} ({node.op_type}){where}"
        for attr in node.attribute:  # subgraphs see what is defined before their node
            for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                _check_single_assignment(g, scope, g.name or attr.name)
        for name in node.output:
            if not name:  # an optional output left out
                continue
            if name in scope:
                raise GraphoptError(f"value {name!r}: defined twice, by {scope[name]} and by {producer}; "
                                    "an ONNX value has one producer (rename one of them)")
            scope[name] = producer


_WINDOWED = frozenset({"Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool"})


MAX_NESTING = 64  # subgraphs in subgraphs (If, Loop, Scan bodies); a file is cut at ~100 by protobuf


def _check_nesting(graph: onnx.GraphProto) -> None:
    """Refuse subgraphs nested deeper than MAX_NESTING before anything recurses into them
    (a ModelProto built in memory has no protobuf depth limit)."""
    stack = [(graph, 0, "")]
    while stack:
        g, depth, where = stack.pop()
        if depth > MAX_NESTING:
            raise GraphoptError(f"{where}: subgraphs are nested more than {MAX_NESTING} deep; graphopt does not import them")
        for node in g.node:
            for attr in node.attribute:
                inner = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
                stack.extend((sub, depth + 1, f"node {node.name or node.output[0] if node.output else node.op_type!r} "
                              f"({node.op_type})") for sub in inner)


def _check_versions(model: onnx.ModelProto) -> None:
    """An IR version or default-domain opset newer than the onnx package graphopt reads it
    with means a format it cannot know: refused, not guessed at."""
    if model.ir_version < 0 or model.ir_version > onnx.IR_VERSION:
        raise GraphoptError(f"model ir_version {model.ir_version}: graphopt reads ONNX IR versions up to {onnx.IR_VERSION}; "
                            "export the model with an older ir_version")
    newest = onnx.defs.onnx_opset_version()
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not 0 < imp.version <= newest:
            raise GraphoptError(f"opset_import {imp.version} of the default domain: graphopt knows ONNX opsets 1 to "
                                f"{newest}; export the model with one of them")


def _default_opset(model: onnx.ModelProto) -> int:
    """The model's default-domain opset; 0 when it imports none (a model of ai.onnx.ml or
    other domains only is valid; a default-domain node in it is refused in ``_version``)."""
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 0


def _bind_shapes(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], inits: set[str]) -> None:
    """Write the user's shapes into the graph inputs and check that nothing is left unbound."""
    known_inputs = {vi.name for vi in model.graph.input}
    for name in shapes:
        if name not in known_inputs:
            # (named by --shape, or by --input, whose array's shape is bound too; shapes= in the API)
            raise GraphoptError(f"{name}: the model has no input {name!r} to bind a shape or array to (inputs: "
                                f"{', '.join(sorted(known_inputs - inits))})")
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            try:
                known = ir_type(vi.type)
            except KeyError as e:  # an element type ONNX does not define
                raise GraphoptError(f"input {vi.name}: {e.args[0]}; give it an ONNX element type") from None
            if known is None:  # sequences and optionals keep their unknown dims
                raise GraphoptError(f"input {vi.name}: only tensor, sequence and optional inputs are supported")
            continue
        if tt.elem_type not in dtypes.BY_ONNX:
            raise GraphoptError(f"input {vi.name}: element type {tt.elem_type} is not an ONNX element type; fix the model's input")
        dims = tt.shape.dim
        for k, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value < 0:
                raise GraphoptError(f"input {vi.name}: dimension {k} is {d.dim_value} in the model; a dimension is >= 0")
        if vi.name in shapes:
            shape = shapes[vi.name]
            if tt.HasField("shape") and len(dims) != len(shape):
                raise GraphoptError(f"--shape {vi.name}: the model gives it rank {len(dims)}, not {len(shape)}")
            for d, (k, value) in zip(dims, enumerate(shape)):
                if d.HasField("dim_value") and d.dim_value != value:
                    raise GraphoptError(f"--shape {vi.name}: dimension {k} is fixed to {d.dim_value} in the model, not {value}")
            del tt.shape.dim[:]
            for value in shape:
                tt.shape.dim.add().dim_value = value
            continue
        if not tt.HasField("shape"):
            raise GraphoptError(f"input {vi.name} has no shape in the model; give one with --shape {vi.name}=1x3x224x224")
        for k, d in enumerate(dims):
            if not d.HasField("dim_value"):
                label = d.dim_param or "?"
                raise GraphoptError(f"input {vi.name}: dimension {k} ({label}) is dynamic; bind it with --shape {vi.name}=...")


def _spec_from_type(tp: onnx.TypeProto) -> Spec | None:
    if not tp.HasField("tensor_type") or tp.tensor_type.elem_type not in dtypes.BY_ONNX:
        return None  # (an element type ONNX does not have, in a value_info or output: no hint)
    tt = tp.tensor_type
    if not tt.HasField("shape"):
        return None
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
    return shape, dtypes.from_onnx(tt.elem_type)


class _Importer:
    def __init__(self, model: onnx.ModelProto, opset: int):
        self.model = model
        self.opset = opset
        self.weights = WeightStore()
        self.values: dict[str, SSAValue] = {}
        self.known: dict[str, np.ndarray] = {}  # compile-time values, for typing only
        self.inferred: dict[str, Spec] = {}
        self.declared_outputs: dict[str, Spec] = {}  # graph outputs' shapes as the model declares them
        self.block = Block()
        self.builder = Builder(InsertPoint.at_end(self.block))
        self._none: SSAValue | None = None

    # -- values ------------------------------------------------------------------------
    def none(self) -> SSAValue:
        if self._none is None:
            op = NoneOp()
            self.block.insert_op_before(op, self.block.first_op) if self.block.first_op else self.block.add_op(op)
            self._none = op.result
        return self._none

    def constant(self, name: str, array: np.ndarray, src: str) -> SSAValue:
        """A compile-time array as graph.constant (small) or graph.weight (large)."""
        if array.dtype.kind in "US":
            array = array.astype(object)
        if array.size <= INLINE_MAX and A.can_inline(array):
            op = self.builder.insert(ConstantOp(array, [src]))
        else:
            handle = self.weights.add(name, array)
            ttype = TensorType(dtypes.from_numpy(array.dtype).ir, array.shape)
            op = self.builder.insert(WeightOp(handle, ttype, [src]))
        if array.size <= KNOWN_MAX:
            self.known[name] = array
        return op.results[0]

    # -- nodes -------------------------------------------------------------------------
    def add_node(self, node: onnx.NodeProto) -> None:
        where = f"node {node.name or (node.output[0] if node.output else '')!r} ({node.op_type}"
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        version = self._version(domain, where)
        why = refusal(node.op_type, domain, [self.known.get(i) if i else None for i in node.input])
        if why is not None:
            raise GraphoptError(f"{where}, opset {version}): graphopt refuses this op: {why}")
        schema = schema_of(node.op_type, version, domain)
        if schema is not None:
            _check_against_schema(node, schema, f"{where}, opset {version})")
        if node.op_type == "Constant" and not domain:
            self._constant_node(node)
            return
        key = node.op_type if not domain else f"{domain}::{node.op_type}"
        if key not in ONNX_OPS or schema is None:
            raise GraphoptError(f"{where}, opset {version}): not an operator graphopt knows; it is not in ONNX opset {version}")
        for attr in node.attribute:  # GRAPH attributes become regions (frontends/subgraphs.py)
            if attr.type == onnx.AttributeProto.GRAPHS:
                raise GraphoptError(f"{where}, opset {version}): attributes holding lists of graphs are not supported")
        try:
            attrs = {a.name: attribute_value(a) for a in node.attribute}
        except ValueError as e:
            raise GraphoptError(f"{where}): {e}") from None
        n = Node(node.op_type, list(node.input), list(node.output), attrs, schema.since_version, node.name, domain)
        where += f", opset {version})"
        post: list[Node] = []
        legalize = LEGALIZE.get(key)
        if legalize is not None:
            try:
                post = legalize(n, self) or []
            except (ValueError, KeyError) as e:
                raise GraphoptError(f"{where}: {e}") from None
        self.emit(n, where)
        for extra in post:
            self.emit(extra, where)

    def _version(self, domain: str, where: str) -> int:
        if not domain:
            if not self.opset:
                raise GraphoptError(f"{where}): the model imports no version of the default ONNX opset; add one to opset_import")
            return self.opset
        for imp in self.model.opset_import:
            if imp.domain == domain:
                return imp.version
        return 1

    def _constant_node(self, node: onnx.NodeProto) -> None:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                _check_tensor_size(attr.t, f"node {node.name or node.output[0]!r} (Constant)")
            elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:  # dense, it would have its dims
                _check_tensor_size(attr.sparse_tensor.values, f"node {node.name or node.output[0]!r} (Constant)",
                                   attr.sparse_tensor.dims)
        attrs = node_attributes(node, self.opset)
        rule = get_rule("Constant")
        try:
            array = np.asarray(rule(**attrs)) if rule else _constant_value(attrs)
        except ValueError as e:
            raise GraphoptError(f"node {node.name or node.output[0]!r} (Constant): {e}") from None
        self.values[node.output[0]] = self.constant(node.output[0], array, node.name or node.output[0])

    def operand(self, name: str, where: str) -> SSAValue:
        if not name:
            return self.none()
        if name not in self.values:
            raise GraphoptError(f"{where}: input {name!r} is not produced by any earlier node; is the graph sorted?")
        return self.values[name]

    def emit(self, n: Node, where: str = "") -> None:
        """Add the graph op for a (legalized) node."""
        where = where or f"node {n.src!r} ({n.op_type})"
        cls = ONNX_OPS[n.key]
        while n.inputs and not n.inputs[-1]:
            n.inputs.pop()
        operands = [self.operand(name, where) for name in n.inputs]
        while n.outputs and not n.outputs[-1]:
            n.outputs.pop()
        if is_structured(cls.ONNX_TYPE, cls.ONNX_DOMAIN, [v.type for v in operands]):
            emit_structured(self, cls, n, operands, where)  # regions, sequences, optionals
            return
        try:
            props = {k: A.to_ir(v, cls.ATTR_KINDS[k]) for k, v in n.attrs.items()}
        except (KeyError, ValueError) as e:
            raise GraphoptError(f"{where}: attribute {e} is not valid for this op") from None
        specs = self._result_specs(cls, n, operands, where)
        attributes = provenance_attr([n.src])
        regions = cls.get_irdl_definition().regions
        if regions:  # optional regions (FlexAttention's score_mod ...) that the node leaves out
            attributes["regionSegmentSizes"] = DenseArrayBase.from_list(i32, [0] * len(regions))
        op = cls.create(
            operands=operands,
            result_types=[tensor_type(s) if s is not None else NoneType() for s in specs],
            properties=props,
            attributes=attributes,
        )
        self.builder.insert(op)
        for name, result in zip(n.outputs, op.results):
            if name:
                self.values[name] = result
        self._evaluate_known(n, op)

    def _result_specs(self, cls: Any, n: Node, operands: list[SSAValue], where: str) -> list[Spec | None]:
        """Result types: onnx's inference, else the op's rule. An output the node leaves
        unnamed (an optional one in the middle) that neither can type is ``None``: it
        becomes a ``none``-typed result, since nothing reads it."""
        outs = n.outputs
        from_onnx = [self.inferred.get(o) if o else None for o in outs]
        # onnx's types are taken as they are unless they are known wrong for this node, an
        # operand's type differs from what onnx inferred for it, or an operand has a
        # dimension known only at run time (a Loop's scan output): then the op's rule types
        # the results from the operands, as every pass that rebuilds the op will.
        trusted = not _onnx_infers_otherwise(n) and all(
            not isinstance(v.type, TensorType)
            or (-1 not in shape_of(v.type) and (not name or name not in self.inferred or -1 in self.inferred[name][0]
                                                or shape_of(v.type) == self.inferred[name][0]))
            for name, v in zip(n.inputs, operands))
        declared = {o.name for o in self.model.graph.output}
        if trusted and all(s is not None and -1 not in s[0] for s in from_onnx) and not declared & set(outs):
            return [s for s in from_onnx if s is not None]
        ins = [None if isinstance(v.type, NoneType) else _spec(v) for v in operands]
        consts = [self.known.get(name) if name else None for name in n.inputs]
        attrs = dict(n.attrs)
        try:
            ours = infer(cls, ins, attrs, consts, len(outs))
        except (ValueError, KeyError) as e:
            raise GraphoptError(f"{where}: {e}") from None
        # A graph output's type in the model is the user's declaration, which onnx's
        # (non-strict) inference keeps even where the node computes another shape.
        # A windowed op over static operands has no unknown dims: a -1 there is a window larger
        # than its padded input.
        windowed = n.op_type in _WINDOWED and all(
            not isinstance(v.type, TensorType) or -1 not in shape_of(v.type) for v in operands)
        for name, mine in zip(outs, ours):
            # what the model declares, not what onnx inferred over a symbolic dim (its
            # inference is wrong for some nodes: _onnx_infers_otherwise)
            theirs = self.declared_outputs.get(name)
            if name in declared and theirs is not None and mine is not None and -1 not in theirs[0] \
                    and ((windowed and -1 in mine[0]) or (-1 not in mine[0] and tuple(mine[0]) != tuple(theirs[0]))):
                raise GraphoptError(f"{where}: output {name} is declared {list(theirs[0])}, but the node computes "
                                    f"{list(mine[0])} from its inputs; fix the model's declared output shape or the node")
        if trusted and all(s is not None and -1 not in s[0] for s in from_onnx):
            return [s for s in from_onnx if s is not None]
        specs: list[Spec | None] = []
        for k, (theirs, mine) in enumerate(zip(from_onnx, ours + [None] * (len(outs) - len(ours)))):
            best = mine if mine is not None and (theirs is None or -1 in theirs[0] or not trusted) else theirs
            if best is None and not outs[k]:
                specs.append(None)
                continue
            if best is None:
                raise GraphoptError(f"{where}: the type of output {k} ({outs[k] or 'unnamed'}) cannot be inferred")
            specs.append(best)
        return specs

    def _evaluate_known(self, n: Node, op: Any) -> None:
        """Evaluate ops on compile-time values (for typing later ops only)."""
        if any(name and name not in self.known for name in n.inputs) and n.op_type not in ("Shape", "Size"):
            return
        if any(not isinstance(r.type, TensorType) or -1 in _spec(r)[0] or int(np.prod(_spec(r)[0])) > KNOWN_MAX for r in op.results):
            return
        rule = get_rule(n.key)
        if rule is None or not op.results:
            return
        try:
            args = [self.known.get(name) if name else None for name in n.inputs]
            if n.op_type in ("Shape", "Size"):
                # Only the input's shape matters: a zero-strided view stands in for its data.
                shape = _spec(op.operands[0])[0]
                if -1 in shape:
                    return
                args = [np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape, [0] * len(shape))]
            out = rule(*args, **rule_kwargs(type(op), dict(n.attrs), len(op.results)))
        except Exception:  # typing aid only: an op that cannot run now simply stays unknown
            return
        outs = out if isinstance(out, tuple | list) else (out,)
        for name, value in zip(n.outputs, outs):
            if name:
                self.known[name] = np.asarray(value)


def _check_against_schema(node: onnx.NodeProto, schema: onnx.defs.OpSchema, where: str) -> None:
    """The node as its op's schema says (what onnx's shape inference lets through): each
    attribute of its declared type, the required ones set, no required input left
    unnamed, no more inputs or outputs than the op has."""
    given = {a.name: a for a in node.attribute}
    kind = onnx.AttributeProto.AttributeType.Name
    for name, spec in schema.attributes.items():
        attr = given.get(name)
        if attr is None:
            if spec.required:
                raise GraphoptError(f"{where}: attribute {name} is required and not set; add it")
        elif not attr.ref_attr_name and attr.type != int(spec.type):
            got = kind(attr.type) if attr.type in onnx.AttributeProto.AttributeType.values() else str(attr.type)
            raise GraphoptError(f"{where}: attribute {name} is of type {got}, the op wants {kind(int(spec.type))}")
    formal = list(schema.inputs)
    variadic = bool(formal) and formal[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic
    if len(node.input) > len(formal) and not variadic:
        raise GraphoptError(f"{where}: {len(node.input)} inputs, the op takes at most {len(formal)}")
    for k, name in enumerate(node.input):
        param = formal[min(k, len(formal) - 1)] if formal else None
        if not name and param is not None and param.option != onnx.defs.OpSchema.FormalParameterOption.Optional:
            raise GraphoptError(f"{where}: input {k} ({param.name}) is required, but its name is empty")
    outs = list(schema.outputs)
    out_variadic = bool(outs) and outs[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic
    if len(node.output) > len(outs) and not out_variadic:
        raise GraphoptError(f"{where}: {len(node.output)} outputs, the op has at most {len(outs)}")


def _check_tensor_size(tensor: onnx.TensorProto, where: str, dims: Any = None) -> None:
    """Refuse a tensor whose dims mean more bytes than the memory limit, before reading it."""
    element = dtypes.BY_ONNX.get(tensor.data_type)
    shape = list(tensor.dims if dims is None else dims)
    if element is not None and all(d >= 0 for d in shape):
        limits.check_shape(shape, element.numpy, where)


def _constant_value(attrs: dict[str, Any]) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key.startswith("value_float"):
                return np.asarray(value, dtype=np.float32)
            if key.startswith("value_int"):
                return np.asarray(value, dtype=np.int64)
            return np.asarray(value)
    raise ValueError("Constant has no value attribute graphopt supports")


def _spec(v: SSAValue) -> Spec:
    t = v.type
    assert isinstance(t, TensorType)
    return shape_of(t), dtypes.from_ir(t.element_type)


def import_model(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]] | None = None) -> Imported:
    """An ONNX model as a ``builtin.module`` holding ``func.func @main``."""
    _check_nesting(model.graph)  # first: what follows recurses into subgraphs
    for _, where in external_tensors(model):
        # load_model reads external data checked against the model's folder; a ModelProto
        # given directly has no folder, and onnx would read the file from the current one.
        raise GraphoptError(f"{where}: its data is in an external file, and a model given as a ModelProto has no "
                            "folder to read it from; give the .onnx file's path, or load the data into the model")
    _check_versions(model)
    _check_single_assignment(model.graph, {})
    if not model.graph.output:
        raise GraphoptError(f"graph {model.graph.name!r}: the model declares no outputs, so it computes nothing; add its outputs to graph.output")
    original = model.graph.initializer
    model = _without_large_initializers(model)
    opset = _default_opset(model)
    g = model.graph
    inits = {t.name for t in original}
    _bind_shapes(model, dict(shapes or {}), inits)
    # The output shapes the model itself declares (inference below fills in symbolic dims).
    declared_outputs = {vi.name: spec for vi in model.graph.output if (spec := _spec_from_type(vi.type)) is not None}
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:  # onnx raises InferenceError and others; report the first line
        raise GraphoptError(f"onnx shape inference rejects the model: {str(e).strip().splitlines()[0]}") from None
    g = model.graph
    imp = _Importer(model, opset)
    imp.declared_outputs = declared_outputs
    for vi in [*g.value_info, *g.output]:
        spec = _spec_from_type(vi.type)
        if spec is not None:
            imp.inferred[vi.name] = spec

    inputs: list[tuple[str, Spec | None]] = []
    for vi in g.input:
        if vi.name in inits:
            continue
        spec = _spec_from_type(vi.type)
        if spec is not None and -1 not in spec[0]:  # validation and run will allocate it
            limits.check_shape(spec[0], spec[1].numpy, f"input {vi.name}")
        try:
            # A sequence or optional input has no Spec: its IR type says what it holds.
            arg = imp.block.insert_arg(tensor_type(spec) if spec else ir_type(vi.type), len(imp.block.args))
        except KeyError as e:
            raise GraphoptError(f"input {vi.name}: {e}") from None
        arg.name_hint = ssa_hint(vi.name)
        imp.values[vi.name] = arg
        if spec is not None and 0 in spec[0]:  # an empty input has one possible value (empty axes, for one)
            imp.known[vi.name] = np.zeros(spec[0], spec[1].numpy)
        inputs.append((vi.name, spec))
    for tensor in original:
        if any(d < 0 for d in tensor.dims):  # numpy would read [-2, 3] as [2, 3] (a reshape with -2)
            raise GraphoptError(f"initializer {tensor.name}: dims {list(tensor.dims)} in the model; a dimension is >= 0")
        _check_tensor_size(tensor, f"initializer {tensor.name}")
        try:
            array = numpy_helper.to_array(tensor)
        except Exception as e:  # corrupt or truncated tensor data
            raise GraphoptError(f"initializer {tensor.name}: cannot be read ({e})") from None
        imp.values[tensor.name] = imp.constant(tensor.name, array, tensor.name)
    histogram: dict[str, int] = {}
    for node in g.node:
        histogram[node.op_type] = histogram.get(node.op_type, 0) + 1
        imp.add_node(node)
    results = []
    for vi in g.output:
        if vi.name not in imp.values:
            raise GraphoptError(f"output {vi.name!r}: no node produces it; check the graph's outputs")
        results.append(imp.values[vi.name])
    imp.builder.insert(func.ReturnOp(*results))
    ftype = ([a.type for a in imp.block.args], [r.type for r in results])
    fn = func.FuncOp("main", ftype, Region(imp.block))
    return Imported(ModuleOp([fn]), imp.weights, inputs, [vi.name for vi in g.output], opset, histogram)


def _onnx_infers_otherwise(n: Node) -> bool:
    """Whether onnx's shape inference is known to disagree with the ONNX spec (and
    onnxruntime, and the op's rule) for this node: a pool with ceil_mode keeps a last
    window that starts past the input and its begin padding, which the spec drops. Such a
    node is typed by its rule, and so are the nodes after it whose operands then differ
    from what onnx inferred."""
    return n.op_type in ("MaxPool", "AveragePool", "LpPool") and bool(n.attrs.get("ceil_mode", 0))


def _without_large_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model for shape inference, with large initializers as typed graph
    inputs instead: serializing a BERT-base's 440 MB of weights into onnx's shape inference
    (and back) would cost seconds, and only small initializers matter there (as values
    of shape computations)."""
    light = onnx.ModelProto()
    for field_name in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(light, field_name, getattr(model, field_name))
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g, lg = model.graph, light.graph
    lg.name = g.name
    for field_name in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(lg, field_name).extend(getattr(g, field_name))
    declared = {vi.name for vi in g.input}
    for tensor in g.initializer:
        if int(np.prod(tensor.dims, dtype=np.int64)) <= KNOWN_MAX:
            lg.initializer.append(tensor)
        elif tensor.name not in declared:
            lg.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return light


