"""Comparison charts of a sweep's design: the main effects the sweep stored in its manifest
(collectors/sweep.py `sweep_main_effects`, computed by collectors/design.py `main_effects`
once every variant finished), read through archives/sweep.py. They appear when every
compared bundle is a variant of one sweep; nothing is recomputed here."""

from __future__ import annotations

import math
from typing import Any

from epochscope.archives.sweep import SweepManifest, sweep_of
from epochscope.generator.charts import Unavailable, chart
from epochscope.generator.compare import ChartInput
from epochscope.generator.packs.step_charts import fmt

__all__ = ["sweep_effects"]


def _level(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(float(value)) else None


def sweep_effects(inp: ChartInput) -> tuple[SweepManifest, dict[str, Any]]:
    """The sweep all compared variants belong to and its main effects; Unavailable saying why not."""
    sweep = sweep_of([v.path for v in inp.variants])
    if sweep is None:
        raise Unavailable("the compared bundles are not all variants of one sweep (no sweep.json beside them "
                          "that lists every one: `epochscope sweep` writes it)")
    effects = sweep.main_effects
    if not effects or not effects.get("factors"):
        raise Unavailable(f"sweep {sweep.name!r} stored no main effects (they are computed once every variant "
                          "has finished: run `epochscope sweep` again to finish it)")
    return sweep, effects


def _factors(effects: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(effects["factors"].items(), key=lambda kv: (kv[1].get("rank", 0), kv[0]))


def _scope(sweep: SweepManifest, effects: dict[str, Any], inp: ChartInput) -> str:
    design = effects.get("design") or "grid"
    array = f" {effects['array']}" if effects.get("array") else ""
    missing = int(effects.get("runs_missing") or 0)
    text = (f"sweep {sweep.name}: {design}{array} design, {effects.get('runs_used', '?')} variant(s) with a "
            f"finite {effects.get('response', 'response')}")
    if missing:
        text += f", {missing} without (failed or not run)"
    if len(inp.variants) < len(sweep.variants):
        text += f"; computed over all {len(sweep.variants)} variants of the sweep, this page compares {len(inp.variants)}"
    return text


@chart("sweep_main_effects", "Main effects of the sweep's factors", "effects", page="compare", wide=True)
def sweep_main_effects(inp: ChartInput) -> dict[str, Any]:
    sweep, effects = sweep_effects(inp)
    factors = []
    for name, f in _factors(effects):
        levels = [{"label": _level(lv["level"]), "mean": _finite(lv.get("mean")), "n": int(lv.get("n", 0)),
                   "sn": _finite(lv.get("sn_ratio"))} for lv in f.get("levels", [])]
        factors.append({"name": name, "rank": int(f.get("rank", 0)), "effect": _finite(f.get("effect")),
                        "best": _level(f.get("best_level")), "levels": levels})
    goal = effects.get("goal", "min")
    return {"factors": factors, "response": str(effects.get("response", "response")), "goal": goal,
            "overall": _finite(effects.get("overall_mean")), "legend": _scope(sweep, effects, inp)
            + f"; best level ({'lowest' if goal == 'min' else 'highest'} mean) starred"}


@chart("sweep_effects_table", "Main effects: level means", "table", page="compare", wide=True)
def sweep_effects_table(inp: ChartInput) -> dict[str, Any]:
    sweep, effects = sweep_effects(inp)
    response = str(effects.get("response", "response"))
    columns = [("factor", "Factor", "a factor of the sweep's grid"),
               ("rank", "Rank", "1: the factor whose level means differ most (largest effect)"),
               ("effect", "Effect", f"largest minus smallest level mean of {response}"),
               ("level", "Level", "a level of the factor"),
               ("mean", f"Mean {response}", f"mean {response} over the variants run at this level"),
               ("n", "Runs", "variants at this level with a finite response"),
               ("sn", "S/N (dB)", "Taguchi signal-to-noise ratio of the level (higher is better)"),
               ("best", "Best", "the level with the best mean")]
    rows = []
    for name, f in _factors(effects):
        best = _level(f.get("best_level"))
        for lv in f.get("levels", []):
            label = _level(lv["level"])
            values = {"factor": (name, name), "rank": (str(f.get("rank", "")), f.get("rank")),
                      "effect": (fmt(f.get("effect")), _finite(f.get("effect"))), "level": (label, label),
                      "mean": (fmt(lv.get("mean")), _finite(lv.get("mean"))),
                      "n": (str(lv.get("n", "")), lv.get("n")),
                      "sn": (fmt(lv.get("sn_ratio")), _finite(lv.get("sn_ratio"))),
                      "best": ("best" if label == best else "", int(label == best))}
            rows.append({"v": None, "cells": [{"text": values[k][0], "value": values[k][1], "tip": ""}
                                              for k, _, _ in columns]})
    return {"columns": [{"key": k, "label": label, "title": title} for k, label, title in columns],
            "rows": rows, "variantColumn": False, "legend": _scope(sweep, effects, inp)}
