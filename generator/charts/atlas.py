"""Charts of every MLP neuron (the `neuron_atlas` analysis: each neuron's map as a few Fourier
terms, rebuilt in the browser) and of neuron dynamics (`neuron_dynamics`: committed
frequency over training, switches, commitment epochs, transient frequencies)."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator import sources as src
from epochscope.generator.charts import Unavailable, array_trace, chart
from epochscope.generator.charts.neurons import _thinned_note, _turn_epochs, cluster_of
from epochscope.generator.context import BuildContext, pick_epochs
from epochscope.generator.encode import ArrayStore

ATLAS = "neuron_atlas"
DYNAMICS = "neuron_dynamics"
# The atlas coefficients travel as signed 8-bit codes times one float16 scale per neuron and
# epoch (the largest |coefficient|): each coefficient keeps 1/127 of that neuron's largest.
CODE_LEVELS = 127
# The atlas is built before the heavy detail charts (it is the only view of most neurons) and
# embeds every analysed epoch up to this many bytes; beyond it, evenly spread epochs.
ATLAS_MAX_BYTES = 3_000_000


def quantize_coefficients(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes in 1..255 (code - 128 = round(127 coef / scale)), scale [..]) of `coef`
    [n, M, J, 8]: one scale per neuron and epoch."""
    coef = np.nan_to_num(np.asarray(coef, dtype=np.float32))
    scale = np.abs(coef).reshape(coef.shape[0], coef.shape[1], -1).max(-1)
    safe = np.where(scale > 0, scale, 1.0)
    codes = np.rint(coef / safe[:, :, None, None] * CODE_LEVELS).astype(np.int64) + 128
    return np.clip(codes, 128 - CODE_LEVELS, 128 + CODE_LEVELS), scale.astype(np.float16)


def dequantize_coefficients(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """What the page computes from `quantize_coefficients`' output (tests use it)."""
    return (np.asarray(codes, np.float64) - 128) / CODE_LEVELS * np.asarray(scale, np.float64)[:, :, None, None]


def _atlas_rows(ctx: BuildContext, epochs: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for name in ("mean", "freqs", "coef", "residual"):
        got, rows = ctx.rows(ATLAS, name, epochs)
        out[name] = rows
        out["epochs"] = got
    return out


def _atlas_encode(ctx: BuildContext, rows: dict[str, np.ndarray]) -> dict[str, Any]:
    codes, scale = quantize_coefficients(rows["coef"])
    return {"mean": ctx.store.add_float(rows["mean"].astype(np.float32)),
            "freqs": ctx.store.add_int(rows["freqs"].astype(np.int64).ravel()),
            "codes": ctx.store.add_int(codes.ravel()),
            "scale": ctx.store.add_float(scale.astype(np.float32), rtol=1e-3, floor=0.0),
            "residual": ctx.store.add_quantized(np.clip(rows["residual"].astype(np.float32), 0, 1),
                                                lead=0, lo=0.0, hi=1.0)}


@chart("neuron_atlas", "Every neuron at the epoch", "atlas", needs=(ATLAS,), follows=("epoch", "neuron"),
       wide=True)
def neuron_atlas(ctx: BuildContext) -> dict[str, Any]:
    _, all_epochs = ctx.array_epochs(ATLAS, ("coef",))
    for name in ("mean", "freqs", "residual"):
        ctx.array_epochs(ATLAS, (name,))
    p = int(ctx.scalar(ATLAS, ("p",), 0) or ctx.bundle.config.get("p") or 0)
    if p < 2:
        raise Unavailable("the neuron_atlas artifact does not say its modulus p")
    sample = _atlas_rows(ctx, all_epochs[np.unique(np.linspace(0, len(all_epochs) - 1, 3).astype(int))])
    if sample["coef"].ndim != 4 or sample["coef"].shape[-1] != 8:
        raise Unavailable(f"neuron_atlas coef has shape {sample['coef'].shape[1:]}, expected (neurons, J, 8)")
    probe = BuildContext(ctx.bundle, ArrayStore())  # sized as the page encodes it
    per_epoch = sum(probe.store.arrays[r["$a"]].size for r in _atlas_encode(probe, sample).values())
    per_epoch /= len(sample["epochs"])
    keep = pick_epochs(all_epochs, int(ATLAS_MAX_BYTES // max(per_epoch, 1)), _turn_epochs(ctx))
    rows = _atlas_rows(ctx, all_epochs[keep])
    n, m, j = rows["freqs"].shape
    _thinned_note(ctx, "neuron_atlas", n, len(all_epochs))
    spec: dict[str, Any] = {"epochs": ctx.store.add_int(rows["epochs"]), "p": p, "neurons": int(m), "j": int(j),
                            "levels": CODE_LEVELS, **_atlas_encode(ctx, rows)}
    if ctx.has_artifact(src.NEURON_FREQ):
        try:
            g_epochs, group, gn = cluster_of(ctx)
            if gn == m:
                spec["group"] = {"epochs": ctx.store.add_int(g_epochs), "values": ctx.store.add_int(group.ravel())}
        except Unavailable:
            pass
    if ctx.has_per_epoch(src.COARSENESS, ("neuron_fft_low",)):
        c_epochs, coarse = ctx.per_epoch(src.COARSENESS, ("neuron_fft_low",))
        if coarse.ndim == 2 and coarse.shape[1] == m:
            spec["coarse"] = {"epochs": ctx.store.add_int(c_epochs),
                              "values": ctx.store.add_quantized(np.clip(coarse, 0, 1), lead=0, lo=0.0, hi=1.0)}
    return spec


# -- neuron dynamics -------------------------------------------------------------------------

def _final_order(ctx: BuildContext, committed: np.ndarray) -> np.ndarray:
    final = ctx.optional_summary(DYNAMICS, ("final_freq",))
    final = committed[-1] if final is None or len(final) != committed.shape[1] else np.asarray(final)
    commit = ctx.optional_summary(DYNAMICS, ("commitment_epoch",))
    commit = np.zeros(committed.shape[1]) if commit is None else np.asarray(commit, dtype=np.float64)
    key = np.where(final > 0, final, 10**6)
    return np.lexsort((np.arange(len(key)), np.where(commit < 0, np.inf, commit), key))


@chart("neuron_commitment", "Committed frequency of every neuron over training", "heatmap_time",
       needs=(DYNAMICS,), epoch_axis=True, follows=("epoch",), wide=True)
def neuron_commitment(ctx: BuildContext) -> dict[str, Any]:
    epochs, committed = ctx.per_epoch(DYNAMICS, ("committed_freq",))
    committed = np.asarray(committed, dtype=np.int64)
    if committed.ndim != 2 or not committed.size:
        raise Unavailable(f"committed_freq has shape {committed.shape}, expected (epochs, neurons)")
    order = _final_order(ctx, committed)
    z = np.where(committed[:, order] > 0, committed[:, order], np.nan)
    final = committed[-1, order]
    labels = [f"n{u} → k {f}" if f > 0 else f"n{u} (uncommitted)" for u, f in zip(order.tolist(), final.tolist(), strict=True)]
    # Markers as embedded arrays (rows index the sorted rows); the page writes their hover text.
    points = []
    commit = ctx.optional_summary(DYNAMICS, ("commitment_epoch",))
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    if commit is not None and len(commit) == len(order):
        have = order[np.asarray(commit)[order] >= 0]
        points.append({"name": "commitment epoch", "x": ctx.store.add_int(np.asarray(commit)[have]),
                       "rows": ctx.store.add_int(pos[have]), "symbol": "line-ns-open", "color": "#1d2330",
                       "hover": "%{y}: committed to its final k from epoch %{x}"})
    sw = _switch_table(ctx)
    if sw is not None and len(sw[0]):
        e, u, f, t = (np.asarray(v, dtype=np.int64) for v in sw)
        ok = (u >= 0) & (u < len(order))
        points.append({"name": "switch", "x": ctx.store.add_int(e[ok]), "rows": ctx.store.add_int(pos[u[ok]]),
                       "symbol": "x", "color": "#ff3b30", "custom": [ctx.store.add_int(f[ok]), ctx.store.add_int(t[ok])],
                       "hover": "%{y}: switched k %{customdata[0]} → %{customdata[1]} at epoch %{x}"})
    scale, ticks = _frequency_colours(committed, final)
    return {"x": ctx.store.add_int(epochs), "z": ctx.store.add_float(z), "yLabels": labels,
            "zTitle": "committed k", "yTitle": "neurons (sorted by final frequency, then commitment)",
            "points": points, "rowsPerPx": 1, "colorscale": scale, "zmin": 0.5,
            "zmax": int(committed.max()) + 0.5 if committed.size else 1.5, "zTicks": ticks,
            "neuronRows": True}


def _frequency_colours(committed: np.ndarray, final: np.ndarray, top: int = 10) -> tuple[list, dict]:
    """A stepwise colour scale over k = 1..max: the (up to `top`) most common final frequencies
    get distinct palette colours, every other frequency light grey (neighbouring k, often all key
    frequencies, would look alike on a continuous scale)."""
    from epochscope.generator.palette import PALETTE

    kmax = max(int(committed.max()) if committed.size else 1, 1)
    counts = np.bincount(final[final > 0], minlength=kmax + 1) if (final > 0).any() else np.zeros(kmax + 1, int)
    main = [int(k) for k in np.argsort(-counts, kind="stable")[:top] if counts[k] > 0]
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sorted(main))}
    scale = []
    for k in range(1, kmax + 1):
        c = colour.get(k, "#c8ccd6")
        scale += [[(k - 1) / kmax, c], [k / kmax, c]]
    return scale, {"tickvals": sorted(main), "ticktext": [f"k = {k}" for k in sorted(main)]}


def _switch_table(ctx: BuildContext) -> tuple[np.ndarray, ...] | None:
    try:
        return tuple(ctx.summary(DYNAMICS, (name,)) for name in ("switch_epoch", "switch_neuron", "switch_from",
                                                                  "switch_to"))
    except Unavailable:
        return None


@chart("specialised_counts", "Specialised neurons per frequency", "heatmap_time", needs=(DYNAMICS,),
       epoch_axis=True, follows=("epoch",))
def specialised_counts(ctx: BuildContext) -> dict[str, Any]:
    epochs, counts = ctx.per_epoch(DYNAMICS, ("specialised_counts",))
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise Unavailable(f"specialised_counts has shape {counts.shape}, expected (epochs, frequencies)")
    rows = [k for k in range(counts.shape[1]) if counts[:, k].any()]
    if not rows:
        raise Unavailable("no data: no neuron is specialised on any frequency at any analysed epoch")
    return {"x": ctx.store.add_int(epochs), "z": ctx.store.add_float(counts[:, rows]),
            "yLabels": [f"k = {k + 1}" for k in rows], "zTitle": "neurons", "yTitle": "frequency"}


@chart("neuron_commitment_curve", "Neurons committed and frequency switches", "lines", needs=(DYNAMICS,),
       epoch_axis=True, follows=("epoch",))
def neuron_commitment_curve(ctx: BuildContext) -> dict[str, Any]:
    epochs, committed = ctx.per_epoch(DYNAMICS, ("committed_freq",))
    committed = np.asarray(committed, dtype=np.int64)
    commit = ctx.summary(DYNAMICS, ("commitment_epoch",))
    m = committed.shape[1]
    settled = np.array([(commit >= 0) & (commit <= e) for e in epochs]).sum(1) / m
    traces = [array_trace(ctx, epochs, (committed > 0).mean(1), "committed to some frequency", color=0),
              array_trace(ctx, epochs, settled, "committed to its final frequency", color=2)]
    sw = _switch_table(ctx)
    if sw is not None:
        cum = np.searchsorted(np.sort(np.asarray(sw[0])), epochs, side="right")
        traces.append({**array_trace(ctx, epochs, cum, "frequency switches so far", color=3, dash="dot"),
                       "yaxis": "y2"})
    return {"traces": traces, "yTitle": f"share of the {m} neurons", "yRange": [-0.02, 1.02],
            "y2Title": "switches (cumulative)", "y2Min0": True}


def _table(ctx: BuildContext, columns: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """A `table` spec: integer columns as embedded arrays, the others as JSON lists."""
    cols = []
    for name, kind, values in columns:
        if kind == "int":
            data: Any = ctx.store.add_int(values)
        else:
            data = [None if (isinstance(v, float) and not np.isfinite(v)) else v for v in np.asarray(values).tolist()]
        cols.append({"name": name, "type": kind, "data": data})
    return {"columns": cols, "rows": int(len(np.asarray(columns[0][2]))) if columns else 0}


@chart("neuron_switches", "Frequency switches", "table", needs=(DYNAMICS,))
def neuron_switches(ctx: BuildContext) -> dict[str, Any]:
    sw = _switch_table(ctx)
    if sw is None:
        raise Unavailable("neuron_dynamics has no switch table")
    if not len(sw[0]):
        raise Unavailable("no neuron switched its committed frequency")
    return _table(ctx, [("epoch", "int", sw[0]), ("neuron", "int", sw[1]), ("from k", "int", sw[2]), ("to k", "int", sw[3])])


@chart("transient_frequencies", "Transient frequencies", "table", needs=(DYNAMICS,))
def transient_frequencies(ctx: BuildContext) -> dict[str, Any]:
    freq = ctx.summary(DYNAMICS, ("transient_freq",))
    if not len(freq):
        raise Unavailable("no transient frequency: none reached 5% of the neurons and then fell below 10%")
    get = lambda name: ctx.summary(DYNAMICS, (f"transient_{name}",))  # noqa: E731
    disappear = np.asarray(get("disappear"), dtype=np.int64)
    return _table(ctx, [("k", "int", freq), ("rise epoch", "int", get("rise")), ("peak epoch", "int", get("peak")),
                   ("peak share", "num", get("peak_share")), ("peak neurons", "int", get("peak_count")),
                   ("disappears", "str", [str(d) if d >= 0 else "(ends at 5–10%)" for d in disappear]),
                   ("final share", "num", get("final_share")), ("homeless", "int", get("homeless"))])
