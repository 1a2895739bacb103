"""Writing the telemetry profile (archives/telemetry.py) through a Recorder.

The Recorder's `episode`, `slots`, `counterfactual` and `dense` methods delegate here. Rows
of the profile's growing tables are kept in memory and each table is rewritten whole when it
changes (a table is replaced by name when segments merge); `slots` rows, written every epoch,
are batched to the Recorder's flush interval and written at close.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from epochscope.archives import ArtifactUpdate
from epochscope.archives import telemetry as tm
from epochscope.archives.format import dumps
from epochscope.collectors.attribution import (
    CounterfactualMatrix,
    counterfactual_matrix,
)

if TYPE_CHECKING:  # pragma: no cover
    from epochscope.collectors.recorder import Recorder

__all__ = ["TelemetryWriter"]

_NUMERIC_SLOT_FIELDS = ("alpha", "seed_params", "contribution", "total_improvement",
                        "improvement_this_epoch", "epochs_in_stage")
_STR_SLOT_FIELDS = ("slot", "stage", "seed_id", "blueprint", "last_gate", "last_gate_reason")


class TelemetryWriter:
    """The profile's in-memory rows for one Recorder, and the writes that store them."""

    def __init__(self, rec: Recorder):
        self.rec = rec
        self.episode: dict[str, Any] = {"telemetry_version": tm.TELEMETRY_VERSION}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._slots_dirty = False
        self._slots_written = time.monotonic()
        self.traces = 0
        self.steps_written = -1
        if rec.resume_epoch is not None:
            self._load_existing(rec.resume_epoch)

    def _load_existing(self, upto: int) -> None:
        """On resume, keep the rows of epochs up to the checkpoint the run restarts from."""
        with self.rec._writer.open_reader() as b:
            telemetry = tm.read_telemetry(b)
            self.episode.update(telemetry.episode)
            for name in (tm.SLOTS_TABLE, tm.COUNTERFACTUAL_TABLE, tm.ATTRIBUTION_TABLE,
                         tm.INTERACTIONS_TABLE):
                if name in b.table_names:
                    self.rows[name] = [r for r in tm._rows(b.table(name)) if int(r["epoch"]) <= upto]
            if tm.DENSE_TABLE in b.table_names:
                self.rows[tm.DENSE_TABLE] = [r for r in tm._rows(b.table(tm.DENSE_TABLE))
                                             if int(r["epoch_end"]) <= upto]
                self.traces = max((int(r["trace"]) for r in self.rows[tm.DENSE_TABLE]), default=0)
                self.steps_written = max((int(r["step_end"]) for r in self.rows[tm.DENSE_TABLE]),
                                         default=-1)

    # -- tier 1 ------------------------------------------------------------------------------
    def write_episode(self, fields: Mapping[str, Any]) -> None:
        for key, value in fields.items():
            self.episode[str(key)] = json.loads(dumps(value))
        keys = sorted(self.episode)
        self.rec._write(tables={tm.EPISODE_TABLE: {
            "key": np.asarray(keys, dtype=object),
            "value": np.asarray([dumps(self.episode[k]) for k in keys], dtype=object)}})

    # -- tier 2 ------------------------------------------------------------------------------
    def add_slots(self, epoch: int, snapshots: Sequence[Mapping[str, Any]]) -> None:
        rows = self.rows.setdefault(tm.SLOTS_TABLE, [])
        series: dict[str, float] = {}
        for snap in snapshots:
            unknown = set(snap) - set(tm.SLOT_COLUMNS)
            if unknown:
                raise ValueError(f"slot snapshot: unknown field(s) {sorted(unknown)}; "
                                 f"known: {', '.join(tm.SLOT_COLUMNS[1:])}")
            if "slot" not in snap:
                raise ValueError("slot snapshot: `slot` (its name) is required")
            row = {c: snap.get(c) for c in tm.SLOT_COLUMNS}
            row["epoch"] = int(epoch)
            rows.append(row)
            slot = str(snap["slot"])
            for f in _NUMERIC_SLOT_FIELDS:
                if snap.get(f) is not None:
                    series[tm.slot_series(slot, f)] = float(snap[f])
            stage = snap.get("stage")
            if stage in tm.STAGES:
                series[tm.slot_series(slot, "stage")] = float(tm.STAGES.index(stage))
        if series:
            self.rec.log(epoch, **series)
        self._slots_dirty = True
        if time.monotonic() - self._slots_written >= self.rec.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write the slots table if rows were added since it was last written."""
        if self._slots_dirty:
            self.rec._write(tables={tm.SLOTS_TABLE: _slot_columns(self.rows[tm.SLOTS_TABLE])})
            self._slots_dirty = False
            self._slots_written = time.monotonic()

    # -- counterfactuals ---------------------------------------------------------------------
    def counterfactual(self, epoch: int, evaluate: Callable[[dict[str, float]], Any],
                       slots: Mapping[str, float] | Sequence[str], *, metric: str | None,
                       max_factorial: int, permutations: int, seed: int | None) -> CounterfactualMatrix:
        m = counterfactual_matrix(epoch, evaluate, slots, metric=metric, max_factorial=max_factorial,
                                  permutations=permutations, seed=int(epoch) if seed is None else seed)
        self._store_matrix(m)
        return m

    def _store_matrix(self, m: CounterfactualMatrix) -> None:
        rec, epoch = self.rec, m.epoch
        for name in (tm.COUNTERFACTUAL_TABLE, tm.ATTRIBUTION_TABLE, tm.INTERACTIONS_TABLE):
            self.rows[name] = [r for r in self.rows.get(name, []) if int(r["epoch"]) != epoch]
        joined = ",".join(m.slots)
        for c in m.configs:
            self.rows[tm.COUNTERFACTUAL_TABLE].append({
                "epoch": epoch, "config": c.code, "slots": joined,
                "slots_on": ",".join(s for s, on in zip(m.slots, c.mask, strict=True) if on),
                "alphas": dumps(c.alphas), "value": c.value, "seconds": c.seconds,
                "error": c.error or "", **{f"metric.{k}": v for k, v in c.metrics.items()}})
        for s in m.slots:
            self.rows[tm.ATTRIBUTION_TABLE].append({
                "epoch": epoch, "slot": s, "metric": m.metric, "method": m.method,
                "marginal": m.marginal[s], "removal": m.removal[s], "shapley": m.shapley[s],
                "shapley_stderr": m.shapley_stderr[s], "full": m.full, "empty": m.empty,
                "evaluations": len(m.configs), "permutations": m.permutations, "seconds": m.seconds})
        for (a, b), v in m.interactions.items():
            self.rows[tm.INTERACTIONS_TABLE].append({"epoch": epoch, "slot_a": a, "slot_b": b,
                                                     "interaction": v})
        scalars = {"counterfactual.seconds": m.seconds, "counterfactual.evaluations": len(m.configs),
                   "counterfactual.full": m.full, "counterfactual.empty": m.empty}
        for s in m.slots:
            scalars[tm.slot_series(s, "shapley")] = m.shapley[s]
            scalars[tm.slot_series(s, "marginal")] = m.marginal[s]
            scalars[tm.slot_series(s, "removal")] = m.removal[s]
        rec.log(epoch, **scalars)
        message = (f"{len(m.configs)} configuration(s) of {len(m.slots)} slot(s) ({m.method}) "
                   f"in {m.seconds:.3g} s")
        rec.event(epoch, tm.COUNTERFACTUAL_EVENT, message, payload=m.summary())
        for c in m.errors:
            rec.event(epoch, tm.ALERT_EVENT, f"counterfactual configuration {c.code} failed: {c.error}",
                      payload={"reason": "counterfactual_error", "config": c.code, "error": c.error})
        nan = [c.code for c in m.configs if c.error is None and not math.isfinite(c.value)]
        if nan:
            rec.event(epoch, tm.ALERT_EVENT,
                      f"counterfactual {m.metric} is not finite for configuration(s) {', '.join(nan)}",
                      payload={"reason": "counterfactual_nan", "configs": nan})
        for note in m.notes:
            if "sampled" in note:
                rec.event(epoch, "counterfactual_sampling", note, payload={"slots": m.slots})
        tables = {name: _columns(self.rows[name], fixed) for name, fixed in (
            (tm.COUNTERFACTUAL_TABLE, tm.COUNTERFACTUAL_COLUMNS),
            (tm.ATTRIBUTION_TABLE, tm.ATTRIBUTION_COLUMNS),
            (tm.INTERACTIONS_TABLE, tm.INTERACTIONS_COLUMNS))}
        if self._slots_dirty:
            tables[tm.SLOTS_TABLE] = _slot_columns(self.rows[tm.SLOTS_TABLE])
            self._slots_dirty = False
        rec._write(tables=tables)

    # -- tier 3 ------------------------------------------------------------------------------
    def dense(self, epoch: int, trigger: str, *, batches: Mapping[str, Sequence[float]],
              steps: Sequence[int] | None, arrays: Mapping[str, Any] | None, end_epoch: int | None,
              reasons: Sequence[str] | None, value: float | None, threshold: float | None,
              mode: str, message: str) -> int:
        trigger = str(trigger)
        lengths = {len(v) for v in batches.values()}
        if len(lengths) > 1:
            raise ValueError(f"dense trace: per-batch columns differ in length: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        if steps is None:
            steps = np.arange(self.steps_written + 1, self.steps_written + 1 + n, dtype=np.int64)
        steps = np.asarray(steps, dtype=np.int64)
        if len(steps) != n:
            raise ValueError(f"dense trace: {len(steps)} steps for {n} batches")
        self.traces += 1
        trace = self.traces
        for name, values in batches.items():
            name = f"{tm.DENSE_SERIES_PREFIX}{name}"
            for s, v in zip(steps.tolist(), values, strict=True):
                self.rec.log(s, **{name: v})
        artifact = ""
        extra: dict[str, Any] = {}
        if arrays:
            artifact = tm.dense_artifact_name(trace)
            per_row = {k: np.asarray(v) for k, v in arrays.items()}
            for k, v in per_row.items():
                if v.shape[:1] != (n,):
                    raise ValueError(f"dense trace array {k!r}: {v.shape[:1]} rows for {n} batches")
            extra["artifacts"] = {artifact: ArtifactUpdate(
                version=tm.TELEMETRY_VERSION, epochs=steps, per_epoch=per_row,
                params={"trigger": trigger, "epoch_start": int(epoch),
                        "epoch_end": int(end_epoch if end_epoch is not None else epoch)})}
        end = int(end_epoch if end_epoch is not None else epoch)
        row = {"trace": trace, "trigger": trigger, "reasons": ",".join(reasons or [trigger]),
               "mode": mode, "epoch_start": int(epoch), "epoch_end": end,
               "step_start": int(steps[0]) if n else -1, "step_end": int(steps[-1]) if n else -1,
               "batches": n, "value": math.nan if value is None else float(value),
               "threshold": math.nan if threshold is None else float(threshold),
               "artifact": artifact, "message": str(message)}
        self.rows.setdefault(tm.DENSE_TABLE, []).append(row)
        if n:
            self.steps_written = max(self.steps_written, int(steps.max()))
        self.rec.event(epoch, tm.DENSE_EVENT, message or f"dense trace {trace}: {trigger}",
                       payload={k: row[k] for k in ("trace", "trigger", "reasons", "epoch_start",
                                                    "epoch_end", "step_start", "step_end", "batches")})
        self.rec._write(tables={tm.DENSE_TABLE: _columns(self.rows[tm.DENSE_TABLE], tm.DENSE_COLUMNS)},
                        **extra)
        return trace


def _columns(rows: list[dict[str, Any]], fixed: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows to table columns: `fixed` first, then any extra keys in first-seen order."""
    names = list(fixed) + [k for r in rows for k in r if k not in fixed]
    names = list(dict.fromkeys(names))
    out = {}
    for name in names:
        vals = [r.get(name) for r in rows]
        out[name] = _column(vals)
    return out


def _column(vals: list[Any]) -> np.ndarray:
    present = [v for v in vals if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present) and len(present) == len(vals):
        return np.asarray(vals, dtype=bool)
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present) \
            and len(present) == len(vals):
        return np.asarray(vals, dtype=np.int64)
    if all(v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)) for v in vals):
        return np.asarray([math.nan if v is None else float(v) for v in vals], dtype=np.float64)
    return np.asarray(["" if v is None else str(v) for v in vals], dtype=object)


def _slot_columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out = {}
    for name in tm.SLOT_COLUMNS:
        vals = [r.get(name) for r in rows]
        if name in _STR_SLOT_FIELDS:
            out[name] = np.asarray(["" if v is None else str(v) for v in vals], dtype=object)
        elif name == "last_gate_passed":
            # three states: passed, failed, no gate yet
            out[name] = np.asarray(["" if v is None else ("pass" if v else "fail") for v in vals],
                                   dtype=object)
        elif name in ("epoch", "epochs_in_stage", "seed_params"):
            out[name] = np.asarray([-1 if v is None else int(v) for v in vals], dtype=np.int64)
        else:
            out[name] = np.asarray([math.nan if v is None else float(v) for v in vals], dtype=np.float64)
    return out
