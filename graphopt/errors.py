"""The one exception users see."""

from __future__ import annotations


class GraphoptError(Exception):
    """A user error: one line that names the model element and what to do.

    The CLI prints it without a traceback and exits 2 (1 for a failed validation). The
    message is kept to one printable line (``escape``) whatever names it quotes, for API
    callers too.
    """

    exit_code = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(escape(str(message)), *args)


class ValidationError(GraphoptError):
    """Outputs differ from the reference beyond tolerance."""

    exit_code = 1


def escape(text: str) -> str:
    """``text`` safe to print on one terminal line: every character that is not printable
    (newline, carriage return, ESC and the rest of the control characters, line and
    paragraph separators ...) written as its Python escape (``\\n``, ``\\x1b``), so a
    crafted model name cannot add lines to the output or drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
