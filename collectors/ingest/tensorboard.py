"""TensorBoard event files: scalar summaries (TF1 simple values, TF2 scalar tensors) by step.

A directory is searched recursively for event files (names containing `tfevents`); with
several run directories each series is prefixed by its run's path.
"""

from __future__ import annotations

from pathlib import Path

from epochscope.collectors.ingest.files import file_entry
from epochscope.collectors.ingest.registry import Options, Reader, SourceRun, uri_scheme
from epochscope.collectors.ingest.table import Table, add_series
from epochscope.errors import EpochscopeError


def event_files(src: Path, *, required: bool = True) -> list[Path]:
    """Event files TensorBoard would read (names containing 'tfevents'), sorted."""
    if src.is_dir():
        files = sorted(p for p in src.rglob("*tfevents*") if p.is_file())
    else:
        files = [src]
    if not files and required:
        raise EpochscopeError(f"no TensorBoard event files (events.out.tfevents*) under {src}")
    return files


def detect(source: str) -> bool:
    if uri_scheme(source) is not None:
        return False
    src = Path(source)
    if src.is_dir():
        return bool(event_files(src, required=False))
    return "tfevents" in src.name


def read(source: str, options: Options) -> list[SourceRun]:
    src = Path(source)
    if not src.exists():
        raise EpochscopeError(f"no such file or directory: {src}")
    if options.epoch_column is not None:
        raise EpochscopeError("epoch_column does not apply to TensorBoard logs: the step is the index")
    files = event_files(src)
    table = _read_scalars(src, files, options.allow_nonfinite)
    hashes = [file_entry(p, p.relative_to(src).as_posix() if src.is_dir() else p.name) for p in files]
    name = (src if src.is_dir() else src.parent).resolve().name or "run"
    return [SourceRun(name=name, table=table, files=hashes, paths=[src, *files])]


def _read_scalars(src: Path, files: list[Path], allow_nonfinite: bool) -> Table:
    """Scalar summaries of every run directory (TensorBoard's own reader, all events kept)."""
    import logging

    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    runs = sorted({p.parent for p in files}) if src.is_dir() else [src]
    guidance = {ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 1, ea.AUDIO: 1, ea.HISTOGRAMS: 1,
                ea.COMPRESSED_HISTOGRAMS: 1}
    table = Table(series={}, index="step")
    table.details["runs"] = [r.relative_to(src).as_posix() if src.is_dir() else r.name for r in runs]
    tb_log = logging.getLogger("tensorboard")
    level = tb_log.level
    tb_log.setLevel(logging.ERROR)  # truncated-file warnings: the "no scalars" error says it
    try:
        for run in runs:
            rel = run.relative_to(src).as_posix() if src.is_dir() and run != src else ""
            prefix = rel + "/" if rel and len(runs) > 1 else ""
            acc = ea.EventAccumulator(str(run), size_guidance=guidance)
            try:
                acc.Reload()
            except Exception as exc:  # noqa: BLE001 - any reader failure is a bad-input line
                raise EpochscopeError(f"cannot read TensorBoard events in {run}: {exc}") from None
            tags = acc.Tags()
            found: list[tuple[str, list[int], list[float]]] = []
            for tag in tags.get(ea.SCALARS, []):
                events = acc.Scalars(tag)
                found.append((tag, [int(e.step) for e in events], [float(e.value) for e in events]))
            for tag in tags.get(ea.TENSORS, []):
                plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
                if plugin != "scalars":
                    table.skipped[prefix + tag] = f"{plugin or 'tensor'} summary, not a scalar"
                    continue
                steps, values = [], []
                for e in acc.Tensors(tag):
                    arr = tensor_util.make_ndarray(e.tensor_proto)
                    if arr.size != 1 or arr.dtype.kind not in "biuf":
                        table.skipped[prefix + tag] = "scalar summary holding a non-number"
                        break
                    steps.append(int(e.step))
                    values.append(float(arr.reshape(())))
                else:
                    found.append((tag, steps, values))
            for key in (ea.HISTOGRAMS, ea.IMAGES, ea.AUDIO):
                for tag in tags.get(key, []):
                    table.skipped.setdefault(prefix + tag, f"{key} summary, not a scalar")
            for tag, steps, values in found:
                add_series(src, table, prefix + tag, steps, values, allow_nonfinite)
    finally:
        tb_log.setLevel(level)
    if not table.series:
        what = (f"; other summaries: {', '.join(table.skipped)}" if table.skipped
                else "; the files hold no readable summaries")
        raise EpochscopeError(
            f"{src}: no scalar events in {len(files)} TensorBoard event file(s){what}")
    return table


READER = Reader(name="tensorboard", summary="TensorBoard event files (a directory or one tfevents file)",
                read=read, detect=detect, order=10,
                directory="TensorBoard event files (events.out.tfevents*)")
