"""Activation maps over the probe grid: selected neuron heatmaps and per-head attention.

Full p x p maps are large (113 x 113 per neuron), so they are stored as float16 for a fixed
selection only: `neuron_maps` keeps `n_neurons` neurons chosen at the reference epoch (the
purest neuron of each key frequency in turn, then the most active), recorded in the summary
array `neurons`; `attention` keeps every head up to `max_heads` (recorded in `heads`). The
per-neuron / per-head numbers (frequency shares, coarseness) cover all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, EpochData, RunInfo
from epochscope.collectors.analysis.fourier import head_grid, map_fractions, n_freqs, neuron_grid

__all__ = ["Attention", "NeuronMaps", "to_float16"]

_F16_MAX = float(np.finfo(np.float16).max)


def to_float16(x: Any) -> np.ndarray:
    """Clip into float16's finite range, then convert (no silent inf)."""
    arr = np.asarray(x, dtype=np.float32)
    return np.clip(arr, -_F16_MAX, _F16_MAX).astype(np.float16)


class NeuronMaps(Analyzer):
    """Activation heatmaps [p, p] of a fixed selection of MLP neurons (float16)."""

    name = "neuron_maps"
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "Final-position MLP activation over the p x p grid for `n_neurons` neurons "
        "selected at the reference epoch (summary `neurons`), float16."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"n_neurons": 8}

    def prepare(self, info: RunInfo, stored: Any, reference: Callable[[], Any]) -> None:
        if stored is not None and "neurons" in stored.summary_names:
            self.neurons = [int(i) for i in stored.summary("neurons")]
            self.scalars = {k: v for k, v in stored.scalars.items() if k.startswith("selection")}
            return
        ref = reference()
        self.neurons = ref.select_neurons(self.params["n_neurons"])
        self.scalars = {
            "selection_epoch": ref.epoch,
            "selection_key_freqs": ref.key_freqs,
            "selection_rule": "purest neuron per key frequency in turn, then most active",
        }

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        idx = np.asarray(self.neurons, dtype=np.int64)
        return {
            "heatmaps": np.stack(
                [to_float16(neuron_grid(d)[:, :, idx].permute(2, 0, 1).numpy()) for d in batch]
            )
        }

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"neurons": np.asarray(self.neurons, dtype=np.int64)}, dict(self.scalars)


class Attention(Analyzer):
    """Per head: attention from '=' to `a` over the grid (float16), mean pattern, dominant frequency."""

    name = "attention"
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "Per head: the attention paid by the '=' position to the `a` token over the "
        "p x p grid (float16), the mean attention to each position, and the head's "
        "frequency shares and dominant frequency."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"max_heads": 8}

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.p = int(info.p)
        heads = int(info.model_config.get("n_heads") or self._heads_from_shapes(info))
        self.heads = list(range(min(heads, self.params["max_heads"])))

    @staticmethod
    def _heads_from_shapes(info: RunInfo) -> int:
        shape = info.shapes.get("W_Q")
        return int(shape[0]) if shape and len(shape) == 3 else 1

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        rows: dict[str, list[np.ndarray]] = {}
        for d in batch:
            maps = head_grid(d)[:, :, self.heads].permute(2, 0, 1)
            frac = map_fractions(d, "head")
            dominant = frac.argmax(axis=1)
            values = {
                "to_a": to_float16(maps.numpy()),
                "mean_pattern": d.cache["pattern"].float().mean(dim=0).numpy().astype(np.float32),
                "freq_frac": frac.astype(np.float32),
                "dominant_freq": (dominant + 1).astype(np.int16),
                "dominant_frac": frac[np.arange(len(frac)), dominant].astype(np.float32),
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(value)
        return {k: np.stack(v) for k, v in rows.items()}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {
                "heads": np.asarray(self.heads, dtype=np.int64),
                "frequencies": np.arange(1, n_freqs(self.p) + 1),
            },
            {"p": self.p},
        )
