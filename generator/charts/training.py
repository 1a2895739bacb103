"""Charts of the training record: loss, accuracy, optimizer signals, parameter velocity,
CUSUM monitors, restricted/excluded loss and the turn detection fit."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator import sources as src
from epochscope.generator.charts import (
    Unavailable,
    array_trace,
    chart,
    columns,
    present_series,
    series_trace,
)
from epochscope.generator.context import BuildContext

_LOSSES = (("train_loss", "train"), ("test_loss", "test"))
_ACCS = (("train_acc", "train"), ("test_acc", "test"))


@chart("loss", "Loss", "lines", needs=("metrics",), epoch_axis=True, follows=("epoch",), wide=True)
def loss(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, tuple(n for n, _ in _LOSSES))
    traces = [series_trace(ctx, n, label, color=i) for i, (n, label) in enumerate(_LOSSES) if n in have]
    return {"traces": traces, "yTitle": "cross-entropy loss", "logy": True, "logToggle": True}


@chart("accuracy", "Accuracy", "lines", needs=("metrics",), epoch_axis=True, follows=("epoch",))
def accuracy(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, tuple(n for n, _ in _ACCS))
    traces = [series_trace(ctx, n, label, color=i) for i, (n, label) in enumerate(_ACCS) if n in have]
    return {"traces": traces, "yTitle": "accuracy", "yRange": [-0.02, 1.02], "logToggle": True}


@chart("optimizer", "Gradient norm and learning rate", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",))
def optimizer(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, ("grad_norm", "lr", "clip_fraction"))
    traces, right = [], []
    if "grad_norm" in have:
        traces.append(series_trace(ctx, "grad_norm", "gradient norm", color=2))
    if "clip_fraction" in have and np.nanmax(ctx.series("clip_fraction")[1]) > 0:
        traces.append(series_trace(ctx, "clip_fraction", "clipped share", color=3, yaxis="y2", dash="dot"))
        right.append("clipped share")
    if "lr" in have:
        traces.append(series_trace(ctx, "lr", "learning rate", color=4, yaxis="y2"))
        right.insert(0, "learning rate")
    spec = {"traces": traces, "yTitle": "gradient norm (all parameters)", "logy": True, "logToggle": True}
    if right:
        spec["y2Title"] = " / ".join(right)
    return spec


@chart("velocity", "Parameter velocity", "lines", needs=("trajectory", "metrics"), epoch_axis=True,
       follows=("epoch",))
def velocity(ctx: BuildContext) -> dict[str, Any]:
    traces = []
    if ctx.has_series("param_velocity") and np.isfinite(ctx.series("param_velocity")[1]).any():
        traces.append(series_trace(ctx, "param_velocity", "per optimizer step", color=7, width=1, opacity=0.6))
    if ctx.has_per_epoch(src.TRAJECTORY, src.VELOCITY_ARRAYS):
        epochs, values = ctx.per_epoch(src.TRAJECTORY, src.VELOCITY_ARRAYS)
        values = columns(values, "velocity")[:, 0]
        if np.isfinite(values).any():
            traces.append(array_trace(ctx, epochs, values, "per epoch between checkpoints", color=0,
                                      mode="lines+markers"))
    if not traces:
        raise Unavailable("no data: neither the 'trajectory' analysis' velocity nor a 'param_velocity' "
                          "series is in this bundle")
    return {"traces": traces, "yTitle": "parameter distance ‖Δθ‖ per epoch", "logy": True, "logToggle": True}


@chart("cusum", "CUSUM change-point monitors", "lines", needs=("cusum",), epoch_axis=True,
       follows=("epoch",), wide=True)
def cusum(ctx: BuildContext) -> dict[str, Any]:
    art = ctx.artifact(src.CUSUM)
    monitors = art.scalars.get("monitors") or {}
    keys = [n.removesuffix("_pos") for n in art.names if n.endswith("_pos")]
    if not keys:
        raise Unavailable("no data: the cusum analysis stored no monitor statistics")
    traces, top = [], 0.0
    for i, key in enumerate(keys):
        info = monitors.get(key) or {}
        label = f"{key} ({info['series']})" if info.get("series") else key
        for side, sign, dash in (("pos", 1.0, "solid"), ("neg", -1.0, "dot")):
            if f"{key}_{side}" not in art.names:
                continue
            epochs, values = art.per_epoch(f"{key}_{side}")
            values = sign * np.asarray(values, dtype=np.float64)
            if np.isfinite(values).any():
                top = max(top, float(np.nanmax(np.abs(values))))
            traces.append(array_trace(ctx, epochs, values, label if sign > 0 else f"{label} S− (down)",
                                      color=i, dash=dash, floor=1e-3, legend=sign > 0, group=key))
    if top == 0.0 and not any(np.isfinite(art.per_epoch(f"{k}_pos")[1]).any() for k in keys):
        raise Unavailable("no data: the cusum statistics hold only NaN")
    spec: dict[str, Any] = {"traces": traces, "yTitle": "S+ up, −S− down (σ units)"}
    h = ctx.scalar(src.CUSUM, src.CUSUM_THRESHOLD)
    if h is not None:
        h = float(h)
        spec["hlines"] = [{"y": h, "text": f"alarm threshold h = {h:g}"}, {"y": -h, "text": f"−h = {-h:g}"}]
        if top > 8 * h:  # one huge excursion would flatten everything else: start zoomed in
            spec["yRange"] = [-3 * h, 3 * h]
            spec["note"] = f"zoomed to ±3h (largest excursion {top:.3g}); double-click the chart to see all"
    points: dict[str, dict[str, list]] = {}
    for a in src.cusum_alarms(ctx):
        stat = a["statistic"] if isinstance(a["statistic"], (int, float)) else (h or 0.0)
        p = points.setdefault(a["monitor"], {"x": [], "y": [], "text": []})
        p["x"].append(a["epoch"])
        p["y"].append(-stat if a["direction"] == "down" else stat)
        p["text"].append(a["message"] or f"alarm on {a['monitor']} at epoch {a['epoch']}")
    spec["points"] = [{"name": f"alarms: {m}", "symbol": "x", "color": keys.index(m) if m in keys else 5,
                       "group": m, **p} for m, p in points.items()]
    return spec


@chart("restricted_loss", "Restricted and excluded loss", "lines", needs=("restricted_loss",),
       epoch_axis=True, follows=("epoch",), wide=True)
def restricted_loss(ctx: BuildContext) -> dict[str, Any]:
    art = ctx.artifact(src.RESTRICTED)
    traces = []
    for cands, label, color in ((src.RESTRICTED_TEST, "restricted loss (test pairs)", 5),
                                (src.RESTRICTED_ALL, "restricted loss (all pairs)", 5),
                                (src.EXCLUDED, "excluded loss", 6)):
        if not ctx.has_per_epoch(src.RESTRICTED, cands):
            continue
        epochs, values = ctx.per_epoch(src.RESTRICTED, cands)
        values = np.asarray(values, dtype=np.float64).reshape(len(epochs), -1)[:, 0]
        if not np.isfinite(values).any() or (label.startswith("restricted") and
                                             any(t["name"].startswith("restricted") for t in traces)):
            continue
        if label == "excluded loss":
            on = art.scalars.get("excluded_on")
            label += f" ({'training pairs' if on == 'train' else 'all pairs'})"
        traces.append(array_trace(ctx, epochs, values, label, color=color, mode="lines+markers"))
    if not traces:
        raise Unavailable("no data: the restricted_loss analysis stored no finite restricted or excluded loss")
    if ctx.has_per_epoch(src.RESTRICTED, src.EXCLUDED_PER_FREQ):
        epochs, per = ctx.per_epoch(src.RESTRICTED, src.EXCLUDED_PER_FREQ)
        per = np.asarray(per, dtype=np.float64).reshape(len(epochs), -1)
        keys = ctx.optional_summary(src.RESTRICTED, src.KEY_FREQS)
        keys = [int(k) for k in np.asarray(keys).ravel()] if keys is not None and len(keys) == per.shape[1] else list(range(per.shape[1]))
        for j, k in enumerate(keys):
            traces.append(array_trace(ctx, epochs, per[:, j], f"excluded: only k = {k} removed", color=8 + j,
                                      width=1, visible="legendonly"))
    for i, (name, label) in enumerate(_LOSSES):
        if ctx.has_series(name) and np.isfinite(ctx.series(name)[1]).any():
            traces.append(series_trace(ctx, name, f"{label} loss", color=i, width=1, opacity=0.45))
    return {"traces": traces, "yTitle": "cross-entropy loss", "logy": True, "logToggle": True}


@chart("turn_fit", "Turn detection", "lines", needs=("turn",), epoch_axis=True, follows=("epoch",))
def turn_fit(ctx: BuildContext) -> dict[str, Any]:
    epochs, grid = ctx.per_epoch(src.TURN, src.TURN_GRID)
    grid = columns(grid, "binned log10 test loss")[:, 0]
    traces = [array_trace(ctx, epochs, grid, "log10 test loss (binned)", color=1, mode="markers")]
    if ctx.has_per_epoch(src.TURN, src.TURN_FIT):
        _, fit = ctx.per_epoch(src.TURN, src.TURN_FIT)
        traces.append(array_trace(ctx, epochs, columns(fit, "fit")[:, 0], "piecewise-linear fit", color=0))
    spec: dict[str, Any] = {"traces": traces, "yTitle": "log10 test loss"}
    bkps = ctx.optional_summary(src.TURN, src.TURN_BREAKPOINTS)
    if bkps is not None and len(bkps):
        spec["vlines"] = [{"x": int(b), "text": f"change point at epoch {int(b)}"} for b in np.asarray(bkps).ravel()]
    verdict = src.turn(ctx)
    if verdict and verdict["epoch"] is None and verdict["reason"]:
        reason = str(verdict["reason"])
        spec["note"] = reason if reason.lower().startswith("no turn") else f"no turn: {reason}"
    return spec
