"""The one error type the CLI turns into a single clear line (no traceback without --debug)."""

from __future__ import annotations

__all__ = ["EpochscopeError", "clip"]


class EpochscopeError(Exception):
    """A user-facing failure: bad input, a refused operation, a detected inconsistency.

    Its message is one line meant for the person who ran the command.
    """


def clip(text: object, limit: int = 80) -> str:
    """A user string (a run or series name...) short enough for a one-line message."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit - 21]}...({len(text)} characters)"
