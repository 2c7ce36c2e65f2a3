"""torch.export programs -> IR: an ``ExportedProgram``, a ``.pt2`` file (read by
``pt2.py``'s own loader, which unpickles and evaluates nothing) or an ``nn.Module`` exported here, lowered by
``walk.lower_graph`` with parameters, buffers and constants as weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from graphopt.errors import GraphoptError
from graphopt.frontends.fx.pt2 import load_pt2
from graphopt.frontends.fx.walk import FxImported, is_static, lower_graph, node_name, to_numpy


def aot_decompositions() -> dict[Any, Any]:
    """The core ATen decompositions aot_autograd traces with, less scaled-dot-product
    attention's: its fused forward and backward stay whole (rows_nn lowers the forward to
    one ONNX Attention, which a target runs as a flash kernel, not as the S x S scores)."""
    from torch._decomp import core_aten_decompositions

    aten = torch.ops.aten
    keep = {aten.scaled_dot_product_attention.default, aten._scaled_dot_product_flash_attention_for_cpu.default}
    return {k: v for k, v in core_aten_decompositions().items() if k not in keep}


def decompose(ep: Any) -> Any:
    """An ExportedProgram in core ATen (the same ops the torch.compile path sees)."""
    from torch._decomp import core_aten_decompositions

    return ep.run_decompositions(core_aten_decompositions())


def import_exported(ep: Any) -> tuple[FxImported, list[str]]:
    """An ExportedProgram -> IR: parameters, buffers and constants become weights; user
    inputs are the IR's inputs. Returns the import and the user input names."""
    return import_decomposed(decompose(ep))


def import_decomposed(ep: Any) -> tuple[FxImported, list[str]]:
    """import_exported of a program already in core ATen (``decompose``)."""
    from torch.export.graph_signature import InputKind

    gm = ep.graph_module
    weights: dict[str, Any] = {}
    user: list[str] = []
    for s in ep.graph_signature.input_specs:
        name = s.arg.name
        if s.kind == InputKind.USER_INPUT:
            user.append(name)
        elif s.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            weights[name] = ep.state_dict[s.target] if s.target in ep.state_dict else ep.constants[s.target]
        elif s.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):
            weights[name] = ep.constants[s.target]
        else:
            raise GraphoptError(f"exported program input {name}: kind {s.kind.name} is not supported")
    args = None
    if not is_static(gm):  # bind dynamic dims to the example inputs the program was exported with
        args = _example_args(ep, gm, weights)
    imported = lower_graph(gm, args, weights, user)
    return imported, user


def _example_args(ep: Any, gm: torch.fx.GraphModule, weights: dict[str, Any]) -> list[Any]:
    example = getattr(ep, "example_inputs", None)
    flat: list[Any] = []
    if example is not None:
        args, kwargs = example
        flat = [*args, *kwargs.values()]
    it = iter(flat)
    out: list[Any] = []
    for n in gm.graph.nodes:
        if n.op != "placeholder":
            continue
        if n.name in weights:
            out.append(weights[n.name])
            continue
        if example is not None:
            try:
                out.append(next(it))
                continue
            except StopIteration:
                pass
        # No example inputs (a .pt2: they are stored pickled and never read): the sizes
        # the program was traced with, which its symbolic dims keep as hints.
        out.append(_traced_value(n))
    return out


def _traced_value(n: torch.fx.Node) -> Any:
    val = n.meta.get("val")
    try:
        if isinstance(val, torch.Tensor):
            return tuple(_hint(d) for d in val.shape), val.dtype
        return _hint(val)
    except (TypeError, ValueError, AttributeError):
        raise GraphoptError(f"exported program input {n.name} has a dynamic shape and no example value to "
                            "specialise it to; export with static shapes") from None


def _hint(d: Any) -> int:
    if isinstance(d, int):
        return d
    hint = d.node.hint if isinstance(d, torch.SymInt) else None
    if hint is None:
        raise ValueError(d)
    return int(hint)


Reference = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def _beyond(gm: torch.fx.GraphModule, inputs: Sequence[torch.Tensor], limit: float) -> list[tuple[torch.fx.Node, float]]:
    """The nodes of ``gm``, run on ``inputs``, whose float32 result holds a finite value
    beyond ``limit``, in execution order, with the largest such magnitude."""
    found: list[tuple[torch.fx.Node, float]] = []

    class Watch(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.numel():
                finite = out[torch.isfinite(out)].abs()
                if finite.numel() and float(finite.max()) > limit:
                    found.append((n, float(finite.max())))
            return out

    with torch.no_grad():
        Watch(gm).run(*inputs)
    return found


def _from_numpy(a: np.ndarray) -> torch.Tensor:
    """An array as a tensor; bfloat16 and the float8s (ml_dtypes, which torch.from_numpy
    refuses) through their bits."""
    a = np.ascontiguousarray(a)
    if a.dtype.num >= 256:  # a numpy user-defined type: ml_dtypes
        wanted = getattr(torch, a.dtype.name, None)
        if isinstance(wanted, torch.dtype) and wanted.itemsize == a.dtype.itemsize:
            bits = {1: np.uint8, 2: np.int16}[a.dtype.itemsize]
            return torch.from_numpy(a.view(bits)).view(wanted)
    return torch.from_numpy(a)


def _numpy_leaves(out: Any) -> list[np.ndarray]:
    """A call's outputs, flattened as torch's pytree does, as numpy arrays."""
    return [to_numpy(t) if isinstance(t, torch.Tensor) else np.asarray(t) for t in torch.utils._pytree.tree_leaves(out)]


def import_torch(model: Any, example_inputs: Sequence[Any] | None = None) -> tuple[FxImported, Reference, str]:
    """A torch model -> (IR, an eager reference on numpy inputs, a label for reports).

    ``model``: an ExportedProgram, a ``.pt2`` path, or an ``nn.Module`` (exported here
    with ``example_inputs``)."""
    label = type(model).__name__
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        label = str(model)
        model = load_pt2(model)
    if isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise GraphoptError(f"compiling a {type(model).__name__} needs example_inputs=(...) to export it with")
        args = tuple(example_inputs) if isinstance(example_inputs, list | tuple) else (example_inputs,)
        try:
            model = torch.export.export(model, args)
        except Exception as e:
            raise GraphoptError(f"torch.export cannot capture {label}: {str(e).strip().splitlines()[0]}") from None
    if not isinstance(model, torch.export.ExportedProgram):
        raise GraphoptError(f"cannot compile a {type(model).__name__} with the torch frontend")
    decomposed = decompose(model)
    imported, _ = import_decomposed(decomposed)
    eager = model.module()

    in_spec = model.call_spec.in_spec

    def reference(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        tensors = [_from_numpy(a) for a in inputs]
        # The program's inputs, flattened as exported: positional and keyword arguments alike.
        args, kwargs = torch.utils._pytree.tree_unflatten(tensors, in_spec) if in_spec is not None else (tensors, {})
        with torch.no_grad():
            return _numpy_leaves(eager(*args, **kwargs))

    def rounded_to_half(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The program run eagerly with every float32 value rounded to float16: validation's
        float16 floor (graphopt.validate.judge_by_floor)."""
        return _numpy_leaves(eager_rounded_to_half(eager, [_from_numpy(a) for a in inputs]))

    def find_overflow(inputs: Sequence[np.ndarray], narrow: np.dtype) -> dict[str, Any] | None:
        """The first node of the program, in execution order, whose float32 result holds a
        finite value beyond ``narrow``'s range (graphopt.validate.find_overflow for an ONNX
        model). ``keep`` names what --keep-dtype must keep: every node of the program as
        imported (in core ATen, whose node names are the IR's provenance) that leaves the
        range, and the nodes reading it."""
        limit = float(np.finfo(narrow).max)
        tensors = [_from_numpy(a) for a in inputs]
        first = _beyond(eager, tensors, limit)
        if not first:
            return None
        n, magnitude = first[0]
        keep = [node_name(m) for b, _ in _beyond(decomposed.module(), tensors, limit)
                for m in [b, *(u for u in b.users if u.op == "call_function")]]
        return {"node": n.name, "op_type": str(n.target), "kind": "overflow", "value": n.name,
                "magnitude": magnitude, "limit": limit, "keep": list(dict.fromkeys(keep))}

    reference.rounded_to_half = rounded_to_half  # type: ignore[attr-defined]
    reference.find_overflow = find_overflow  # type: ignore[attr-defined]
    return imported, reference, label


def eager_rounded_to_half(gm: Any, args: Sequence[Any]) -> list[Any]:
    """The graph run eagerly with its inputs, parameters and every node's float32 result
    rounded to float16 (computed in float32): what float16 storage alone costs it, as
    graphopt.validate.rounding_floor measures for an ONNX model."""
    def half(t: Any) -> Any:
        return t.to(torch.float16).to(torch.float32) if isinstance(t, torch.Tensor) and t.dtype == torch.float32 else t

    class Rounded(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            return torch.utils._pytree.tree_map(half, super().run_node(n))

    with torch.no_grad():
        out = Rounded(gm).run(*args)
    return list(out) if isinstance(out, list | tuple) else [out]
