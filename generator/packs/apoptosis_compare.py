"""The apoptosis pack's comparison chart: the experiment log's strategy table, one row per
compared apoptosis run (a sweep over `strategy` and the rates gives the notes' table).

Every figure is one the collector computed and stored in the run's `finished` event
(collectors/experiments/apoptosis.py `_final`): final validation loss, the gap to the
`none` baseline trained alongside (same init, same batches), the train-loss variance over
the second half, the number of apoptosis rounds and the distinct neuron ages at the end.
Nothing is recomputed here; the page renders the spec as an HTML table (kind "table",
templates/compare_packs.js).
"""

from __future__ import annotations

import math
from typing import Any

from epochscope.archives import open_bundle
from epochscope.errors import EpochscopeError
from epochscope.generator.charts import Unavailable, chart
from epochscope.generator.compare import ChartInput
from epochscope.generator.packs.step_charts import fmt

__all__ = ["strategy_rows"]

# (key, header, what it is): the notes' strategy table (Experiment 4) and success criteria.
STRATEGY_COLUMNS = (
    ("strategy", "Strategy", "apoptosis strategy and the share of MLP neurons replaced per round "
                             "(prune_rate; turnover_rate for hybrid)"),
    ("rate", "Prune rate", "share of each MLP layer's neurons that die (and are born) per round"),
    ("final_val_loss", "Final loss", "validation loss at the end (mean of the last three evaluations)"),
    ("loss_gap", "Loss gap", "final loss minus the no-apoptosis baseline's (same init, same batches); "
                             "target < 0.12, stretch <= 0"),
    ("variance", "Variance", "variance of the per-step train loss over the second half; target < 0.1"),
    ("events", "Events", "apoptosis rounds that ran; target > 10"),
    ("distinct_ages", "Age diversity", "distinct neuron ages at the end (> 1: neurons cycling)"),
    ("status", "Status", "success criteria met; the lowest final loss and the lowest variance are marked"),
)


def _payload(path: Any) -> dict[str, Any] | None:
    """The run's final figures (its last `finished` event), or None when it has none."""
    try:
        with open_bundle(path) as b:
            done = b.events("finished")
    except (EpochscopeError, OSError):
        return None
    return dict(done[-1].get("payload") or {}) if done else None


def _rate(config: dict[str, Any]) -> float | None:
    strategy = config.get("strategy")
    if strategy == "none":
        return None
    value = config.get("turnover_rate" if strategy == "hybrid" else "prune_rate")
    return float(value) if isinstance(value, (int, float)) else None


def _label(config: dict[str, Any], rate: float | None) -> str:
    strategy = str(config.get("strategy", "?"))
    if strategy == "none":
        return "none (baseline)"
    text = f"{strategy} {100 * rate:g}%" if rate is not None else strategy
    if strategy == "crossover" and config.get("crossover_mode"):
        text += f" ({config['crossover_mode']})"
    return text


def strategy_rows(inp: ChartInput) -> tuple[list[dict[str, Any]], list[int]]:
    """(one row of raw values per apoptosis variant, the indices of the variants left out)."""
    rows, left_out = [], []
    for v, var in enumerate(inp.variants):
        fin = _payload(var.path) if var.config.get("experiment") == "apoptosis" else None
        if fin is None:
            left_out.append(v)
            continue
        rate = _rate(var.config)
        success = fin.get("success") or {}
        row = {"v": v, "strategy": _label(var.config, rate), "rate": rate,
               "final_val_loss": fin.get("final_val_loss"),
               "loss_gap": 0.0 if var.config.get("strategy") == "none" else fin.get("loss_gap"),
               "variance": fin.get("variance"), "events": fin.get("events"),
               "distinct_ages": fin.get("distinct_ages"), "age_std": fin.get("age_std"),
               "passed": sum(bool(x) for x in success.values()), "criteria": len(success),
               "baseline": var.config.get("strategy") == "none"}
        rows.append(row)
    return rows, left_out


def _best(rows: list[dict[str, Any]], key: str) -> int | None:
    have = [r for r in rows if isinstance(r[key], (int, float)) and math.isfinite(r[key])]
    return min(have, key=lambda r: (r[key], r["v"]))["v"] if have else None


@chart("apo_strategies", "Apoptosis strategies: the experiment log's table", "table", page="compare", wide=True)
def apo_strategies(inp: ChartInput) -> dict[str, Any]:
    rows, left_out = strategy_rows(inp)
    if not rows:
        raise Unavailable("no compared run is an apoptosis run with its final figures "
                          "(`epochscope collect --experiment apoptosis`, or a sweep with experiment = \"apoptosis\")")
    rows.sort(key=lambda r: (not isinstance(r["final_val_loss"], (int, float)), r["final_val_loss"] or 0.0, r["v"]))
    best_loss, most_stable = _best(rows, "final_val_loss"), _best(rows, "variance")
    out = []
    for r in rows:
        marks = (["best loss"] if r["v"] == best_loss else []) + (["most stable"] if r["v"] == most_stable else [])
        status = f"{r['passed']} of {r['criteria']} criteria" + (f"; {', '.join(marks)}" if marks else "")
        gap = "0 (is the baseline)" if r["baseline"] else (
            f"{float(r['loss_gap']):+.4f}" if isinstance(r["loss_gap"], (int, float)) else "–")
        cells = {
            "strategy": (r["strategy"], r["strategy"]),
            "rate": (f"{100 * r['rate']:g}%" if r["rate"] is not None else "–", r["rate"]),
            "final_val_loss": (fmt(r["final_val_loss"]), r["final_val_loss"]),
            "loss_gap": (gap, r["loss_gap"]),
            "variance": (fmt(r["variance"]), r["variance"]),
            "events": (fmt(int(r["events"])) if isinstance(r["events"], (int, float)) else "–", r["events"]),
            "distinct_ages": (fmt(int(r["distinct_ages"])) if isinstance(r["distinct_ages"], (int, float)) else "–",
                              r["distinct_ages"]),
            "status": (status, r["passed"]),
        }
        tips = {"distinct_ages": f"age spread (std) {fmt(r['age_std'])} steps"}
        out.append({"v": r["v"], "cells": [{"text": text, "value": value, "tip": tips.get(key, "")}
                                           for key, (text, value) in ((k, cells[k]) for k, _, _ in STRATEGY_COLUMNS)]})
    spec: dict[str, Any] = {"columns": [{"key": k, "label": label, "title": title} for k, label, title in STRATEGY_COLUMNS],
                            "rows": out, "variantColumn": True}
    if left_out:
        spec["missing"] = ", ".join(inp.labels[i] for i in left_out)
    return spec
