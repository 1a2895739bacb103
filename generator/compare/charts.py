"""The charts of a comparison page: overlays of shared time series (drawn per group as a mean
line with a band, see templates/compare.js), the initial-vs-best scatter across runs, the
shared-basis trajectories, small multiples of per-variant detail and the two-variant
difference view.

Each builder turns the variants (`VariantData`, generator/compare/data.py) into a JSON spec
whose arrays live in the page's `ArrayStore`, or raises `Unavailable` saying why it cannot be
drawn. Page-side renderers: templates/compare.js (kinds "overlay", "scatter", "paths",
"multiples", "difference"). Each run's series is embedded once (`ChartInput.series_ref`) and
every chart that draws it refers to the same arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from epochscope.generator.charts import ChartDef, add_chart
from epochscope.generator.compare import stats
from epochscope.generator.compare.data import DISPLAY_POINTS, Series, VariantData
from epochscope.generator.compare.stats import decimate
from epochscope.generator.context import Unavailable
from epochscope.generator.encode import ArrayStore
from epochscope.generator.series_groups import group_series

__all__ = ["GRID_LIMIT", "Absent", "MAX_POINTS", "MIN_POINTS", "OVERLAY_KEYS", "SERIES_BUDGET", "ChartInput",
           "difference_keys"]

# Points per embedded series; longer series are thinned by min/max buckets. With many series
# the page keeps to SERIES_BUDGET bytes of series data (about 6 bytes a point), never fewer
# than MIN_POINTS a series: 100 runs of 3 series keep 600 points, 1,000 runs 222 (a chart
# is narrower than that in pixels; parsing the page is most of its first paint).
MAX_POINTS = 600  # = data.DISPLAY_POINTS
MIN_POINTS = 150
SERIES_BUDGET = 4_000_000
# The common grid of a group's band (stats.common_grid; the page applies the same rule).
GRID_LIMIT = stats.GRID_POINTS

Builder = Callable[["ChartInput"], dict[str, Any]]


class Absent(Unavailable):
    """No run on the page has the chart's data at all: the page leaves the card out (a card
    saying "unavailable" for every chart of another experiment would only be clutter)."""


@dataclass
class ChartInput:
    """What every builder gets: the variants, their display labels and the page's arrays."""

    variants: list[VariantData]
    labels: list[str]
    store: ArrayStore
    shared: list[dict[str, Any]]  # shared PCA bases (see page.py)
    shared_reason: str  # why there is no shared basis at all ("" when there is one)
    points: int = MAX_POINTS  # points per embedded series
    _refs: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict, repr=False)

    def series_ref(self, v: int, s: Series) -> dict[str, Any]:
        """{"x", "y"}: array references of run `v`'s series `s` (its display copy, thinned to
        `points`), embedded once."""
        key = (v, id(s))
        if key not in self._refs:
            var = self.variants[v]
            shown = next((var.display[k] for k, full in var.series.items() if full is s and k in var.display), s)
            x, y = shown.epochs, shown.values
            if self.points < DISPLAY_POINTS:
                x, y = decimate(x, y, self.points)
            self._refs[key] = {"x": self.store.add_int(x), "y": self.store.add_float(y, floor=0.0)}
        return self._refs[key]


# Metric series with a chart of their own (everything else goes to "Other metric series").
OVERLAY_KEYS = {"metric:train_loss", "metric:val_loss", "metric:test_loss", "metric:train_acc", "metric:val_acc",
                "metric:test_acc",
                "metric:grad_norm", "metric:weight_norm", "weight_norm", "metric:param_velocity", "velocity"}


def _names(inp: ChartInput, idx: list[int]) -> str:
    return ", ".join(inp.labels[i] for i in idx)


def _trace(inp: ChartInput, v: int, s: Series, **extra: Any) -> dict[str, Any]:
    return {"v": v, **inp.series_ref(v, s), **extra}


def _option(inp: ChartInput, label: str, roles: list[tuple[tuple[str, ...], str, str]]) -> dict[str, Any] | None:
    """One selectable content of an overlay chart: per variant, one trace per role (a role:
    accepted series keys, its name, its line dash). None when fewer than two variants have it."""
    traces, have, missing = [], [], []
    for v, var in enumerate(inp.variants):
        got = False
        for keys, role, dash in roles:
            key = next((k for k in keys if k in var.series), None)
            if key is not None:
                traces.append(_trace(inp, v, var.series[key], role=role, dash=dash))
                got = True
        (have if got else missing).append(v)
    if len(have) < 2:
        return None
    source = next((var.series[k].source for var in inp.variants for keys, _, _ in roles for k in keys
                   if k in var.series), "")
    return {"label": label, "traces": traces, "missing": _names(inp, missing), "source": source}


def _overlay(inp: ChartInput, options: list[dict[str, Any] | None], what: str, prefixes: tuple[str, ...],
             **spec: Any) -> dict[str, Any]:
    """The spec of an overlay chart, or Unavailable naming the variants that have the data."""
    options = [o for o in options if o is not None]
    if not options:
        have = [i for i, v in enumerate(inp.variants) if any(k.startswith(prefixes) for k in v.series)]
        if not have:
            raise Absent(f"no run has {what}")
        raise Unavailable(f"fewer than two runs have {what} (only {_names(inp, have)})")
    return {"options": options, **spec}


def _keys_in_two(inp: ChartInput, prefix: str) -> list[str]:
    counts: dict[str, int] = {}
    for var in inp.variants:
        for key in var.series:
            if key.startswith(prefix):
                counts[key] = counts.get(key, 0) + 1
    return [k for k in counts if counts[k] >= 2]


def _first_label(inp: ChartInput, key: str) -> str:
    return next(var.series[key].label for var in inp.variants if key in var.series)


# ---------------------------------------------------------------------------- overlays

def _splits(what: str) -> list[tuple[tuple[str, ...], str, str]]:
    return [((f"metric:train_{what}",), "train", "dash"), ((f"metric:val_{what}",), "val", "dot"),
            ((f"metric:test_{what}",), "test", "solid")]


def _legend(inp: ChartInput, what: str) -> str:
    have = [role for keys, role, _ in _splits(what) if any(keys[0] in v.series for v in inp.variants)]
    style = {"train": "dashed: train", "val": "dotted: val", "test": "solid: test"}
    return ", ".join(style[r] for r in have)


def _loss(inp: ChartInput) -> dict[str, Any]:
    opt = _option(inp, "loss", _splits("loss"))
    return _overlay(inp, [opt], "a train, val or test loss series", ("metric:train_loss", "metric:val_loss",
                                                                    "metric:test_loss"),
                    yTitle="loss", logy=True, logToggle=True, legend=_legend(inp, "loss"))


def _accuracy(inp: ChartInput) -> dict[str, Any]:
    opt = _option(inp, "accuracy", _splits("acc"))
    return _overlay(inp, [opt], "a train, val or test accuracy series", ("metric:train_acc", "metric:val_acc",
                                                                        "metric:test_acc"),
                    yTitle="accuracy", yRange=[-0.02, 1.02], logToggle=False, legend=_legend(inp, "acc"))


def _single(key_sets: tuple[str, ...], what: str, title: str, logy: bool) -> Builder:
    def build(inp: ChartInput) -> dict[str, Any]:
        opt = _option(inp, title, [(key_sets, "", "solid")])
        return _overlay(inp, [opt], what, key_sets, yTitle=title, logy=logy, logToggle=True)
    return build


_DASHES = {"train": "dash", "val": "dot", "eval": "dot", "dev": "dot", "test": "solid"}
_PART_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def _metric_series(inp: ChartInput) -> dict[str, Any]:
    """Every other shared metric series, in the report's series groups (train/val/test
    splits of one quantity in one chart, X.part children together)."""
    names = sorted(k.removeprefix("metric:") for k in _keys_in_two(inp, "metric:") if k not in OVERLAY_KEYS)
    options = []
    for g in group_series(names):
        if g.how == "single":
            roles = [((f"metric:{g.names[0]}",), "", "solid")]
        else:
            roles = [((f"metric:{n}",), label, _DASHES.get(label, _PART_DASHES[j % len(_PART_DASHES)]))
                     for j, (n, label) in enumerate(g.members[:len(_PART_DASHES)])]
        options.append(_option(inp, g.title, roles))
    return _overlay(inp, options, "another metric series in common", ("\0",), yTitle="value", logy=False, logToggle=True)


# ---------------------------------------------------------------------------- across runs

def _init_best(inp: ChartInput) -> dict[str, Any]:
    """Per headline metric with a direction: each run's initial value against its best, with
    the Spearman and Pearson correlation across runs (the VAE sweep's init -> best rho)."""
    names: list[str] = []
    for v in inp.variants:
        for n in v.run.headline if v.run is not None else ():
            if n not in names:
                names.append(n)
    options, skipped = [], []
    for name in names:
        runs, xs, ys, es = [], [], [], []
        for i, v in enumerate(inp.variants):
            m = v.run.metrics.get(name) if v.run is not None else None
            if m is None or m.best is None or name not in v.initial:
                continue
            runs.append(i)
            xs.append(v.initial[name])
            ys.append(m.best)
            es.append(m.best_epoch)
        corr = stats.correlation(xs, ys)
        if corr is None:
            skipped.append(name)
            continue
        options.append({"label": name, "runs": runs, "x": xs, "y": ys, "bestEpoch": es, "stats": corr.text(),
                        "n": corr.n, "spearman": corr.spearman, "pearson": corr.pearson,
                        "spearmanP": corr.spearman_p, "pearsonP": corr.pearson_p})
    if not options:
        raise Unavailable("no headline metric with a best value in at least 3 runs whose initial and best "
                          "values vary")
    return {"options": options, "xTitle": "initial value", "yTitle": "best value",
            "missing": ", ".join(skipped)}


def _effective_dim(inp: ChartInput) -> dict[str, Any]:
    keys = _keys_in_two(inp, "pr:") + _keys_in_two(inp, "gap:")
    options = [_option(inp, _first_label(inp, k), [((k,), "", "solid")]) for k in keys]
    return _overlay(inp, options, "the effective_dim analysis", ("pr:", "gap:"), yTitle="participation ratio / spectral gap",
                    logy=False, logToggle=True)


def _gini(inp: ChartInput) -> dict[str, Any]:
    options = [_option(inp, _first_label(inp, k), [((k,), "", "solid")]) for k in ("gini:embed", "gini:unembed")
               if k in _keys_in_two(inp, "gini:")]
    return _overlay(inp, options, "the fourier_weights analysis", ("gini:",), yTitle="Gini coefficient", yRange=[0, 1],
                    logy=False, logToggle=False)


def _restricted(inp: ChartInput) -> dict[str, Any]:
    shared = _keys_in_two(inp, "rl:")
    options = [_option(inp, _first_label(inp, k), [((k,), "", "solid")])
               for k in ("rl:restricted", "rl:restricted_test", "rl:excluded") if k in shared]
    return _overlay(inp, options, "the restricted_loss analysis", ("rl:",), yTitle="loss", logy=True, logToggle=True)


def _clustered(inp: ChartInput) -> dict[str, Any]:
    opt = _option(inp, "clustered", [(("clustered",), "", "solid")])
    return _overlay(inp, [opt], "the neuron_freq analysis", ("clustered",), yTitle="share of neurons clustered", yRange=[-0.02, 1.02],
                    logy=False, logToggle=False)


# ---------------------------------------------------------------------------- trajectories

def _cross_points(points: np.ndarray | None) -> list[list[float]]:
    """Stored PC2/PC3 crossing points (analysis side) as the page's [[x, y], ...]."""
    if points is None:
        return []
    return [[round(float(x), 6), round(float(y), 6)] for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2)]


def _pca_shared(inp: ChartInput) -> dict[str, Any]:
    if not inp.shared:
        raise Unavailable(inp.shared_reason or "no two variants share a parameter layout")
    groups, options = [], []
    for g, group in enumerate(inp.shared):
        runs = []
        for v, epochs, coords, points in group["runs"]:
            runs.append({"v": v, "epochs": inp.store.add_int(epochs),
                         "pc": inp.store.add_float(coords, floor=0.0), "cross": _cross_points(points)})
        groups.append({"runs": runs, "evr": [float(f"{r:.6g}") for r in group["evr"]]})
        for proj, label in (([1, 2], "PC2 vs PC3"), ([0, 1], "PC1 vs PC2")):
            options.append({"label": f"{label} · basis of {_names(inp, group['members'])}", "group": g, "proj": proj})
    return {"groups": groups, "options": options}


def _pca_runs(inp: ChartInput) -> dict[str, Any]:
    panels, missing = [], []
    for v, var in enumerate(inp.variants):
        if var.pca is None:
            missing.append(v)
            continue
        epochs, coords = var.pca
        n = var.facts.get("self_intersects")
        title = ("crossings not stored" if n is None else
                 f"{n} crossing{'s' if n != 1 else ''}" if n else "open: no crossing")
        panels.append({"v": v, "x": inp.store.add_float(coords[:, 1], floor=0.0),
                       "y": inp.store.add_float(coords[:, 2], floor=0.0), "epochs": inp.store.add_int(epochs),
                       "cross": _cross_points(var.pca_cross), "title": title})
    if not panels:
        raise Unavailable("no variant has the trajectory analysis")
    return {"panels": panels, "mode": "path", "xTitle": "PC2", "yTitle": "PC3", "missing": _names(inp, missing)}


# ---------------------------------------------------------------------------- small multiples

def _fourier_spectra(inp: ChartInput) -> dict[str, Any]:
    panels, missing = [], []
    for v, var in enumerate(inp.variants):
        if var.spectrum is None:
            missing.append(v)
            continue
        s = var.spectrum
        mask = np.asarray(s["keys"], dtype=bool)
        whose = "W_E's key"
        if not mask.any() and var.facts.get("key_freqs"):  # none at this epoch: the run's key frequencies
            mask = np.isin(s["freqs"], np.asarray(var.facts["key_freqs"]))
            whose = "run's key"
        keys = [int(f) for f, k in zip(s["freqs"], mask, strict=True) if k]
        panels.append({"v": v, "x": inp.store.add_int(s["freqs"]), "y": inp.store.add_float(s["norms"]),
                       "keys": inp.store.add_int(mask.astype(np.int64)),
                       "title": f"epoch {s['epoch']}; {whose} " + (", ".join(map(str, keys)) or "none")})
    if not panels:
        raise Unavailable("no variant has the fourier_weights analysis")
    return {"panels": panels, "mode": "bars", "xTitle": "frequency k", "yTitle": "‖W_E‖ at k",
            "missing": _names(inp, missing)}


def _cluster_sizes(inp: ChartInput) -> dict[str, Any]:
    panels, missing = [], []
    for v, var in enumerate(inp.variants):
        if var.clusters is None:
            missing.append(v)
            continue
        c = var.clusters
        total = c["neurons"]
        loose = f"; {total - int(c['sizes'].sum())} of {total} unclustered" if total else ""
        panels.append({"v": v, "x": inp.store.add_int(c["freqs"]), "y": inp.store.add_float(c["sizes"]),
                       "title": f"epoch {c['epoch']}{loose}"})
    if not panels:
        raise Unavailable("no variant has the neuron_freq analysis")
    return {"panels": panels, "mode": "bars", "xTitle": "frequency k", "yTitle": "neurons", "missing": _names(inp, missing)}


# ---------------------------------------------------------------------------- difference

def difference_keys(a: VariantData, b: VariantData) -> list[str]:
    """Series keys both variants have, headline metrics first."""
    order = ["metric:test_loss", "metric:train_loss", "metric:test_acc", "metric:train_acc", "metric:grad_norm",
             "metric:weight_norm", "weight_norm", "metric:param_velocity", "velocity"]
    both = [k for k in a.series if k in b.series]
    first = [k for k in order if k in both]
    derived = sorted(k for k in both if not k.startswith("metric:") and k not in first)
    rest = sorted(k for k in both if k.startswith("metric:") and k not in first)
    return first + derived + rest


def _diff(sa: Series, sb: Series, shift_a: int, shift_b: int, log: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """B - A on the union of both runs' epochs inside the range both cover (each run
    interpolated only inside its own range, stats.align)."""
    ea, eb = sa.epochs - shift_a, sb.epochs - shift_b
    lo, hi = max(ea[0], eb[0]), min(ea[-1], eb[-1])
    grid = np.union1d(ea, eb)
    grid = grid[(grid >= lo) & (grid <= hi)]
    if not grid.size:
        return None
    ya = stats.align(ea, sa.values, grid.astype(np.float64))
    yb = stats.align(eb, sb.values, grid.astype(np.float64))
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where((ya > 0) & (yb > 0), np.log10(yb) - np.log10(ya), np.nan)
    else:
        d = yb - ya
    if not np.isfinite(d).any():
        return None
    return grid.astype(np.int64), d


def _difference(inp: ChartInput) -> dict[str, Any]:
    if len(inp.variants) != 2:
        raise Unavailable("the difference view needs exactly two variants")
    a, b = inp.variants
    options = []
    for key in difference_keys(a, b):
        sa, sb = a.series[key], b.series[key]
        log = "loss" in key
        opt: dict[str, Any] = {"label": sa.label, "yTitle": ("log10(B / A), decades" if log else "B − A"),
                               "raw": None, "rel": None}
        raw = _diff(sa, sb, 0, 0, log)
        if raw is not None:
            x, y = decimate(*raw, MAX_POINTS)
            opt["raw"] = {"x": inp.store.add_int(x), "y": inp.store.add_float(y, floor=0.0)}
        if a.turn is not None and b.turn is not None:
            rel = _diff(sa, sb, a.turn, b.turn, log)
            if rel is not None:
                x, y = decimate(*rel, MAX_POINTS)
                opt["rel"] = {"x": inp.store.add_int(x), "y": inp.store.add_float(y, floor=0.0)}
        if opt["raw"] is not None or opt["rel"] is not None:
            options.append(opt)
    if not options:
        raise Unavailable(f"{inp.labels[0]} and {inp.labels[1]} share no series on common epochs")
    return {"options": options, "a": 0, "b": 1,
            "noTurn": [inp.labels[i] for i, v in enumerate(inp.variants) if v.turn is None]}


# ---------------------------------------------------------------------------- registry

# The comparison charts on the one chart registry (page "compare"); the packs arrange them
# into sections (generator/packs/modular_addition.py, generic.py).
for _def in (
    ChartDef("loss", "Loss", "overlay", (), _loss, wide=True),
    ChartDef("accuracy", "Accuracy", "overlay", (), _accuracy),
    ChartDef("grad_norm", "Gradient norm", "overlay", (),
             _single(("metric:grad_norm",), "a gradient norm series ('grad_norm')", "gradient norm", True)),
    ChartDef("weight_norm", "Weight norm", "overlay", (),
             _single(("metric:weight_norm", "weight_norm"), "a weight norm (series or weight_norms analysis)",
                     "weight norm", False)),
    ChartDef("velocity", "Parameter velocity", "overlay", (),
             _single(("metric:param_velocity", "velocity"), "a parameter velocity (series or trajectory)",
                     "parameter distance per epoch", True)),
    ChartDef("metric_series", "Other metric series", "overlay", (), _metric_series),
    ChartDef("init_best", "Initial value against best value", "scatter", (), _init_best, wide=True),
    ChartDef("effective_dim", "Effective dimensionality per matrix", "overlay", ("effective_dim",), _effective_dim,
             wide=True),
    ChartDef("gini", "Fourier concentration (Gini)", "overlay", ("fourier_weights",), _gini),
    ChartDef("restricted", "Restricted and excluded loss", "overlay", ("restricted_loss",), _restricted),
    ChartDef("clustered", "Neurons in frequency clusters", "overlay", ("neuron_freq",), _clustered),
    ChartDef("pca_shared", "Trajectories in a shared PCA basis", "paths", ("trajectory",), _pca_shared, wide=True),
    ChartDef("pca_runs", "PC2 vs PC3, each in its own basis", "multiples", ("trajectory",), _pca_runs, wide=True),
    ChartDef("fourier_spectra", "Embedding Fourier spectrum at the end", "multiples", ("fourier_weights",),
             _fourier_spectra, wide=True),
    ChartDef("cluster_sizes", "Neuron frequency clusters at the end", "multiples", ("neuron_freq",), _cluster_sizes,
             wide=True),
    ChartDef("difference", "Difference B − A", "difference", (), _difference, wide=True),
):
    add_chart(replace(_def, page="compare", alignable=_def.kind in ("overlay", "difference")))
