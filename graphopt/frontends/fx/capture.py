"""torch.export programs -> IR: an ``ExportedProgram``, a ``.pt2`` file (refused if
loading it would unpickle anything) or an ``nn.Module`` exported here, lowered by
``walk.lower_graph`` with parameters, buffers and constants as weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from graphopt.errors import GraphoptError
from graphopt.frontends.fx.walk import FxImported, is_static, lower_graph, to_numpy


def decompose(ep: Any) -> Any:
    """An ExportedProgram in core ATen (the same ops the torch.compile path sees)."""
    from torch._decomp import core_aten_decompositions

    return ep.run_decompositions(core_aten_decompositions())


def import_exported(ep: Any) -> tuple[FxImported, list[str]]:
    """An ExportedProgram -> IR: parameters, buffers and constants become weights; user
    inputs are the IR's inputs. Returns the import and the user input names."""
    from torch.export.graph_signature import InputKind

    ep = decompose(ep)
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
        try:
            out.append(next(it))
        except StopIteration:
            raise GraphoptError(f"exported program input {n.name} has a dynamic shape and the program keeps no "
                                "example inputs; export with static shapes") from None
    return out


Reference = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def load_pt2(path: Any) -> Any:
    """A ``.pt2`` file through ``torch.export.load``, after checking that loading it
    unpickles nothing: ``torch.export.load`` reads tensors as raw bytes, except payloads
    marked ``use_pickle`` (tensor subclasses), custom and opaque objects, and the legacy
    format, which it passes to ``pickle``/``torch.load(weights_only=False)``. Those files
    are refused."""
    import logging
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise GraphoptError(f"{p}: no such file; check the path")
    check_pt2_safe(p)
    # torch logs the real cause (with a traceback) and then raises a vague error: keep the
    # logged cause for our one line, and keep the traceback off the user's screen.
    causes: list[BaseException] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                causes.append(record.exc_info[1])

    log = logging.getLogger("torch.export")
    saved = (log.handlers[:], log.propagate)
    log.handlers[:] = [_Keep()]
    log.propagate = False
    try:
        return torch.export.load(str(p))
    except Exception as e:
        raise GraphoptError(f"{p}: cannot be loaded as a torch.export program ({_root_cause(causes[0] if causes else e)})") from None
    finally:
        log.handlers[:], log.propagate = saved


def check_pt2_safe(p: Any) -> None:
    """Refuse a .pt2 archive that torch.export.load would unpickle any part of."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            configs = [n for n in names if n.endswith(("_weights_config.json", "_constants_config.json"))]
            if not configs:
                raise GraphoptError(f"{p}: not a torch.export archive of the current format (torch.export.save "
                                    "writes one); older formats hold pickled weights, which graphopt does not load")
            for name in configs:
                config = json.loads(z.read(name)).get("config", {})
                for fqn, meta in config.items():
                    path_name = str(meta.get("path_name", ""))
                    if meta.get("use_pickle") or not path_name.startswith(("weight_", "tensor_")):
                        raise GraphoptError(f"{p}: {fqn} is stored pickled ({path_name}); graphopt loads no pickles "
                                            "from model files")
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise GraphoptError(f"{p}: not a torch.export archive ({type(e).__name__}: {e})") from None


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


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
    imported, _ = import_exported(model)
    eager = model.module()

    in_spec = model.call_spec.in_spec

    def reference(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
        # The program's inputs, flattened as exported: positional and keyword arguments alike.
        args, kwargs = torch.utils._pytree.tree_unflatten(tensors, in_spec) if in_spec is not None else (tensors, {})
        with torch.no_grad():
            out = eager(*args, **kwargs)
        flat = torch.utils._pytree.tree_leaves(out)
        return [to_numpy(t) if isinstance(t, torch.Tensor) else np.asarray(t) for t in flat]

    return imported, reference, label
