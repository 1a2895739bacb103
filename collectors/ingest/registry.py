"""The registry of log readers: one module of this package per format, found at import.

A format module defines `READER = Reader(...)`; nothing else needs to change for
`ingest`, `epochscope ingest --format` and format detection to know it. Readers import the
package they need (tensorboard, mlflow, wandb) only when they read, so listing them is cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from epochscope.collectors.ingest.table import Table
from epochscope.errors import EpochscopeError

__all__ = ["Options", "Reader", "SourceRun", "find_reader", "readers", "text_file_reader", "uri_scheme"]

# Modules of this package that hold shared code, not a format.
_NOT_FORMATS = frozenset({"registry", "table", "files"})


@dataclass(frozen=True)
class Options:
    """What the caller asked for, passed to every reader."""

    epoch_column: str | None = None
    allow_nonfinite: bool = False
    run: str | None = None  # one run of a multi-run source (id or name)


@dataclass
class SourceRun:
    """One run read from a source: its series, default name, provenance and status.

    `config` is what the tracker recorded as the run's configuration (MLflow params, W&B
    config); `status` the bundle session status matching the tracker's (complete, failed,
    interrupted); `details` goes into the bundle's `source` context as is.
    """

    name: str
    table: Table
    files: list[dict[str, Any]]
    run_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "complete"
    details: dict[str, Any] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)  # files read: an output may not be one of them


@dataclass(frozen=True)
class Reader:
    """A log format: `read(source, options)` returns its runs; `detect(source)` claims a source.

    `source` is the string the user gave (a path, or a URI for readers with `uri_schemes`).
    `order` decides who is asked first during detection (specific formats before generic
    ones). `extra` names the `pip install "epochscope[EXTRA]"` that brings its package.
    """

    name: str
    summary: str
    read: Callable[[str, Options], list[SourceRun]]
    detect: Callable[[str], bool]
    order: int = 100
    extra: str | None = None
    uri_schemes: tuple[str, ...] = ()
    epoch_column: bool = False  # whether --epoch-column applies
    directory: str | None = None  # what it finds in a directory, for "nothing found" errors


def text_file_reader(*, name: str, summary: str, suffixes: tuple[str, ...],
                     read_table: Callable[[Path, str, str | None, bool], Table], order: int) -> Reader:
    """A reader of one text log file claimed by its suffix: `read_table(path, text,
    epoch_column, allow_nonfinite)` turns the file's text into its table."""
    from epochscope.collectors.ingest.files import file_entry, single_file

    def read(source: str, options: Options) -> list[SourceRun]:
        src, data, text = single_file(source, name)
        table = read_table(src, text, options.epoch_column, options.allow_nonfinite)
        return [SourceRun(name=src.stem, table=table, files=[file_entry(src, src.name, data)],
                          paths=[src])]

    def detect(source: str) -> bool:
        return uri_scheme(source) is None and Path(source).suffix.lower() in suffixes

    return Reader(name=name, summary=summary, read=read, detect=detect, order=order, epoch_column=True)


@cache
def readers() -> dict[str, Reader]:
    """Every registered reader by name, in detection order."""
    import epochscope.collectors.ingest as package

    found: list[Reader] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in _NOT_FORMATS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        reader = getattr(module, "READER", None)
        if isinstance(reader, Reader):
            found.append(reader)
    found.sort(key=lambda r: (r.order, r.name))
    return {r.name: r for r in found}


def find_reader(source: str, kind: str | None) -> Reader:
    """The reader for `source`: the one named `kind`, else the first that claims it."""
    known = readers()
    if kind is not None:
        if kind not in known:
            raise EpochscopeError(f"unknown log kind {kind!r} (format); use one of: {', '.join(known)}")
        return known[kind]
    for reader in known.values():
        if reader.detect(source):
            return reader
    if uri_scheme(source) is None and Path(source).is_dir():
        looked = [r.directory for r in known.values() if r.directory]
        what = " or ".join([", ".join(looked[:-1]), looked[-1]] if len(looked) > 1 else looked)
        raise EpochscopeError(f"{source} is a directory without {what or 'logs to ingest'}")
    raise EpochscopeError(
        f"cannot tell the log format of {source}; pass the format, one of: {', '.join(known)}")


def uri_scheme(source: str) -> str | None:
    """`scheme` of a `scheme://...` source (lower case), else None (a plain path)."""
    head, sep, _ = source.partition("://")
    if sep and head and head.replace("+", "").replace("-", "").isalnum() and len(head) > 1:
        return head.lower()
    return None
