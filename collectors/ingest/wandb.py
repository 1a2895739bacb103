"""W&B offline runs, read with the wandb package's own reader (`pip install "epochscope[wandb]"`).

The source is a W&B directory (`wandb/`, or a folder holding one), one run's directory
(`offline-run-*` or `run-*`) or its `.wandb` transaction log. The log is decoded by
wandb-core's `leet inspect --json` (shipped in the wandb wheel, no network), so the format
stays wandb's business. History rows are indexed by `_step`; the run's config becomes the
config, its final summary, project and ids go into the bundle's `source` context. Media
(histograms, images, tables) and text values are skipped with a reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from epochscope.collectors.ingest.files import file_entry
from epochscope.collectors.ingest.jsonl import tabulate_records
from epochscope.collectors.ingest.registry import Options, Reader, SourceRun, uri_scheme
from epochscope.collectors.ingest.table import Table
from epochscope.errors import EpochscopeError
from epochscope.optional import require

_BOOKKEEPING = frozenset({"_runtime", "_timestamp"})
_TIMEOUT_S = 300


def run_files(src: Path) -> list[Path]:
    """The `.wandb` logs at `src` (a log, a run directory, a wandb directory or its parent)."""
    if src.is_file():
        return [src] if src.suffix == ".wandb" else []
    if not src.is_dir():
        return []
    own = sorted(src.glob("run-*.wandb"))
    if own:
        return own
    base = src / "wandb" if (src / "wandb").is_dir() and not any(src.glob("*run-*")) else src
    seen: dict[Path, Path] = {}
    for run_dir in sorted(base.glob("*run-*")):
        if run_dir.is_symlink() or not run_dir.is_dir():
            continue  # latest-run points at one of the others
        for log in sorted(run_dir.glob("run-*.wandb")):
            seen.setdefault(log.resolve(), log)
    return list(seen.values())


def detect(source: str) -> bool:
    return uri_scheme(source) is None and bool(run_files(Path(source)))


def read(source: str, options: Options) -> list[SourceRun]:
    src = Path(source)
    if options.epoch_column is not None:
        raise EpochscopeError("epoch_column does not apply to W&B runs: the history's _step is the index")
    logs = run_files(src)
    if not logs:
        raise EpochscopeError(f"{src}: no W&B runs (run-*.wandb in offline-run-*/ or run-*/ directories)")
    wandb_util = require("wandb.util", extra="wandb", purpose="reading W&B runs", package="wandb")
    core = wandb_util.get_core_path()
    if options.run is not None:
        logs = _select(src, logs, options.run)
    return [_read_log(core, log, options) for log in logs]


def _run_id(log: Path) -> str:
    return log.stem.removeprefix("run-")


def _select(src: Path, logs: list[Path], wanted: str) -> list[Path]:
    hits = [log for log in logs if _run_id(log) == wanted or log.parent.name == wanted]
    if not hits:
        listed = ", ".join(_run_id(log) for log in logs[:10])
        raise EpochscopeError(f"{src}: no W&B run {wanted!r}; runs: {listed}")
    return hits


def records(core: str, log: Path) -> list[dict[str, Any]]:
    """Every record of a `.wandb` log as wandb-core decodes it (one JSON object each)."""
    args = [core, "leet", "inspect", "-json", "-no-observability", "-run-file", str(log),
            str(log.parent.parent)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EpochscopeError(f"cannot run wandb's reader on {log}: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise EpochscopeError(f"wandb cannot read {log}: {reason}")
    out = []
    for line in done.stdout.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise EpochscopeError(f"wandb's reader printed something that is not JSON for {log}") from None
    return out


def _read_log(core: str, log: Path, options: Options) -> SourceRun:
    recs = records(core, log)
    run: dict[str, Any] = {}
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    nums: list[int] = []
    exit_code = None
    for rec in recs:
        kind = rec.get("type")
        if kind == "run":
            run = rec.get("run") or {}
            config.update((run.get("config") or {}).get("update") or {})
        elif kind == "config":
            config.update((rec.get("config") or {}).get("update") or {})
        elif kind == "summary":
            summary.update((rec.get("summary") or {}).get("update") or {})
        elif kind == "history":
            item = dict((rec.get("history") or {}).get("item") or {})
            if "_step" not in item:
                item["_step"] = ((rec.get("history") or {}).get("step") or {}).get("num", 0)
            rows.append(item)
            nums.append(int(rec.get("num", len(nums) + 1)))
        elif kind == "exit":
            exit_code = (rec.get("exit") or {}).get("exit_code", 0)
    config.pop("_wandb", None)
    run_id = run.get("run_id") or _run_id(log)
    name = run.get("display_name") or run_id
    label = f"{log}"
    skipped: dict[str, str] = {}
    drop = set(_BOOKKEEPING)
    for row in rows:
        for key, value in list(row.items()):
            if key.endswith("._type"):  # a media object: its fields are not series
                media = key.removesuffix("._type")
                skipped[media] = f"W&B {value} value, not a scalar"
                drop.update(k for k in row if k == media or k.startswith(media + "."))
    status = "interrupted" if exit_code is None else "complete" if exit_code == 0 else "failed"
    details = {"run_id": run_id, "project": run.get("project"), "entity": run.get("entity") or None,
               "start_time": run.get("start_time"), "exit_code": exit_code,
               "summary": {k: v for k, v in summary.items() if not k.startswith("_")
                           and isinstance(v, (int, float, str, bool)) and not k.endswith("._type")
                           and not any(k.startswith(m + ".") for m in skipped)}}
    files = [file_entry(log, f"{log.parent.name}/{log.name}")]
    if not rows:
        return SourceRun(name=name, table=Table(series={}, index="step"), files=files, run_id=run_id,
                         config=config, status=status, details=details, paths=[log])
    table = tabulate_records(Path(label), rows, nums, epoch_column="_step",
                             allow_nonfinite=options.allow_nonfinite, where="record",
                             drop=frozenset(drop))
    table.index, table.epoch_column = "step", None
    table.skipped.update(skipped)
    return SourceRun(name=name, table=table, files=files, run_id=run_id, config=config,
                     status=status, details=details, paths=[log])


READER = Reader(name="wandb", summary="W&B offline runs: a wandb/ directory, a run directory or .wandb file",
                read=read, detect=detect, order=30, extra="wandb",
                directory="W&B runs (offline-run-*/run-*.wandb)")
