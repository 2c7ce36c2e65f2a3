"""The graph walk: an fx GraphModule -> a graph IR module, one ``FX_TO_GRAPH`` row per
``call_function`` node (steps 1-4 of the algorithm in the package docstring), and the
checks that run before it (``is_static``, ``unsupported_nodes``)."""

from __future__ import annotations

import operator
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np
import torch
import torch.fx
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Region, SSAValue

from graphopt import dtypes
from graphopt.dialects.graph import ConstantOp, WeightOp, mark_parameters
from graphopt.dialects.shapes import Spec
from graphopt.errors import GraphoptError
from graphopt.frontends.fx.lowering import FX_TO_GRAPH, Lowering, UnsupportedOp, aten, np_dtype, source_line, spec
from graphopt.frontends.fx.rows_complex import COMPLEX_ROWS, is_complex, part_dtype
from graphopt.names import ssa_hint
from graphopt.rewrite import INLINE_MAX
from graphopt.weights import WeightStore


@dataclass
class FxImported:
    """What the fx frontend produces; the same fields as the ONNX frontend's ``Imported``."""

    module: ModuleOp
    weights: WeightStore
    inputs: list[tuple[str, Spec]]
    outputs: list[str]
    opset: int = 0  # no ONNX opset: the graph ops have their newest ONNX meaning
    histogram: dict[str, int] = field(default_factory=dict)
    # How each fx output comes back: "tensor", or a Python value (a shape scalar, None).
    output_kinds: list[Any] = field(default_factory=list)
    tensor_placeholders: list[int] = field(default_factory=list)  # placeholder positions that are IR inputs


def module_path(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, _ = list(stack.values())[-1]
    return re.sub(r"^L\['self'\]\.?|^L__self___?", "", str(path))


# ---------------------------------------------------------------------------------------
# Concrete meta values


def is_static(gm: torch.fx.GraphModule) -> bool:
    """True when every placeholder's meta value has concrete shapes (no SymInts)."""
    for n in gm.graph.nodes:
        if n.op != "placeholder":
            continue
        val = n.meta.get("val")
        if isinstance(val, torch.SymInt | torch.SymFloat | torch.SymBool):
            return False
        if isinstance(val, torch.Tensor) and not all(isinstance(d, int) for d in val.shape):
            return False
    return True


def concrete_values(gm: torch.fx.GraphModule, args: Sequence[Any] | None) -> dict[torch.fx.Node, Any]:
    """The meta value of every node, with concrete shapes.

    ``args`` are this call's inputs (tensors or their ``(shape, dtype)``, and ints for
    SymInt placeholders); None when the graph is static and ``meta["val"]`` already holds
    concrete shapes. Otherwise the graph is re-run on fake tensors of those shapes."""
    if args is None:
        return {n: n.meta.get("val") for n in gm.graph.nodes}
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    fakes: list[Any] = []
    with mode:  # torch.empty here makes a FakeTensor on the cpu device: no memory, no values
        for a in args:
            if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], torch.dtype):
                fakes.append(torch.empty(a[0], dtype=a[1]))
            elif isinstance(a, torch.Tensor):
                fakes.append(torch.empty(tuple(a.shape), dtype=a.dtype))
            else:
                fakes.append(a)
    found: dict[torch.fx.Node, Any] = {}

    class _Record(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            result = super().run_node(n)
            found[n] = result
            return result

    with mode:
        _Record(gm).run(*fakes)
    return found


# ---------------------------------------------------------------------------------------
# The graph walk

# Nodes that only assert things about shapes or values: no IR.
_CHECKS = {
    "aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default",
    "aten.sym_constrain_range.default", "aten._assert_async.msg",
}


def _op_name(target: Any) -> str:
    return str(target) if not callable(target) or isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


def unsupported_nodes(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """Nodes whose op has no row (checked before any shape is known, so a dynamic graph fails early)."""
    bad = []
    for n in gm.graph.nodes:
        if n.op != "call_function" or n.target is operator.getitem or str(n.target) in _CHECKS:
            continue
        if n.target in FX_TO_GRAPH or _is_scalar_op(n):
            continue
        bad.append(n)
    return bad


def _is_scalar_op(n: torch.fx.Node) -> bool:
    """Arithmetic on shape scalars (operator.mul, sym_size, torch.sym_max ...): evaluated
    at compile time, since the graph is specialised to concrete shapes."""
    val = n.meta.get("val")
    return isinstance(val, int | float | bool | torch.SymInt | torch.SymFloat | torch.SymBool) and not isinstance(val, torch.Tensor)


def unsupported_error(n: torch.fx.Node) -> UnsupportedOp:
    return UnsupportedOp(f"aten op {_op_name(n.target)} is not supported by graphopt (node {n.name}, "
                         f"at {source_line(n)}); use torch.compile's default backend for this model, or "
                         "add a row to graphopt.frontends.fx.FX_TO_GRAPH (in graphopt/frontends/fx/rows_*.py)")


def node_name(n: torch.fx.Node) -> str:
    """The provenance name of the graph ops ``n`` lowers to (what --keep-dtype names):
    ``<module path>/<node name>``."""
    path = module_path(n)
    return f"{path}/{n.name}" if path else n.name


def lower_graph(
    gm: torch.fx.GraphModule,
    args: Sequence[Any] | None = None,
    weights: dict[str, Any] | None = None,
    input_names: Sequence[str] | None = None,
    parameters: Collection[int] = (),
) -> FxImported:
    """Lower ``gm`` into a graph IR module.

    ``args``: this call's concrete inputs (needed when the graph has symbolic shapes).
    ``weights``: placeholder name -> tensor, for placeholders that are weights (parameters,
    buffers, constants of an ExportedProgram); every other tensor placeholder is an input.
    ``input_names``: names for the IR inputs (default: the placeholder names).
    ``parameters``: placeholder positions that are the model's parameters and buffers, fed
    at run time (aot_autograd's static inputs); their IR inputs are marked ``PARAMETER``."""
    bad = unsupported_nodes(gm)
    if bad:
        raise unsupported_error(bad[0])
    vals = concrete_values(gm, None if args is None and is_static(gm) else args)
    if args is None and not is_static(gm):
        raise GraphoptError("the graph has symbolic shapes; give the inputs of a call to specialise it")
    store = WeightStore()
    L = Lowering(vals, store)
    weights = weights or {}
    inputs: list[tuple[str, Spec]] = []
    tensor_positions: list[int] = []
    histogram: dict[str, int] = {}
    names = iter(input_names or [])
    position = -1
    for n in gm.graph.nodes:
        L.node, L.src = n, [node_name(n)]
        if n.op == "placeholder":
            position += 1
            val = vals[n]
            if n.name in weights:
                L.values[n] = _weight(L, n.name, weights[n.name])
            elif isinstance(val, torch.Tensor):
                sp = L.out_spec() if not val.dtype.is_complex else \
                    ((*(int(d) for d in val.shape), 2), dtypes.from_numpy(part_dtype(val.dtype)))
                arg = L.block.insert_arg(_ttype(sp), len(L.block.args))
                if val.dtype.is_complex:  # fed as its real pairs (to_numpy)
                    L.pairs.add(arg)
                name = next(names, n.name)
                arg.name_hint = ssa_hint(name)
                L.values[n] = arg
                inputs.append((name, sp))
                tensor_positions.append(position)
            else:  # a SymInt placeholder: a compile-time number in this specialisation
                L.values[n] = val
            continue
        if n.op == "get_attr":
            L.values[n] = _weight(L, n.target, _attr(gm, n.target))
            continue
        if n.op == "output":
            imported = _finish(L, n, inputs, tensor_positions, store, histogram)
            mark_parameters(next(iter(imported.module.ops)), [k for k, p in enumerate(tensor_positions) if p in parameters])
            return imported
        if n.op != "call_function":
            raise GraphoptError(f"fx node {n.name}: {n.op} nodes are not supported (only call_function)")
        if str(n.target) in _CHECKS:
            continue
        if n.target is operator.getitem:
            src, k = n.args
            L.values[n] = L.values[src][k]
            continue
        if _is_scalar_op(n) or (n.target not in FX_TO_GRAPH and not isinstance(vals[n], torch.Tensor | tuple | list)):
            L.values[n] = _concrete_scalar(vals[n])
            continue
        key = _op_name(n.target)
        histogram[key] = histogram.get(key, 0) + 1
        lowered_args = _map(L, n.args)
        lowered_kwargs = {k: _map(L, v) for k, v in n.kwargs.items() if k not in ("device", "pin_memory", "layout", "memory_format", "non_blocking")}
        lowered_kwargs.pop("dtype", None) if n.target not in (aten.sum.dim_IntList, aten.mean.dim, aten.cumsum.default) else None
        complex_ = is_complex(vals[n]) or any(is_complex(vals.get(a)) for a in n.all_input_nodes)
        rule = COMPLEX_ROWS.get(n.target) if complex_ else FX_TO_GRAPH[n.target]
        if rule is None:
            raise UnsupportedOp(f"{L.where()}: this op on complex tensors is not supported (complex tensors lower as "
                                "real pairs; graphopt/frontends/fx/rows_complex.py lists the ops that do)")
        try:
            result = rule(L, *lowered_args, **lowered_kwargs)
        except TypeError as e:  # a signature the row does not take
            raise UnsupportedOp(f"{L.where()}: this form of the op is not supported ({e})") from None
        L.values[n] = result
        if is_complex(vals[n]):
            L.pairs.add(result)
        _check_result(L, n, result)
    raise GraphoptError("the fx graph has no output node")


def _map(L: Lowering, a: Any) -> Any:
    if isinstance(a, torch.fx.Node):
        return L.values[a]
    if isinstance(a, list | tuple):
        return type(a)(_map(L, x) for x in a)
    if isinstance(a, torch.SymInt | torch.SymFloat | torch.SymBool):
        return _concrete_scalar(a)
    return a


def _concrete_scalar(v: Any) -> Any:
    if isinstance(v, torch.SymInt):
        return int(v)
    if isinstance(v, torch.SymFloat):
        return float(v)
    if isinstance(v, torch.SymBool):
        return bool(v)
    return v


def _check_result(L: Lowering, n: torch.fx.Node, result: Any) -> None:
    """The lowering's types must be the node's: a wrong row is a bug, caught here with
    the node named, instead of as a mismatch at run time."""
    val = L.vals[n]
    pairs = list(zip(result, val)) if isinstance(result, tuple) and isinstance(val, tuple | list) else [(result, val)]
    for r, v in pairs:
        if not isinstance(r, SSAValue) or not isinstance(v, torch.Tensor):
            continue
        want = (tuple(int(d) for d in v.shape), np_dtype(v.dtype)) if not v.dtype.is_complex else \
            ((*(int(d) for d in v.shape), 2), part_dtype(v.dtype))
        have = spec(r)
        if have[0] != want[0] or have[1].numpy != want[1]:
            raise GraphoptError(f"{L.where()}: lowered to {have[1].name}{list(have[0])}, torch says "
                                f"{dtypes.from_numpy(want[1]).name}{list(want[0])} (a bug in graphopt's row for this op)")


def _finish(L: Lowering, n: torch.fx.Node, inputs: list[tuple[str, Spec]], positions: list[int], store: WeightStore,
            histogram: dict[str, int]) -> FxImported:
    (outs,) = n.args
    outs = outs if isinstance(outs, list | tuple) else [outs]
    results: list[SSAValue] = []
    kinds: list[Any] = []
    names: list[str] = []
    L.src = ["output"]
    for k, o in enumerate(outs):
        v = L.values[o] if isinstance(o, torch.fx.Node) else o
        if isinstance(v, SSAValue) and v in L.pairs:
            raise UnsupportedOp(f"output {k} ({getattr(o, 'name', o)}) is a complex tensor: return torch.view_as_real of it "
                                "(graphopt holds complex values inside a graph only)")
        if isinstance(v, SSAValue):
            results.append(v)
            kinds.append("tensor")
            names.append(f"output_{k}" if not isinstance(o, torch.fx.Node) else o.name)
        else:
            kinds.append(v)
    L.builder.insert(func.ReturnOp(*results))
    ftype = ([a.type for a in L.block.args], [r.type for r in results])
    fn = func.FuncOp("main", ftype, Region(L.block))
    return FxImported(ModuleOp([fn]), store, inputs, _unique(names), 0, histogram, kinds, positions)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}_{k}")
    return out


def _weight(L: Lowering, name: str, t: Any) -> SSAValue:
    if not isinstance(t, torch.Tensor):
        return t
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    # aot_autograd calls the compiler with its FakeTensorMode still active; a real constant
    # (a get_attr tensor: BART's, DeBERTa's scalar constants) is read outside it.
    with unset_fake_temporarily():
        array = to_numpy(t)  # complex: its [..., 2] real pairs
    if array.size <= INLINE_MAX and array.dtype != ml_dtypes.bfloat16:
        op: ConstantOp | WeightOp = ConstantOp(array, [name])
    else:
        handle = L.weights.add(name, array)
        op = WeightOp(handle, _ttype((tuple(array.shape), dtypes.from_numpy(array.dtype))), [name])
    L.builder.insert(op)
    if t.dtype.is_complex:
        L.pairs.add(op.results[0])
    return op.results[0]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's data as numpy (bfloat16 through its bits, which numpy cannot take directly;
    a complex tensor as its [..., 2] real pairs, as graphopt holds it), sharing its memory.

    Through DLPack, not ``Tensor.numpy()``: that marks the tensor's storage non-resizable
    for good, and FSDP2 frees a parameter's unsharded storage by resizing it to 0 after
    each forward (``Trying to resize storage that is not resizable``)."""
    t = t.detach().resolve_conj().resolve_neg()
    if t.dtype.is_complex:
        return np.from_dlpack(torch.view_as_real(t))
    if t.dtype == torch.bfloat16:
        return np.from_dlpack(t.contiguous().view(torch.int16)).view(ml_dtypes.bfloat16)
    return np.from_dlpack(t)


def _attr(gm: torch.fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _ttype(sp: Spec) -> TensorType:
    return TensorType(sp[1].ir, sp[0])


