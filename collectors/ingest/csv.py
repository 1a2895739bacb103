"""CSV/TSV logs with a header row: delimiter sniffed (comma, tab, semicolon with decimal commas)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from epochscope.collectors.ingest.registry import text_file_reader
from epochscope.collectors.ingest.table import (
    NOT_NUMBER,
    NotNumber,
    Table,
    tabulate,
    text_int_or_float,
)
from epochscope.errors import EpochscopeError

_SUFFIXES = (".csv", ".tsv")
# Cells that mean "no value here" (compared after strip + lower-casing).
_MISSING_TEXT = frozenset({"", "na", "n/a", "null", "none"})
_DELIMITERS = ",\t;"


def read_table(src: Path, text: str, epoch_column: str | None, allow_nonfinite: bool) -> Table:
    delimiter = _sniff_delimiter(text, src.suffix.lower())
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip() and (header is None or len(header) > 1)):
                continue  # blank line
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            if len(row) != len(header):
                raise EpochscopeError(
                    f"{src}: line {reader.line_num}: {len(row)} fields, but the header has {len(header)}")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise EpochscopeError(f"{src}: line {reader.line_num}: unreadable CSV ({exc})") from None
    if header is None:
        raise EpochscopeError(f"{src} is empty")
    number = _decimal_comma_number if delimiter == ";" else _text_number
    if all(cell and not isinstance(number(cell), NotNumber) for cell in header):
        raise EpochscopeError(
            f"{src}: the first line looks like data, not a header; ingest needs column names")
    seen: dict[str, int] = {}
    for i, cell in enumerate(header):
        if cell and cell in seen:
            raise EpochscopeError(
                f"{src}: duplicate column name {cell!r} (columns {seen[cell] + 1} and {i + 1})")
        seen[cell] = i
    if not rows:
        raise EpochscopeError(f"{src} has a header but no data rows")
    columns = [[_cell(row[i]) for row in rows] for i in range(len(header))]
    table = tabulate(src, header, columns, lines, epoch_column=epoch_column,
                     allow_nonfinite=allow_nonfinite, number=number, epoch_of=_text_epoch)
    table.details["delimiter"] = delimiter
    return table


def _sniff_delimiter(text: str, suffix: str) -> str:
    """The delimiter among comma, tab and semicolon (csv.Sniffer, checked against the header)."""
    sample = text[:16384]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    header = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in _DELIMITERS}
    if suffix == ".tsv" and counts["\t"]:
        return "\t"
    try:
        found = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
        if counts.get(found):
            return found
    except csv.Error:
        pass
    best = max(_DELIMITERS, key=lambda d: counts[d])
    if counts[best]:
        return best
    return "\t" if suffix == ".tsv" else ","


def _cell(cell: str) -> str | None:
    cell = cell.strip()
    return None if cell.lower() in _MISSING_TEXT else cell


def _text_number(text: str) -> float | NotNumber:
    try:
        return float(text)
    except ValueError:
        return NOT_NUMBER


def _decimal_comma_number(text: str) -> float | NotNumber:
    """Semicolon-separated files often write decimals with a comma (0,5)."""
    value = _text_number(text)
    if isinstance(value, NotNumber) and text.count(",") == 1 and "." not in text:
        value = _text_number(text.replace(",", "."))
    return value


def _text_epoch(text: str) -> int | None:
    value = text_int_or_float(text)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    return value


READER = text_file_reader(name="csv", summary="CSV/TSV file with a header row (.csv, .tsv)",
                          suffixes=_SUFFIXES, read_table=read_table, order=80)
