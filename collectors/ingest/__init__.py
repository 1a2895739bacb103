"""Turn logs a training run already wrote (CSV/TSV, JSON lines, TensorBoard events, MLflow
runs, W&B offline runs) into bundles.

    result = ingest("logs/metrics.csv", "runs/baseline.h5")
    results = ingest_all("mlruns", "runs/")          # every run of a tracker, one bundle each

Each format is one module of this package registering a `Reader` (registry.py); `READERS`
lists them in detection order. Everything is read and checked before a bundle is created,
so bad input raises one `EpochscopeError` line and leaves the output paths untouched.

Detection (`kind=None`): a directory holding TensorBoard event files (names containing
`tfevents`, searched recursively) or one such file is "tensorboard"; an MLflow tracking
directory (`mlruns/`, an experiment or run directory in it) or tracking URI is "mlflow"; a W&B
directory (`wandb/`, an `offline-run-*` directory or its `.wandb` file) is "wandb";
`.csv`/`.tsv` is "csv"; `.jsonl`/`.ndjson`/`.json` (one object per line) is "jsonl".

Epoch axis (CSV/JSONL): `epoch_column` if given, else the first of EPOCH_COLUMNS present
(case-insensitive), else the 1-based data row number (`IngestResult.index == "row"`). Its values
must be integers (3.0 is fine, 3.5 is refused). An empty cell (or NA/null/none), an absent JSON
key or null means "no point at this epoch"; non-numeric columns are skipped with a reason.
TensorBoard and MLflow series are indexed by their step, W&B history by `_step`.

Series names: '/' cannot appear in bundle names, so every '/' in a column, key, tag or metric
becomes '.' (`train/loss` -> `train.loss`); nested JSON objects are flattened the same way
(`{"train": {"loss": 1}}` -> `train.loss`). `IngestResult.renamed` lists what changed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from epochscope import __version__
from epochscope.archives import BundleWriter, Segment
from epochscope.archives.journal import journal_dir
from epochscope.collectors.ingest.registry import (
    Options,
    Reader,
    SourceRun,
    find_reader,
    readers,
    uri_scheme,
)
from epochscope.collectors.ingest.table import EPOCH_COLUMNS
from epochscope.collectors.recorder import environment
from epochscope.errors import EpochscopeError

__all__ = ["EPOCH_COLUMNS", "KINDS", "READERS", "IngestResult", "Reader", "ingest", "ingest_all"]

READERS: dict[str, Reader] = readers()
KINDS = tuple(READERS)


@dataclass
class IngestResult:
    """What `ingest` wrote: series names in source order, point count, and what it left out.

    `index` says what the bundle's epoch axis is: "column" (the `epoch_column` values),
    "row" (the 1-based data row / record number: no epoch column was found) or "step"
    (TensorBoard, MLflow and W&B steps). `skipped_columns` maps each column or tag not
    stored to the reason. `run_id`: the tracker's id of the run (MLflow, W&B), else None.
    `skipped_runs`: runs of the same source left out, with the reason (no metrics logged).
    """

    path: Path
    name: str
    kind: str
    series: list[str]
    points: int
    epoch_column: str | None
    index: str
    skipped_columns: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    skipped_runs: dict[str, str] = field(default_factory=dict)


def ingest(source: str | os.PathLike, output: str | os.PathLike, *, kind: str | None = None,
           name: str | None = None, epoch_column: str | None = None, run: str | None = None,
           overwrite: bool = False, allow_nonfinite: bool = False) -> IngestResult:
    """Read the training logs at `source` and write them as one complete bundle at `output`.

    `source`: a file or directory, or for MLflow a tracking URI. `kind`: one of KINDS
    (default: detected). `name`: the run's display name (default: the file's stem, the
    directory's name, or the tracker's run name). `run`: the id or name of one run of a
    source holding several (MLflow, W&B); a source with several runs and no `run` is refused
    (use `ingest_all`). Non-finite values are refused unless `allow_nonfinite`. Raises
    `EpochscopeError` (one line) on bad input, before anything is written; an existing output
    is refused unless `overwrite`, and even then replaced only once the input has passed.
    """
    _check_name(name)
    out = Path(os.fspath(output))
    reader, runs = _read(source, kind, epoch_column, allow_nonfinite, run)
    if len(runs) > 1:
        listed = ", ".join(_label(r) for r in runs[:10]) + (", ..." if len(runs) > 10 else "")
        raise EpochscopeError(
            f"{source} holds {len(runs)} runs ({listed}); pick one with run=ID (--run ID), "
            "or write each with ingest_all (an output directory on the command line)")
    _check_output(out, runs[0])
    return _write(runs[0], out, reader, str(source), name, overwrite)


def ingest_all(source: str | os.PathLike, output_dir: str | os.PathLike, *, kind: str | None = None,
               epoch_column: str | None = None, run: str | None = None, name: str | None = None,
               overwrite: bool = False, allow_nonfinite: bool = False) -> list[IngestResult]:
    """Write every run at `source` (or only `run`) as `output_dir/<run name>.h5`.

    Runs whose names clash get their id appended. `name` (display name) only when one run is
    written. Every run is read and every output checked before the first bundle is written;
    the directory is created if missing.
    """
    _check_name(name)
    out_dir = Path(os.fspath(output_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise EpochscopeError(f"output {out_dir} is a file; give a directory for the bundles")
    reader, runs = _read(source, kind, epoch_column, allow_nonfinite, run)
    if name is not None and len(runs) > 1:
        raise EpochscopeError(f"{source} holds {len(runs)} runs; a name applies to one: pick it with run=ID")
    names = [_file_stem(r.name) for r in runs]
    targets = []
    for r, stem in zip(runs, names, strict=True):
        if names.count(stem) > 1 and r.run_id:
            stem = _file_stem(f"{r.name}-{r.run_id}")
        targets.append(out_dir / f"{stem}.h5")
    if len(set(targets)) != len(targets):
        raise EpochscopeError(f"{source}: several runs would be written to the same bundle name")
    for r, target in zip(runs, targets, strict=True):
        _check_output(target, r)
        if target.exists() and not overwrite:
            raise EpochscopeError(f"{target} already exists; pass overwrite to replace it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EpochscopeError(f"cannot create the directory {out_dir}: {exc.strerror or exc}") from None
    return [_write(r, target, reader, str(source), name, overwrite)
            for r, target in zip(runs, targets, strict=True)]


# -- reading and writing ----------------------------------------------------------------------

def _read(source: str | os.PathLike, kind: str | None, epoch_column: str | None,
          allow_nonfinite: bool, run: str | None) -> tuple[Reader, list[SourceRun]]:
    text = os.fspath(source)
    if not isinstance(text, str) or not text:
        raise EpochscopeError(f"source must be a path or URI, got {source!r}")
    if uri_scheme(text) is None and not Path(text).exists():
        raise EpochscopeError(f"no such file or directory: {text}")
    reader = find_reader(text, kind)
    if epoch_column is not None and not reader.epoch_column:
        raise EpochscopeError(f"epoch_column does not apply to {reader.name} logs: the step is the index")
    runs = reader.read(text, Options(epoch_column=epoch_column, allow_nonfinite=allow_nonfinite, run=run))
    if run is not None and len(runs) != 1:
        raise EpochscopeError(f"{text}: run {run!r} matched {len(runs)} runs")
    if not runs:
        raise EpochscopeError(f"{text}: no runs to ingest")
    empty = [r for r in runs if not r.table.series]
    if len(empty) == len(runs):
        what = f"run {_label(runs[0])}" if len(runs) == 1 else f"none of its {len(runs)} runs"
        raise EpochscopeError(f"{text}: {what} logged any metrics")
    # A run that logged nothing (e.g. one that crashed at start) does not stop the others.
    skipped = {_label(r): "no metrics logged" for r in empty}
    runs = [r for r in runs if r.table.series]
    if skipped:
        for r in runs:
            r.details["skipped_runs"] = skipped
    return reader, runs


def _write(source_run: SourceRun, out: Path, reader: Reader, source: str, name: str | None,
           overwrite: bool) -> IngestResult:
    started = _now()
    table = source_run.table
    run_name = name if name is not None else (source_run.name or "run")
    src_path = Path(source)
    location = str(src_path.resolve()) if src_path.exists() else source
    source_info: dict[str, Any] = {
        "path": location, "kind": reader.name, "files": source_run.files, "index": table.index,
        "epoch_column": table.epoch_column, "skipped_columns": table.skipped,
        "renamed": table.renamed, "ingested": started, **table.details, **source_run.details,
    }
    if source_run.run_id is not None:
        source_info["run_id"] = source_run.run_id
    if len(source_run.files) == 1:
        source_info["sha256"] = source_run.files[0]["sha256"]
    config = {k: v for k, v in source_run.config.items() if k not in ("name", "source_kind")}
    context = {"config": {"name": run_name, "source_kind": reader.name, **config}, "seeds": {},
               "environment": environment(), "source": source_info}
    session = {"id": uuid.uuid4().hex, "started": started, "ended": _now(), "status": source_run.status,
               "argv": list(sys.argv), "host": socket.gethostname(), "pid": os.getpid(),
               "epochscope": __version__, "ingested_from": reader.name}
    metrics = {n: (np.asarray(e, dtype=np.int64), np.asarray(v, dtype=np.float64))
               for n, (e, v) in table.series.items()}

    # BundleWriter refuses an existing output (unless overwrite) and a missing or unwritable
    # directory with a BundleError; past this point everything at `out` is ours.
    writer = BundleWriter(out, create=True, overwrite=overwrite)
    try:
        writer.write(Segment(context=context, session=session, metrics=metrics, events=[]))
        writer.consolidate()
    except BaseException:
        _remove_partial(out)
        raise
    finally:
        writer.close()
    return IngestResult(path=out, name=run_name, kind=reader.name, series=list(table.series),
                        points=sum(len(e) for e, _ in table.series.values()),
                        epoch_column=table.epoch_column, index=table.index,
                        skipped_columns=dict(table.skipped), renamed=dict(table.renamed),
                        run_id=source_run.run_id,
                        skipped_runs=dict(source_run.details.get("skipped_runs") or {}))


def _check_name(name: str | None) -> None:
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise EpochscopeError(f"run name must be a non-empty string, got {name!r}")


def _check_output(out: Path, source_run: SourceRun) -> None:
    if out.is_dir():
        raise EpochscopeError(f"output {out} is a directory; give the path of the bundle file to write")
    target = out.resolve()
    if any(target == p.resolve() for p in source_run.paths):
        raise EpochscopeError(f"output {out} is the source log itself; choose another output path")


def _remove_partial(out: Path) -> None:
    """Drop what a failed write left (we created the bundle, so it is all ours)."""
    try:
        if out.is_file():
            out.unlink()
    except OSError:
        pass
    shutil.rmtree(journal_dir(out), ignore_errors=True)


def _label(run: SourceRun) -> str:
    return f"{run.run_id} ({run.name})" if run.run_id and run.run_id != run.name else run.name


def _file_stem(name: str) -> str:
    """A run name as a safe file name (letters, digits, '-', '_', '.'; no leading dot)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    return stem[:120]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
