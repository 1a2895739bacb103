"""The generic pack: whatever a bundle holds that no other pack showed.

Every metric series (grouped by generator/series_groups.py, small multiples when there are
many), a table of every metric's headline (generator/facts.py), every table of the bundle,
every event (a table whose rows select their epoch), and every analysis artifact no chart
read, drawn by the shape of its per-epoch rows: a scalar as a line over epochs, a vector as
a heatmap (epoch x index) plus its slice at the selected epoch, a 2-D map as a heatmap at
the selected epoch. On comparison pages: every other metric series the variants share, and
the difference of two variants.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from epochscope.generator.charts import chart, series_trace
from epochscope.generator.charts.weights import value_range
from epochscope.generator.context import BuildContext, Unavailable, pick_epochs
from epochscope.generator.events import current_events
from epochscope.generator.facts import run_facts
from epochscope.generator.packs import Pack, Section
from epochscope.generator.series_groups import group_series

# More series charts than this become small multiples (narrow, short cards).
SMALL_MULTIPLES = 4
# Embedded bytes one unknown artifact array may take (its epochs are thinned to fit).
ARTIFACT_BUDGET = 600_000
# Per-epoch vectors up to this length are drawn as one line per entry, longer ones as a heatmap.
SHORT_VECTOR = 8
# Table rows embedded; a longer table shows its first rows and says so.
MAX_TABLE_ROWS = 100_000
_LOG_SPAN = 2.0  # decades a positive loss-like series must span to start on a log axis


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    a = abs(value)
    return f"{value:.4g}" if a == 0 or 1e-3 <= a < 1e5 else f"{value:.3e}"


# ------------------------------------------------------------------------------ metric series

def _series_card(ctx: BuildContext, i: int, group, small: bool, facts) -> dict[str, Any]:
    traces, finite, positive, lossy, span = [], False, True, False, 0.0
    about, notes = [], []
    longest = 0
    for j, (name, label) in enumerate(group.members):
        epochs, values = ctx.series(name)
        if not epochs.size:
            continue
        ok = values[np.isfinite(values)]
        longest = max(longest, int(epochs.size))
        if ok.size:
            finite = True
            positive &= bool((ok > 0).all())
            if (ok > 0).all():
                span = max(span, float(np.log10(ok.max() / ok.min())) if ok.min() > 0 else 0.0)
        lossy |= any(w in name.lower() for w in ("loss", "perplexity", "error", "nll"))
        traces.append(series_trace(ctx, name, label, color=j))
        m = facts.metrics.get(name)
        if m is not None:
            line = f"{name}: final {_fmt(m.final)}"
            if m.final_epoch is not None:
                line += f" (epoch {m.final_epoch})"
            if m.best is not None:
                line += f", best {_fmt(m.best)} at epoch {m.best_epoch}"
            if m.degraded:
                line += f"; peaked, then degraded ({m.degraded_text})"
            notes.append(line)
            bits = []
            if m.description:
                bits.append(m.description)
            if m.unit:
                bits.append(f"unit: {m.unit}")
            if m.direction:
                bits.append(("lower" if m.direction == "min" else "higher") + " is better"
                            + (" (declared by the recording code)" if m.direction_source == "declared"
                               else " (from its name)"))
            if bits:
                about.append(f"{name}: " + "; ".join(bits) + ".")
    title = group.title
    if not traces or not finite:
        names = ", ".join(f"'{n}'" for n in group.names)
        return {"key": f"s{i}", "title": title,
                "unavailable": f"no data: {names} hold{'s' if len(group.names) == 1 else ''} only NaN/inf"}
    if len(notes) > 3:  # many parts: the headline table below has every one
        notes = notes[:2] + [f"and {len(notes) - 2} more in the headline table below"]
    units = {facts.metrics[n].unit for n in group.names if n in facts.metrics and facts.metrics[n].unit}
    spec = {"traces": traces, "yTitle": title + (f" ({units.pop()})" if len(units) == 1 else ""),
            "logToggle": positive, "logy": bool(positive and lossy and span >= _LOG_SPAN), "smooth": True}
    if longest <= 60:
        for t in traces:
            t["mode"] = "lines+markers"
    how = {"splits": "one line per split", "parts": "one line per part", "single": ""}[group.how]
    return {"key": f"s{i}", "title": title, "kind": "lines", "spec": spec, "small": small,
            "note": "; ".join(notes), "about": " ".join(about), "subtitle": how,
            "epoch_axis": True, "follows": ("epoch",)}


@chart("metrics", "Metric series", "lines", epoch_axis=True, follows=("epoch",), multi=True, late=True,
       needs=("metrics",))
def metrics(ctx: BuildContext) -> list[dict[str, Any]]:
    left = [n for n in ctx.bundle.series_names if n not in ctx.shown_series]
    if not left:
        if ctx.bundle.series_names:
            return []  # every series is drawn above: nothing is missing
        raise Unavailable("no metric series in this bundle")
    facts = run_facts(ctx.bundle, ctx)
    rank = {n: i for i, n in enumerate(facts.headline)}
    groups = group_series(left)
    # The headline's order (the loss family first), then the rest alphabetically.
    groups.sort(key=lambda g: (min(rank.get(n, len(rank)) for n in g.names), g.title.lower()))
    small = len(groups) > SMALL_MULTIPLES
    return [_series_card(ctx, i, g, small, facts) for i, g in enumerate(groups)]


@chart("metric_summary", "Headline of every metric", "table", needs=("metrics",), wide=True)
def metric_summary(ctx: BuildContext) -> dict[str, Any]:
    facts = run_facts(ctx.bundle, ctx)
    if not facts.metrics:
        raise Unavailable("no metric series in this bundle")
    rows = list(facts.metrics.values())
    arrow = {"min": "lower", "max": "higher", None: "–"}
    cols = [
        _col("metric", [m.name for m in rows]),
        _col("final", [m.final for m in rows], ctx),
        _col("final epoch", [m.final_epoch for m in rows], ctx),
        _col("best", [m.best for m in rows], ctx),
        _col("best epoch", [m.best_epoch for m in rows], ctx),
        _col("better", [arrow[m.direction] + (" (declared)" if m.direction_source == "declared" else "")
                        if m.direction else "–" for m in rows]),
        _col("unit", [m.unit for m in rows]),
        _col("points", [m.points for m in rows], ctx),
        _col("note", ["peaked, then degraded: " + m.degraded_text if m.degraded else "" for m in rows]),
    ]
    return {"columns": cols, "rows": len(rows), "caption": "final and best value of each series; "
            "'better' is the direction a best value is taken in"}


# ------------------------------------------------------------------------------ tables

def _col(name: str, values: Any, ctx: BuildContext | None = None) -> dict[str, Any]:
    """One table column as the page gets it: numbers as a typed array (None/NaN: empty),
    integers exactly, everything else as strings."""
    arr = np.asarray(values, dtype=object) if isinstance(values, list) else np.asarray(values)
    if arr.dtype.kind in "iu" and ctx is not None:
        if arr.size and int(np.abs(arr).max()) >= 2**31:  # beyond the page's int32: exact as text
            return {"name": str(name), "type": "str", "data": [str(v) for v in arr.tolist()]}
        return {"name": str(name), "type": "int", "data": ctx.store.add_int(arr)}
    if arr.dtype.kind == "b":
        return {"name": str(name), "type": "str", "data": ["yes" if v else "no" for v in arr.tolist()]}
    if arr.dtype.kind == "f" and ctx is not None:
        return {"name": str(name), "type": "num", "data": ctx.store.add_float(arr, rtol=0.0, floor=0.0)}
    items = arr.tolist() if arr.ndim else [arr.item()]
    numeric = [v for v in items if v is not None]
    if ctx is not None and numeric and all(isinstance(v, (int, float, np.integer, np.floating))
                                           and not isinstance(v, bool) for v in numeric):
        floats = np.array([np.nan if v is None else float(v) for v in items])
        if (all(isinstance(v, (int, np.integer)) for v in numeric) and len(numeric) == len(items)
                and max(abs(int(v)) for v in numeric) < 2**31):
            return {"name": str(name), "type": "int", "data": ctx.store.add_int(floats.astype(np.int64))}
        return {"name": str(name), "type": "num", "data": ctx.store.add_float(floats, rtol=0.0, floor=0.0)}
    return {"name": str(name), "type": "str", "data": ["" if v is None else _text(v) for v in items]}


table_column = _col  # for other packs' table charts: the same cell encoding


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


@chart("tables", "Tables", "table", needs=("tables",), multi=True, wide=True, late=True)
def tables(ctx: BuildContext) -> list[dict[str, Any]]:
    if not ctx.bundle.table_names:
        raise Unavailable("no tables in this bundle")
    names = [n for n in ctx.bundle.table_names if n not in ctx.shown_tables]  # a pack's charts show the rest
    if not names:
        return []
    cards = []
    for i, name in enumerate(names):
        try:
            data = ctx.bundle.table(name)
        except (KeyError, OSError, ValueError) as exc:
            cards.append({"key": f"t{i}", "title": name, "unavailable": f"table '{name}' cannot be read ({exc})"})
            continue
        lengths = {len(np.asarray(v).reshape(-1)) if np.asarray(v).ndim else 1 for v in data.values()}
        n = max(lengths) if lengths else 0
        note = ""
        if n > MAX_TABLE_ROWS:
            note = f"{n:,} rows: the first {MAX_TABLE_ROWS:,} are embedded"
        cols = []
        for col, values in data.items():
            arr = np.asarray(values)
            if arr.ndim == 0:
                arr = arr.reshape(1)
            if arr.ndim > 1:  # a column of vectors: one text cell each
                arr = np.array([np.array2string(r, precision=4, threshold=8) for r in arr], dtype=object)
            arr = arr[:MAX_TABLE_ROWS]
            if len(arr) < min(n, MAX_TABLE_ROWS):  # a short column: pad with empty cells
                pad = min(n, MAX_TABLE_ROWS) - len(arr)
                arr = np.concatenate([arr.astype(object), np.array([None] * pad, dtype=object)])
            cols.append(_col(col, arr, ctx))
        if len(lengths) > 1:
            note = (note + "; " if note else "") + "columns of different lengths: shorter ones padded with empty cells"
        cards.append({"key": f"t{i}", "title": name, "kind": "table", "wide": True,
                      "spec": {"columns": cols, "rows": min(n, MAX_TABLE_ROWS)},
                      "note": note or f"{n:,} row{'s' if n != 1 else ''}, {len(cols)} columns"})
    return cards


# ------------------------------------------------------------------------------ events

@chart("events", "Events", "events", needs=("events",), follows=("epoch",), wide=True, late=True)
def events(ctx: BuildContext) -> dict[str, Any]:
    everything = current_events(ctx.bundle)
    if not everything:
        raise Unavailable("no events in this bundle")
    # Kinds a pack listed in a chart of its own are left out here (they still mark the epoch axes).
    exclude = sorted(ctx.shown_events)
    n = sum(1 for e in everything if e["kind"] not in ctx.shown_events)
    if not n:
        raise Unavailable("every event is listed by a chart above")
    return {"rows": n, "exclude": exclude}


# ------------------------------------------------------------------------------ artifacts

def _artifact_cards(ctx: BuildContext, name: str, k: int) -> list[dict[str, Any]]:
    art = ctx.bundle.artifact(name)
    cards: list[dict[str, Any]] = []
    scalars = {**art.params, **art.scalars}
    facts = ", ".join(f"{key} = {_short(v)}" for key, v in list(scalars.items())[:12])
    base = f"analysis '{name}' (version {art.version})" + (f"; {facts}" if facts else "")
    for j, arr_name in enumerate(art.names):
        key = f"a{k}-{j}"
        title = f"{name} · {arr_name}"
        try:
            epochs, values = art.per_epoch(arr_name)
        except (KeyError, OSError, ValueError) as exc:
            cards.append({"key": key, "title": title, "unavailable": f"cannot be read ({exc})"})
            continue
        epochs = np.asarray(epochs, dtype=np.int64)
        values = np.asarray(values)
        if values.dtype.kind not in "biuf" or not epochs.size:
            cards.append({"key": key, "title": title, "unavailable": f"array '{arr_name}' of {name} holds "
                          f"{values.dtype} values, which have no chart"})
            continue
        values = values.astype(np.float64)
        order = np.argsort(epochs, kind="stable")
        epochs, values = epochs[order], values[order]
        row = values.shape[1:]
        if not np.isfinite(values).any():
            cards.append({"key": key, "title": title, "unavailable": f"no data: array '{arr_name}' of {name} holds "
                          "only NaN/inf"})
            continue
        if len(row) == 0 or (len(row) == 1 and row[0] == 1):
            v = values.reshape(len(epochs))
            ok = v[np.isfinite(v)]
            trace = {"name": arr_name, "x": ctx.store.add_int(epochs), "y": ctx.store.add_float(v, floor=0.0),
                     "color": 0, "mode": "lines+markers" if len(epochs) <= 200 else "lines"}
            cards.append({"key": key, "title": title, "kind": "lines", "epoch_axis": True, "follows": ("epoch",),
                          "spec": {"traces": [trace], "yTitle": arr_name, "logToggle": bool((ok > 0).all()),
                                   "smooth": True}, "note": base})
        elif len(row) == 1 and row[0] <= SHORT_VECTOR:
            # A few entries (PC1-3, per-slot values): one line each reads better than a heatmap.
            ok = values[np.isfinite(values)]
            traces = [{"name": f"{arr_name}[{i}]", "x": ctx.store.add_int(epochs),
                       "y": ctx.store.add_float(values[:, i], floor=0.0), "color": i,
                       "mode": "lines+markers" if len(epochs) <= 200 else "lines"} for i in range(row[0])]
            cards.append({"key": key, "title": title, "kind": "lines", "epoch_axis": True, "follows": ("epoch",),
                          "spec": {"traces": traces, "yTitle": arr_name, "logToggle": bool((ok > 0).all()),
                                   "smooth": True}, "note": base})
        elif len(row) == 1:
            n = row[0]
            per = max(1, n)  # bytes per epoch row (uint8 codes)
            keep = pick_epochs(epochs, max(2, ARTIFACT_BUDGET // per))
            e, v = epochs[keep], values[keep]
            note = base + (f"; {len(keep)} of {len(epochs)} epochs embedded" if len(keep) < len(epochs) else "")
            cards.append({"key": key + "h", "title": title, "kind": "heatmap_time", "epoch_axis": True,
                          "follows": ("epoch",), "note": note,
                          "spec": {"x": ctx.store.add_int(e), "z": ctx.store.add_quantized(v, lead=0),
                                   "yLabels": [str(i) for i in range(n)], "yTitle": "index", "zTitle": arr_name}})
            cards.append({"key": key + "p", "title": f"{title} at the epoch", "kind": "profile", "follows": ("epoch",),
                          "note": base,
                          "spec": {"epochs": ctx.store.add_int(e), "x": list(range(n)),
                                   "traces": [{"name": arr_name, "y": ctx.store.add_float(v), "color": 0}],
                                   "xTitle": "index", "yTitle": arr_name, "yAll": value_range(v),
                                   "logToggle": bool((v[np.isfinite(v)] > 0).all())}})
        elif len(row) == 2:
            h, w = row
            keep = pick_epochs(epochs, max(2, ARTIFACT_BUDGET // max(1, h * w)))
            e, v = epochs[keep], values[keep]
            note = base + (f"; {len(keep)} of {len(epochs)} epochs embedded" if len(keep) < len(epochs) else "")
            cards.append({"key": key, "title": f"{title} at the epoch", "kind": "map2d", "follows": ("epoch",),
                          "note": note, "spec": {"epochs": ctx.store.add_int(e), "z": ctx.store.add_quantized(v),
                                                 "zTitle": arr_name}})
        else:
            # (epochs, a, ..., h, w): the maps of the first entries of the leading axes.
            flat = values.reshape(len(epochs), -1, row[-2], row[-1])
            h, w = row[-2:]
            keep = pick_epochs(epochs, max(2, ARTIFACT_BUDGET // max(1, h * w)))
            e, v = epochs[keep], flat[keep, 0]
            cards.append({"key": key, "title": f"{title}[0] at the epoch", "kind": "map2d", "follows": ("epoch",),
                          "note": base + f"; rows of shape {tuple(row)}: the first {h}×{w} map is drawn",
                          "spec": {"epochs": ctx.store.add_int(e), "z": ctx.store.add_quantized(v),
                                   "zTitle": arr_name}})
    for j, arr_name in enumerate(art.summary_names):
        value = np.asarray(art.summary(arr_name))
        key = f"a{k}-s{j}"
        title = f"{name} · {arr_name} (summary)"
        if value.dtype.kind not in "biuf" or value.ndim != 1 or value.size < 2:
            continue  # labels, single values: shown in the artifact's facts
        v = value.astype(np.float64)
        if not np.isfinite(v).any():
            continue
        cards.append({"key": key, "title": title, "kind": "lines", "note": base,
                      "spec": {"traces": [{"name": arr_name, "x": ctx.store.add_int(np.arange(v.size)),
                                           "y": ctx.store.add_float(v, floor=0.0), "color": 0,
                                           "mode": "lines+markers"}],
                               "yTitle": arr_name, "xTitle": "index", "noTime": True}})
    if not cards:
        cards.append({"key": f"a{k}", "title": name, "unavailable": f"analysis '{name}' stored no arrays to draw"
                      + (f" ({facts})" if facts else "")})
    return cards


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@chart("artifacts", "Analysis results", "lines", needs=("artifacts",), multi=True, late=True)
def artifacts(ctx: BuildContext) -> list[dict[str, Any]]:
    left = [n for n in ctx.bundle.artifact_names if n not in ctx.shown_artifacts]
    if not left:
        if ctx.bundle.artifact_names:
            return []
        raise Unavailable("no analysis artifacts in this bundle")
    out = []
    for k, name in enumerate(left):
        out.extend(dict(card, reads=(name,)) for card in _artifact_cards(ctx, name, k))
    return out


PACK = Pack(
    name="generic",
    title="Everything in the bundle",
    sections=(
        Section("metrics", "Metric series", ("metrics", "metric_summary"),
                "Every logged series: splits (train/val/test) overlaid, parts (X.part) in one chart. The smoothing "
                "control in the sidebar draws an exponential moving average over the faint raw curve."),
        Section("tables", "Tables", ("tables",), "Every table in the bundle: click a header to sort, type to filter."),
        Section("events", "Events", ("events",), "Every recorded event; click a row to select its epoch."),
        Section("artifacts", "Other analysis results", ("artifacts",),
                "Analyses no pack has a chart for, drawn by the shape of their per-epoch results."),
    ),
    compare_sections=(
        Section("other", "Other metric series", ("metric_series",),
                "Every other metric series at least two variants share, one at a time, train/val/test splits of "
                "one quantity together."),
        Section("across", "Across runs", ("init_best",),
                "How a run's start relates to its best: each run's initial value of a metric against its best."),
        Section("difference", "Difference", ("difference",), "The second variant minus the first, on the epochs "
                "both logged."),
    ),
    modules=(),
)
