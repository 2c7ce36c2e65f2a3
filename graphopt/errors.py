"""The one exception users see."""

from __future__ import annotations


class GraphoptError(Exception):
    """A user error: one line that names the model element and what to do.

    The CLI prints it without a traceback and exits 2 (1 for a failed validation).
    """

    exit_code = 2


class ValidationError(GraphoptError):
    """Outputs differ from the reference beyond tolerance."""

    exit_code = 1
