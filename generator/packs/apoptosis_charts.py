"""Charts of neuron-level apoptosis (collectors/experiments/apoptosis.py; element names in
docs/experiments.md): the loss beside the no-apoptosis baseline with a marker per round and
the spike each round caused, the neuron age histogram over time, the lineage (who descends
from whom, and how many generations deep each living neuron is), the notes' success
criteria and every neuron's fitness at each checkpoint."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator.charts import Unavailable, chart, present_series, series_trace
from epochscope.generator.context import BuildContext
from epochscope.generator.packs.step_charts import (
    event_points,
    fmt,
    nearest_value,
    spikes_by_step,
    table_spec,
)

_LOSSES = (("train_loss", "train loss", 0, "solid", "lines"),
           ("baseline_train_loss", "baseline train loss (no apoptosis)", 7, "dot", "lines"),
           ("val_loss", "validation loss", 1, "solid", "lines+markers"),
           ("baseline_val_loss", "baseline validation loss", 3, "dot", "lines+markers"))
AGE_BINS = 12

# What each of the notes' success criteria means (apoptosis-experiment-log.md, "Success Criteria").
CRITERIA = {
    "loss_gap": "final validation loss minus the baseline's (notes: baseline 1.4788, target < 1.6, "
                "i.e. within 0.12)",
    "beats_baseline": "the stretch goal: match or beat the baseline (gap <= 0)",
    "variance": "variance of the per-step train loss over the second half: smooth training",
    "events": "apoptosis rounds that ran: the mechanism is active",
    "age_diversity": "distinct neuron ages at the end: neurons cycling, not all the same age",
}


def _finished(ctx: BuildContext) -> dict[str, Any]:
    done = ctx.events("finished")
    return (done[-1].get("payload") or {}) if done else {}


@chart("apo_loss", "Loss with apoptosis events", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",), wide=True)
def apo_loss(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, tuple(n for n, *_ in _LOSSES))
    traces = [series_trace(ctx, n, label, color=c, dash=dash, mode=mode, width=1.1)
              for n, label, c, dash, mode in _LOSSES if n in have]
    spikes = spikes_by_step(ctx, "event_spikes")
    epochs, loss = ctx.series("train_loss") if "train_loss" in have else (np.zeros(0, np.int64), np.zeros(0))
    xs, ys, texts = [], [], []
    for e in ctx.events("apoptosis"):
        p = e.get("payload") or {}
        step = int(e["epoch"])
        sp = spikes.get(step)
        lines = [f"round {p.get('round', '?')} at step {step} ({p.get('strategy', '?')})",
                 f"{p.get('pruned', '?')} neurons pruned, {p.get('born', '?')} born",
                 f"fitness threshold {fmt(p.get('fitness_threshold'))} (the fittest neuron that died)"]
        if sp:
            rec = int(sp.get("recovery_steps", -1))
            lines.append(f"spike +{fmt(sp.get('height'))} (peak {fmt(sp.get('peak_loss'))} after "
                         f"{fmt(sp.get('pre_loss'))}), " + (f"recovered in {rec} steps" if rec >= 0
                                                             else "not recovered before the next round"))
            if np.isfinite(sp.get("baseline_peak_loss", np.nan)):
                lines.append(f"baseline's peak over the same steps {fmt(sp.get('baseline_peak_loss'))}")
        xs.append(step)
        ys.append(float(sp["peak_loss"]) if sp and np.isfinite(sp.get("peak_loss", np.nan))
                  else nearest_value(epochs, loss, step))
        texts.append(lines)
    spec: dict[str, Any] = {"traces": traces, "yTitle": "cross-entropy loss", "xTitle": "step", "xHover": "step",
                            "logToggle": True}
    if xs:
        spec["points"] = [event_points(f"apoptosis rounds ({len(xs)})", xs, ys, texts, "#d62728")]
    fin = _finished(ctx)
    bits = [f"{len(xs)} apoptosis rounds (diamonds at each spike's peak: hover for the round)"]
    if "loss_gap" in fin:
        bits.append(f"final validation loss {fmt(fin.get('final_val_loss'))} vs baseline "
                    f"{fmt(fin.get('baseline_val_loss'))} (gap {float(fin['loss_gap']):+.4f})")
    ctx.notes["apo_loss"] = "; ".join(bits)
    return spec


@chart("apo_event_spikes", "Loss spike at each round", "table", needs=("tables",), wide=True)
def apo_event_spikes(ctx: BuildContext) -> dict[str, Any]:
    s = ctx.table("event_spikes")
    spec = table_spec(ctx, s, ("round", "step", "height", "recovery_steps", "pre_loss", "peak_loss",
                               "baseline_peak_loss"))
    h = np.asarray(s.get("height", []), dtype=np.float64)
    if h.size:
        extra = ""
        if "baseline_peak_loss" in s:
            excess = np.asarray(s["peak_loss"], dtype=np.float64) - np.asarray(s["baseline_peak_loss"], dtype=np.float64)
            if np.isfinite(excess).any():
                extra = f"; peak minus the baseline's peak over the same steps: {fmt(float(np.nanmedian(excess)))} (median)"
        ctx.notes["apo_event_spikes"] = (f"{h.size} rounds: median spike +{fmt(float(np.median(h)))}, largest "
                                         f"+{fmt(float(h.max()))}{extra}")
    return spec


@chart("apo_age_histogram", "Neuron age over time", "heatmap_time", needs=("array.neuron_age",),
       epoch_axis=True, follows=("epoch",), wide=True)
def apo_age_histogram(ctx: BuildContext) -> dict[str, Any]:
    epochs, ages = ctx.array("neuron_age")
    ages = np.asarray(ages, dtype=np.int64).reshape(len(epochs), -1)
    top = int(ages.max()) if ages.size else 0
    edges = np.unique(np.linspace(0, top + 1, min(AGE_BINS, top + 1) + 1).round().astype(np.int64))
    counts = np.stack([np.histogram(row, bins=edges)[0] for row in ages]).astype(np.float64)
    labels = [f"{lo}–{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    fin = _finished(ctx)
    distinct = [len(np.unique(r)) for r in ages]
    note = f"distinct ages per checkpoint: {', '.join(map(str, distinct))}"
    if fin:
        note = (f"at the end: {fmt(fin.get('distinct_ages'))} distinct ages, age spread (std) "
                f"{fmt(fin.get('age_std'))} steps, {100 * float(fin.get('reborn_share', 0)):.0f}% of the slots "
                f"reborn at least once; " + note)
    ctx.notes["apo_age_histogram"] = note
    # The oldest bin first: the page draws the first label at the top.
    # A log colour scale: the few newborns of one round stay visible beside hundreds of survivors.
    return {"x": ctx.store.add_int(epochs), "z": ctx.store.add_quantized(np.log10(1 + counts[:, ::-1]), lead=0),
            "yLabels": labels[::-1], "yTitle": "neuron age (steps)",
            "zTitle": "log10(1 + neurons)", "xTitle": "checkpoint (step)"}


def lineage(births: dict[str, Any], n_initial: int) -> tuple[dict[int, int], dict[int, int]]:
    """(depth, root) of every neuron id: initial neurons are depth 0 and their own root; a
    newborn is one deeper than its (first) parent and belongs to the parent's family."""
    depth = {i: 0 for i in range(n_initial)}
    root = {i: i for i in range(n_initial)}
    for child, parent in zip(np.asarray(births["neuron_id"]).tolist(), np.asarray(births["parent_id"]).tolist(),
                             strict=True):
        depth[int(child)] = depth.get(int(parent), 0) + 1
        root[int(child)] = root.get(int(parent), int(parent))
    return depth, root


@chart("apo_lineage", "Lineage depth of the living neurons", "map2d",
       needs=("array.neuron_id", "array.neuron_parent", "array.neuron_parent2", "tables"), follows=("epoch",))
def apo_lineage(ctx: BuildContext) -> dict[str, Any]:
    epochs, ids = ctx.array("neuron_id")
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 3:
        raise Unavailable(f"array 'neuron_id' has rows of shape {ids.shape[1:]}, expected (layers, neurons)")
    _, parents = ctx.array("neuron_parent")
    last_parents = np.asarray(parents)[-1].ravel()
    two = 0
    if ctx.has_artifact("array.neuron_parent2"):
        two = int((np.asarray(ctx.array("neuron_parent2")[1])[-1] >= 0).sum())
    births = ctx.table("births") if ctx.has_table("births") else {"neuron_id": [], "parent_id": []}
    depth, root = lineage(births, int(ids[0].size))
    z = np.vectorize(lambda i: depth.get(int(i), 0))(ids).astype(np.float64)
    final = ids[-1].ravel()
    families = {}
    for i in final.tolist():
        families[root.get(i, i)] = families.get(root.get(i, i), 0) + 1
    big, size = max(families.items(), key=lambda kv: (kv[1], -kv[0]))
    living = set(final.tolist())
    beside = int(sum(p in living for p in last_parents.tolist() if p >= 0))
    ctx.notes["apo_lineage"] = (f"at the last checkpoint: deepest lineage {int(z[-1].max())} generations; "
                                f"{len(families)} families alive (largest: {size} neurons descending from initial "
                                f"neuron {big}); {beside} newborns live beside their parent"
                                + (f"; {two} have two parents (crossover)" if two else ""))
    return {"epochs": ctx.store.add_int(epochs), "z": ctx.store.add_quantized(z), "xTitle": "neuron slot",
            "yTitle": "layer", "zTitle": "generations", "height": 260}


@chart("apo_births", "Births: who descends from whom", "table", needs=("tables",), wide=True)
def apo_births(ctx: BuildContext) -> dict[str, Any]:
    b = ctx.table("births")
    n_initial = 0
    if ctx.has_artifact("array.neuron_id"):
        _, ids = ctx.array("neuron_id")
        n_initial = int(np.asarray(ids)[0].size)
    depth, root = lineage(b, n_initial)
    kids = [int(i) for i in np.asarray(b["neuron_id"]).tolist()]
    spec = table_spec(ctx, b, ("step", "layer", "slot", "neuron_id", "parent_id", "parent2_id", "replaced_id",
                               "replaced_fitness"),
                      {"generation": [depth.get(k, 0) for k in kids], "family (initial ancestor)":
                       [root.get(k, k) for k in kids]})
    ctx.notes["apo_births"] = (f"{len(kids)} births; parent2_id = −1 unless crossover mixed two parents; "
                               "generation counts the steps back to an initial neuron (ids 0–"
                               f"{max(n_initial - 1, 0)})")
    return spec


@chart("apo_success", "Success criteria", "table", needs=("tables",), wide=True)
def apo_success(ctx: BuildContext) -> dict[str, Any]:
    t = ctx.table("success_criteria")
    names = [str(c) for c in np.asarray(t["criterion"], dtype=object).tolist()]
    spec = table_spec(ctx, t, ("criterion", "value", "target", "passed"),
                      {"meaning": [CRITERIA.get(n, "") for n in names]})
    passed = np.asarray(t.get("passed", []), dtype=bool)
    ctx.notes["apo_success"] = f"{int(passed.sum())} of {passed.size} criteria met"
    return spec


@chart("apo_fitness", "Neuron fitness at the checkpoint", "map2d", needs=("array.neuron_fitness",),
       follows=("epoch",))
def apo_fitness(ctx: BuildContext) -> dict[str, Any]:
    epochs, fit = ctx.array("neuron_fitness")
    fit = np.asarray(fit, dtype=np.float64)
    if fit.ndim != 3:
        raise Unavailable(f"array 'neuron_fitness' has rows of shape {fit.shape[1:]}, expected (layers, neurons)")
    if not np.isfinite(fit).any():
        raise Unavailable("no data: 'neuron_fitness' holds only NaN/inf")
    return {"epochs": ctx.store.add_int(epochs), "z": ctx.store.add_quantized(fit), "xTitle": "neuron slot",
            "yTitle": "layer", "zTitle": "fitness", "height": 260}
