"""The canonical probe (every (a, b, '=') input), the shared forward pass, and the reference epoch.

Activation analyzers never run the model themselves: the pipeline runs ONE forward pass per
checkpoint over the probe and hands the cache to all of them.

Some choices must be the same at every epoch for the per-epoch results to be comparable: which
neurons get stored heatmaps, which frequencies are "key" for the restricted/excluded loss. They
are made once, at the run's last checkpoint (the reference epoch, where the learned structure
is clearest), stored in the artifact's summary, and reused when new checkpoints are analysed
later (a forced re-run chooses again).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from epochscope.collectors.analysis.base import EpochData, Probe
from epochscope.collectors.analysis.fourier import (
    fourier_transform,
    freq_norms,
    neuron_fractions,
    neuron_variance,
)

__all__ = ["ReferenceInfo", "make_probe", "reference_info", "run_probe"]

REQUIRED_CACHE = ("logits", "mlp_post", "pattern")


def make_probe(p: int, config: dict[str, Any] | None = None) -> Probe:
    """All p*p inputs [a, b, p] (row-major in a, b), labels, and the training pairs if known.

    The split is rebuilt with the trainer's own `split_data` from the stored run config; runs
    without one (ingested, or another trainer) get `train_idx=None` and losses on all pairs.
    """
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    return Probe(p=p, tokens=tokens, labels=(a + b) % p, train_idx=_train_idx(p, config or {}))


def _train_idx(p: int, config: dict[str, Any]) -> np.ndarray | None:
    if "train_frac" not in config or "data_seed" not in config:
        return None
    try:
        from epochscope.collectors.config import TrainConfig
        from epochscope.collectors.train import split_data

        cfg = TrainConfig.from_dict(config)
        if cfg.p != p:
            return None
        train_x = split_data(cfg)[0]
    except Exception:  # noqa: BLE001 - an unknown config only means "split unknown"
        return None
    return np.sort((train_x[:, 0] * p + train_x[:, 1]).numpy().astype(np.int64))


def run_probe(model: torch.nn.Module, probe: Probe) -> dict[str, torch.Tensor]:
    """One forward pass over the probe; the final-position cache as a dict of tensors.

    Expects `model.run_with_cache(tokens)` returning `(logits, cache)` or a dict, with
    `mlp_post` [B, d_mlp], `pattern` [B, heads, n_ctx] (the final query) and `logits` [B, p];
    a model whose `run_with_cache` takes `names` is told which entries are needed.
    """
    with torch.inference_mode():
        if "names" in inspect.signature(model.run_with_cache).parameters:
            out = model.run_with_cache(probe.tokens, names=REQUIRED_CACHE)  # only what is needed
        else:
            out = model.run_with_cache(probe.tokens)
    if isinstance(out, tuple):
        logits, cache = out
        cache = dict(cache)
        cache.setdefault("logits", logits)
    else:
        cache = dict(out)
    if cache["logits"].ndim == 3:  # a model that returns every position
        cache["logits"] = cache["logits"][:, -1]
    return cache


def missing_cache_keys(cache: dict[str, Any]) -> list[str]:
    return [k for k in REQUIRED_CACHE if k not in cache]


@dataclass
class ReferenceInfo:
    """Run-level choices made at the reference (last) checkpoint."""

    epoch: int
    key_freqs: list[int]
    key_source: str  # "neuron_clusters" or "embedding"
    frac: np.ndarray  # [d_mlp, n_freq] neuron variance share per frequency
    variance: np.ndarray  # [d_mlp] activation variance over the grid
    threshold: float

    def select_neurons(self, n: int) -> list[int]:
        """Up to `n` neurons: the purest of each key frequency in turn, then the most active."""
        chosen: list[int] = []
        n = min(n, len(self.variance))
        by_freq = [list(np.argsort(-self.frac[:, k - 1], kind="stable")) for k in self.key_freqs]
        while len(chosen) < n and any(by_freq):
            for ranking in by_freq:
                while ranking and ranking[0] in chosen:
                    ranking.pop(0)
                if ranking and len(chosen) < n:
                    chosen.append(int(ranking.pop(0)))
        for idx in np.argsort(-self.variance, kind="stable"):
            if len(chosen) >= n:
                break
            if int(idx) not in chosen:
                chosen.append(int(idx))
        return chosen


def reference_info(
    d: EpochData,
    *,
    threshold: float = 0.85,
    min_share: float = 0.01,
    max_key: int = 8,
    fallback: int = 5,
) -> ReferenceInfo:
    """Key frequencies from the neuron clusters of epoch `d` (those holding >= `min_share` of
    the neurons, largest first); if no cluster is that big, the `fallback` largest W_E
    frequencies."""
    p = d.probe.p
    frac = neuron_fractions(d)
    variance = neuron_variance(d)
    dominant = frac.argmax(axis=1)
    clustered = frac[np.arange(len(frac)), dominant] >= threshold
    counts = np.bincount(dominant[clustered], minlength=frac.shape[1])
    need = max(1, math.ceil(min_share * len(frac)))
    order = [int(k) for k in np.argsort(-counts, kind="stable") if counts[k] >= need][:max_key]
    if order:
        return ReferenceInfo(
            d.epoch, [k + 1 for k in order], "neuron_clusters", frac, variance, threshold
        )
    norms = freq_norms(fourier_transform(d.weights["W_E"][:p], p))["freq"]
    top = [int(k) + 1 for k in np.argsort(-norms, kind="stable")[:fallback]]
    return ReferenceInfo(d.epoch, top, "embedding", frac, variance, threshold)
