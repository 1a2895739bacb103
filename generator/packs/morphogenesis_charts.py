"""Run-report charts of the morphogenesis pack: growth telemetry (archives/telemetry.py).

Each builder reads the telemetry profile's tables, series, events and dense-trace artifacts
through `BuildContext`, so the generic pack does not draw them a second time. Every
time-series chart carries the dense-trace windows as shaded bands (`bands` in its spec);
the per-batch charts show the window the selected epoch lies in.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

import numpy as np

from epochscope.archives import telemetry as tm
from epochscope.generator.charts import chart, present_series, series_trace
from epochscope.generator.context import BuildContext, Unavailable
from epochscope.generator.packs.generic import _col

# Stage colours of the timeline, and whether labels on them need white text.
STAGE_COLORS = {"dormant": ("#d5d9e2", False), "germinated": ("#9ecae1", False), "training": ("#3182bd", True),
                "blending": ("#fdae6b", False), "fossilised": ("#2ca02c", True), "culled": ("#d62728", True)}
# The gradient histograms' rows and bins (collectors/experiments/morphogenesis.py `_detail`).
HIST_EDGES = np.linspace(-10.0, 2.0, 25)


# ------------------------------------------------------------------------------ shared reads

def _episode(ctx: BuildContext) -> dict[str, Any]:
    t = ctx.table(tm.EPISODE_TABLE)
    out = {}
    for k, v in zip(t["key"], t["value"], strict=True):
        k, v = _s(k), _s(v)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _rows(ctx: BuildContext, name: str) -> list[dict[str, Any]]:
    t = ctx.table(name)
    cols = list(t)
    n = len(t[cols[0]]) if cols else 0
    return [{c: _py(t[c][i]) for c in cols} for i in range(n)]


def _py(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return x.item() if isinstance(x, np.generic) else x


def _slots(ctx: BuildContext) -> list[str]:
    """The slot names in the order the run declared them (slots table, else the attribution)."""
    for table, col in ((tm.SLOTS_TABLE, "slot"), (tm.ATTRIBUTION_TABLE, "slot")):
        if ctx.has_table(table):
            names = [_s(v) for v in ctx.table(table)[col]]
            return list(dict.fromkeys(names))
    return []


def _dense_rows(ctx: BuildContext) -> list[dict[str, Any]]:
    return _rows(ctx, tm.DENSE_TABLE) if ctx.has_table(tm.DENSE_TABLE) else []


def bands(ctx: BuildContext) -> list[dict[str, Any]]:
    """The dense-trace windows as shaded epoch bands, with the text of their hover marker."""
    out = []
    for r in _dense_rows(ctx):
        a, b = int(r["epoch_start"]), int(r["epoch_end"])
        out.append({"x0": a - 0.5, "x1": b + 0.5, "epoch": a,
                    "text": f"dense trace {r['trace']}: {r['trigger']} (epochs {a}-{b}, {r['batches']} batches); "
                            "click to open its per-batch charts below"})
    return out


def _windows(ctx: BuildContext) -> list[dict[str, Any]]:
    rows = _dense_rows(ctx)
    if not rows:
        raise Unavailable("no dense traces in this bundle (the 'dense_traces' table is absent or empty)")
    return [{"trace": int(r["trace"]), "epoch_start": int(r["epoch_start"]), "epoch_end": int(r["epoch_end"]),
             "step_start": int(r["step_start"]), "step_end": int(r["step_end"]),
             "label": f"{r['trigger']}, epochs {r['epoch_start']}-{r['epoch_end']}"} for r in rows]


def _snap(ctx: BuildContext) -> list[int]:
    """The epochs the page's epoch control steps through: every snapshot epoch of the slots
    table (else of val_acc). The dense traces' arrays are indexed by batch step, not epoch."""
    if ctx.has_table(tm.SLOTS_TABLE):
        return sorted({int(e) for e in ctx.table(tm.SLOTS_TABLE)["epoch"]})
    if ctx.has_series("val_acc"):
        return [int(e) for e in ctx.series("val_acc")[0]]
    return []


def _lines(ctx: BuildContext, traces: list[dict[str, Any]], y_title: str, **extra: Any) -> dict[str, Any]:
    return {"traces": traces, "yTitle": y_title, "bands": bands(ctx), **extra}


def _fmt(value: Any, points: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if points:
        return f"{100 * value:+.2f} points"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _kv_table(ctx: BuildContext, rows: list[tuple[str, Any, str]], caption: str) -> dict[str, Any]:
    return {"columns": [_col("key", [r[0] for r in rows]),
                        _col("value", [r[1] if isinstance(r[1], str) else json.dumps(r[1], sort_keys=True)
                                       for r in rows]),
                        _col("source", [r[2] for r in rows])],
            "rows": len(rows), "caption": caption}


# ------------------------------------------------------------------------------ 1. winning?

HEADLINE = (("accuracy_delta", "validation accuracy minus the host-only baseline's", True),
            ("test_accuracy_delta", "test accuracy minus the host-only baseline's", True),
            ("param_ratio", "parameters of the grown model / the host's (1: no growth)", False),
            ("efficiency_ratio", "accuracy per parameter / the host-only baseline's (> 1: winning)", False),
            ("params_total", "host + seed parameters at the end", False))


@chart("morph_headline", "The headline: final figures against the host-only baseline", "table", wide=True,
       needs=("tables",))
def morph_headline(ctx: BuildContext) -> dict[str, Any]:
    final = _episode(ctx).get("final")
    if not isinstance(final, dict):
        raise Unavailable("the episode table has no 'final' row (the run did not finish)")
    names, shown, raw, meaning, verdict = [], [], [], [], []
    for key, text, points in HEADLINE:
        v = final.get(key)
        names.append(key)
        shown.append(_fmt(v, points) if points else (f"{v:.3f}x" if isinstance(v, float) and key.endswith("ratio")
                                                     else _fmt(v)))
        raw.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan)
        meaning.append(text)
        if not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            verdict.append("")
        elif key.endswith("delta"):
            verdict.append("winning" if v > 0 else "behind" if v < 0 else "even")
        elif key == "efficiency_ratio":
            verdict.append("winning" if v > 1 else "behind" if v < 1 else "even")
        else:
            verdict.append("")
    cols = [_col("figure", names), _col("value", shown), _col("exact", np.asarray(raw), ctx),
            _col("verdict", verdict), _col("meaning", meaning)]
    return {"columns": cols, "rows": len(names),
            "caption": "from the episode table's 'final' row, written when training ended"}


@chart("morph_accuracy", "Accuracy against the host-only baseline", "lines", needs=("metrics",),
       epoch_axis=True, follows=("epoch",))
def morph_accuracy(ctx: BuildContext) -> dict[str, Any]:
    pairs = (("val_acc", "validation", 0, "solid"), ("host_only.val_acc", "host-only validation", 0, "dash"),
             ("test_acc", "test", 1, "solid"), ("host_only.test_acc", "host-only test", 1, "dash"))
    have = set(present_series(ctx, tuple(p[0] for p in pairs)))
    traces = [series_trace(ctx, n, label, color=c, dash=d) for n, label, c, d in pairs if n in have]
    return _lines(ctx, traces, "accuracy")


@chart("morph_delta", "Accuracy delta (grown minus host-only)", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",))
def morph_delta(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, ("accuracy_delta", "test_accuracy_delta"))
    labels = {"accuracy_delta": "validation", "test_accuracy_delta": "test"}
    traces = [series_trace(ctx, n, labels[n], color=i) for i, n in enumerate(have)]
    return _lines(ctx, traces, "accuracy delta", hlines=[{"y": 0, "text": "even with the host-only baseline"}])


@chart("morph_efficiency", "Parameter efficiency and parameter ratio", "lines", needs=("metrics",),
       epoch_axis=True, follows=("epoch",))
def morph_efficiency(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, ("efficiency_ratio", "param_ratio"))
    labels = {"efficiency_ratio": "efficiency ratio (accuracy per parameter vs host-only)",
              "param_ratio": "parameter ratio (total / host)"}
    traces = [series_trace(ctx, n, labels[n], color=i + 2) for i, n in enumerate(have)]
    return _lines(ctx, traces, "ratio", hlines=[{"y": 1, "text": "1 = the host-only baseline"}])


@chart("morph_params", "Parameters: host, seeds in flight, fossilised", "lines", needs=("metrics",),
       epoch_axis=True, follows=("epoch",))
def morph_params(ctx: BuildContext) -> dict[str, Any]:
    parts = (("params.host", "host", 7), ("params.fossilised", "fossilised seeds", 2), ("params.seeds", "seeds in flight", 1))
    have = set(present_series(ctx, tuple(p[0] for p in parts)))
    traces = [series_trace(ctx, n, label, color=c, stack="params", shape="hv") for n, label, c in parts if n in have]
    return _lines(ctx, traces, "parameters (stacked)")


# ------------------------------------------------------------------------------ 2. why?

@chart("morph_cf_matrix", "Counterfactual matrix at the selected epoch", "table", wide=True, follows=("epoch",),
       needs=("tables",))
def morph_cf_matrix(ctx: BuildContext) -> dict[str, Any]:
    rows = _rows(ctx, tm.COUNTERFACTUAL_TABLE)
    if not rows:
        raise Unavailable("the counterfactual table is empty")
    rows.sort(key=lambda r: (int(r["epoch"]), str(r["config"])))
    slots = list(dict.fromkeys(s for r in rows for s in str(r["slots"]).split(",") if s))
    metric = ""
    if ctx.has_table(tm.ATTRIBUTION_TABLE):
        metrics = {_s(m) for m in ctx.table(tm.ATTRIBUTION_TABLE)["metric"]}
        metric = metrics.pop() if len(metrics) == 1 else ""
    cols = [_col("epoch", np.asarray([int(r["epoch"]) for r in rows], dtype=np.int64), ctx),
            _col("config", [str(r["config"]) for r in rows])]
    for s in slots:
        cols.append(_col(s, ["ON" if s in str(r["slots_on"]).split(",") else
                             "off" if s in str(r["slots"]).split(",") else "" for r in rows]))
    cols.append(_col("slots on", [str(r["slots_on"]) or "(none)" for r in rows]))
    cols.append(_col(f"value ({metric})" if metric else "value", np.asarray([float(r["value"]) for r in rows]), ctx))
    if "metric.val_loss" in rows[0]:
        cols.append(_col("val_loss", np.asarray([float(r["metric.val_loss"]) for r in rows]), ctx))
    cols.append(_col("error", [str(r.get("error") or "") for r in rows]))
    epochs = np.unique([int(r["epoch"]) for r in rows]).astype(np.int64)
    return {"columns": cols, "rows": len(rows), "epochColumn": "epoch", "atEpoch": ctx.store.add_int(epochs),
            "snapEpochs": _snap(ctx), "caption": "every on/off configuration of the active slots at the matrix epoch nearest the selected one"}


def _attribution(ctx: BuildContext) -> tuple[np.ndarray, list[str], dict[str, np.ndarray], str]:
    rows = _rows(ctx, tm.ATTRIBUTION_TABLE)
    if not rows:
        raise Unavailable("the attribution table is empty")
    epochs = np.unique([int(r["epoch"]) for r in rows]).astype(np.int64)
    slots = [s for s in _slots(ctx) if any(r["slot"] == s for r in rows)] or \
        list(dict.fromkeys(str(r["slot"]) for r in rows))
    where = {int(e): i for i, e in enumerate(epochs)}
    out = {k: np.full((len(epochs), len(slots)), np.nan) for k in ("shapley", "shapley_stderr", "marginal", "removal")}
    for r in rows:
        if str(r["slot"]) not in slots:
            continue
        i, j = where[int(r["epoch"])], slots.index(str(r["slot"]))
        for k in out:
            v = r.get(k)
            out[k][i, j] = float(v) if v is not None else np.nan
    metric = str(rows[-1].get("metric") or "metric")
    return epochs, slots, out, metric


@chart("morph_attribution", "Attribution per slot at the selected epoch", "profile", follows=("epoch",),
       needs=("tables",))
def morph_attribution(ctx: BuildContext) -> dict[str, Any]:
    epochs, slots, v, metric = _attribution(ctx)
    err = np.where(np.isfinite(v["shapley_stderr"]), v["shapley_stderr"], 0.0)
    lo = np.nanmin([np.nanmin(v[k]) for k in ("marginal", "removal")] + [np.nanmin(v["shapley"] - err)])
    hi = np.nanmax([np.nanmax(v[k]) for k in ("marginal", "removal")] + [np.nanmax(v["shapley"] + err)])
    f = ctx.store.add_float
    traces = [{"name": "Shapley (± its sampling stderr)", "y": f(v["shapley"], rtol=0.0, floor=0.0), "color": 0,
               "err": f(err, rtol=0.0, floor=0.0)},
              {"name": "marginal (average over the other slots' settings)", "y": f(v["marginal"], rtol=0.0, floor=0.0),
               "color": 1},
              {"name": "removal (all on minus this one off)", "y": f(v["removal"], rtol=0.0, floor=0.0), "color": 2}]
    return {"epochs": ctx.store.add_int(epochs), "x": slots, "traces": traces, "bar": True, "xTitle": "slot",
            "yTitle": f"contribution to {metric}", "hoverX": "slot ", "snapEpochs": _snap(ctx),
            "yAll": [1e-9, float(max(hi, 0.0)), float(min(lo, 0.0))] if np.isfinite([lo, hi]).all() else None}


@chart("morph_attribution_time", "Shapley, removal and marginal contribution over time", "lines",
       needs=("metrics",), epoch_axis=True, follows=("epoch",), wide=True)
def morph_attribution_time(ctx: BuildContext) -> dict[str, Any]:
    slots = _slots(ctx)
    traces = []
    for j, s in enumerate(slots):
        for field, dash, label in (("shapley", "solid", "Shapley"), ("removal", "dash", "removal"),
                                   ("marginal", "dot", "marginal")):
            name = tm.slot_series(s, field)
            if ctx.has_series(name) and np.isfinite(ctx.series(name)[1]).any():
                traces.append(series_trace(ctx, name, f"{s} {label}", color=j, dash=dash, mode="lines+markers",
                                           group=s, width=2.2 if field == "shapley" else 1.4))
    if not traces:
        raise Unavailable("no slot.<slot>.shapley / removal / marginal series (no counterfactual matrix was taken)")
    return _lines(ctx, traces, "contribution", hlines=[{"y": 0, "text": "no contribution"}])


@chart("morph_interactions", "Pairwise interaction at the selected epoch", "map2d", follows=("epoch",),
       needs=("tables",))
def morph_interactions(ctx: BuildContext) -> dict[str, Any]:
    rows = _rows(ctx, tm.INTERACTIONS_TABLE)
    if not rows:
        raise Unavailable("the interactions table is empty (fewer than two slots were ever active together)")
    order = _slots(ctx)
    slots = [s for s in order if any(s in (r["slot_a"], r["slot_b"]) for r in rows)]
    slots += list(dict.fromkeys(x for r in rows for x in (str(r["slot_a"]), str(r["slot_b"])) if x not in slots))
    epochs = np.unique([int(r["epoch"]) for r in rows]).astype(np.int64)
    where = {int(e): i for i, e in enumerate(epochs)}
    z = np.full((len(epochs), len(slots), len(slots)), np.nan)
    for r in rows:
        i, a, b = where[int(r["epoch"])], slots.index(str(r["slot_a"])), slots.index(str(r["slot_b"]))
        z[i, a, b] = z[i, b, a] = float(r["interaction"])
    return {"epochs": ctx.store.add_int(epochs), "z": ctx.store.add_float(z, rtol=0.0, floor=0.0),
            "xLabels": slots, "yLabels": slots, "xTitle": "slot", "yTitle": "slot", "zTitle": "interaction",
            "colorscale": "RdBu", "zmid": 0, "height": 320, "cellText": True, "snapEpochs": _snap(ctx)}


# ------------------------------------------------------------------------------ 3. why did it fail?

@chart("morph_alerts", "Health alerts", "table", wide=True, needs=("events",))
def morph_alerts(ctx: BuildContext) -> dict[str, Any]:
    alerts = ctx.events(tm.ALERT_EVENT, listed=True)
    if not alerts:
        ctx.shown_events.discard(tm.ALERT_EVENT)
        raise Unavailable("no alert was raised in this run")
    p = [a.get("payload") if isinstance(a.get("payload"), dict) else {} for a in alerts]

    def num(v: Any) -> float:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else math.nan

    cols = [_col("epoch", np.asarray([int(a["epoch"]) for a in alerts], dtype=np.int64), ctx),
            _col("reason", [str(x.get("reason", "")) for x in p]),
            _col("value", np.asarray([num(x.get("value")) for x in p]), ctx),
            _col("threshold", np.asarray([num(x.get("threshold")) for x in p]), ctx),
            _col("reference", np.asarray([num(x.get("reference")) for x in p]), ctx),
            _col("message", [str(a.get("message", "")) for a in alerts])]
    return {"columns": cols, "rows": len(alerts), "epochColumn": "epoch",
            "caption": "click a row to select its epoch"}


@chart("morph_stages", "Stage timeline per slot, with gate results", "timeline", wide=True, epoch_axis=True,
       follows=("epoch",), needs=("tables",))
def morph_stages(ctx: BuildContext) -> dict[str, Any]:
    t = ctx.table(tm.SLOTS_TABLE)
    if not len(t.get("epoch", ())):
        raise Unavailable("the slots table is empty")
    lanes = _slots(ctx)
    stages = list(tm.STAGES) + sorted({_s(v) for v in t["stage"]} - set(tm.STAGES))
    order = np.lexsort((np.asarray(t["epoch"]), [lanes.index(_s(s)) for s in t["slot"]]))
    segments: list[dict[str, Any]] = []
    for i in order:
        lane, stage, epoch = lanes.index(_s(t["slot"][i])), stages.index(_s(t["stage"][i])), int(t["epoch"][i])
        seed = _s(t["seed_id"][i]) if "seed_id" in t else ""
        blueprint = _s(t["blueprint"][i]) if "blueprint" in t else ""
        last = segments[-1] if segments else None
        if last and last["lane"] == lane and last["state"] == stage and last["seed"] == seed and epoch == last["end"] + 1:
            last["end"] = epoch
            continue
        segments.append({"lane": lane, "state": stage, "start": epoch, "end": epoch, "seed": seed,
                         "blueprint": blueprint})
    for g in segments:
        n = g["end"] - g["start"] + 1
        what = f"seed {g['seed']}" + (f" ({g['blueprint']})" if g["blueprint"] else "") if g["seed"] else "no seed"
        g["text"] = f"epochs {g['start']}-{g['end']} ({n} epoch{'s' if n != 1 else ''}); {what}"
        g["label"] = g["seed"] if n >= 4 else ""  # short bars: the hover names the seed
        del g["seed"], g["blueprint"]
    states = [{"name": s, "color": STAGE_COLORS.get(s, ("#8a90a0", True))[0],
               "dark": STAGE_COLORS.get(s, ("#8a90a0", True))[1]} for s in stages]
    gates = ctx.events(tm.GATE_EVENT, listed=True)
    points = []
    for passed, name, symbol, color in ((True, "gate passed", "circle", "#2ca02c"), (False, "gate failed", "x", "#d62728")):
        xs, ls, texts = [], [], []
        for g in gates:
            pl = g.get("payload") if isinstance(g.get("payload"), dict) else {}
            if bool(pl.get("passed")) != passed or str(pl.get("slot")) not in lanes:
                continue
            # The snapshot of a gate's epoch already shows its outcome: the marker sits on the
            # boundary between that epoch and the one before.
            xs.append(int(g["epoch"]) - 0.5)
            ls.append(lanes.index(str(pl.get("slot"))))
            texts.append(f"{pl.get('slot')} {pl.get('gate', 'gate')} {'passed' if passed else 'failed'} at epoch "
                         f"{g['epoch']}: {pl.get('reason', '')}")
        points.append({"name": name, "symbol": symbol, "color": color, "x": xs, "lane": ls, "text": texts})
    if not gates:
        ctx.shown_events.discard(tm.GATE_EVENT)
    epochs = np.asarray(t["epoch"])
    return {"lanes": lanes, "states": states, "segments": segments, "points": points, "bands": bands(ctx),
            "yTitle": "slot", "range": [float(epochs.min()) - 0.5, float(epochs.max()) + 0.5]}


@chart("morph_dense_traces", "Dense traces: when and why", "table", wide=True, needs=("tables",))
def morph_dense_traces(ctx: BuildContext) -> dict[str, Any]:
    rows = _dense_rows(ctx)
    if not rows:
        raise Unavailable("no dense traces in this bundle")
    cols = [_col(k, np.asarray([int(r[k]) for r in rows], dtype=np.int64), ctx)
            for k in ("trace", "epoch_start", "epoch_end")]
    cols += [_col("trigger", [str(r["trigger"]) for r in rows]), _col("mode", [str(r["mode"]) for r in rows]),
             _col("batches", np.asarray([int(r["batches"]) for r in rows], dtype=np.int64), ctx),
             _col("first step", np.asarray([int(r["step_start"]) for r in rows], dtype=np.int64), ctx),
             _col("last step", np.asarray([int(r["step_end"]) for r in rows], dtype=np.int64), ctx)]
    cols += [_col(k, np.asarray([float(r[k]) for r in rows]), ctx) for k in ("value", "threshold")]
    cols += [_col("reasons", [str(r["reasons"]).replace(",", ", ") for r in rows]),
             _col("message", [str(r["message"]) for r in rows])]
    return {"columns": cols, "rows": len(rows), "epochColumn": "epoch_start",
            "caption": "click a row: the per-batch charts below show that trace"}


def _dense_series(ctx: BuildContext, want) -> list[str]:
    names = [n for n in ctx.bundle.series_names if n.startswith(tm.DENSE_SERIES_PREFIX)]
    return [n for n in names if want(n[len(tm.DENSE_SERIES_PREFIX):])]


def _window_spec(ctx: BuildContext, traces: list[dict[str, Any]], y_title: str, **extra: Any) -> dict[str, Any]:
    return {"windows": _windows(ctx), "traces": traces, "yTitle": y_title, "snapEpochs": _snap(ctx), **extra}


@chart("morph_dense_batches", "Per-batch loss and accuracy in the dense trace", "window_lines", follows=("epoch",),
       needs=("metrics",))
def morph_dense_batches(ctx: BuildContext) -> dict[str, Any]:
    windows = _windows(ctx)
    names = _dense_series(ctx, lambda n: not n.startswith("grad_norm") and n != "epoch")
    if not names:
        raise Unavailable("the dense traces stored no per-batch scalars")
    ctx.consume(tm.DENSE_SERIES_PREFIX + "epoch")  # each step's epoch: the windows already say it
    # One colour per quantity; the host-only baseline's batches (when recorded) dashed beside it.
    base = list(dict.fromkeys(n[len(tm.DENSE_SERIES_PREFIX):].removeprefix("host_only.") for n in names))
    traces = []
    for n in names:
        short = n[len(tm.DENSE_SERIES_PREFIX):]
        host_only = short.startswith("host_only.")
        traces.append(series_trace(ctx, n, short.replace("host_only.", "host-only ") if host_only else short,
                                   color=base.index(short.removeprefix("host_only.")),
                                   dash="dash" if host_only else "solid", width=1.2 if host_only else 1.6))
    return {"windows": windows, "traces": traces, "yTitle": "per batch", "snapEpochs": _snap(ctx)}


@chart("morph_dense_grads", "Per-batch gradient norms in the dense trace", "window_lines", follows=("epoch",),
       needs=("metrics",))
def morph_dense_grads(ctx: BuildContext) -> dict[str, Any]:
    names = _dense_series(ctx, lambda n: n.startswith("grad_norm"))
    names.sort(key=lambda n: (not n.endswith(".host"), n))  # the host first, then the slots
    if not names:
        raise Unavailable("the dense traces stored no per-batch gradient norms")
    traces = [series_trace(ctx, n, n[len(tm.DENSE_SERIES_PREFIX) + len("grad_norm."):] or n, color=i)
              for i, n in enumerate(names)]
    return _window_spec(ctx, traces, "gradient norm", logToggle=True)


def _dense_arrays(ctx: BuildContext, name: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(trace, steps, rows) of array `name` of every dense trace that stored it."""
    out = []
    for r in _dense_rows(ctx):
        art = str(r.get("artifact") or "")
        if not art or not ctx.has_artifact(art):
            continue
        a = ctx.artifact(art)
        if name not in a.names:
            continue
        steps, values = a.per_epoch(name)
        out.append((int(r["trace"]), np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)))
    return out


def _row_names(ctx: BuildContext, n: int, host: bool) -> list[str]:
    slots = _slots(ctx)
    names = (["host"] if host else []) + slots
    return names if len(names) == n else [f"row {i}" for i in range(n)]


@chart("morph_grad_hist", "Gradient magnitude histogram in the dense trace", "map2d", follows=("epoch",),
       needs=("artifacts",))
def morph_grad_hist(ctx: BuildContext) -> dict[str, Any]:
    windows = _windows(ctx)
    got = {t: v for t, _, v in _dense_arrays(ctx, "grad_hist")}
    if not got:
        raise Unavailable("no dense trace stored gradient histograms (traces taken in standard mode keep only scalars)")
    shape = next(iter(got.values())).shape[1:]
    if len(shape) != 2:
        raise Unavailable(f"grad_hist rows have shape {shape}, expected (parts, bins)")
    z = np.full((len(windows), *shape), np.nan)
    for i, w in enumerate(windows):
        if w["trace"] in got:
            counts = np.nansum(got[w["trace"]], axis=0)
            total = counts.sum(axis=1, keepdims=True)
            z[i] = np.where(total > 0, counts / np.where(total > 0, total, 1), np.nan)
    log_bins = shape[1] == len(HIST_EDGES) - 1
    edges = HIST_EDGES if log_bins else np.arange(shape[1] + 1, dtype=float)
    centres = [round(float(a + b) / 2, 4) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return {"windows": windows, "z": ctx.store.add_float(z, rtol=0.0, floor=0.0), "xLabels": centres,
            "yLabels": _row_names(ctx, shape[0], host=True),
            "xTitle": "log10 |gradient| (bin centre; 0.5-wide bins, -10 to 2)" if log_bins else "bin",
            "yTitle": "parameters of", "zTitle": "share of entries", "height": 300, "snapEpochs": _snap(ctx)}


def _array_lines(ctx: BuildContext, arrays: tuple[tuple[str, str, str], ...]) -> list[dict[str, Any]]:
    traces = []
    for name, dash, label in arrays:
        parts = _dense_arrays(ctx, name)
        if not parts:
            continue
        steps = np.concatenate([s for _, s, _ in parts])
        values = np.concatenate([v.reshape(len(v), -1) for _, _, v in parts])
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        names = _row_names(ctx, values.shape[1], host=False)
        for j in range(values.shape[1]):
            traces.append({"name": f"{names[j]} {label}", "x": ctx.store.add_int(steps),
                           "y": ctx.store.add_float(values[:, j], rtol=0.0, floor=0.0), "color": j, "dash": dash,
                           "group": names[j]})
    return traces


@chart("morph_dense_activations", "Activation mean and std per slot in the dense trace", "window_lines",
       follows=("epoch",), needs=("artifacts",))
def morph_dense_activations(ctx: BuildContext) -> dict[str, Any]:
    _windows(ctx)
    traces = _array_lines(ctx, (("activation_mean", "solid", "mean"), ("activation_std", "dash", "std")))
    if not traces:
        raise Unavailable("no dense trace stored activation statistics")
    return _window_spec(ctx, traces, "slot output")


@chart("morph_dense_dead", "Dead units per slot in the dense trace", "window_lines", follows=("epoch",),
       needs=("artifacts",))
def morph_dense_dead(ctx: BuildContext) -> dict[str, Any]:
    _windows(ctx)
    traces = _array_lines(ctx, (("dead_units", "solid", "dead units"),))
    if not traces:
        raise Unavailable("no dense trace stored dead-unit counts")
    return _window_spec(ctx, traces, "dead units")


# ------------------------------------------------------------------------------ 4. reproduce

@chart("morph_episode", "Episode context (tier 1)", "table", wide=True, needs=("tables",))
def morph_episode(ctx: BuildContext) -> dict[str, Any]:
    ep = _episode(ctx)
    if not ep:
        raise Unavailable("the episode table is empty")
    rows = [(k, v, "episode table") for k, v in sorted(ep.items())]
    return _kv_table(ctx, rows, "everything recorded once per run; values are JSON")


@chart("morph_replay", "What a replay needs: seeds, config, starting checkpoint, cost", "table", wide=True,
       needs=("tables",))
def morph_replay(ctx: BuildContext) -> dict[str, Any]:
    ep = _episode(ctx)
    b = ctx.bundle
    rows: list[tuple[str, Any, str]] = []
    for k, v in sorted((b.context.get("seeds") or {}).items()):
        rows.append((f"seed {k}", v, "bundle seeds"))
    for k in ("base_seed", "torch_seed", "numpy_seed", "data_seed"):
        if k in ep:
            rows.append((k, ep[k], "episode"))
    if "initial_checkpoint_epoch" in ep:
        ck = ep["initial_checkpoint_epoch"]
        stored = ck in b.checkpoint_epochs
        rows.append(("initial checkpoint epoch", f"{ck} ({'stored in this bundle' if stored else 'NOT in this bundle'})",
                     "episode"))
    rows.append(("checkpoints stored", ", ".join(str(e) for e in b.checkpoint_epochs) or "none", "bundle"))
    for k, v in sorted((ep.get("cost") or {}).items()) if isinstance(ep.get("cost"), dict) else ():
        rows.append((f"cost {k}", v, "episode"))
    config = b.config
    if config.get("experiment") == "morphogenesis":
        args = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in config.items() if k != "experiment"]
        rows.append(("replay command", "epochscope collect --experiment morphogenesis -o replay.h5 "
                     + " ".join(shlex.quote(a) for a in args), "bundle config"))
    for k, v in sorted(config.items()):
        rows.append((f"config {k}", v, "bundle config"))
    if not rows:
        raise Unavailable("no seeds, config or checkpoints recorded")
    return _kv_table(ctx, rows, "seeds and config reproduce the run from the initial checkpoint")


@chart("morph_cf_cost", "Cost of the counterfactual matrices", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",))
def morph_cf_cost(ctx: BuildContext) -> dict[str, Any]:
    present_series(ctx, ("counterfactual.seconds",))
    trace = series_trace(ctx, "counterfactual.seconds", "seconds per matrix", color=0, mode="lines+markers")
    if ctx.has_series("counterfactual.evaluations"):
        e1, _ = ctx.series("counterfactual.seconds")
        e2, _ = ctx.series("counterfactual.evaluations")
        if np.array_equal(e1, e2):  # logged together: the count shows in each point's hover
            trace.update(k=ctx.series_ref("counterfactual.evaluations")["y"], kLabel="configurations evaluated:")
    return _lines(ctx, [trace], "seconds per matrix")


# ------------------------------------------------------------------------------ 5. without seeds

@chart("morph_without", "With seeds, seeds switched off, never grown", "lines", needs=("metrics",),
       epoch_axis=True, follows=("epoch",), wide=True)
def morph_without(ctx: BuildContext) -> dict[str, Any]:
    parts = (("val_acc", "grown model (seeds as trained)", 0, "solid", "lines"),
             ("counterfactual.empty", "same model, every seed switched off (counterfactual 'empty')", 3, "solid",
              "lines+markers"),
             ("host_only.val_acc", "host-only baseline (never grown)", 7, "dash", "lines"))
    have = set(present_series(ctx, tuple(p[0] for p in parts)))
    if "val_acc" not in have:
        raise Unavailable("no 'val_acc' series")
    traces = [series_trace(ctx, n, label, color=c, dash=d, mode=m) for n, label, c, d, m in parts if n in have]
    return _lines(ctx, traces, "validation accuracy")
