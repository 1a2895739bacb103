"""The Recorder: turns any PyTorch training loop into a run bundle in three lines.

    with epochscope.Recorder("runs/my-run.h5", config=cfg) as rec:
        rec.log(epoch, train_loss=..., test_loss=...)
        rec.checkpoint(epoch, model, optimizer)

Scalars are buffered in memory (a dict lookup and two list appends per value) and written
as one journal segment every `flush_interval` seconds, at each checkpoint and on close, so
a killed run keeps everything up to its last flush.

Beyond scalars: `log_step` (per-step series with a step index beside the epoch), `array`
(per-epoch arrays), `table`/`append_rows`/`row` (whole or growing tables), `event`, and
`keep_best` (keep only the top-k checkpoints by a metric, as Lightning's ModelCheckpoint).
"""

from __future__ import annotations

import contextlib
import getpass
import math
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from epochscope import __version__
from epochscope.archives import ArtifactUpdate, BundleWriter, Segment
from epochscope.archives.errors import DiskFullError
from epochscope.archives.format import check_name
from epochscope.archives.reader import ARRAY_PREFIX, BEST_TABLE
from epochscope.errors import EpochscopeError

__all__ = ["Recorder"]

_MAX_BUFFERED_POINTS = 1_000_000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Recorder:
    """Buffered, crash-safe writer of one run bundle.

    `resume=True` reopens an existing bundle: `resume_epoch` is its last checkpoint, and
    metrics and events after that epoch are dropped (the replay from it logs them again).
    """

    def __init__(self, path: str | os.PathLike, config: dict[str, Any] | None = None, *,
                 seeds: dict[str, int] | None = None, overwrite: bool = False, resume: bool = False,
                 flush_interval: float = 2.0, device: str | None = None,
                 consolidate_on_close: bool = True, durable: bool = True):
        self.path = Path(path)
        self.config = dict(config or {})
        self.flush_interval = float(flush_interval)
        self._consolidate_on_close = consolidate_on_close
        self._closed = False
        self._session = {"id": uuid.uuid4().hex, "started": _now(), "argv": list(sys.argv),
                         "host": socket.gethostname(), "pid": os.getpid(), "status": "running",
                         "epochscope": __version__}
        self._buffer: dict[str, tuple[list[int], list[float]]] = {}
        self._events: list[dict[str, Any]] = []
        self._info: dict[str, dict[str, str]] = {}
        self._points = 0
        self._last_flush = time.monotonic()
        self.resume_epoch: int | None = None
        if not resume:
            # Like every logger: "runs/my-run.h5" works without creating runs/ first.
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Per-step series, per-epoch arrays, appended table rows: buffered like scalars.
        self._step_buffer: dict[str, tuple[list[int], list[int], list[float]]] = {}
        self._stepped: set[str] = set()  # a series name keeps one kind: per step or per epoch
        self._seen_per_epoch: set[str] = set()
        self._resuming = resume
        self._arrays: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        self._array_shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._rows: dict[str, dict[str, list[Any]]] = {}
        self._schemas: dict[str, dict[str, np.dtype]] = {}
        # keep_best: (monitor, k, mode), the kept (score, epoch) best first, the monitor's last value
        self._policy: tuple[str, int, str] | None = None
        self._best: list[tuple[float, int]] = []
        self._always: set[int] = set()
        self._monitor_last: float | None = None
        # Ranked checkpoints not yet written (owned copies): written with the next segment, so
        # one that falls out of the top k before then is never written at all.
        self._pending_best: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._dropped: list[int] = []  # written ranked checkpoints since outranked
        self._pending_tables: dict[str, dict[str, np.ndarray]] = {}  # table() calls not yet written
        # durable=False skips fsync: a killed process still leaves only whole segments, but a
        # power loss may drop the newest ones (never corrupt older data).
        self._writer = BundleWriter(self.path, create=not resume, overwrite=overwrite, durable=durable)
        try:
            if resume:
                self._open_for_resume()
            else:
                env = environment(device)
                self._writer.write(Segment(
                    context={"config": self.config, "seeds": seeds or _seeds_from(self.config),
                             "environment": env},
                    session=self._session))
        except BaseException:
            self._writer.close()
            raise

    def _open_for_resume(self) -> None:
        from epochscope.collectors.checkpoints import config_differences

        with self._writer.open_reader() as b:
            stored = b.config
            if self.config:
                diffs = config_differences(stored, self.config)
                if diffs:
                    raise EpochscopeError(
                        f"cannot resume {self.path}: config differs from the stored one: {'; '.join(diffs)}")
            self.config = stored
            epochs = b.checkpoint_epochs
            self.resume_epoch = epochs[-1] if epochs else None
            # We hold the lock: a session still marked running was killed. Say so.
            killed = [{"id": s["id"], "status": "interrupted"} for s in b.sessions
                      if s.get("status") in (None, "running") and "id" in s]
        self._writer.write(Segment(session=self._session, sessions=killed or None,
                                   truncate_after=-1 if self.resume_epoch is None else self.resume_epoch))

    # -- recording ---------------------------------------------------------------------------
    def log(self, epoch: int, /, **scalars: float) -> None:
        """Buffer named scalars at `epoch` (any index your loop counts: epoch or step).

        `epoch` is positional-only, so a series may be named "epoch" too (Lightning logs one).
        """
        buf = self._buffer
        for name, value in scalars.items():
            entry = buf.get(name)
            if entry is None:
                check_name(name)
                if name in self._stepped:
                    raise EpochscopeError(f"series {name!r} is logged per step: use log_step for it")
                entry = buf[name] = ([], [])
            entry[0].append(epoch)
            entry[1].append(float(value))
        self._points += len(scalars)
        if self._policy is not None and self._policy[0] in scalars:
            self._monitor_last = float(scalars[self._policy[0]])
        if self._points >= _MAX_BUFFERED_POINTS or time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def describe(self, name: str, *, direction: str | None = None, unit: str | None = None,
                 description: str | None = None) -> None:
        """Declare what series `name` means: `direction` "min" (lower is better) or "max",
        its `unit` and a one-line `description`. Reports use them for the series' headline
        (best value, "peaked, then degraded") and its help text; a later call updates the
        fields it gives. Stored in the bundle with the next write."""
        check_name(name)
        if direction is not None and direction not in ("min", "max"):
            raise EpochscopeError(f"describe({name!r}): direction must be 'min' or 'max', not {direction!r}")
        fields = {k: str(v) for k, v in (("direction", direction), ("unit", unit),
                                          ("description", description)) if v is not None}
        if fields:
            self._info.setdefault(name, {}).update(fields)

    def log_step(self, epoch: int, step: int, **scalars: float) -> None:
        """Buffer per-step scalars: `step` (e.g. the step inside the epoch, or the global step)
        is stored beside `epoch`, for monitors that run every step inside an epoch."""
        buf = self._step_buffer
        for name, value in scalars.items():
            entry = buf.get(name)
            if entry is None:
                check_name(name)
                if name in self._buffer or name in self._seen_per_epoch:
                    raise EpochscopeError(f"series {name!r} is logged per epoch: use log for it")
                self._stepped.add(name)
                entry = buf[name] = ([], [], [])
            entry[0].append(epoch)
            entry[1].append(step)
            entry[2].append(float(value))
        self._points += len(scalars)
        if self._policy is not None and self._policy[0] in scalars:
            self._monitor_last = float(scalars[self._policy[0]])
        if self._points >= _MAX_BUFFERED_POINTS or time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def array(self, epoch: int, name: str, values: Any) -> None:
        """Record an array at `epoch` (e.g. every neuron's age at a checkpoint).

        Stored as the artifact `array.<name>` (rows stacked per epoch), so every epoch of one
        name must have the same shape and dtype kind. Read back with `Bundle.array(name)`.
        """
        arr = np.array(values)  # a copy: the caller may change its array after this call
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"array {name!r}: numbers or bools only, not {arr.dtype}")
        known = self._array_shapes.get(name)
        if known is None:
            check_name(name)
            self._array_shapes[name] = (arr.shape, arr.dtype)
        elif known[0] != arr.shape:
            raise ValueError(f"array {name!r}: shape {arr.shape} at epoch {epoch}, "
                             f"earlier epochs have {known[0]}")
        elif not np.can_cast(arr.dtype, known[1], casting="same_kind"):
            raise TypeError(f"array {name!r}: {arr.dtype} at epoch {epoch}, earlier epochs are {known[1]}")
        else:
            arr = arr.astype(known[1], copy=False)
        entry = self._arrays.setdefault(name, ([], []))
        entry[0].append(int(epoch))
        entry[1].append(arr)
        self._points += max(1, arr.size // 64)

    def event(self, epoch: int, kind: str, message: str = "", payload: dict[str, Any] | None = None) -> None:
        """Record something that happened at `epoch` (a switch, a pruning step, an alarm...)."""
        self._events.append({"epoch": int(epoch), "kind": str(kind), "message": str(message),
                             "payload": payload or {}})

    def checkpoint(self, epoch: int, model: Any, optimizer: Any = None, *, rng: bool = True,
                   score: float | None = None, always: bool = False) -> bool:
        """Store weights, optimizer and RNG state at `epoch`, plus the model's class and config.

        Pending metrics and events are written in the same atomic segment. It is durable
        once the next `flush` (or the next timed flush, or `close`) returns.
        After `keep_best`, the checkpoint is ranked by `score` (default: the monitored
        metric's last logged value) and stored only if it is among the best k; one that
        falls out of the top k is removed. A ranked checkpoint is held (copied) until the
        next segment is written (the next timed flush, `flush`, `table`, unranked checkpoint
        or `close`), so one outranked before then is never written. `always=True` stores it
        unranked, never removed.
        Returns whether it was stored.
        """
        from epochscope.collectors.checkpoints import capture_checkpoint

        if self._policy is not None and not always:
            return self._ranked_checkpoint(int(epoch), model, optimizer, rng, score)
        if self._policy is not None:
            self._always.add(int(epoch))

        meta, tree = capture_checkpoint(model, optimizer, rng=rng)
        # The fsync happens in the background: training goes on while the disk catches up.
        self._write(checkpoints={int(epoch): (meta, tree)}, wait=False)
        return True

    def keep_best(self, monitor: str, k: int = 1, mode: str = "min") -> None:
        """Keep only the `k` best checkpoints by metric `monitor` (`mode` "min" or "max").

        Like Lightning's `ModelCheckpoint(monitor=..., save_top_k=k, mode=...)`: from now on
        `checkpoint` ranks each call; the bundle records the policy and the ranking (table
        `best_checkpoints`, `Bundle.best_checkpoints`). NaN scores are never kept.
        """
        if mode not in ("min", "max"):
            raise EpochscopeError(f"keep_best: mode={mode!r} must be 'min' or 'max'")
        if int(k) < 1:
            raise EpochscopeError(f"keep_best: k={k} must be at least 1")
        check_name(monitor)
        self._policy = (monitor, int(k), mode)
        if self.resume_epoch is not None:  # continue the ranking the bundle holds
            with self._writer.open_reader() as b:
                self._best = [(r["score"], r["epoch"]) for r in b.best_checkpoints]
        self._write(checkpoint_policy={"kind": "top-k", "monitor": monitor, "k": int(k), "mode": mode})

    def _ranked_checkpoint(self, epoch: int, model: Any, optimizer: Any, rng: bool,
                           score: float | None) -> bool:
        from epochscope.collectors.checkpoints import capture_checkpoint, owned

        monitor, k, mode = self._policy  # type: ignore[misc]
        if score is None:
            if self._monitor_last is None:
                raise EpochscopeError(f"checkpoint at epoch {epoch}: no {monitor!r} logged yet "
                                      "to rank it by (log it first, or pass score=)")
            score = self._monitor_last
        score = float(score)
        if not math.isfinite(score):
            return False
        sign = 1.0 if mode == "min" else -1.0
        ranked = sorted([*self._best, (score, epoch)], key=lambda se: (sign * se[0], se[1]))[:k]
        if (score, epoch) not in ranked:
            return False
        for s, e in self._best:
            if (s, e) not in ranked and e not in self._always:
                if self._pending_best.pop(e, None) is None:  # written already: remove it
                    self._dropped.append(e)
        self._best = ranked
        # Held (as a copy) until the next segment is written: the next timed flush, checkpoint
        # or close. Durable from then on, as the docstring of `checkpoint` promises; one that is
        # outranked before then costs no write (a search offers a checkpoint per candidate).
        meta, tree = capture_checkpoint(model, optimizer, rng=rng)
        self._pending_best[epoch] = (meta, owned(tree))
        self._points += 1
        return True

    def table(self, name: str, columns: dict[str, Any]) -> None:
        """Store (or replace) a small named table, e.g. the candidates of a search.

        Rows appended to `name` before and not yet written are replaced too; later
        `append_rows` extend this table and must match its columns. Buffered (a copy) like
        scalars: written with the next segment, so a table rewritten as it grows (a search's
        candidates, once per generation) costs one write per flush, not one per call.
        """
        check_name(name)
        cols = {check_name(str(k)): np.array(v) for k, v in columns.items()}  # copies
        schema = {k: _column_dtype(v) for k, v in cols.items()}
        lengths = {len(np.atleast_1d(v)) for v in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"table {name!r}: columns differ in length: {sorted(lengths)}")
        self._rows.pop(name, None)
        self._schemas[name] = schema
        self._pending_tables[name] = cols
        self._points += (lengths.pop() if lengths else 0) * len(cols)

    def append_rows(self, name: str, columns: dict[str, Any]) -> None:
        """Append rows to table `name` (columns of equal length), creating it on first use.

        The first rows fix the columns and their dtypes; later rows must have the same
        columns and are cast to those dtypes (an int into a float column is fine, a float
        into an int column or a string into a number column is an error). Written at the
        next flush, in order, so a growing table survives a crash up to its last flush.
        """
        schema = self._schemas.get(name)
        if schema is None:
            check_name(name)
            schema = self._schemas[name] = self._stored_schema(name) or {
                check_name(str(k)): _column_dtype(np.asarray(v)) for k, v in columns.items()}
        if list(columns) != list(schema):
            raise EpochscopeError(f"table {name!r}: rows have columns {list(columns)}, "
                                  f"the table has {list(schema)}")
        cast, lengths = {}, set()
        for col, values in columns.items():
            arr = np.atleast_1d(np.asarray(values))
            cast[col] = _cast_column(name, col, arr, schema[col])
            lengths.add(len(arr))
        if len(lengths) > 1:
            raise ValueError(f"table {name!r}: appended columns differ in length: {sorted(lengths)}")
        whole = self._pending_tables.get(name)
        if whole is not None:  # replaced and not written yet: the rows extend the replacement
            for col, arr in cast.items():
                whole[col] = np.concatenate([np.atleast_1d(whole[col]), arr])
            self._points += lengths.pop() * len(schema)
            return
        pending = self._rows.setdefault(name, {c: [] for c in schema})
        for col, arr in cast.items():
            pending[col].append(arr)
        self._points += lengths.pop() * len(schema)

    def row(self, name: str, **cells: Any) -> None:
        """Append one row to table `name` (see `append_rows`)."""
        self.append_rows(name, {k: [v] for k, v in cells.items()})

    def _stored_schema(self, name: str) -> dict[str, np.dtype] | None:
        if not self._resuming:
            return None
        with self._writer.open_reader() as b:
            if name not in b.table_names:
                return None
            return {c: _column_dtype(v) for c, v in b.table(name).items()}

    # -- telemetry profile (archives/telemetry.py; written by collectors/telemetry.py) --------
    @property
    def _telemetry(self):
        from epochscope.collectors.telemetry import TelemetryWriter

        if getattr(self, "_telemetry_writer", None) is None:
            self._telemetry_writer = TelemetryWriter(self)
        return self._telemetry_writer

    def episode(self, **fields: Any) -> None:
        """Tier 1: record run-level context (architecture, parameter counts, slot layout,
        baseline results...) into the `episode` table; later calls add or replace keys."""
        self._telemetry.write_episode(fields)

    def slots(self, epoch: int, snapshots: list[dict[str, Any]]) -> None:
        """Tier 2: one snapshot per slot at `epoch` (`slot`, `stage`, `alpha`, `seed_params`,
        `contribution`, gate fields...; see archives/telemetry.py SLOT_COLUMNS)."""
        self._telemetry.add_slots(epoch, snapshots)

    def counterfactual(self, epoch: int, evaluate: Any, slots: Any, *, metric: str | None = None,
                       max_factorial: int = 4, permutations: int = 20, seed: int | None = None) -> Any:
        """Evaluate slot on/off configurations through `evaluate` and store the attribution.

        `slots`: names (on = alpha 1) or {name: alpha when on}. `evaluate({slot: alpha})`
        returns a number or a dict of metrics. Up to `max_factorial` slots every configuration
        is run, beyond that Shapley values come from `permutations` sampled orderings (an
        event says so). A callback that raises is recorded (an alert) and the rest goes on.
        Returns the `CounterfactualMatrix` (collectors/attribution.py).
        """
        return self._telemetry.counterfactual(epoch, evaluate, slots, metric=metric,
                                              max_factorial=max_factorial,
                                              permutations=permutations, seed=seed)

    def dense(self, epoch: int, trigger: str = "forced", *, batches: dict[str, Any],
              steps: Any = None, arrays: dict[str, Any] | None = None, end_epoch: int | None = None,
              reasons: list[str] | None = None, value: float | None = None,
              threshold: float | None = None, mode: str = "standard", message: str = "") -> int:
        """Tier 3: store one dense trace of the epochs `epoch`..`end_epoch`, taken for `trigger`.

        `batches`: per-batch scalars {name: values} (series `dense.<name>`, indexed by global
        batch `steps`, default: consecutive after the last trace); `arrays`: per-batch arrays
        (gradient histograms, activation statistics; artifact `dense.<trace>`). Returns the
        trace's number. `collectors/dense.py` decides when to call it (triggers and modes).
        """
        return self._telemetry.dense(epoch, trigger, batches=batches, steps=steps, arrays=arrays,
                                     end_epoch=end_epoch, reasons=reasons, value=value,
                                     threshold=threshold, mode=mode, message=message)

    def split(self, n: int, subsets: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Record how the `n` examples were split (e.g. {"train": idx, "test": idx}, indices
        into the dataset in the order `meta` describes), so analysis never has to rebuild it."""
        self._write(split={"n": int(n), "subsets": {k: np.asarray(v) for k, v in subsets.items()},
                           "meta": dict(meta or {})})

    def flush(self) -> None:
        """Write buffered scalars and events now; when it returns, all so far is durable
        (checkpoints whose commit was still running in the background included)."""
        self._write()
        self._writer.sync()

    def _write(self, wait: bool = True, **extra: Any) -> None:
        if self._closed:
            raise EpochscopeError(f"recorder for {self.path} is closed")
        metrics = {name: (np.asarray(e, dtype=np.int64), np.asarray(v, dtype=np.float64))
                   for name, (e, v) in self._buffer.items() if e}
        for key, value in self._pending_extras(metrics).items():
            if key == "checkpoints" and key in extra:
                extra[key] = {**value, **extra[key]}  # the caller's checkpoint at an epoch wins
            elif key in extra and isinstance(value, dict):
                extra[key] = {**extra[key], **value}  # e.g. a caller's artifacts and recorded arrays
            else:
                extra[key] = value
        self._writer.write(Segment(metrics=metrics, events=self._events, metric_info=self._info, **extra),
                           wait=wait)
        self._seen_per_epoch.update(self._buffer)
        self._buffer = {}
        self._step_buffer, self._arrays, self._rows = {}, {}, {}
        self._pending_best, self._dropped, self._pending_tables = {}, [], {}
        self._events = []
        self._info = {}
        self._points = 0
        self._last_flush = time.monotonic()

    def _pending_extras(self, metrics: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        """Per-step series (into `metrics`), arrays and appended rows for the next segment."""
        out: dict[str, Any] = {}
        steps = {}
        for name, (e, st, v) in self._step_buffer.items():
            metrics[name] = (np.asarray(e, dtype=np.int64), np.asarray(v, dtype=np.float64))
            steps[name] = np.asarray(st, dtype=np.int64)
        if steps:
            out["metric_steps"] = steps
        if self._arrays:
            out["artifacts"] = {
                ARRAY_PREFIX + name: ArtifactUpdate(
                    version="recorder-1", epochs=np.asarray(eps, dtype=np.int64),
                    per_epoch={name: np.stack(vals)}, params={"recorded_by": "Recorder.array"})
                for name, (eps, vals) in self._arrays.items()}
        if self._rows:
            out["table_rows"] = {name: {c: np.concatenate(parts) for c, parts in cols.items()}
                                 for name, cols in self._rows.items()}
        if self._pending_tables:
            out["tables"] = dict(self._pending_tables)
        if self._pending_best or self._dropped:
            out["checkpoints"] = dict(self._pending_best)
            out["drop_checkpoints"] = list(self._dropped)
            out.setdefault("tables", {})[BEST_TABLE] = {
                "rank": np.arange(1, len(self._best) + 1, dtype=np.int64),
                "epoch": np.asarray([e for _, e in self._best], dtype=np.int64),
                "score": np.asarray([s for s, _ in self._best], dtype=np.float64)}
        return out

    def close(self, status: str = "complete") -> None:
        """Flush, mark the session ended with `status`, and consolidate into one file."""
        if self._closed:
            return
        if getattr(self, "_telemetry_writer", None) is not None:
            self._telemetry_writer.flush()  # the slots table is batched
        try:
            session = dict(self._session, status=status, ended=_now())
            self._write(session=session)
            self._closed = True
            if self._consolidate_on_close:
                self._writer.consolidate()
        finally:
            self._closed = True
            self._writer.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close("complete")
            return
        status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        if issubclass(exc_type, DiskFullError):
            # Consolidating needs more room than there is: keep the journal (readable, and
            # `resume` continues it) and let the original error through. Writing the session's
            # end may fail too: then it reads as interrupted, which it is.
            self._consolidate_on_close = False
            with contextlib.suppress(EpochscopeError, OSError):
                self.close("interrupted")
            return
        if not self._closed:
            self.event(self._last_epoch(), "error", f"{exc_type.__name__}: {exc}")
        self.close(status)

    def _last_epoch(self) -> int:
        last = [e[-1] for e, _ in self._buffer.values() if e]
        last += [e[0][-1] for e in self._step_buffer.values() if e[0]]
        return int(max(last)) if last else (self.resume_epoch or 0)


def _column_dtype(arr: np.ndarray) -> np.dtype:
    """The stored dtype of a table column: strings as object, numbers as given."""
    if arr.dtype.kind in "UOS":
        return np.dtype(object)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"table column of dtype {arr.dtype}: numbers, bools or strings only")
    return arr.dtype


def _cast_column(table: str, col: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "O":
        if arr.dtype.kind not in "UOS":
            raise EpochscopeError(f"table {table!r} column {col!r} holds strings, got {arr.dtype}")
        return np.asarray([str(x) for x in arr], dtype=object)
    if arr.dtype.kind in "UOS" or not np.can_cast(arr.dtype, dtype, casting="same_kind"):
        raise EpochscopeError(f"table {table!r} column {col!r} is {dtype}, cannot store {arr.dtype} in it")
    return arr.astype(dtype, copy=False)


def _seeds_from(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if "seed" in str(k).lower()}


def environment(device: str | None = None) -> dict[str, Any]:
    """Everything about the machine and software a reproduction needs to know."""
    import h5py

    env: dict[str, Any] = {
        "python": sys.version.split()[0], "numpy": np.__version__, "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version, "epochscope": __version__,
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "host": socket.gethostname(), "user": _user(), "cwd": os.getcwd(), "argv": list(sys.argv),
        "started": _now(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
    env["device"] = device or "cpu"
    env["git"] = _git_state(Path.cwd())
    return env


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _git_state(cwd: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the caller's working directory, when it is a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
