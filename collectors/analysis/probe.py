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

from epochscope.collectors.analysis.base import EpochData, Probe
from epochscope.collectors.analysis.fourier import (
    fourier_transform,
    freq_norms,
    neuron_fractions,
    neuron_variance,
)
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = ["ReferenceInfo", "grid_split", "make_probe", "reference_info", "run_probe", "split_note"]

REQUIRED_CACHE = ("logits", "mlp_post", "pattern")


def make_probe(p: int, split: dict[str, Any] | None = None) -> Probe:
    """All p*p inputs [a, b, p] (row-major in a, b), labels, and the split if the bundle has one.

    `split` is `Bundle.split` (recorded at collect time); it is used when it covers exactly
    the p*p grid in row-major order and has a `train` subset. Runs without one (bundles from
    before the split was stored, ingested runs, other trainers) get `train_idx=None`: the
    train/test classes are then unavailable (see `split_note`).
    """
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    train, test, why = grid_split(p, split)
    return Probe(p=p, tokens=tokens, labels=(a + b) % p, train_idx=train, test_idx=test,
                 split_missing=why)


def grid_split(p: int, split: dict[str, Any] | None
               ) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(train, test, None) indices into the p x p grid from a stored split, or
    (None, None, why it cannot be used)."""
    if not split:
        return None, None, "the bundle stores no train/test split"
    meta = split.get("meta") or {}
    subsets = split.get("subsets") or {}
    if int(split.get("n", -1)) != p * p or meta.get("p", p) != p:
        return None, None, f"the stored split covers {split.get('n')} examples, not the {p} x {p} grid"
    if "train" not in subsets:
        return None, None, "the stored split has no `train` subset"
    train = np.sort(np.asarray(subsets["train"], dtype=np.int64))
    if "test" in subsets:
        test = np.sort(np.asarray(subsets["test"], dtype=np.int64))
    else:
        test = np.setdiff1d(np.arange(p * p), train, assume_unique=True)
    return train, test, None


SPLIT_CLASSES = ("restricted_loss_test", "excluded loss on the training pairs",
                 "per-input train/test classes", "probe rules train/test")


def split_note(probe: Probe) -> str | None:
    """One line for the analysis result when the split is unknown (which outputs lack it)."""
    if probe.train_idx is not None:
        return None
    return (f"{probe.split_missing}: the train/test classes are unavailable "
            f"({', '.join(SPLIT_CLASSES)}); the input-structure classes (a = b, a + b < p, "
            "wrap-around) and all-pairs results are computed")


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
    margin: np.ndarray | None = None  # [p*p] correct logit minus best other (< 0: wrong)

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
    margin = _margin(d)
    frac = neuron_fractions(d)
    variance = neuron_variance(d)
    dominant = frac.argmax(axis=1)
    clustered = frac[np.arange(len(frac)), dominant] >= threshold
    counts = np.bincount(dominant[clustered], minlength=frac.shape[1])
    need = max(1, math.ceil(min_share * len(frac)))
    order = [int(k) for k in np.argsort(-counts, kind="stable") if counts[k] >= need][:max_key]
    if order:
        return ReferenceInfo(
            d.epoch, [k + 1 for k in order], "neuron_clusters", frac, variance, threshold, margin
        )
    norms = freq_norms(fourier_transform(d.weights["W_E"][:p], p))["freq"]
    top = [int(k) + 1 for k in np.argsort(-norms, kind="stable")[:fallback]]
    return ReferenceInfo(d.epoch, top, "embedding", frac, variance, threshold, margin)


def _margin(d: EpochData) -> np.ndarray:
    from epochscope.collectors.analysis.inputs import margins

    return margins(d.cache["logits"].detach(), d.probe.labels)[0].numpy()
