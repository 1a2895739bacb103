"""The one error type the CLI turns into a single clear line (no traceback without --debug)."""

from __future__ import annotations

__all__ = ["EpochscopeError", "clip", "one_line"]


class EpochscopeError(Exception):
    """A user-facing failure: bad input, a refused operation, a detected inconsistency.

    Its message is one line meant for the person who ran the command.
    """


def clip(text: object, limit: int = 80) -> str:
    """A user string (a run or series name...) short enough for a one-line message."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit - 21]}...({len(text)} characters)"


_MAX_LINE = 400


def one_line(exc: BaseException, *, hint: str = "") -> str:
    """`exc` as one line of at most ~400 characters: an EpochscopeError's message as it is,
    OSError/ValueError/KeyError with their type, anything else as "unexpected" (+ `hint`)."""
    if isinstance(exc, EpochscopeError):
        text = str(exc)
    elif isinstance(exc, (OSError, ValueError, KeyError)):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}{hint}"
    text = " ".join(text.split())
    if len(text) > _MAX_LINE:  # e.g. a 10,000-character run name inside the message
        text = f"{text[:_MAX_LINE - 140]} ...[{len(text) - _MAX_LINE + 40} characters clipped]... {text[-100:]}"
    return text
