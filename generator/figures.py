"""A report's charts as plotly Figures, for notebooks: `open_bundle(path).chart("loss")`.

The chart is built by the report's own registry (generator/charts.py and the packs) exactly
as for the page, but into an `ExactStore` that keeps the bundle's arrays as they are (no
float16, no quantising, no thinning for size). The page turns a chart spec into a Plotly
figure in JavaScript (templates/report_charts.js, one renderer per kind); this module does
the same for the kinds drawn with plotly traces there: `FIGURE_KINDS`. Kinds the page draws
on canvases or as HTML tables have no Figure and say so.
"""

from __future__ import annotations

import html
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from epochscope.archives import Bundle
from epochscope.errors import EpochscopeError
from epochscope.generator.data import PageData, build_page
from epochscope.generator.encode import ArrayStore
from epochscope.generator.palette import EVENT_COLORS, PALETTE

__all__ = ["FIGURE_KINDS", "ExactStore", "chart_figure", "chart_names"]

# Everything embedded: no detail chart is thinned to a size budget in a notebook.
_NO_BUDGET = 1 << 50


class ExactStore(ArrayStore):
    """An ArrayStore that keeps every array exactly as given (for figures built in Python)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, np.ndarray] = {}

    def _keep(self, values: Any, dtype: Any) -> dict[str, str]:
        aid = f"x{len(self.raw)}"
        self.raw[aid] = np.array(values, dtype=dtype)
        return {"$a": aid}

    def add_float(self, values: Any, **_: Any) -> dict[str, str]:
        return self._keep(values, np.float64)

    def add_int(self, values: Any) -> dict[str, str]:
        return self._keep(values, np.int64)

    def add_quantized(self, values: Any, **_: Any) -> dict[str, str]:
        return self._keep(values, np.float64)

    def resolve(self, spec: Any) -> Any:
        """`spec` with every array reference replaced by its numpy array."""
        if isinstance(spec, list):
            return [self.resolve(v) for v in spec]
        if isinstance(spec, dict):
            if isinstance(spec.get("$a"), str) and len(spec) == 1:
                return self.raw[spec["$a"]]
            return {k: self.resolve(v) for k, v in spec.items()}
        return spec


_PAGES: weakref.WeakKeyDictionary[Bundle, tuple[PageData, ExactStore]] = weakref.WeakKeyDictionary()


def _page(bundle: Bundle) -> tuple[PageData, ExactStore]:
    """The bundle's report content with exact arrays, built once per open bundle."""
    if bundle not in _PAGES:
        store = ExactStore()
        _PAGES[bundle] = (build_page(bundle, None, data_budget=_NO_BUDGET, store=store), store)
    return _PAGES[bundle]


def chart_names(bundle: Bundle) -> list[str]:
    """The charts of `bundle`'s report, in page order (a multi chart's cards as `chart-key`)."""
    data, _ = _page(bundle)
    return [c.name for g in data.groups for c in g.charts]


def chart_figure(bundle: Bundle, name: str, *, epoch: int | None = None, neuron: int = 0,
                 head: int = 0) -> Any:
    """Chart `name` of `bundle`'s report as a plotly Figure (`.show()` draws it inline).

    `epoch`, `neuron`, `head`: the state the page's controls would set (default: the page's
    default epoch, neuron 0, head 0) for the charts that follow them. Raises EpochscopeError
    naming the available charts for an unknown name, saying why for a chart this bundle
    cannot have, and naming the supported kinds for one drawn without plotly traces.
    """
    import plotly.graph_objects as go

    data, store = _page(bundle)
    charts = data.page["charts"]
    if name not in charts:
        from epochscope.generator.charts import CHARTS

        known = CHARTS.get(name)
        why = [r for what, r in data.unavailable if known and what.split(": ")[-1] == known.title]
        if why:
            raise EpochscopeError(f"chart {name!r} is not available for this bundle: {why[0]}")
        raise EpochscopeError(f"no chart {name!r} in this bundle's report; its charts: "
                              + ", ".join(chart_names(bundle)))
    entry = charts[name]
    make = FIGURE_KINDS.get(entry["kind"])
    if make is None:
        raise EpochscopeError(f"chart {name!r} is of kind {entry['kind']!r}, which only the report page draws; "
                              f"chart() draws the kinds {', '.join(FIGURE_KINDS)}: "
                              + ", ".join(n for n in chart_names(bundle) if charts[n]["kind"] in FIGURE_KINDS))
    card = next(c for g in data.groups for c in g.charts if c.name == name)
    state = {
        "epoch": data.page["defaults"]["epoch"] if epoch is None else int(epoch),
        "neuron": int(neuron), "head": int(head), "logy": bool(entry.get("logy")),
        "events": [e for e in data.page["events"]
                   if e["kind"] not in {k["kind"] for k in data.page["eventKinds"] if k["hidden"]}],
        "checkpoints": store.resolve(data.page["checkpoints"]) if data.page["checkpoints"] else None,
    }
    fig = make(store.resolve(entry["spec"]), state, entry)
    # The card's title at the top, above the legend (which sits just above the plot).
    fig["layout"]["title"] = {"text": _esc(card.title), "x": 0, "xanchor": "left", "y": 1, "yref": "container",
                              "yanchor": "top", "pad": {"t": 10, "l": 8}}
    fig["layout"]["margin"]["t"] = 86
    fig["layout"]["height"] = fig["layout"].get("height", 300) + 40
    return go.Figure(fig)


# ------------------------------------------------------------------------------ the renderers
# Each mirrors the function of the same kind in templates/report_charts.js (less what only an
# interactive page needs: smoothing, decimation, the epoch overlay).

def _esc(text: Any) -> str:
    """Plotly renders a subset of HTML in names, titles and hover text: user strings as text."""
    return html.escape(str(text), quote=False)


def _color(i: Any) -> str:
    return PALETTE[i % len(PALETTE)] if isinstance(i, int) else (i or PALETTE[0])


def _event_color(kind: str) -> str:
    if kind in EVENT_COLORS:
        return EVENT_COLORS[kind]
    h = 0
    for ch in kind:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return PALETTE[h % len(PALETTE)]


def _nearest(xs: np.ndarray, x: float) -> int:
    return int(np.argmin(np.abs(np.asarray(xs, dtype=np.float64) - x)))


def _base_layout(**extra: Any) -> dict[str, Any]:
    layout = {
        "height": 300, "margin": {"l": 64, "r": 24, "t": 40, "b": 44}, "plot_bgcolor": "#ffffff",
        "hovermode": "closest", "hoverlabel": {"namelength": -1}, "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 11}},
        "xaxis": {"title": {"text": "epoch"}, "zeroline": False, "automargin": True, "gridcolor": "#e6e8ef"},
        "yaxis": {"zeroline": False, "automargin": True, "gridcolor": "#e6e8ef"},
        "shapes": [], "annotations": [],
    }
    layout.update(extra)
    return layout


def _time_decor(st: dict, fig: dict) -> dict:
    """Event lines (with hover markers) and checkpoint ticks on an epoch x axis."""
    fig["layout"]["yaxis9"] = {"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True}
    kinds: dict[str, list[int]] = {}
    for e in st["events"]:
        kinds.setdefault(e["kind"], []).append(e["epoch"])
    for kind, epochs in kinds.items():
        xs = [v for x in epochs for v in (x, x, None)]
        ys = [v for _ in epochs for v in (0, 1, None)]
        fig["data"].append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "yaxis": "y9", "hoverinfo": "skip",
                            "showlegend": False, "opacity": 0.75,
                            "line": {"color": _event_color(kind), "width": 1, "dash": "dash"}})
    if st["events"]:
        ev = st["events"]
        fig["data"].append({
            "type": "scatter", "mode": "markers", "x": [e["epoch"] for e in ev], "y": [0.97] * len(ev), "yaxis": "y9",
            "name": "events", "hovertemplate": "%{text}<extra></extra>", "showlegend": False, "cliponaxis": False,
            "text": ["<b>" + _esc(e["kind"]) + "</b> at epoch " + str(e["epoch"])
                     + ("<br>" + _esc(e["message"]) if e.get("message") else "")
                     + ("<br>" + _esc(e["detail"]) if e.get("detail") else "") for e in ev],
            "marker": {"symbol": "triangle-down", "size": 9, "color": [_event_color(e["kind"]) for e in ev]}})
    ck = st["checkpoints"]
    if ck is not None and len(ck):
        fig["data"].append({"type": "scatter", "mode": "markers", "x": ck, "y": np.full(len(ck), 0.012), "yaxis": "y9",
                            "name": "checkpoints", "showlegend": False,
                            "hovertemplate": "checkpoint at epoch %{x}<extra></extra>",
                            "marker": {"symbol": "line-ns-open", "size": 7, "color": "#8a90a0",
                                       "line": {"width": 1, "color": "#8a90a0"}}})
    return fig


def _bands(sp: dict, fig: dict) -> dict:
    bands = sp.get("bands") or []
    if not bands:
        return fig
    fig["layout"].setdefault("yaxis9", {"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True})
    for b in bands:
        fig["layout"]["shapes"].append({"type": "rect", "xref": "x", "yref": "paper", "x0": b["x0"], "x1": b["x1"],
                                        "y0": 0, "y1": 1, "fillcolor": "rgba(23,190,207,0.12)", "layer": "below",
                                        "line": {"width": 1, "color": "rgba(23,190,207,0.55)"}})
    fig["data"].append({"type": "scatter", "mode": "markers", "x": [b["epoch"] for b in bands],
                        "y": [0.04] * len(bands), "yaxis": "y9", "name": "dense traces", "showlegend": False,
                        "cliponaxis": False, "hovertemplate": "%{text}<extra></extra>",
                        "text": [_esc(b["text"]) for b in bands],
                        "marker": {"symbol": "square", "size": 8, "color": "#17becf"}})
    return fig


def _axis_types(entry: dict, st: dict, layout: dict) -> None:
    if entry.get("logToggle"):
        layout["yaxis"]["type"] = "log" if st["logy"] else "linear"
    for ax in ("yaxis", "yaxis2"):
        if ax in layout:
            layout[ax]["exponentformat"] = "power"


def _lines(sp: dict, st: dict, entry: dict) -> dict:
    data = []
    for t in sp["traces"]:
        col = t.get("col")
        y = np.asarray(t["y"], dtype=np.float64)
        if col is None:
            y = y.reshape(-1)
        else:
            y2 = y.reshape(len(y), -1)
            j = col if isinstance(col, int) else st["head"] if col == "head" else st["neuron"]
            y = y2[:, min(y2.shape[1] - 1, j)]
        name = f"{t['name']} {st['neuron']}" if col == "neuron" else t["name"]
        selected = t.get("head") is not None and t.get("head") == st["head"]
        tr = {"type": "scatter", "mode": t.get("mode", "lines"), "x": np.asarray(t["x"]), "y": y, "name": _esc(name),
              "line": {"color": _color(t.get("color")), "width": t.get("width", 3.5 if selected else 1.8),
                       "dash": t.get("dash", "solid"), "shape": t.get("shape", "linear")},
              "marker": {"size": 4, "color": _color(t.get("color"))}, "opacity": t.get("opacity", 1),
              "yaxis": t.get("yaxis", "y"), "connectgaps": False, "showlegend": t.get("legend", True) is not False,
              "hovertemplate": "%{y:.4g} at " + _esc(sp.get("xHover", "epoch")) + " %{x}<extra>" + _esc(t["name"])
                               + "</extra>"}
        if t.get("visible"):
            tr["visible"] = t["visible"]
        if t.get("legendName"):
            tr["name"] = _esc(t["legendName"])
        if t.get("group"):
            tr["legendgroup"] = t["group"]
        if t.get("stack"):
            tr["stackgroup"] = t["stack"]
        if t.get("fill"):
            tr.update(fill=t["fill"], fillcolor="rgba(31,119,180,0.15)")
        data.append(tr)
    for p in sp.get("points") or []:
        data.append({"type": "scatter", "mode": "markers", "x": p["x"], "y": p["y"], "name": _esc(p["name"]),
                     "text": ["<br>".join(map(_esc, t)) if isinstance(t, list) else _esc(t) for t in p["text"]],
                     "legendgroup": p.get("group"), "showlegend": not p.get("group"),
                     "hovertemplate": "%{text}<extra></extra>",
                     "marker": {"symbol": p.get("symbol", "x"), "size": p.get("size", 8),
                                "color": _color(p["color"]) if p.get("color") is not None else "#d62728",
                                "line": {"width": 1, "color": "#1d2330"}}})
    layout = _base_layout()
    layout["yaxis"]["title"] = {"text": _esc(sp.get("yTitle", ""))}
    if sp.get("xTitle"):
        layout["xaxis"]["title"] = {"text": _esc(sp["xTitle"])}
    if sp.get("yRange") and not st["logy"]:
        layout["yaxis"]["range"] = list(sp["yRange"])
    if sp.get("xRange"):
        layout["xaxis"]["range"] = list(sp["xRange"])
    if sp.get("xDtick"):
        layout["xaxis"]["dtick"] = sp["xDtick"]
    if sp.get("y2Title"):
        layout["yaxis2"] = {"overlaying": "y", "side": "right", "title": {"text": _esc(sp["y2Title"])},
                            "showgrid": False, "zeroline": False, "automargin": True,
                            "rangemode": "tozero" if sp.get("y2Min0") else "normal"}
        if sp.get("y2Range"):
            layout["yaxis2"]["range"] = list(sp["y2Range"])
    for v in sp.get("vlines") or []:
        layout["shapes"].append({"type": "line", "xref": "x", "yref": "paper", "x0": v["x"], "x1": v["x"], "y0": 0,
                                 "y1": 1, "line": {"color": "#8a90a0", "width": 1, "dash": "dot"}})
    if sp.get("note"):
        layout["annotations"].append({"xref": "paper", "yref": "paper", "x": 0.02, "xanchor": "left", "y": 0.02,
                                      "yanchor": "bottom", "text": _esc(sp["note"]), "showarrow": False,
                                      "font": {"size": 12, "color": "#a15c00"}, "bgcolor": "rgba(255,255,255,0.85)"})
    for h in sp.get("hlines") or []:
        layout["shapes"].append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": h["y"], "y1": h["y"],
                                 "line": {"color": "#d62728", "width": 1, "dash": "dot"}})
        layout["annotations"].append({"xref": "paper", "x": 1, "xanchor": "right", "y": h["y"], "yanchor": "bottom",
                                      "text": _esc(h["text"]), "showarrow": False,
                                      "font": {"size": 10, "color": "#d62728"}, "bgcolor": "rgba(255,255,255,0.8)"})
    _axis_types(entry, st, layout)
    fig = {"data": data, "layout": layout}
    return fig if sp.get("noTime") else _bands(sp, _time_decor(st, fig))


def _heatmap_time(sp: dict, st: dict, entry: dict) -> dict:
    z = np.asarray(sp["z"], dtype=np.float64)
    z = z.reshape(len(z), -1).T  # rows: one per label, columns: epochs
    labels = [_esc(v) for v in sp["yLabels"]]
    hm = {"type": "heatmap", "x": np.asarray(sp["x"]), "y": labels, "z": z, "colorscale": sp.get("colorscale", "Viridis"),
          "colorbar": {"title": {"text": _esc(sp.get("zTitle", "")), "side": "right"}, "thickness": 12},
          "hovertemplate": "%{y} at epoch %{x}: %{z:.3g}<extra></extra>"}
    if sp.get("zmin") is not None:
        hm.update(zmin=sp["zmin"], zmax=sp["zmax"])
    if sp.get("zTicks"):
        hm["colorbar"].update(tickvals=sp["zTicks"]["tickvals"], ticktext=[_esc(t) for t in sp["zTicks"]["ticktext"]])
    data = [hm]
    for pt in sp.get("points") or []:
        rows = np.asarray(pt["rows"], dtype=np.int64)
        data.append({"type": "scatter", "mode": "markers", "x": np.asarray(pt["x"]), "y": [labels[r] for r in rows],
                     "name": _esc(pt["name"]), "hovertemplate": _esc(pt["hover"]) + "<extra></extra>",
                     "showlegend": True,
                     "customdata": (np.stack([np.asarray(c) for c in pt["custom"]], axis=1) if pt.get("custom") else None),
                     "marker": {"symbol": pt.get("symbol", "x"), "size": 6, "color": pt.get("color", "#d62728"),
                                "line": {"width": 1.5, "color": pt.get("color", "#d62728")}}})
    layout = _base_layout(showlegend=bool(sp.get("points")))
    layout["yaxis"].update(title={"text": _esc(sp.get("yTitle", ""))}, type="category", autorange="reversed")
    layout["height"] = max(260, min(760 if sp.get("rowsPerPx") else 520, 120 + 9 * len(labels)))
    if sp.get("xTitle"):
        layout["xaxis"]["title"] = {"text": _esc(sp["xTitle"])}
    if len(labels) > 40 and any(lab.startswith("cos ") for lab in labels):
        # Fourier components: label the cos row of every m-th frequency (hover names each row).
        m = max(1, round(len(labels) / 2 / 18))
        layout["yaxis"]["tickvals"] = [lab for lab in labels if lab == "const"
                                       or (lab.startswith("cos ") and int(lab[4:]) % m == 0)]
    elif len(labels) > 60:
        layout["yaxis"].update(tickvals=labels[::int(np.ceil(len(labels) / 40))], tickfont={"size": 9})
    return _time_decor(st, {"data": data, "layout": layout})


def _profile(sp: dict, st: dict, entry: dict) -> dict:
    i = _nearest(sp["epochs"], st["epoch"])
    xs = [_esc(v) if isinstance(v, str) else v for v in sp["x"]]
    hover_x = _esc(sp["hoverX"]) if sp.get("hoverX") is not None else ("k = " if sp.get("bar") else "index ")
    data = []
    for t in sp["traces"]:
        y = np.asarray(t["y"], dtype=np.float64)
        tr = {"type": "bar" if sp.get("bar") else "scatter", "x": xs, "y": y.reshape(len(y), -1)[i],
              "name": _esc(t["name"]), "marker": {"color": _color(t.get("color"))},
              "hovertemplate": "%{y:.4g} at " + hover_x + "%{x}<extra>" + _esc(t["name"]) + "</extra>"}
        if t.get("err") is not None:
            err = np.asarray(t["err"], dtype=np.float64)
            tr["error_y"] = {"type": "data", "array": err.reshape(len(err), -1)[i], "visible": True,
                             "color": "#1d2330", "thickness": 1.2}
        if sp.get("bar") and t.get("outline") is not None:
            o = np.asarray(t["outline"])
            tr["marker"]["line"] = {"width": [2 if m else 0 for m in o.reshape(len(o), -1)[i]], "color": "#1d2330"}
        elif not sp.get("bar"):
            tr.update(mode=sp.get("mode", "lines+markers"), line={"color": _color(t.get("color")), "width": 1.5})
            tr["marker"]["size"] = 3
        data.append(tr)
    layout = _base_layout(barmode="group", bargap=0.15)
    layout["xaxis"]["title"] = {"text": _esc(sp.get("xTitle", ""))}
    layout["yaxis"]["title"] = {"text": _esc(sp.get("yTitle", ""))}
    _axis_types(entry, st, layout)
    if sp.get("yAll"):
        pos, hi, lo = sp["yAll"]
        if layout["yaxis"].get("type") == "log":
            a, b = np.log10(pos), np.log10(hi)
            pad = 0.05 * ((b - a) or 1)
            layout["yaxis"]["range"] = [a - pad, b + pad]
        else:
            a = min(0, lo)
            layout["yaxis"]["range"] = [a, hi + 0.04 * ((hi - a) or 1)]
    layout["annotations"].append({"xref": "paper", "yref": "paper", "x": 1, "xanchor": "right", "y": 1, "yanchor": "bottom",
                                  "text": f"epoch {int(np.asarray(sp['epochs'])[i])}", "showarrow": False})
    return {"data": data, "layout": layout}


def _bars(sp: dict, st: dict, entry: dict) -> dict:
    xs = [_esc(v) for v in sp["x"]]
    data = [{"type": "bar", "x": xs, "y": np.asarray(t["y"]), "name": _esc(t["name"]),
             "marker": {"color": _color(t.get("color"))},
             "hovertemplate": _esc(sp.get("xTitle", "")) + " %{x}: %{y} " + _esc(t.get("unit", "")) + "<extra>"
                              + _esc(t["name"]) + "</extra>"} for t in sp["traces"]]
    layout = _base_layout(barmode="stack" if sp.get("stacked") else "group", bargap=0.3)
    layout["xaxis"].update(title={"text": _esc(sp.get("xTitle", ""))}, type="category")
    layout["yaxis"]["title"] = {"text": _esc(sp.get("yTitle", ""))}
    for i, text in enumerate(sp.get("labels") or []):
        if text:
            layout["annotations"].append({"x": xs[i], "y": sp["tops"][i] if sp.get("tops") else 0, "yanchor": "bottom",
                                          "text": _esc(text), "showarrow": False,
                                          "font": {"size": 11, "color": "#4a5060"}})
    if sp.get("tops"):
        layout["yaxis"]["range"] = [0, (max(sp["tops"]) * 1.18) or 1]
    return {"data": data, "layout": layout}


def _map2d(sp: dict, st: dict, entry: dict) -> dict:
    if sp.get("windows"):
        raise EpochscopeError("chart() does not draw per-window maps; open the report for this chart")
    i = _nearest(sp["epochs"], st["epoch"])
    z = np.asarray(sp["z"], dtype=np.float64)[i]
    hm = {"type": "heatmap", "z": z, "colorscale": sp.get("colorscale", "Viridis"),
          "colorbar": {"title": {"text": _esc(sp.get("zTitle", "")), "side": "right"}, "thickness": 12},
          "hovertemplate": "row %{y}, column %{x}: %{z:.3g}<extra></extra>"}
    if sp.get("zmid") is not None:
        hm["zmid"] = sp["zmid"]
    for axis in ("x", "y"):
        if sp.get(axis + "Labels"):
            hm[axis] = [v if isinstance(v, (int, float)) else _esc(v) for v in sp[axis + "Labels"]]
    if sp.get("cellText"):
        hm.update(texttemplate="%{z:.3g}", textfont={"size": 12})
    layout = _base_layout(showlegend=False, height=sp.get("height", 340))
    layout["xaxis"]["title"] = {"text": _esc(sp.get("xTitle", "column"))}
    layout["yaxis"].update(title={"text": _esc(sp.get("yTitle", "row"))}, autorange="reversed")
    for axis in ("x", "y"):
        labels = sp.get(axis + "Labels")
        if labels and isinstance(labels[0], str):
            layout[axis + "axis"]["type"] = "category"
    layout["annotations"].append({"xref": "paper", "yref": "paper", "x": 1, "xanchor": "right", "y": 1, "yanchor": "bottom",
                                  "text": f"epoch {int(np.asarray(sp['epochs'])[i])}", "showarrow": False})
    return {"data": [hm], "layout": layout}


def _trajectory(sp: dict, st: dict, entry: dict) -> dict:
    ep = np.asarray(sp["epochs"])
    data = [
        {"type": "scatter", "mode": "lines", "x": sp["xs"], "y": sp["ys"], "line": {"color": "#b8bdc9", "width": 1},
         "hoverinfo": "skip", "showlegend": False},
        {"type": "scatter", "mode": "markers", "x": sp["xs"], "y": sp["ys"], "customdata": ep, "name": "checkpoints",
         "marker": {"size": 7, "color": ep, "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": {"text": "epoch", "side": "right"}, "thickness": 12}},
         "hovertemplate": "epoch %{customdata}<br>(%{x:.3g}, %{y:.3g})<extra></extra>", "showlegend": False},
    ]
    if sp.get("crossings"):
        c = sp["crossings"]
        data.append({"type": "scatter", "mode": "markers", "x": [p["x"] for p in c], "y": [p["y"] for p in c],
                     "text": [_esc(p["text"]) for p in c], "name": "self-intersection", "showlegend": True,
                     "hovertemplate": "%{text}<extra></extra>",
                     "marker": {"symbol": "x-thin-open", "size": 13, "color": "#d62728",
                                "line": {"width": 2.5, "color": "#d62728"}}})
    layout = _base_layout(height=340)
    layout["xaxis"]["title"] = {"text": _esc(sp.get("xTitle", ""))}
    layout["yaxis"]["title"] = {"text": _esc(sp.get("yTitle", ""))}
    return {"data": data, "layout": layout}


# The page's kinds (templates/report_charts.js ES.kinds) that chart() draws.
FIGURE_KINDS: dict[str, Callable[[dict, dict, dict], dict]] = {
    "lines": _lines,
    "heatmap_time": _heatmap_time,
    "profile": _profile,
    "bars": _bars,
    "map2d": _map2d,
    "trajectory": _trajectory,
}
