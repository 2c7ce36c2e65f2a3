"""Registries of passes and targets: one dict each, lazy getters, plugins by entry point.

Built-in rows are listed here so they can be grepped: the generic passes and the built-in
targets; a target declares its own passes and dialects (``Target.passes``,
``Target.dialects``). Third-party ones come from the entry-point groups ``graphopt.passes``,
``graphopt.targets`` and ``graphopt.dialects`` or, for passes, from ``--load-pass-plugin
FILE.py``. Nothing is imported until it is used (a target class is light: see graphopt.target).
"""

from __future__ import annotations

import functools
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
# cse and dce are xDSL's own: they work on graph ops through their traits (Pure, ...).
_BUILTIN_PASSES: dict[str, str] = {
    "canonicalize": "graphopt.passes.canonicalize:Canonicalize",
    "cse": "xdsl.transforms.common_subexpression_elimination:CommonSubexpressionElimination",
    "dce": "xdsl.transforms.dead_code_elimination:DeadCodeElimination",
    "fold-constants": "graphopt.passes.fold_constants:FoldConstants",
    "fold-shapes": "graphopt.passes.fold_shapes:FoldShapes",
    "remove-identity": "graphopt.passes.remove_identity:RemoveIdentityPass",
    "simplify-algebra": "graphopt.passes.simplify_algebra:SimplifyAlgebra",
    "simplify-transpose-reshape": "graphopt.passes.simplify_transpose_reshape:SimplifyTransposeReshape",
    "decompose-einsum": "graphopt.passes.decompose_einsum:DecomposeEinsumPass",
    "fold-conv-bn": "graphopt.passes.fold_conv_bn:FoldConvBN",
    "fold-matmul-add": "graphopt.passes.fold_matmul_add:FoldMatMulAdd",
    "recognize-gelu": "graphopt.passes.recognize_gelu:RecognizeGelu",
    "recognize-layernorm": "graphopt.passes.recognize_layernorm:RecognizeLayerNorm",
    "recognize-rmsnorm": "graphopt.passes.recognize_rmsnorm:RecognizeRMSNorm",
    "recognize-rotary": "graphopt.passes.recognize_rotary:RecognizeRotary",
    "recognize-attention": "graphopt.passes.recognize_attention:RecognizeAttention",
    "recognize-swiglu": "graphopt.passes.recognize_swiglu:RecognizeSwiGLU",
    "merge-parallel-matmuls": "graphopt.passes.merge_parallel_matmuls:MergeParallelMatMuls",
    "fuse": "graphopt.passes.fuse:Fuse",
    "overlap-collectives": "graphopt.passes.overlap_collectives:OverlapCollectives",
}

_extra_passes: dict[str, Callable[[], Any]] = {}


@functools.cache
def installed(group: str) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Third parties' entry points of ``group``: (name, loader). Scanned once per process
    (the scan reads every installed package's metadata, ~10 ms a compile; what is installed
    does not change while graphopt runs)."""
    return tuple((ep.name, ep.load) for ep in entry_points(group=group))


def all_passes() -> dict[str, Callable[[], Any]]:
    """Pass name -> getter of the ModulePass class: the generic ones, each target's own
    (``Target.passes``), then third parties'."""
    found: dict[str, Callable[[], Any]] = {name: _lazy(path) for name, path in _BUILTIN_PASSES.items()}
    for name, path in target_rows("passes").items():
        found.setdefault(name, _lazy(path))
    for name, load in installed("graphopt.passes"):
        found.setdefault(name, load)
    found.update(_extra_passes)
    return found


def register_pass(cls: Any) -> Any:
    """Register a ModulePass class (usable as a decorator)."""
    _extra_passes[cls.name] = lambda: cls
    return cls


def pattern_pass(pattern_cls: Any) -> Any:
    """A ModulePass that applies one RewritePattern everywhere, until nothing changes.

    The pattern class names the pass with a kebab-case ``name`` attribute and documents
    it with its docstring; its constructor takes no arguments."""
    from dataclasses import dataclass

    from xdsl.passes import ModulePass
    from xdsl.pattern_rewriter import PatternRewriteWalker

    @dataclass(frozen=True)
    class PatternPass(ModulePass):
        name = pattern_cls.name

        def apply(self, ctx: Any, op: Any) -> None:
            PatternRewriteWalker(pattern_cls()).rewrite_module(op)

    PatternPass.__doc__ = pattern_cls.__doc__
    PatternPass.__name__ = PatternPass.__qualname__ = f"{pattern_cls.__name__}Pass"
    return PatternPass


def load_pass_plugin(path: str) -> list[str]:
    """Import a Python file; register every ModulePass subclass it defines, and every
    RewritePattern subclass that has a ``name`` (as a pass applying that pattern)."""
    from xdsl.passes import ModulePass
    from xdsl.pattern_rewriter import RewritePattern

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
        if not inspect.isclass(obj) or obj.__module__ != module.__name__:
            continue
        if issubclass(obj, ModulePass):
            register_pass(obj)
            names.append(obj.name)
        elif issubclass(obj, RewritePattern) and isinstance(getattr(obj, "name", None), str):
            register_pass(pattern_pass(obj))
            names.append(obj.name)
    if not names:
        raise GraphoptError(f"--load-pass-plugin {path}: the file defines no ModulePass, nor a RewritePattern with a name")
    return names


def load_patterns(path: str) -> str:
    """Register the pass a patterns file defines (graphopt.pattern_file: text, no code runs)."""
    from graphopt.pattern_file import load_patterns as load

    return register_pass(load(path)).name


# -- dialects -------------------------------------------------------------------------
# Targets' IR dialects, loaded when IR text names one (graphopt.ir.make_context).


@functools.cache  # every compile makes a context; installed entry points do not change meanwhile
def all_dialects() -> dict[str, Callable[[], Any]]:
    """Dialect name -> getter of the xDSL Dialect: each target's (``Target.dialects``; the
    entry-point group ``graphopt.dialects`` adds others)."""
    found: dict[str, Callable[[], Any]] = {name: _lazy(path) for name, path in target_rows("dialects").items()}
    for name, load in installed("graphopt.dialects"):
        found.setdefault(name, load)
    return found


# -- targets --------------------------------------------------------------------------
_BUILTIN_TARGETS: dict[str, str] = {
    "cpu": "graphopt.targets.cpu:CpuTarget",
    "ascend-sim": "graphopt.targets.ascend:AscendSimTarget",
}


def all_targets() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {name: _lazy(path) for name, path in _BUILTIN_TARGETS.items()}
    for name, load in installed("graphopt.targets"):
        found.setdefault(name, load)
    return found


def target_rows(kind: str) -> dict[str, str]:
    """What the targets declare of ``kind`` ("passes", "dialects", "commands"): name -> "module:attr"."""
    rows: dict[str, str] = {}
    for _, get in sorted(all_targets().items()):
        for name, path in getattr(get(), kind, {}).items():
            rows.setdefault(name, path)
    return rows


def get_target(spec: str, **options: Any) -> Any:
    """A target instance from ``NAME`` or ``NAME:VARIANT`` (``ascend-sim:ascend310p``) and
    the target's own options (``chip=``, ``precision=`` ...; None means the default)."""
    name, _, variant = spec.partition(":")
    targets = all_targets()
    if name not in targets:
        raise GraphoptError(f"--target {spec}: no such target (available: {', '.join(sorted(targets))})")
    cls = targets[name]()
    given = {k: v for k, v in options.items() if v is not None}
    declared = {o.name for o in getattr(cls, "options", ())}
    for key in given:
        if key not in declared:
            raise GraphoptError(f"--{key.replace('_', '-')}: target {name} has no such option"
                                + (f" (it takes {', '.join(sorted(declared))})" if declared else ""))
    if variant and "variant" not in inspect.signature(cls.__init__).parameters:
        raise GraphoptError(f"--target {spec}: target {name} has no variants")
    return cls(variant, **given) if variant else cls(**given)
