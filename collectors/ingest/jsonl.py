"""JSON Lines logs: one JSON object per line, nested objects flattened with '.'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epochscope.collectors.ingest.registry import text_file_reader
from epochscope.collectors.ingest.table import (
    DuplicateKey,
    Table,
    flatten,
    json_epoch,
    json_number,
    no_duplicates,
    tabulate,
)
from epochscope.errors import EpochscopeError

_SUFFIXES = (".jsonl", ".ndjson", ".json")


def read_table(src: Path, text: str, epoch_column: str | None, allow_nonfinite: bool) -> Table:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=no_duplicates)
        except DuplicateKey as exc:
            raise EpochscopeError(f"{src}: line {lineno}: duplicate key {exc.args[0]!r}") from None
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            where = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            hint = ("; ingest expects one JSON object per line, not a JSON array"
                    if line.strip() == "[" else "")
            raise EpochscopeError(f"{src}: line {lineno}: malformed JSON ({reason}{where}){hint}") from None
        if not isinstance(obj, dict):
            raise EpochscopeError(
                f"{src}: line {lineno}: expected a JSON object, found a {type(obj).__name__}")
        rows.append(obj)
        lines.append(lineno)
    if not lines:
        raise EpochscopeError(f"{src} is empty")
    return tabulate_records(src, rows, lines, epoch_column=epoch_column, allow_nonfinite=allow_nonfinite)


def tabulate_records(src: Path, records: list[dict[str, Any]], lines: list[int], *,
                     epoch_column: str | None, allow_nonfinite: bool, where: str = "line",
                     drop: frozenset[str] = frozenset()) -> Table:
    """JSON records (dicts, flattened with '.') -> a table; keys in `drop` are left out."""
    columns: dict[str, list[Any]] = {}
    for n, (obj, lineno) in enumerate(zip(records, lines, strict=True)):
        flat: dict[str, Any] = {}
        try:
            flatten(obj, "", flat)
        except DuplicateKey as exc:
            raise EpochscopeError(
                f"{src}: {where} {lineno}: key {exc.args[0]!r} appears twice after flattening") from None
        for key, value in flat.items():
            if key not in drop:
                columns.setdefault(key, [None] * n).append(value)
        for values in columns.values():
            if len(values) == n:
                values.append(None)
    names = list(columns)
    return tabulate(src, names, [columns[k] for k in names], lines, epoch_column=epoch_column,
                    allow_nonfinite=allow_nonfinite, number=json_number, epoch_of=json_epoch, where=where)


READER = text_file_reader(name="jsonl", summary="JSON Lines, one object per line (.jsonl, .ndjson, .json)",
                          suffixes=_SUFFIXES, read_table=read_table, order=90)
