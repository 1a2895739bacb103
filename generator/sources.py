"""Where each chart finds its data: artifact names and array names, in one place.

The names follow the analyzers in collectors/analysis/ (docs there define each quantity).
Each tuple lists the accepted names of one array, preferred first; builders take the first
one present, so a renamed array only needs its new name added here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator.context import BuildContext
from epochscope.generator.events import current_events

# -- artifact (analysis) names ------------------------------------------------------------------
WEIGHT_NORMS = "weight_norms"
EFFECTIVE_DIM = "effective_dim"
TRAJECTORY = "trajectory"  # PCA coordinates, velocity, curvature, self-intersections
CUSUM = "cusum"
COARSENESS = "coarseness"
FOURIER = "fourier_weights"
NEURON_FREQ = "neuron_freq"
NEURON_MAPS = "neuron_maps"
ATTENTION = "attention"
RESTRICTED = "restricted_loss"
TURN = "turn"
# Shared PCA bases over several runs, one artifact per basis (collectors/analysis/shared_basis.py).
SHARED_PCA_PREFIX = "shared_pca."

# -- array names ------------------------------------------------------------------------------
TENSOR_LABELS = ("tensors", "matrices", "names")
MATRIX_LABELS = ("matrices", "tensors", "names")
WEIGHT_NORM_ARRAYS = ("norms",)
WEIGHT_NORM_TOTAL = ("total",)
PARTICIPATION_ARRAYS = ("participation_ratio",)
GAP_ARRAYS = ("spectral_gap",)
SINGULAR_ARRAYS = ("singular_values",)
PCA_ARRAYS = ("pca", "projection")
PCA_VARIANCE = ("explained_variance_ratio",)
PCA_CROSSING_POINTS = ("intersection_points",)
PCA_CROSSING_EPOCHS = ("intersections",)
VELOCITY_ARRAYS = ("velocity",)
CUSUM_THRESHOLD = ("h", "threshold")
COARSENESS_ARRAYS = ("neuron_fft_low",)
FOURIER_COMPONENTS = {"embed": ("embed_basis_norms",), "unembed": ("unembed_basis_norms",)}
FOURIER_FREQ = {"embed": ("embed_freq_norms",), "unembed": ("unembed_freq_norms",)}
FOURIER_KEY_MASK = {"embed": ("embed_key_mask",), "unembed": ("unembed_key_mask",)}
FOURIER_GINI = {"embed": ("embed_gini",), "unembed": ("unembed_gini",)}
FREQUENCIES = ("frequencies",)
KEY_FREQS = ("key_freqs",)
NEURON_FRAC = ("frac_explained",)
NEURON_DOMINANT = ("dominant_freq",)
NEURON_CLUSTERED = ("clustered",)
CLUSTER_THRESHOLD = ("threshold",)
NEURON_MAP_ARRAYS = ("heatmaps",)
NEURON_MAP_IDS = ("neurons",)
ATTENTION_ARRAYS = ("to_a",)
HEAD_FREQ = ("dominant_freq",)
HEAD_FREQ_FRAC = ("dominant_frac",)
HEAD_IDS = ("heads",)
RESTRICTED_TEST = ("restricted_loss_test",)
RESTRICTED_ALL = ("restricted_loss",)
EXCLUDED = ("excluded_loss",)
EXCLUDED_PER_FREQ = ("excluded_loss_per_freq",)
TURN_GRID = ("log10_loss",)
TURN_FIT = ("fit",)
TURN_BREAKPOINTS = ("breakpoints",)


def turn(ctx: BuildContext) -> dict[str, Any] | None:
    """The turn analysis' verdict: {"epoch" (None: no turn), "method", "confidence", "reason"},
    or None when it was not run."""
    if not ctx.has_artifact(TURN):
        return None
    scalars = ctx.bundle.artifact(TURN).scalars
    epoch = scalars.get("epoch")
    try:
        epoch = int(epoch) if epoch is not None else None
    except (TypeError, ValueError):
        epoch = None
    confidence = scalars.get("confidence")
    return {"epoch": epoch, "method": str(scalars.get("method") or "not recorded"),
            "confidence": float(confidence) if isinstance(confidence, (int, float)) else None,
            "reason": scalars.get("reason"), "signals": scalars.get("signals") or []}


def key_frequencies(ctx: BuildContext) -> tuple[list[int], str] | None:
    """The run's key frequencies and where they come from, or None without Fourier analyses."""
    if ctx.has_artifact(RESTRICTED):
        keys = ctx.optional_summary(RESTRICTED, KEY_FREQS)
        if keys is not None:
            art = ctx.bundle.artifact(RESTRICTED)
            at = art.scalars.get("key_epoch")
            how = art.scalars.get("key_source")
            text = "fixed at the reference epoch" + (f" {at}" if at is not None else "")
            return [int(k) for k in np.asarray(keys).ravel()], text + (f" (from {how})" if how else "")
    if ctx.has_per_epoch(FOURIER, FOURIER_KEY_MASK["embed"]):
        epochs, mask = ctx.per_epoch(FOURIER, FOURIER_KEY_MASK["embed"])
        freqs = frequencies(ctx, FOURIER, mask.shape[-1])
        return ([int(f) for f, m in zip(freqs, np.asarray(mask[-1]).astype(bool), strict=True) if m],
                f"key frequencies of W_E at epoch {int(epochs[-1])}")
    return None


def frequencies(ctx: BuildContext, artifact: str, n: int) -> list[int]:
    """The frequency of each of `n` columns (the analysis' summary, else 1..n)."""
    stored = ctx.optional_summary(artifact, FREQUENCIES) if ctx.has_artifact(artifact) else None
    if stored is not None and len(stored) == n:
        return [int(f) for f in np.asarray(stored).ravel()]
    return list(range(1, n + 1))


def cusum_alarms(ctx: BuildContext) -> list[dict[str, Any]]:
    """CUSUM alarms: the bundle's "cusum_alarm" events (with their payloads), else the epochs
    in the analysis' `{monitor}_alarms` summaries."""
    events = [e for e in current_events(ctx.bundle) if e["kind"] == "cusum_alarm"]
    if events:
        return [{"epoch": int(e["epoch"]), "monitor": str((e.get("payload") or {}).get("monitor", "?")),
                 "direction": (e.get("payload") or {}).get("direction"),
                 "statistic": (e.get("payload") or {}).get("statistic"), "message": e.get("message", "")}
                for e in events]
    if not ctx.has_artifact(CUSUM):
        return []
    art = ctx.bundle.artifact(CUSUM)
    out = []
    for name in art.summary_names:
        if name.endswith("_alarms"):
            for epoch in np.asarray(art.summary(name)).ravel().tolist():
                out.append({"epoch": int(epoch), "monitor": name.removesuffix("_alarms"), "direction": None,
                            "statistic": None, "message": ""})
    return sorted(out, key=lambda a: a["epoch"])
