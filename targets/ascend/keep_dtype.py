"""Ops kept in their own dtype under a float16 precision mode (ATC's ``--keep_dtype``).

``graphopt compile m.onnx --target ascend-sim --keep-dtype keep.txt`` names, one per line,
ONNX node names or op types (``#`` starts a comment). A graph op is kept when its type or
one of the nodes it came from (its provenance, through fusion and recognition) is named; a
named Constant keeps the ops that read it. A kept op's kernel computes and stores in the
model's dtype (float32) as under must_keep_origin_dtype; it stays in ND (no NC1HWC0 for a
float32 tensor here), and a kernel that is not kept reads its result in float16 (the Cast
ATC inserts), so keep the consumers too when the value itself is beyond float16's range.

    # keep.txt: deberta's attention mask (float32's minimum) and the softmax that reads it
    Where
    Softmax
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp, UnitAttr
from xdsl.ir import Operation

from graphopt.dialects.graph import ConstantOp, FusedOp, GraphOp, provenance
from graphopt.errors import GraphoptError, escape

KEPT = "ascend.keep_dtype"  # unit attribute on a kept graph op, fused op or kernel
_MAX_FILE = 1 << 20


def read_keep_file(path: str | Path) -> list[str]:
    """The entries of a --keep-dtype file: one name per line, blank lines and # comments skipped."""
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_FILE:
            raise GraphoptError(f"--keep-dtype {escape(str(path))}: larger than {_MAX_FILE} bytes; list one node or op type per line")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GraphoptError(f"--keep-dtype {escape(str(path))}: cannot read it ({type(e).__name__}); "
                            "give a text file with one node name or op type per line") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def keep_entries(keep: str | Path | Iterable[str] | None) -> tuple[str, ...]:
    """The target option: a file path, or names given directly (the Python API)."""
    if keep is None:
        return ()
    if isinstance(keep, str | Path):
        return tuple(read_keep_file(keep))
    entries = tuple(keep)
    if not all(isinstance(e, str) and e for e in entries):
        raise GraphoptError("keep_dtype: give node names or op types as non-empty strings")
    return entries


def mark_kept(module: ModuleOp, entries: Sequence[str]) -> int:
    """Set KEPT on every graph op (and the fused op around it) that ``entries`` names, and
    on the readers of a named constant. Returns how many ops were marked; an entry that
    names nothing is an error (a misspelt name would otherwise keep nothing, silently)."""
    if not entries:
        return 0
    wanted = set(entries)
    used: set[str] = set()
    marked = 0

    def mark(op: Operation) -> None:
        nonlocal marked
        if KEPT not in op.attributes:
            op.attributes[KEPT] = UnitAttr()
            marked += 1
        parent = op.parent_op()
        if isinstance(parent, FusedOp) and KEPT not in parent.attributes:
            parent.attributes[KEPT] = UnitAttr()

    for op in module.walk():
        if isinstance(op, ConstantOp):
            hit = wanted & set(provenance(op))
            if hit:
                used |= hit
                for use in op.result.uses:
                    if isinstance(use.operation, GraphOp):
                        mark(use.operation)
        elif isinstance(op, GraphOp):
            hit = wanted & ({op.ONNX_TYPE} | set(provenance(op)))
            if hit:
                used |= hit
                mark(op)
    missing = [e for e in entries if e not in used]
    if missing:
        raise GraphoptError(f"--keep-dtype: {escape(missing[0])} names no node or op type left in the model "
                            f"({len(missing)} such entr{'y' if len(missing) == 1 else 'ies'}); "
                            "name ONNX nodes as the model does, or op types such as Softmax")
    return marked


def is_kept(op: Operation | None) -> bool:
    return op is not None and KEPT in op.attributes


__all__ = ["KEPT", "is_kept", "keep_entries", "mark_kept", "read_keep_file"]
