"""MLflow runs, read through mlflow's own tracking client (`pip install "epochscope[mlflow]"`).

The source is a local tracking directory (`mlruns/`, one experiment's directory in it, one
run's directory, or a project folder holding `mlruns/`) or a tracking URI (`file:`,
`http(s)://`, `sqlite:///...`; a database URI needs the full `mlflow` package). Every
metric's whole history is read, indexed by its step; params become the config, tags and run
info go into the bundle's `source` context.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from epochscope.collectors.ingest.files import file_entry
from epochscope.collectors.ingest.registry import Options, Reader, SourceRun, uri_scheme
from epochscope.collectors.ingest.table import Table, add_series, text_int_or_float
from epochscope.errors import EpochscopeError
from epochscope.optional import require

_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")
_STATUS = {"FINISHED": "complete", "FAILED": "failed", "KILLED": "interrupted"}
_MAX_TAG = 2000  # longer tag values (logged-model histories...) are left out of the context


def _meta_kind(meta: Path) -> str | None:
    """'run' or 'experiment' for an MLflow file-store meta.yaml, else None."""
    try:
        text = meta.read_text("utf-8", errors="replace")[:4096]
    except OSError:
        return None
    if re.search(r"^run_id:", text, re.M) or re.search(r"^run_uuid:", text, re.M):
        return "run"
    if re.search(r"^experiment_id:", text, re.M):
        return "experiment"
    return None


def tracking_root(src: Path) -> tuple[Path, str | None, str | None] | None:
    """(root, experiment id, run id) of a local file store at or around `src`, else None."""
    if not src.is_dir():
        return None
    meta = src / "meta.yaml"
    kind = _meta_kind(meta) if meta.is_file() else None
    if kind == "run":
        return src.parent.parent, src.parent.name, src.name
    if kind == "experiment":
        return src.parent, src.name, None
    if (src / "mlruns").is_dir() and tracking_root(src / "mlruns") is not None:
        return src / "mlruns", None, None
    try:
        children = [c for c in src.iterdir() if c.is_dir() and (c / "meta.yaml").is_file()]
    except OSError:
        return None
    if any(_meta_kind(c / "meta.yaml") == "experiment" for c in children):
        return src, None, None
    return None


def detect(source: str) -> bool:
    scheme = uri_scheme(source)
    if scheme is not None:
        return scheme in _SCHEMES or scheme.split("+")[0] in _SCHEMES
    return tracking_root(Path(source)) is not None


# Set while reading unless the user set them: the file store (refused by default since
# MLflow 3.x, but the format every existing `mlruns/` is in; we only read), and a few quick
# retries instead of mlflow's default of 7 with exponential backoff (minutes before an
# unreachable server is reported).
_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """mlflow's environment for reading (_ENV), and its INFO logging quiet."""
    added = [k for k in _ENV if k not in os.environ]
    os.environ.update({k: _ENV[k] for k in added})
    log = logging.getLogger("mlflow")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
        for k in added:
            os.environ.pop(k, None)


def _public_uri(uri: str) -> str:
    """The tracking URI without any user:password@ part (it goes into the bundle)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return uri


def read(source: str, options: Options) -> list[SourceRun]:
    require("mlflow", extra="mlflow", purpose="reading MLflow runs", package="mlflow (or mlflow-skinny)")
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    root = exp_id = run_id = None
    if uri_scheme(source) is not None:
        uri = source
    else:
        found = tracking_root(Path(source))
        if found is None:
            raise EpochscopeError(f"{source} is not an MLflow tracking directory (no experiments' meta.yaml)")
        root, exp_id, run_id = found
        uri = root.resolve().as_uri()
    with _reading():
        client = MlflowClient(tracking_uri=uri)
        try:
            if run_id is not None:
                runs = [client.get_run(run_id)]
            else:
                experiments = ([client.get_experiment(exp_id)] if exp_id is not None
                               else client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
                names = {e.experiment_id: e.name for e in experiments}
                runs = _all_runs(client, list(names), ViewType.ACTIVE_ONLY)
            if not runs:
                where = f"experiments: {', '.join(repr(e.name) for e in experiments)}" if run_id is None else ""
                raise EpochscopeError(f"{source}: no MLflow runs ({where or 'none'})")
            runs = _select(source, runs, options.run)
            experiment_names = {e: client.get_experiment(e).name for e in {r.info.experiment_id for r in runs}}
            return [_read_run(client, source, r, experiment_names, root, _public_uri(uri), options)
                    for r in runs]
        except MlflowException as exc:
            first = str(exc.message if hasattr(exc, "message") else exc).strip().splitlines()[0]
            public = _public_uri(source)  # never echo a password from the URI
            raise EpochscopeError(f"cannot read MLflow runs from {public}: {first.replace(source, public)}") from None


def _all_runs(client: Any, experiment_ids: list[str], view: int) -> list[Any]:
    if not experiment_ids:
        return []
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, run_view_type=view, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _select(source: str, runs: list[Any], wanted: str | None) -> list[Any]:
    if wanted is None:
        return runs
    hits = [r for r in runs if r.info.run_id == wanted] or [r for r in runs if r.info.run_name == wanted]
    if not hits:
        listed = ", ".join(f"{r.info.run_id} ({r.info.run_name})" for r in runs[:10])
        raise EpochscopeError(f"{source}: no MLflow run {wanted!r}; runs: {listed}")
    if len(hits) > 1:
        raise EpochscopeError(f"{source}: {len(hits)} MLflow runs are named {wanted!r}; give the run id")
    return hits


def _read_run(client: Any, source: str, run: Any, experiments: dict[str, str], root: Path | None,
              uri: str, options: Options) -> SourceRun:
    info, data = run.info, run.data
    label = f"{source} (run {info.run_id})"
    table = Table(series={}, index="step")
    for key in sorted(data.metrics):
        history = client.get_metric_history(info.run_id, key)
        add_series(label, table, key, [int(m.step) for m in history], [float(m.value) for m in history],
                   options.allow_nonfinite, what="metrics")
    files: list[dict[str, Any]] = []
    paths: list[Path] = []
    if root is not None:
        run_dir = root / info.experiment_id / info.run_id
        for f in sorted(p for p in (run_dir / "metrics").rglob("*") if p.is_file()):
            files.append(file_entry(f, f.relative_to(root).as_posix()))
            paths.append(f)
    tags = {k: v for k, v in data.tags.items() if len(str(v)) <= _MAX_TAG}
    details = {
        "run_id": info.run_id, "experiment_id": info.experiment_id,
        "experiment": experiments.get(info.experiment_id), "tracking_uri": uri,
        "status": info.status, "start_time": _iso(info.start_time), "end_time": _iso(info.end_time),
        "params": dict(data.params), "tags": tags,
    }
    return SourceRun(name=info.run_name or info.run_id, table=table, files=files, run_id=info.run_id,
                     config={k: param_value(v) for k, v in data.params.items()},
                     status=_STATUS.get(info.status, "interrupted"), details=details, paths=paths)


def param_value(text: str) -> Any:
    """An MLflow param (always a string) as the number or flag it was logged as."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    value = text_int_or_float(text)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return text
    return value


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")


READER = Reader(name="mlflow", summary="MLflow runs: a tracking directory (mlruns/) or tracking URI",
                read=read, detect=detect, order=20, extra="mlflow", uri_schemes=_SCHEMES,
                directory="MLflow experiments (mlruns/*/meta.yaml)")
