"""What both integrations need: JSON-able configs and metric names a bundle accepts."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
from pathlib import PurePath
from typing import Any

__all__ = ["jsonable", "metric_name", "number"]


def jsonable(value: Any, depth: int = 0) -> Any:
    """`value` as JSON data: containers recursively, numbers and strings as they are, tensors
    and numpy scalars as numbers or lists, anything else as its repr (a config must never
    stop a training run from being recorded)."""
    if depth > 20:
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict) or hasattr(value, "items") and callable(value.items):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, enum.Enum):
        return jsonable(value.value, depth + 1)
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)  # torch tensors, numpy arrays and scalars
    if callable(tolist):
        try:
            return jsonable(tolist(), depth + 1)
        except Exception:  # noqa: BLE001 - fall back to the repr
            pass
    return repr(value)


def metric_name(key: str) -> str:
    """A logged metric's key as a series name: '/' (not allowed in bundles) becomes '.'."""
    name = str(key).replace("/", ".").replace("\x00", "")
    return name if name not in ("", ".", "..") else f"metric{name or ''}"


def number(value: Any) -> float | None:
    """A scalar metric value as a float (tensors and numpy scalars too), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "numel", lambda: getattr(value, "size", 1))() == 1:
        try:
            return float(item())
        except (TypeError, ValueError):
            return None
    return None
