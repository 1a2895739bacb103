"""The telemetry profile: episode context, slot snapshots, counterfactuals and dense traces.

These are not new HDF5 element types: they are named tables, series, events and artifacts
(docs/bundle-format.md, "Telemetry profile"), so any reader and any generic chart shows them.
This module owns their names and columns and reads them back as one `Telemetry` view; a
bundle without them (every bundle older than the profile) reads as an empty view.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ALERT_EVENT",
    "ATTRIBUTION_TABLE",
    "COUNTERFACTUAL_TABLE",
    "DENSE_ARTIFACT_PREFIX",
    "DENSE_SERIES_PREFIX",
    "DENSE_TABLE",
    "EPISODE_TABLE",
    "GATE_EVENT",
    "INTERACTIONS_TABLE",
    "SLOTS_TABLE",
    "STAGES",
    "STAGE_EVENT",
    "TELEMETRY_VERSION",
    "TRIGGERS",
    "Telemetry",
    "dense_artifact_name",
    "read_telemetry",
    "slot_series",
]

TELEMETRY_VERSION = "1.0"  # stored in the episode table as `telemetry_version`

EPISODE_TABLE = "episode"              # key, value (JSON): tier 1, once per run
SLOTS_TABLE = "slots"                  # one row per (epoch, slot): tier 2
COUNTERFACTUAL_TABLE = "counterfactual"  # one row per (epoch, configuration)
ATTRIBUTION_TABLE = "attribution"      # one row per (epoch, slot): marginal, removal, Shapley
INTERACTIONS_TABLE = "interactions"    # one row per (epoch, slot pair)
DENSE_TABLE = "dense_traces"           # one row per dense trace (tier 3)
DENSE_SERIES_PREFIX = "dense."         # per-batch scalars, indexed by global batch step
DENSE_ARTIFACT_PREFIX = "dense."       # per-batch arrays of one trace, rows keyed by step

STAGE_EVENT = "stage_transition"
GATE_EVENT = "gate"
ALERT_EVENT = "alert"
DENSE_EVENT = "dense_trace"
COUNTERFACTUAL_EVENT = "counterfactual"

# Lifecycle stages in order; `slot.<slot>.stage` series hold the index into this tuple.
STAGES = ("dormant", "germinated", "training", "blending", "fossilised", "culled")
# Why a dense trace was taken.
TRIGGERS = ("stage_transition", "loss_spike", "accuracy_drop", "gradient_explosion",
            "gate_failure", "forced", "research_mode")

SLOT_COLUMNS = ("epoch", "slot", "stage", "epochs_in_stage", "seed_id", "blueprint", "seed_params",
                "alpha", "contribution", "total_improvement", "improvement_this_epoch",
                "last_gate", "last_gate_passed", "last_gate_reason")
COUNTERFACTUAL_COLUMNS = ("epoch", "config", "slots", "slots_on", "alphas", "value", "seconds", "error")
ATTRIBUTION_COLUMNS = ("epoch", "slot", "metric", "method", "marginal", "removal", "shapley",
                       "shapley_stderr", "full", "empty", "evaluations", "permutations", "seconds")
INTERACTIONS_COLUMNS = ("epoch", "slot_a", "slot_b", "interaction")
DENSE_COLUMNS = ("trace", "trigger", "reasons", "mode", "epoch_start", "epoch_end", "step_start",
                 "step_end", "batches", "value", "threshold", "artifact", "message")


def slot_series(slot: str, field_name: str) -> str:
    """Name of a per-slot series, e.g. `slot.mid.alpha`."""
    return f"slot.{slot}.{field_name}"


def dense_artifact_name(trace: int) -> str:
    return f"{DENSE_ARTIFACT_PREFIX}{int(trace):04d}"


@dataclass
class Telemetry:
    """Everything of the profile a bundle holds; empty lists and dicts where it holds none."""

    episode: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, np.ndarray] = field(default_factory=dict)
    counterfactuals: list[dict[str, Any]] = field(default_factory=list)
    dense_traces: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    stage_transitions: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.episode or self.counterfactuals or self.dense_traces or len(self.slots))

    def counterfactual_at(self, epoch: int) -> dict[str, Any]:
        for cf in self.counterfactuals:
            if cf["epoch"] == epoch:
                return cf
        raise KeyError(f"no counterfactual matrix at epoch {epoch}; have "
                       f"{[cf['epoch'] for cf in self.counterfactuals]}")


def read_telemetry(bundle: Any) -> Telemetry:
    """The profile's elements of an open `Bundle`, assembled (empty for bundles without them)."""
    tables = set(bundle.table_names)
    out = Telemetry()
    if EPISODE_TABLE in tables:
        t = bundle.table(EPISODE_TABLE)
        out.episode = {str(k): json.loads(str(v)) for k, v in zip(t["key"], t["value"], strict=True)}
    if SLOTS_TABLE in tables:
        out.slots = bundle.table(SLOTS_TABLE)
    if COUNTERFACTUAL_TABLE in tables:
        out.counterfactuals = _counterfactuals(bundle, tables)
    if DENSE_TABLE in tables:
        out.dense_traces = _dense(bundle)
    out.alerts = bundle.events(ALERT_EVENT)
    out.stage_transitions = bundle.events(STAGE_EVENT)
    out.gates = bundle.events(GATE_EVENT)
    return out


def _rows(table: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    cols = list(table)
    n = len(table[cols[0]]) if cols else 0
    return [{c: _py(table[c][i]) for c in cols} for i in range(n)]


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _counterfactuals(bundle: Any, tables: set[str]) -> list[dict[str, Any]]:
    by_epoch: dict[int, dict[str, Any]] = {}
    for row in _rows(bundle.table(COUNTERFACTUAL_TABLE)):
        cf = by_epoch.setdefault(int(row["epoch"]), {
            "epoch": int(row["epoch"]), "slots": str(row["slots"]).split(",") if row["slots"] else [],
            "configs": [], "attribution": {}, "interactions": {}})
        cf["configs"].append({**row, "alphas": json.loads(row["alphas"]),
                              "error": row["error"] or None})
    if ATTRIBUTION_TABLE in tables:
        for row in _rows(bundle.table(ATTRIBUTION_TABLE)):
            cf = by_epoch.get(int(row["epoch"]))
            if cf is not None:
                cf["attribution"][row["slot"]] = row
                for key in ("metric", "method", "full", "empty", "evaluations", "permutations", "seconds"):
                    cf[key] = row[key]
    if INTERACTIONS_TABLE in tables:
        for row in _rows(bundle.table(INTERACTIONS_TABLE)):
            cf = by_epoch.get(int(row["epoch"]))
            if cf is not None:
                cf["interactions"][(row["slot_a"], row["slot_b"])] = row["interaction"]
    for cf in by_epoch.values():
        shap = [a["shapley"] for a in cf["attribution"].values()]
        cf["efficiency_gap"] = (sum(shap) - (cf["full"] - cf["empty"])
                                if shap and "full" in cf else math.nan)
    return [by_epoch[e] for e in sorted(by_epoch)]


def _dense(bundle: Any) -> list[dict[str, Any]]:
    traces = []
    series = {n[len(DENSE_SERIES_PREFIX):]: bundle.series(n) for n in bundle.series_names
              if n.startswith(DENSE_SERIES_PREFIX)}
    arts = set(bundle.artifact_names)
    for row in _rows(bundle.table(DENSE_TABLE)):
        lo, hi = int(row["step_start"]), int(row["step_end"])
        batches = {}
        for name, (steps, values) in series.items():
            keep = (steps >= lo) & (steps <= hi)
            if keep.any():
                batches[name] = (steps[keep], values[keep])
        arrays = {}
        if row["artifact"] in arts:
            art = bundle.artifact(row["artifact"])
            arrays = {n: art.per_epoch(n) for n in art.names}
        traces.append({**row, "reasons": str(row["reasons"]).split(",") if row["reasons"] else [],
                       "batches": batches, "arrays": arrays, "n_batches": int(row["batches"])})
    return traces
