"""Charts of MLP neurons: frequency clusters over training, the cluster map at one epoch
(click a neuron to select it), activation maps as small multiples, and coarseness."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from epochscope.generator import sources as src
from epochscope.generator.charts import Unavailable, array_trace, chart, columns
from epochscope.generator.context import BuildContext, pick_epochs

# The neuron_freq analysis' default: a neuron belongs to a cluster when one frequency explains
# at least this share of its activation variance (its `threshold` parameter overrides it).
DEFAULT_THRESHOLD = 0.85
# Neuron maps embedded at most, and the fewest epochs to keep before dropping neurons.
MAX_MAP_NEURONS = 48
MIN_MAP_EPOCHS = 12


def threshold(ctx: BuildContext) -> float:
    return float(ctx.scalar(src.NEURON_FREQ, src.CLUSTER_THRESHOLD, DEFAULT_THRESHOLD))


def _turn_epochs(ctx: BuildContext) -> list[int]:
    turn = src.turn(ctx)
    return [turn["epoch"]] if turn and turn["epoch"] is not None else []


def _frac(ctx: BuildContext) -> tuple[np.ndarray, np.ndarray]:
    epochs, frac = ctx.per_epoch(src.NEURON_FREQ, src.NEURON_FRAC)
    frac = np.asarray(frac, dtype=np.float32)
    if frac.ndim != 3 or not np.isfinite(frac).any():
        raise Unavailable("no data: neuron frequency fractions missing or not (epochs, neurons, frequencies)")
    return epochs, frac


def cluster_of(ctx: BuildContext) -> tuple[np.ndarray, np.ndarray, int]:
    """(epochs, (E, neurons) frequency of each neuron's cluster or 0 when unclustered, n)."""
    if ctx.has_per_epoch(src.NEURON_FREQ, src.NEURON_DOMINANT) and ctx.has_per_epoch(src.NEURON_FREQ, src.NEURON_CLUSTERED):
        epochs, dom = ctx.per_epoch(src.NEURON_FREQ, src.NEURON_DOMINANT)
        _, clustered = ctx.per_epoch(src.NEURON_FREQ, src.NEURON_CLUSTERED)
        group = np.where(np.asarray(clustered, dtype=bool), np.asarray(dom, dtype=np.int64), 0)
        return epochs, group, group.shape[1]
    epochs, frac = _frac(ctx)
    freqs = np.asarray(src.frequencies(ctx, src.NEURON_FREQ, frac.shape[2]))
    filled = np.nan_to_num(frac, nan=-1.0)
    idx = filled.argmax(-1)
    best = np.take_along_axis(filled, idx[..., None], -1)[..., 0]
    return epochs, np.where(best >= threshold(ctx), freqs[idx], 0), frac.shape[1]


@chart("neuron_freq_counts", "Neuron clusters per frequency", "heatmap_time",
       needs=("neuron_freq",), epoch_axis=True, follows=("epoch",))
def neuron_freq_counts(ctx: BuildContext) -> dict[str, Any]:
    epochs, group, n = cluster_of(ctx)
    k = int(group.max()) if group.size else 0
    counts = np.zeros((len(epochs), k + 1))
    for e in range(len(epochs)):
        counts[e] = np.bincount(group[e], minlength=k + 1)[: k + 1]
    rows = [f for f in range(1, k + 1) if counts[:, f].any()] + [0]
    labels = [f"k = {f}" for f in rows[:-1]] + ["no cluster"]
    return {"x": ctx.store.add_int(epochs), "z": ctx.store.add_float(counts[:, rows]), "yLabels": labels,
            "zTitle": "neurons", "yTitle": f"cluster (≥ {threshold(ctx):g} of variance)",
            "neurons": int(n)}


@chart("neuron_clusters", "Neuron frequency clusters at the epoch", "clusters", needs=("neuron_freq",),
       follows=("epoch", "neuron"), heavy=1.0)
def neuron_clusters(ctx: BuildContext) -> dict[str, Any]:
    name, all_epochs = ctx.array_epochs(src.NEURON_FREQ, src.NEURON_FRAC)

    def encode(rows: np.ndarray) -> int:
        if rows.ndim != 3:
            raise Unavailable(f"neuron frequency fractions have shape {rows.shape[1:]}, expected (neurons, frequencies)")
        return ctx.store.estimate(np.clip(rows, 0, 1), "quantized", lead=0, lo=0.0, hi=1.0)

    per_epoch = ctx.row_cost(src.NEURON_FREQ, name, all_epochs, encode)
    keep = pick_epochs(all_epochs, int(ctx.budget_bytes // max(per_epoch, 1)), _turn_epochs(ctx))
    epochs, frac = ctx.rows(src.NEURON_FREQ, name, all_epochs[keep])
    if not np.isfinite(frac).any():
        raise Unavailable("no data: neuron frequency fractions are all NaN")
    _thinned_note(ctx, "neuron_clusters", len(epochs), len(all_epochs))
    spec = {"epochs": ctx.store.add_int(epochs),
            "frac": ctx.store.add_quantized(np.clip(frac, 0, 1), lead=0, lo=0.0, hi=1.0),
            "freqs": src.frequencies(ctx, src.NEURON_FREQ, frac.shape[2]), "threshold": threshold(ctx),
            "neurons": int(frac.shape[1])}
    maps = ctx.optional_summary(src.NEURON_MAPS, src.NEURON_MAP_IDS) if ctx.has_artifact(src.NEURON_MAPS) else None
    if maps is not None:
        spec["withMaps"] = [int(i) for i in np.asarray(maps).ravel()]
    return spec


def _thinned_note(ctx: BuildContext, chart_name: str, kept: int, total: int, extra: str = "") -> None:
    parts = [f"{kept} of {total} analysed epochs embedded (report size budget)"] if kept < total else []
    if extra:
        parts.append(extra)
    if parts:
        ctx.notes[chart_name] = "; ".join(parts)


def _choose_neurons(ctx: BuildContext, ids: np.ndarray, limit: int) -> np.ndarray:
    """Indices into `ids` of at most `limit` neurons, round-robin over the frequency clusters
    of the last analysed epoch (unclustered neurons last)."""
    if len(ids) <= limit:
        return np.arange(len(ids))
    try:
        _, group, n = cluster_of(ctx)
    except Unavailable:
        return np.arange(limit)
    last = group[-1]
    clusters: dict[int, list[int]] = {}
    for pos, nid in enumerate(ids.tolist()):
        clusters.setdefault(int(last[nid]) if 0 <= nid < n else 0, []).append(pos)
    queues = [clusters[k] for k in sorted(clusters, key=lambda k: (k == 0, k))]
    order: list[int] = []
    while len(order) < limit and any(queues):
        for q in queues:
            if q and len(order) < limit:
                order.append(q.pop(0))
    return np.array(sorted(order), dtype=np.int64)


@chart("neuron_maps", "Neuron activation maps at the epoch", "maps", needs=("neuron_maps",),
       follows=("epoch", "neuron"), heavy=1.2)
def neuron_maps(ctx: BuildContext) -> dict[str, Any]:
    name, all_epochs = ctx.array_epochs(src.NEURON_MAPS, src.NEURON_MAP_ARRAYS)
    sample = 8
    shape: list[int] = []

    def encode(rows: np.ndarray) -> float:
        if rows.ndim != 4:
            raise Unavailable(f"neuron maps have shape {rows.shape[1:]}, expected (neurons, a, b)")
        shape[:] = rows.shape[1:]
        return ctx.store.estimate(rows[:, :sample], "quantized", lead=2) / min(sample, rows.shape[1])

    per_map = max(ctx.row_cost(src.NEURON_MAPS, name, all_epochs, encode), 1.0)
    n_maps = shape[0]
    ids = ctx.optional_summary(src.NEURON_MAPS, src.NEURON_MAP_IDS)
    ids = np.arange(n_maps) if ids is None or len(ids) != n_maps else np.asarray(ids, dtype=np.int64).ravel()
    want_epochs = min(len(all_epochs), MIN_MAP_EPOCHS)
    n_neurons = int(max(1, min(n_maps, MAX_MAP_NEURONS, ctx.budget_bytes // (want_epochs * per_map))))
    chosen = _choose_neurons(ctx, ids, n_neurons)
    keep = pick_epochs(all_epochs, int(ctx.budget_bytes // (len(chosen) * per_map)), _turn_epochs(ctx))
    epochs, maps = ctx.rows(src.NEURON_MAPS, name, all_epochs[keep])
    maps = maps[:, chosen]
    extra = f"maps of {len(chosen)} of the {n_maps} stored neurons embedded" if len(chosen) < n_maps else ""
    _thinned_note(ctx, "neuron_maps", len(epochs), len(all_epochs), extra)
    spec: dict[str, Any] = {"epochs": ctx.store.add_int(epochs),
                            "maps": ctx.store.add_quantized(maps, lead=2),
                            "ids": [int(i) for i in ids[chosen]], "mode": "neuron", "label": "neuron",
                            "neurons": int(ids.max()) + 1, "stored": [int(i) for i in ids]}
    if ctx.has_artifact(src.NEURON_FREQ):
        try:
            g_epochs, group, n = cluster_of(ctx)
        except Unavailable:
            return spec
        spec["group"] = {"epochs": ctx.store.add_int(g_epochs), "values": ctx.store.add_int(group.ravel()), "n": int(n)}
        spec["neurons"] = max(spec["neurons"], int(n))
    return spec


@chart("coarseness", "Coarseness of neuron maps", "lines", needs=("coarseness",), epoch_axis=True,
       follows=("epoch", "neuron"))
def coarseness(ctx: BuildContext) -> dict[str, Any]:
    epochs, values = ctx.per_epoch(src.COARSENESS, src.COARSENESS_ARRAYS)
    values = columns(values, "coarseness")
    with warnings.catch_warnings():  # all-NaN epochs give NaN percentiles: fine, a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, med, hi = np.nanpercentile(values, [10, 50, 90], axis=1)
    traces = [
        array_trace(ctx, epochs, hi, "90th percentile", color=0, width=0, floor=1e-3, legend=False),
        array_trace(ctx, epochs, lo, "10th–90th percentile", color=0, width=0, floor=1e-3, fill="tonexty"),
        array_trace(ctx, epochs, med, "median neuron", color=0, mode="lines+markers", floor=1e-3),
    ]
    if values.shape[1] > 1:
        traces.append({"name": "neuron", "x": ctx.store.add_int(epochs), "y": ctx.store.add_float(values),
                       "col": "neuron", "color": 1, "mode": "lines+markers"})
    return {"traces": traces, "yTitle": "low-frequency power share (no DC)", "yRange": [0, 1.02],
            "neurons": int(values.shape[1]) if values.shape[1] > 1 else 0}
