"""Names in IR text."""

from __future__ import annotations


def ssa_hint(name: str) -> str | None:
    """An SSA name hint (``%x``) from a model's name (an ONNX value, an fx placeholder),
    where the printer would accept it: other characters become ``_``; None if it would
    start with a digit."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else None
