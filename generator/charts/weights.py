"""Charts of weight-space structure: norms, effective dimensionality, spectral gap, singular
value spectra, and the PCA trajectory of the parameters."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator import sources as src
from epochscope.generator.charts import Unavailable, array_trace, chart, columns, series_trace
from epochscope.generator.context import BuildContext


@chart("weight_norms", "Weight norms", "lines", needs=("weight_norms", "metrics"), epoch_axis=True,
       follows=("epoch",))
def weight_norms(ctx: BuildContext) -> dict[str, Any]:
    if ctx.has_per_epoch(src.WEIGHT_NORMS, src.WEIGHT_NORM_ARRAYS):
        epochs, values = ctx.per_epoch(src.WEIGHT_NORMS, src.WEIGHT_NORM_ARRAYS)
        values = columns(values, "weight norms")
        labels = ctx.labels(src.WEIGHT_NORMS, src.TENSOR_LABELS, values.shape[1], "tensor ")
        traces = [array_trace(ctx, epochs, values[:, i], labels[i], color=i, mode="lines+markers")
                  for i in range(values.shape[1])]
        if ctx.has_per_epoch(src.WEIGHT_NORMS, src.WEIGHT_NORM_TOTAL):
            e, total = ctx.per_epoch(src.WEIGHT_NORMS, src.WEIGHT_NORM_TOTAL)
            traces.insert(0, array_trace(ctx, e, columns(total, "total norm")[:, 0], "all parameters",
                                         color="#1d2330", width=3, mode="lines+markers"))
        return {"traces": traces, "yTitle": "Frobenius norm", "logy": True, "logToggle": True}
    # Without the analysis, the per-tensor norms the training loop logged every epoch.
    names = [n for n in ctx.bundle.series_names if n.startswith("weight_norm.")]
    names = [n for n in names if np.isfinite(ctx.series(n)[1]).any()]
    if not names:
        if ctx.has_artifact(src.WEIGHT_NORMS):
            raise Unavailable(f"analysis '{src.WEIGHT_NORMS}' has no norm array and no weight_norm.* series was logged")
        raise Unavailable(f"analysis '{src.WEIGHT_NORMS}' was not run and no weight_norm.* series was logged")
    traces = [series_trace(ctx, n, n.removeprefix("weight_norm."), color=i) for i, n in enumerate(names)]
    if ctx.has_series("weight_norm") and np.isfinite(ctx.series("weight_norm")[1]).any():
        traces.insert(0, series_trace(ctx, "weight_norm", "all parameters", color="#1d2330", width=3))
    return {"traces": traces, "yTitle": "Frobenius norm", "logy": True, "logToggle": True}


@chart("effective_dim", "Effective dimensionality", "lines", needs=("effective_dim",), epoch_axis=True,
       follows=("epoch",))
def effective_dim(ctx: BuildContext) -> dict[str, Any]:
    epochs, values = ctx.per_epoch(src.EFFECTIVE_DIM, src.PARTICIPATION_ARRAYS)
    values = columns(values, "participation ratio")
    labels = ctx.labels(src.EFFECTIVE_DIM, src.MATRIX_LABELS, values.shape[1], "matrix ")
    traces = [array_trace(ctx, epochs, values[:, i], labels[i], color=i, mode="lines+markers")
              for i in range(values.shape[1])]
    return {"traces": traces, "yTitle": "participation ratio (Σσ²)² / Σσ⁴", "logToggle": True}


def top_k_gap(svals: np.ndarray, k: int) -> np.ndarray:
    """mean(σ_1..σ_k) / mean(σ_k+1..σ_r) per row of NaN-padded, descending spectra (…, K);
    k is capped at r − 1 (r: the number of finite values). The effective_dim analysis' formula."""
    s = np.asarray(svals, dtype=np.float64)
    out = np.full(s.shape[:-1], np.nan)
    for idx in np.ndindex(*s.shape[:-1]):
        row = s[idx]
        row = row[np.isfinite(row)]
        if len(row) < 2:
            continue
        kk = max(1, min(k, len(row) - 1))
        rest = row[kk:].mean()
        out[idx] = row[:kk].mean() / rest if rest > 0 else np.nan
    return out


@chart("spectral_gap", "Spectral gap", "lines", needs=("effective_dim",), epoch_axis=True,
       follows=("epoch",))
def spectral_gap(ctx: BuildContext) -> dict[str, Any]:
    k = int(ctx.scalar(src.EFFECTIVE_DIM, ("top_k",), 10))
    if ctx.has_per_epoch(src.EFFECTIVE_DIM, src.GAP_ARRAYS):
        epochs, values = ctx.per_epoch(src.EFFECTIVE_DIM, src.GAP_ARRAYS)
    else:
        epochs, svals = ctx.per_epoch(src.EFFECTIVE_DIM, src.SINGULAR_ARRAYS)
        values = top_k_gap(svals if svals.ndim == 3 else svals[:, None, :], k)
    values = columns(values, "spectral gap")
    labels = ctx.labels(src.EFFECTIVE_DIM, src.MATRIX_LABELS, values.shape[1], "matrix ")
    traces = [array_trace(ctx, epochs, values[:, i], labels[i], color=i, mode="lines+markers")
              for i in range(values.shape[1])]
    return {"traces": traces, "yTitle": f"mean σ of top {k} / mean σ of the rest", "logy": True,
            "logToggle": True}


@chart("singular_values", "Singular value spectrum at the epoch", "profile", needs=("effective_dim",),
       follows=("epoch",))
def singular_values(ctx: BuildContext) -> dict[str, Any]:
    epochs, svals = ctx.per_epoch(src.EFFECTIVE_DIM, src.SINGULAR_ARRAYS)
    svals = np.asarray(svals, dtype=np.float64)
    if svals.ndim == 2:
        svals = svals[:, None, :]
    if svals.ndim != 3 or not np.isfinite(svals).any():
        raise Unavailable("no data: singular values are missing or not (epochs, matrices, k)")
    labels = ctx.labels(src.EFFECTIVE_DIM, src.MATRIX_LABELS, svals.shape[1], "matrix ")
    # Trim the all-NaN tail of padded spectra.
    width = int(np.max(np.nonzero(np.isfinite(svals).any(axis=(0, 1)))[0])) + 1
    svals = svals[:, :, :width]
    traces = [{"name": labels[i], "y": ctx.store.add_float(svals[:, i, :], floor=0.0), "color": i}
              for i in range(svals.shape[1])]
    return {"epochs": ctx.store.add_int(epochs), "x": list(range(1, width + 1)), "traces": traces,
            "mode": "lines", "xTitle": "index k (largest first)", "yTitle": "singular value σ_k",
            "logy": True, "logToggle": True, "yAll": value_range(svals)}


def value_range(values: np.ndarray) -> list[float] | None:
    """[smallest positive, largest] finite value: a fixed axis range for a chart that shows one
    epoch at a time, so that moving the epoch does not rescale the axis."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    pos = v[v > 0]
    return [float(pos.min() if pos.size else v.min()), float(v.max()), float(v.min())]


def _pca(ctx: BuildContext) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(epochs, coordinates (E, ≥2), explained variance ratio or None)."""
    epochs, coords = ctx.per_epoch(src.TRAJECTORY, src.PCA_ARRAYS)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2 or not np.isfinite(coords).any():
        raise Unavailable("no data: PCA coordinates missing or not (epochs, components)")
    evr = ctx.optional_summary(src.TRAJECTORY, src.PCA_VARIANCE)
    return epochs, coords, None if evr is None else np.asarray(evr, dtype=np.float64).ravel()


def self_intersections(xy: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Where the polyline through the rows of `xy` crosses itself.

    Returns (i, j, x, y): segment i (point i to i+1) crosses the later segment j (j ≥ i+2).
    Rows with NaN are skipped by construction (their segments never intersect).
    """
    p = np.asarray(xy, dtype=np.float64)[:, :2]
    if len(p) < 4:
        return []
    a, b = p[:-1], p[1:]
    d = b - a  # (S, 2)
    # Solve a_i + t d_i = a_j + u d_j for all pairs.
    cross = d[:, None, 0] * d[None, :, 1] - d[:, None, 1] * d[None, :, 0]
    diff = a[None, :, :] - a[:, None, :]
    with np.errstate(all="ignore"):
        t = (diff[..., 0] * d[None, :, 1] - diff[..., 1] * d[None, :, 0]) / cross
        u = (diff[..., 0] * d[:, None, 1] - diff[..., 1] * d[:, None, 0]) / cross
    n = len(d)
    later = np.triu(np.ones((n, n), dtype=bool), k=2)
    hit = later & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1) & np.isfinite(t) & np.isfinite(u)
    out = []
    for i, j in zip(*np.nonzero(hit), strict=True):
        x, y = a[i] + t[i, j] * d[i]
        out.append((int(i), int(j), float(x), float(y)))
    return out


def _trajectory(ctx: BuildContext, dims: tuple[int, int]) -> dict[str, Any]:
    epochs, coords, evr = _pca(ctx)
    if coords.shape[1] <= max(dims) or not np.isfinite(coords[:, list(dims)]).any():
        raise Unavailable(f"no data: the PCA has no component {max(dims) + 1} (too few checkpoints?)")
    xy = coords[:, list(dims)]

    def title(i: int) -> str:
        share = f" ({100 * evr[i]:.1f}% of variance)" if evr is not None and i < len(evr) else ""
        return f"PC{i + 1}{share}"

    stored = ctx.optional_summary(src.TRAJECTORY, src.PCA_CROSSING_POINTS) if dims == (1, 2) else None
    pairs = ctx.optional_summary(src.TRAJECTORY, src.PCA_CROSSING_EPOCHS) if dims == (1, 2) else None
    if stored is not None and pairs is not None and len(stored) == len(pairs):
        by_epoch = {int(e): i for i, e in enumerate(epochs)}

        def span(e: int) -> str:
            i = by_epoch.get(int(e))
            return f"{e}→{epochs[i + 1]}" if i is not None and i + 1 < len(epochs) else str(e)

        crossings = [{"x": float(x), "y": float(y), "text": f"crosses itself: epochs {span(a)} and {span(b)}"}
                     for (x, y), (a, b) in zip(np.asarray(stored).reshape(-1, 2), np.asarray(pairs).reshape(-1, 2),
                                               strict=True)]
    else:
        crossings = [{"x": x, "y": y, "text": f"crosses itself: epochs {epochs[i]}→{epochs[i + 1]} "
                                              f"and {epochs[j]}→{epochs[j + 1]}"}
                     for i, j, x, y in self_intersections(xy)]
    return {"epochs": ctx.store.add_int(epochs), "xs": ctx.store.add_float(xy[:, 0]),
            "ys": ctx.store.add_float(xy[:, 1]), "xTitle": title(dims[0]), "yTitle": title(dims[1]),
            "crossings": crossings}


@chart("pca_12", "Parameter trajectory: PC1 vs PC2", "trajectory", needs=("trajectory",), follows=("epoch",))
def pca_12(ctx: BuildContext) -> dict[str, Any]:
    return _trajectory(ctx, (0, 1))


@chart("pca_23", "Parameter trajectory: PC2 vs PC3", "trajectory", needs=("trajectory",), follows=("epoch",))
def pca_23(ctx: BuildContext) -> dict[str, Any]:
    return _trajectory(ctx, (1, 2))
