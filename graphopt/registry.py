"""Registries of passes and targets: one dict each, lazy getters, plugins by entry point.

Built-in rows are listed here so they can be grepped; third-party ones come from the
entry-point groups ``graphopt.passes`` and ``graphopt.targets`` or, for passes, from
``--load-pass-plugin FILE.py``. Nothing is imported until it is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from graphopt.errors import GraphoptError


def _lazy(path: str) -> Callable[[], Any]:
    module, attr = path.split(":")

    def get() -> Any:
        return getattr(importlib.import_module(module), attr)

    return get


# -- passes ---------------------------------------------------------------------------
# xDSL's generic passes work on graph ops through their traits (Pure, ...).
_BUILTIN_PASSES: dict[str, str] = {
    "canonicalize": "xdsl.transforms.canonicalize:CanonicalizePass",
    "cse": "xdsl.transforms.common_subexpression_elimination:CommonSubexpressionElimination",
    "dce": "xdsl.transforms.dead_code_elimination:DeadCodeElimination",
}

_extra_passes: dict[str, Callable[[], Any]] = {}


def all_passes() -> dict[str, Callable[[], Any]]:
    """Pass name -> getter of the ModulePass class."""
    found: dict[str, Callable[[], Any]] = {name: _lazy(path) for name, path in _BUILTIN_PASSES.items()}
    for ep in entry_points(group="graphopt.passes"):
        found.setdefault(ep.name, ep.load)
    found.update(_extra_passes)
    return found


def register_pass(cls: Any) -> Any:
    """Register a ModulePass class (usable as a decorator)."""
    _extra_passes[cls.name] = lambda: cls
    return cls


def load_pass_plugin(path: str) -> list[str]:
    """Import a Python file and register every ModulePass subclass it defines."""
    from xdsl.passes import ModulePass

    p = Path(path)
    if not p.is_file():
        raise GraphoptError(f"--load-pass-plugin {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"graphopt_plugin_{p.stem}", p)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: report it in one line
        raise GraphoptError(f"--load-pass-plugin {path}: importing it failed: {type(e).__name__}: {e}") from None
    names = []
    for obj in vars(module).values():
        if inspect.isclass(obj) and issubclass(obj, ModulePass) and obj is not ModulePass and obj.__module__ == module.__name__:
            register_pass(obj)
            names.append(obj.name)
    if not names:
        raise GraphoptError(f"--load-pass-plugin {path}: the file defines no ModulePass subclass")
    return names


# -- targets --------------------------------------------------------------------------
_BUILTIN_TARGETS: dict[str, str] = {
    "cpu": "graphopt.targets.cpu:CpuTarget",
}


def all_targets() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {name: _lazy(path) for name, path in _BUILTIN_TARGETS.items()}
    for ep in entry_points(group="graphopt.targets"):
        found.setdefault(ep.name, ep.load)
    return found


def get_target(spec: str) -> Any:
    """A target instance from ``NAME`` or ``NAME:VARIANT`` (``ascend-sim:ascend310p``)."""
    name, _, variant = spec.partition(":")
    targets = all_targets()
    if name not in targets:
        raise GraphoptError(f"--target {spec}: no such target (available: {', '.join(sorted(targets))})")
    cls = targets[name]()
    return cls(variant) if variant else cls()
