"""Every MLP neuron's activation map at every analysed checkpoint, in a compact form.

A neuron's map A(a, b) over the p x p grid is stored as its mean plus, for its `n_freqs`
strongest frequencies k (by variance share, `neuron_freq`), the projections of the map onto
cos and sin of k times a, b, a + b and a - b:

    A(a, b) ~ mean + sum over kept k, x in (a, b, a + b, a - b) of
              C[k, x, cos] cos(2 pi k x / p) + C[k, x, sin] sin(2 pi k x / p)

These eight functions per frequency span exactly the 2-D Fourier classes (k, const),
(const, k) and (k, k) whose energy `neuron_freq` reports, so the part of the variance this
reconstruction misses is exactly 1 - (sum of the kept frequencies' shares): stored per neuron
and epoch as `residual`. The coefficients come from the 1-D sums `neuron_freq` already takes
(`fourier.map_spectra`), so the atlas costs almost nothing beyond it. Trained neurons are
nearly sparse in this basis (a neuron clustered on one frequency has residual < 0.15 with
one kept frequency); early, random neurons are not, and their residual says so.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, EpochData, RunInfo
from epochscope.collectors.analysis.fourier import (
    _cos_sin_rows,
    centred_maps,
    map_spectra,
    n_freqs,
    neuron_fractions,
)
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = ["NeuronAtlas", "atlas_maps"]

# Order of the 8 coefficients per kept frequency, and of the 4 sums in `sum_spectra`.
COEFF_ORDER = ("a_cos", "a_sin", "b_cos", "b_sin", "apb_cos", "apb_sin", "amb_cos", "amb_sin")
_SUM_OF = (1, 0, 2, 3)  # spectra index of the sums that are functions of a, b, a + b, a - b


@cache
def _rows_and_scale(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Basis rows of cos k and sin k (k = 1..p//2; sin row -1 at an even p's Nyquist) and
    1 / (p * norm of the raw cos/sin row): amplitude = spectral coefficient * scale."""
    cos_rows, sin_rows = _cos_sin_rows(p)
    k = np.arange(1, n_freqs(p) + 1)
    x = np.arange(p)
    raw_cos = np.cos(2 * np.pi * k[:, None] * x / p)
    raw_sin = np.sin(2 * np.pi * k[:, None] * x / p)
    cos_scale = 1.0 / (p * np.linalg.norm(raw_cos, axis=1))
    sin_norm = np.linalg.norm(raw_sin, axis=1)
    sin_scale = np.where(sin_norm > 1e-9, 1.0 / (p * np.maximum(sin_norm, 1e-9)), 0.0)
    return cos_rows, sin_rows, np.stack([cos_scale, sin_scale], axis=1)


def atlas_coefficients(spectra: torch.Tensor, freqs: np.ndarray, p: int) -> np.ndarray:
    """[n, J, 8] amplitudes (COEFF_ORDER) of frequencies `freqs` [n, J] (1-based) from
    `sum_spectra` of centred maps [p, 4, n]."""
    cos_rows, sin_rows, scale = _rows_and_scale(p)
    c = spectra.numpy()  # [p, 4, n]
    n, j = freqs.shape
    neuron = np.arange(n)[:, None]
    ki = freqs - 1
    out = np.zeros((n, j, 8), dtype=np.float64)
    for slot, which in enumerate(_SUM_OF):
        out[:, :, 2 * slot] = c[cos_rows[ki], which, neuron] * scale[ki, 0]
        srow = sin_rows[ki]
        out[:, :, 2 * slot + 1] = np.where(
            srow >= 0, c[np.maximum(srow, 0), which, neuron] * scale[ki, 1], 0.0
        )
    if p % 2 == 0:  # at the Nyquist frequency a - b repeats a + b (`frequency_energy`)
        out[:, :, 6:8][freqs == p // 2] = 0.0
    return out


def atlas_maps(mean: np.ndarray, freqs: np.ndarray, coef: np.ndarray, p: int) -> np.ndarray:
    """Reconstruct maps [n, p, p] from stored `mean` [n], `freqs` [n, J], `coef` [n, J, 8]
    (what the report does in the browser; tests and the benchmark check it against the full
    maps)."""
    a = np.arange(p)[:, None]
    b = np.arange(p)[None, :]
    args = [a + 0 * b, b + 0 * a, (a + b) % p, (a - b) % p]
    out = np.repeat(np.asarray(mean, dtype=np.float64)[:, None, None], p, axis=1)
    out = np.repeat(out, p, axis=2)
    coef = np.asarray(coef, dtype=np.float64)
    for i in range(len(mean)):
        for j, k in enumerate(np.asarray(freqs[i], dtype=np.int64)):
            if k <= 0:
                continue
            for slot, x in enumerate(args):
                angle = 2 * np.pi * k * x / p
                out[i] += coef[i, j, 2 * slot] * np.cos(angle) + coef[i, j, 2 * slot + 1] * np.sin(angle)
    return out


class NeuronAtlas(Analyzer):
    """Every MLP neuron's map at every checkpoint, as a few Fourier terms (see module doc)."""

    name = "neuron_atlas"
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "Every MLP neuron's final-position activation map over the p x p grid, compactly: "
        "its mean and, for its `n_freqs` strongest frequencies, the cos/sin amplitudes along "
        "a, b, a + b and a - b (float16); `residual` is the share of the map's variance the "
        "reconstruction misses."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"n_freqs": 2}

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.p = int(info.p)
        self.j = max(1, min(int(self.params["n_freqs"]), n_freqs(self.p)))
        self.freq_dtype = np.uint8 if n_freqs(self.p) <= 255 else np.int16

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        rows: dict[str, list[np.ndarray]] = {}
        for d in batch:
            frac = neuron_fractions(d)  # [M, K], shared with neuron_freq
            _, mean, var = centred_maps(d, "neuron")
            top = np.argsort(-frac, axis=1, kind="stable")[:, : self.j]
            freqs = top + 1
            kept = np.take_along_axis(frac, top, axis=1).sum(axis=1)
            flat = (var.numpy() <= 1e-12 * (var.numpy() + mean.numpy() ** 2))
            residual = np.where(flat, 0.0, np.clip(1.0 - kept, 0.0, 1.0))
            coef = atlas_coefficients(map_spectra(d, "neuron"), freqs, self.p)
            values = {
                "mean": mean.numpy().astype(np.float16),
                "freqs": freqs.astype(self.freq_dtype),
                "coef": np.clip(coef, -65504, 65504).astype(np.float16),
                "residual": residual.astype(np.float16),
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(value)
        return {k: np.stack(v) for k, v in rows.items()}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {"coef_order": np.asarray(COEFF_ORDER, dtype=object)},
            {
                "p": self.p,
                "n_freqs": self.j,
                "formula": "A(a,b) = mean + sum_j sum_x coef[j, x_cos] cos(2 pi freqs[j] x / p)"
                " + coef[j, x_sin] sin(2 pi freqs[j] x / p), x in (a, b, (a+b) mod p, "
                "(a-b) mod p)",
                "residual": "share of the map's variance over the grid not reconstructed "
                "(exact for the stored frequencies; float16 rounding of the coefficients adds "
                "< 1e-3 relative)",
            },
        )
