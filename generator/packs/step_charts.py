"""Charts of the per-step telemetry both experiment collectors record (docs/experiments.md,
"Shared per-step telemetry"): the four CUSUM monitors with their threshold and alarms, the
gradient norm with the clipped share, throughput, and the sample generations by checkpoint.
Also the helpers the evolution and apoptosis charts share: table cards and the markers that
put an event's details on a loss curve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from epochscope.generator.charts import Unavailable, chart, present_series, series_trace
from epochscope.generator.context import BuildContext
from epochscope.generator.packs.generic import table_column

# The monitors in the notes' order: (series, what it watches).
MONITORS = (("cusum_grad", "gradient norm"), ("cusum_clip", "clipped share"),
            ("cusum_tps", "tokens per second"), ("cusum_val", "validation loss"))
DEFAULT_H = 4.0  # the collectors' alarm threshold (docs/experiments.md), unless the config names one


def spikes_by_step(ctx: BuildContext, table: str) -> dict[int, dict[str, Any]]:
    """The rows of a spike table (`switch_spikes`, `event_spikes`) keyed by their step."""
    if not ctx.has_table(table):
        return {}
    s = ctx.table(table)
    return {int(step): {k: np.asarray(v)[i] for k, v in s.items()}
            for i, step in enumerate(np.asarray(s["step"]).tolist())}


def fmt(value: Any) -> str:
    """A number as the tables and hovers print it."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"


def table_spec(ctx: BuildContext, data: dict[str, Any], order: Sequence[str] | None = None,
               extra: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """A `table` spec of `data`'s columns (`order` first, then the rest), then `extra` ones."""
    names = [c for c in (order or ()) if c in data] + [c for c in data if c not in (order or ())]
    cols = [table_column(c, np.asarray(data[c]), ctx) for c in names]
    cols += [table_column(c, list(v), ctx) for c, v in (extra or {}).items()]
    n = len(np.asarray(data[names[0]])) if names else 0
    return {"columns": cols, "rows": n}


def nearest_value(epochs: np.ndarray, values: np.ndarray, at: int) -> float:
    """The value of a series at epoch `at` (or the nearest logged one)."""
    if not epochs.size:
        return math.nan
    return float(values[int(np.argmin(np.abs(epochs - at)))])


def event_points(name: str, xs: list[int], ys: list[float], texts: list[list[str]], color: Any) -> dict[str, Any]:
    """Markers for events on a lines chart, each with its hover lines (escaped page-side)."""
    return {"name": name, "x": xs, "y": ys, "text": texts, "symbol": "diamond", "size": 9, "color": color}


@chart("cusum_monitors", "CUSUM change-point monitors", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",), wide=True)
def cusum_monitors(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, tuple(n for n, _ in MONITORS))
    traces, top = [], 0.0
    for i, (name, what) in enumerate(MONITORS):
        if name not in have:
            continue
        traces.append(series_trace(ctx, name, f"{name} ({what})", color=i, width=1.3,
                                   **({"mode": "lines+markers"} if name == "cusum_val" else {})))
        v = ctx.series(name)[1]
        top = max(top, float(np.nanmax(v[np.isfinite(v)])) if np.isfinite(v).any() else 0.0)
    h = float(ctx.bundle.config.get("cusum_h", DEFAULT_H))
    spec: dict[str, Any] = {"traces": traces, "yTitle": "max(S+, S−) in baseline σ",
                            "hlines": [{"y": h, "text": f"alarm threshold h = {h:g}"}], "xTitle": "step",
                            "xHover": "step"}
    points: dict[str, dict[str, list]] = {}
    for e in ctx.events("cusum_alarm"):
        p = e.get("payload") or {}
        monitor = str(p.get("monitor", ""))
        stat = p.get("statistic")
        stat = float(stat) if isinstance(stat, (int, float)) and math.isfinite(stat) else h
        d = points.setdefault(monitor, {"x": [], "y": [], "text": []})
        d["x"].append(int(e["epoch"]))
        d["y"].append(stat)
        d["text"].append([f"alarm on {monitor} at step {int(e['epoch'])}",
                          f"{p.get('series', '?')} shifted {p.get('direction', '?')}, statistic {fmt(stat)}"])
    keys = [n for n, _ in MONITORS]
    spec["points"] = [{"name": f"alarms: {m} ({len(d['x'])})", "symbol": "x",
                       "color": keys.index(m) if m in keys else 5, **d} for m, d in points.items()]
    notes = [f"{m}: {len(d['x'])} alarm{'s' if len(d['x']) != 1 else ''}" for m, d in points.items()]
    ctx.notes["cusum_monitors"] = ("alarms (× markers): " + ", ".join(notes)) if notes else "no alarm fired"
    if top > 8 * h:
        spec["yRange"] = [0, 3 * h]
        spec["note"] = f"zoomed to 3h (largest value {top:.3g}); double-click to see all"
    return spec


@chart("step_gradients", "Gradient norm and clipping", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",))
def step_gradients(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, ("grad_norm", "clip_fraction"))
    traces = []
    if "grad_norm" in have:
        traces.append(series_trace(ctx, "grad_norm", "gradient norm (before clipping)", color=0, width=1.2))
    spec: dict[str, Any] = {"traces": traces, "yTitle": "gradient norm", "xTitle": "step", "xHover": "step",
                            "logToggle": True}
    if "clip_fraction" in have:
        traces.append(series_trace(ctx, "clip_fraction", "clipped share", color=3, width=1, yaxis="y2",
                                   opacity=0.55))
        spec["y2Title"] = "share of the norm clipped away"
        v = ctx.series("clip_fraction")[1]
        v = v[np.isfinite(v)]
        spec["y2Range"] = [0, max(float(v.max()) if v.size else 0.0, 0.05) * 1.05]
        if v.size:
            ctx.notes["step_gradients"] = f"clipping cut the gradient on {100 * float((v > 0).mean()):.0f}% of steps"
    clip = ctx.bundle.config.get("grad_clip")
    if isinstance(clip, (int, float)) and "grad_norm" in have:
        spec["hlines"] = [{"y": float(clip), "text": f"grad_clip = {clip:g}"}]
    return spec


@chart("step_throughput", "Throughput", "lines", needs=("metrics",), epoch_axis=True, follows=("epoch",))
def step_throughput(ctx: BuildContext) -> dict[str, Any]:
    present_series(ctx, ("tokens_per_sec",))
    v = ctx.series("tokens_per_sec")[1]
    v = v[np.isfinite(v)]
    if v.size:
        ctx.notes["step_throughput"] = f"median {np.median(v):,.0f} tokens/s (machine speed: not reproducible)"
    return {"traces": [series_trace(ctx, "tokens_per_sec", "tokens per second", color=6, width=1)],
            "yTitle": "tokens / s", "xTitle": "step", "xHover": "step", "smooth": True}


@chart("samples_by_checkpoint", "Sample generations by checkpoint", "table", needs=("tables",), wide=True)
def samples_by_checkpoint(ctx: BuildContext) -> dict[str, Any]:
    data = dict(ctx.table("samples"))
    if "checkpoint" not in data or "text" not in data:
        raise Unavailable("the 'samples' table has no 'checkpoint' and 'text' columns")
    prompts = {str(p) for p in np.asarray(data.pop("prompt", []), dtype=object).tolist()}
    kept = set(ctx.bundle.checkpoint_epochs)
    steps = [int(s) for s in np.asarray(data["checkpoint"]).tolist()]
    # Line breaks as a visible mark: a cell shows one line, and a sample of only newlines is not empty.
    data["text"] = np.array([str(t).replace("\r\n", "\n").replace("\n", "↵") for t in
                             np.asarray(data["text"], dtype=object).tolist()], dtype=object)
    spec = table_spec(ctx, data, ("checkpoint", "candidate", "activation", "generation", "text"),
                      {"checkpoint kept": ["yes" if s in kept else "no (top-k dropped it)" for s in steps]})
    n_kept = sum(s in kept for s in steps)
    note = f"{len(steps)} samples; {n_kept} of their checkpoints are still in the bundle"
    if len(prompts) == 1:
        note += f"; every sample continues the same prompt: {next(iter(prompts))!r}"
    ctx.notes["samples_by_checkpoint"] = note
    return spec
