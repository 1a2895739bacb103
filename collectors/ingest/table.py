"""Series tables every reader produces, and the checks ingest promises on them.

`tabulate` turns columns (CSV, JSON lines, W&B history) into series keyed by an epoch
column or the row number; `add_series` adds one already-indexed series (TensorBoard tags,
MLflow metrics). Both refuse what cannot be stored faithfully with one `EpochscopeError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epochscope.archives.format import check_name
from epochscope.errors import EpochscopeError

__all__ = ["EPOCH_COLUMNS", "NOT_NUMBER", "DuplicateKey", "NotNumber", "Table", "add_series",
           "text_int_or_float",
           "flatten", "json_epoch", "json_number", "no_duplicates", "show", "tabulate"]

# Looked up case-insensitively, in this order, when no epoch_column is given.
EPOCH_COLUMNS = ("epoch", "epochs", "step", "global_step", "iteration", "iter", "it")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass
class Table:
    """Parsed, validated series ready to write (series name -> (epochs, values)).

    `index`: "column" (an epoch column's values), "row" (1-based row number) or "step".
    """

    series: dict[str, tuple[list[int], list[float]]]
    index: str
    epoch_column: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # series name -> source label


class NotNumber:
    """Marker returned by the value parsers for a present, non-numeric value."""


NOT_NUMBER = NotNumber()


class DuplicateKey(Exception):
    pass


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads object_pairs_hook that refuses a key given twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """{"train": {"loss": 1}} -> {"train.loss": 1}; DuplicateKey when two keys collide."""
    for key, value in obj.items():
        full = prefix + key
        if isinstance(value, dict) and value:
            flatten(value, full + ".", out)
            continue
        if full in out:
            raise DuplicateKey(full)
        out[full] = value


def json_number(value: Any) -> float | NotNumber:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NOT_NUMBER
    try:
        return float(value)
    except OverflowError:
        return NOT_NUMBER


def json_epoch(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def text_int_or_float(text: str) -> int | float | None:
    """A number written as text: int when it reads as one, else float, else None."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _find_epoch_column(src: Path, names: list[str], wanted: str | None) -> int | None:
    if wanted is not None:
        if not isinstance(wanted, str) or not wanted:
            raise EpochscopeError(f"epoch_column must be a column name, got {wanted!r}")
        if wanted in names:
            return names.index(wanted)
        folded = [i for i, n in enumerate(names) if n and n.lower() == wanted.lower()]
        if len(folded) == 1:
            return folded[0]
        listed = ", ".join(repr(n) for n in names if n)
        raise EpochscopeError(f"{src}: no column {wanted!r} for the epoch; columns: {listed}")
    lowered = [n.lower() for n in names]
    for candidate in EPOCH_COLUMNS:
        if candidate in lowered:
            return lowered.index(candidate)
    return None


def tabulate(src: Path, names: list[str], columns: list[list[Any]], lines: list[int], *,
             epoch_column: str | None, allow_nonfinite: bool,
             number: Callable[[Any], float | NotNumber],
             epoch_of: Callable[[Any], int | None], where: str = "line") -> Table:
    """Columns (None = missing) -> series keyed by epoch, with every check ingest promises.

    `lines` gives each row's position in the source (a line or record number, `where`).
    """
    eidx = _find_epoch_column(src, names, epoch_column)
    if eidx is not None:
        ename = names[eidx]
        epochs = []
        for value, line in zip(columns[eidx], lines, strict=True):
            if value is None:
                raise EpochscopeError(f"{src}: {where} {line}: the epoch column {ename!r} is empty")
            epoch = epoch_of(value)
            if epoch is None:
                raise EpochscopeError(
                    f"{src}: {where} {line}: the epoch column {ename!r} holds {show(value)}, not an integer")
            if not _INT64[0] <= epoch <= _INT64[1]:
                raise EpochscopeError(f"{src}: {where} {line}: epoch {epoch} is out of range")
            epochs.append(epoch)
        table = Table(series={}, index="column", epoch_column=ename)
        unit = "epoch"
    else:
        epochs = list(range(1, len(lines) + 1))
        table = Table(series={}, index="row")
        unit = "row"
    for i, (raw, column) in enumerate(zip(names, columns, strict=True)):
        if i == eidx:
            continue
        if not raw:
            table.skipped[f"column {i + 1}"] = "the header gives it no name"
            continue
        series_name = raw.replace("/", ".")
        try:
            check_name(series_name)
        except ValueError:
            table.skipped[raw] = "not usable as a series name"
            continue
        eps: list[int] = []
        vals: list[float] = []
        reason = None
        bad: tuple[float, int, int] | None = None
        for value, epoch, line in zip(column, epochs, lines, strict=True):
            if value is None:
                continue
            x = number(value)
            if isinstance(x, NotNumber):
                reason = f"non-numeric value {show(value)} at {where} {line}"
                break
            if bad is None and not math.isfinite(x):
                bad = (x, epoch, line)
            eps.append(epoch)
            vals.append(x)
        if reason is not None:
            table.skipped[raw] = reason
            continue
        if series_name in table.origin:
            raise EpochscopeError(
                f"{src}: columns {table.origin[series_name]!r} and {raw!r} would both become series {series_name!r}")
        if not vals:
            raise EpochscopeError(f"{src}: series {series_name!r} is empty (no value in any row)")
        if bad is not None and not allow_nonfinite:
            x, epoch, line = bad
            raise EpochscopeError(
                f"{src}: series {series_name!r} has a non-finite value ({x}) at {unit} {epoch} "
                f"({where} {line}); pass allow_nonfinite=True to keep such values")
        table.origin[series_name] = raw
        table.series[series_name] = (eps, vals)
        if series_name != raw:
            table.renamed[raw] = series_name
    require_series(src, table, "no numeric columns to ingest")
    return table


def add_series(src: Path | str, table: Table, label: str, steps: list[int], values: list[float],
               allow_nonfinite: bool, *, what: str = "tags") -> None:
    """Add one step-indexed series (a TensorBoard tag, an MLflow metric) under a valid name."""
    series_name = label.replace("/", ".")
    try:
        check_name(series_name)
    except ValueError:
        table.skipped[label] = "not usable as a series name"
        return
    if series_name in table.origin:
        raise EpochscopeError(
            f"{src}: {what} {table.origin[series_name]!r} and {label!r} would both become series {series_name!r}")
    if not values:
        raise EpochscopeError(f"{src}: series {series_name!r} is empty")
    if not allow_nonfinite:
        for step, x in zip(steps, values, strict=True):
            if not math.isfinite(x):
                raise EpochscopeError(
                    f"{src}: series {series_name!r} has a non-finite value ({x}) at step {step}; "
                    "pass allow_nonfinite=True to keep such values")
    table.origin[series_name] = label
    table.series[series_name] = (steps, values)
    if series_name != label:
        table.renamed[label] = series_name


def require_series(src: Path | str, table: Table, message: str) -> None:
    """Refuse a table with no series, saying what was skipped and why."""
    if not table.series:
        skipped = "; ".join(f"{k}: {r}" for k, r in table.skipped.items())
        raise EpochscopeError(f"{src}: {message}" + (f" (skipped {skipped})" if skipped else ""))
