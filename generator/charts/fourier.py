"""Charts of Fourier structure (the fourier_weights analysis): norms of the Fourier components
of the embedding W_E and the unembedding W_U over training, their per-frequency profile at
one epoch, and their Gini coefficients."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator import sources as src
from epochscope.generator.charts import Unavailable, array_trace, chart, columns
from epochscope.generator.charts.weights import value_range
from epochscope.generator.context import BuildContext

_MATRIX = {"embed": "W_E", "unembed": "W_U"}


def component_labels(p: int) -> list[str]:
    """Names of the p rows of the real Fourier basis over Z_p: const, cos 1, sin 1, cos 2, …
    (for even p the last frequency, p/2, has a cos row only)."""
    labels = ["const"]
    for k in range(1, p // 2 + 1):
        labels.append(f"cos {k}")
        if 2 * k < p:
            labels.append(f"sin {k}")
    return labels


def gini(values: np.ndarray) -> np.ndarray:
    """Gini coefficient of the non-negative values along the last axis (0: all equal,
    → 1: all mass in one entry); the fourier_weights analysis' formula."""
    x = np.sort(np.abs(np.asarray(values, dtype=np.float64)), axis=-1)
    n = x.shape[-1]
    weights = 2 * np.arange(1, n + 1) - n - 1
    with np.errstate(all="ignore"):
        return (x * weights).sum(-1) / (n * x.sum(-1))


def _heatmap(ctx: BuildContext, which: str) -> dict[str, Any]:
    epochs, values = ctx.per_epoch(src.FOURIER, src.FOURIER_COMPONENTS[which])
    values = columns(values, f"Fourier component norms of {_MATRIX[which]}")
    return {"x": ctx.store.add_int(epochs), "z": ctx.store.add_float(values), "yLabels": component_labels(values.shape[1]),
            "zTitle": "norm", "yTitle": "Fourier component"}


@chart("fourier_embed", "Fourier components of the embedding W_E", "heatmap_time",
       needs=("fourier_weights",), epoch_axis=True, follows=("epoch",))
def fourier_embed(ctx: BuildContext) -> dict[str, Any]:
    return _heatmap(ctx, "embed")


@chart("fourier_unembed", "Fourier components of the unembedding W_U", "heatmap_time",
       needs=("fourier_weights",), epoch_axis=True, follows=("epoch",))
def fourier_unembed(ctx: BuildContext) -> dict[str, Any]:
    return _heatmap(ctx, "unembed")


@chart("fourier_at_epoch", "Fourier spectrum at the epoch", "profile", needs=("fourier_weights",),
       follows=("epoch",), wide=True)
def fourier_at_epoch(ctx: BuildContext) -> dict[str, Any]:
    traces, epochs_ref, freqs, ranges = [], None, None, []
    for i, which in enumerate(("embed", "unembed")):
        if not ctx.has_per_epoch(src.FOURIER, src.FOURIER_FREQ[which]):
            continue
        epochs, values = ctx.per_epoch(src.FOURIER, src.FOURIER_FREQ[which])
        values = columns(values, f"frequency norms of {_MATRIX[which]}")
        ref = ctx.store.add_int(epochs)
        if epochs_ref is not None and ref != epochs_ref:
            continue  # a profile needs one epoch list; W_U on other epochs than W_E: skip it
        epochs_ref = ref
        freqs = src.frequencies(ctx, src.FOURIER, values.shape[1])
        trace = {"name": _MATRIX[which], "y": ctx.store.add_float(values), "color": i}
        ranges.append(value_range(values))
        if ctx.has_per_epoch(src.FOURIER, src.FOURIER_KEY_MASK[which]):
            _, mask = ctx.per_epoch(src.FOURIER, src.FOURIER_KEY_MASK[which])
            trace["outline"] = ctx.store.add_int(np.asarray(mask).astype(np.uint8))
        traces.append(trace)
    if not traces:
        ctx.artifact(src.FOURIER)
        raise Unavailable(f"analysis '{src.FOURIER}' has no per-frequency norms")
    return {"epochs": epochs_ref, "x": freqs, "traces": traces, "bar": True,
            "xTitle": "frequency k (outlined: key frequency at this epoch)",
            "yTitle": "norm √(cos² + sin²)", "logToggle": True,
            "yAll": value_range(np.array([v for r in ranges if r for v in r]))}


@chart("gini", "Gini coefficient of Fourier norms", "lines", needs=("fourier_weights",), epoch_axis=True,
       follows=("epoch",))
def gini_chart(ctx: BuildContext) -> dict[str, Any]:
    traces = []
    for i, which in enumerate(("embed", "unembed")):
        if ctx.has_per_epoch(src.FOURIER, src.FOURIER_GINI[which]):
            epochs, g = ctx.per_epoch(src.FOURIER, src.FOURIER_GINI[which])
            g = columns(g, f"Gini of {_MATRIX[which]}")[:, 0]
        elif ctx.has_per_epoch(src.FOURIER, src.FOURIER_FREQ[which]):
            epochs, norms = ctx.per_epoch(src.FOURIER, src.FOURIER_FREQ[which])
            g = gini(norms)
        else:
            continue
        traces.append(array_trace(ctx, epochs, g, _MATRIX[which], color=i, mode="lines+markers"))
    if not traces:
        ctx.artifact(src.FOURIER)
        raise Unavailable(f"analysis '{src.FOURIER}' has no Gini coefficients or frequency norms")
    return {"traces": traces, "yTitle": "Gini coefficient", "yRange": [0, 1.02]}
