"""Fourier analysis of the modular-addition model (Nanda et al. 2023).

The real Fourier basis over residues 0..p-1 has a constant row, then for each frequency k a
cos and a sin row (orthonormal). A map over the (a, b) grid is decomposed as C = F A F^T; the
share of its variance carried by frequency k is the energy of the coefficients whose row and
column are each the constant or a k-component (the constant-constant term, the mean, excluded).

Analyzers here: `fourier_weights` (W_E and W_U norms per frequency, key frequencies, Gini
coefficient, cos/sin balance) and `neuron_freq` (per-neuron fraction of variance explained by
each frequency, dominant frequency, clusters).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, EpochData, RunInfo
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = [
    "FourierWeights",
    "NeuronFreq",
    "centre",
    "centre_grid",
    "class_energy",
    "frequency_energy",
    "frequency_fractions",
    "fourier_basis",
    "freq_fractions",
    "freq_norms",
    "fractions_from_energy",
    "gini",
    "grid_fourier",
    "low_class_energy",
    "map_spectra",
    "n_freqs",
    "sum_spectra",
]


def n_freqs(p: int) -> int:
    """Number of non-zero frequencies k = 1 .. p // 2."""
    return p // 2


@cache
def _basis(p: int) -> np.ndarray:
    x = np.arange(p)
    rows = [np.ones(p)]
    for k in range(1, n_freqs(p) + 1):
        rows.append(np.cos(2 * np.pi * k * x / p))
        if 2 * k < p:  # for even p the Nyquist frequency has no sin component
            rows.append(np.sin(2 * np.pi * k * x / p))
    basis = np.stack(rows)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    basis.setflags(write=False)
    return basis


def fourier_basis(p: int) -> np.ndarray:
    """Orthonormal real Fourier basis [p, p]: rows const, cos 1, sin 1, cos 2, sin 2, ..."""
    return _basis(p)


@cache
def _row_freq(p: int) -> np.ndarray:
    """Frequency of each basis row (0 for the constant)."""
    freq = np.zeros(p, dtype=np.int64)
    row = 1
    for k in range(1, n_freqs(p) + 1):
        freq[row] = k
        row += 1
        if 2 * k < p:
            freq[row] = k
            row += 1
    return freq


def _cos_sin_rows(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row index of cos k and of sin k (-1 when absent) for k = 1 .. p // 2."""
    cos_rows, sin_rows = [], []
    row = 1
    for k in range(1, n_freqs(p) + 1):
        cos_rows.append(row)
        row += 1
        if 2 * k < p:
            sin_rows.append(row)
            row += 1
        else:
            sin_rows.append(-1)
    return np.asarray(cos_rows), np.asarray(sin_rows)


def freq_norms(coeffs: np.ndarray) -> dict[str, np.ndarray]:
    """Norms per frequency of Fourier coefficients `coeffs` [p, ...] (rows = basis components).

    Returns `basis` [p] (norm of each component row), `cos`, `sin`, `freq` [p // 2]
    (freq = sqrt(cos^2 + sin^2)).
    """
    p = coeffs.shape[0]
    flat = coeffs.reshape(p, -1).astype(np.float64)
    basis = np.sqrt((flat**2).sum(axis=1))
    cos_rows, sin_rows = _cos_sin_rows(p)
    cos = basis[cos_rows]
    sin = np.where(sin_rows >= 0, basis[np.maximum(sin_rows, 0)], 0.0)
    return {"basis": basis, "cos": cos, "sin": sin, "freq": np.sqrt(cos**2 + sin**2)}


def fourier_transform(W: np.ndarray, p: int) -> np.ndarray:
    """F @ W for a matrix W [p, d] whose rows are residues (float64, computed with torch)."""
    F = _torch_basis(p, torch.float64)
    return (F @ torch.from_numpy(np.ascontiguousarray(W)).to(torch.float64)).numpy()


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 = all equal, -> 1 = all mass on one value."""
    x = np.sort(np.abs(np.asarray(values, dtype=np.float64).ravel()))
    n, total = x.size, x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


@cache
def _torch_basis(p: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(fourier_basis(p), dtype=dtype)


def grid_fourier(maps: torch.Tensor, p: int) -> torch.Tensor:
    """2-D real Fourier coefficients F A F^T of grid-first maps [p, p, n] (a, b, map) -> [p, p, n]."""
    F = _torch_basis(p, maps.dtype)
    n = maps.shape[2]
    half = (F @ maps.reshape(p, p * n)).reshape(p, p, n)  # over a
    return torch.matmul(F, half)  # over b, batched over the a-coefficient


def _pair_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum basis rows by frequency along `dim`: [const, cos 1 + sin 1, cos 2 + sin 2, ...]."""
    x = x.movedim(dim, 0)
    p = x.shape[0]
    if p % 2 == 0:  # the Nyquist frequency has a cos row only: pad a zero "sin" row
        x = torch.cat([x, torch.zeros_like(x[:1])])
    out = torch.cat([x[:1], x[1::2] + x[2::2]])
    return out.movedim(0, dim)


def class_energy(coeffs: torch.Tensor, p: int) -> torch.Tensor:
    """Energy of the coefficients [p, p, n] summed by (row frequency, column frequency):
    [p // 2 + 1, p // 2 + 1, n] float64, index 0 = the constant component."""
    energy = coeffs.to(torch.float32).square()
    return _pair_sum(_pair_sum(energy, 0), 1).to(torch.float64)


def fractions_from_energy(q: torch.Tensor) -> np.ndarray:
    """[n, p // 2] variance share of each frequency k: energy of the coefficient pairs within
    {const, cos k, sin k}^2 except (const, const), over all energy except (const, const)."""
    dc = q[0, 0]
    total = q.sum(dim=(0, 1)) - dc
    k = torch.arange(1, q.shape[0])
    per_freq = q[0, k] + q[k, 0] + q[k, k]  # [n_freq, n]
    flat = total <= 1e-12 * (total + dc)  # a constant map has no variance to explain
    frac = torch.where(flat, 0.0, per_freq / total.clamp(min=1e-300))
    return frac.T.numpy()


def freq_fractions(maps: torch.Tensor, p: int) -> np.ndarray:
    """Fraction of each map's variance explained by each frequency, for maps [n, p, p] -> [n, p // 2].

    Frequency k explains the energy of the 2-D Fourier coefficients (i, j) with i, j in
    {const, cos k, sin k}, except (const, const); the total excludes (const, const) (the
    mean). A constant map gives zeros.
    """
    grid_first = maps.to(torch.float32).permute(1, 2, 0).contiguous()
    return fractions_from_energy(class_energy(grid_fourier(grid_first, p), p))


def key_mask(freq_norm: np.ndarray, factor: float, max_key: int) -> np.ndarray:
    """Key frequencies: squared-norm share >= factor x uniform share, at most `max_key` largest."""
    energy = freq_norm**2
    total = energy.sum()
    mask = np.zeros(freq_norm.shape, dtype=bool)
    if total <= 0:
        return mask
    share = energy / total
    order = np.argsort(-share, kind="stable")[:max_key]
    chosen = order[share[order] >= factor / len(share)]
    mask[chosen] = True
    return mask


class FourierWeights(Analyzer):
    """W_E and W_U in the Fourier basis: norms per frequency, key frequencies, Gini, cos/sin."""

    name = "fourier_weights"
    version = "1"
    consumes = "weights"
    modular = True
    description = (
        "Fourier norms of the embedding (W_E, '=' row excluded) and unembedding (W_U) "
        "per frequency; key frequencies; Gini coefficient; cos/sin balance."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"key_factor": 3.0, "max_key": 10}

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.p = int(info.p)

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        p = self.p
        rows: dict[str, list[Any]] = {}
        for d in batch:
            mats = {"embed": d.weights["W_E"][:p], "unembed": np.asarray(d.weights["W_U"]).T}
            for prefix, W in mats.items():
                norms = freq_norms(fourier_transform(W, p))
                mask = key_mask(norms["freq"], self.params["key_factor"], self.params["max_key"])
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = norms["cos"] / norms["sin"]
                    lo = np.minimum(norms["cos"], norms["sin"]) / np.maximum(
                        norms["cos"], norms["sin"]
                    )
                values = {
                    "basis_norms": norms["basis"].astype(np.float32),
                    "freq_norms": norms["freq"].astype(np.float32),
                    "cos_norms": norms["cos"].astype(np.float32),
                    "sin_norms": norms["sin"].astype(np.float32),
                    "cos_sin_ratio": ratio.astype(np.float32),
                    "key_mask": mask,
                    "gini": np.float32(gini(norms["freq"])),
                    "key_balance": np.float32(np.nanmin(lo[mask]) if mask.any() else np.nan),
                }
                for key, value in values.items():
                    rows.setdefault(f"{prefix}_{key}", []).append(value)
        return {k: np.stack(v) for k, v in rows.items()}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"frequencies": np.arange(1, n_freqs(self.p) + 1)}, {"p": self.p}


class NeuronFreq(Analyzer):
    """Per MLP neuron (final position): variance share of each frequency over the p x p grid."""

    name = "neuron_freq"
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "For each MLP neuron at the final position, the fraction of its activation "
        "variance over the p x p grid explained by each frequency; dominant frequency; "
        "clusters (fraction >= threshold)."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"threshold": 0.85}

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.p = int(info.p)

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        rows: dict[str, list[Any]] = {}
        for d in batch:
            frac = neuron_fractions(d)
            dominant = frac.argmax(axis=1)
            top = frac[np.arange(len(frac)), dominant]
            clustered = top >= self.params["threshold"]
            sizes = np.bincount(dominant[clustered], minlength=frac.shape[1])
            values = {
                "frac_explained": frac.astype(np.float16),
                "dominant_freq": (dominant + 1).astype(np.int16),
                "max_frac": top.astype(np.float32),
                "clustered": clustered,
                "cluster_sizes": sizes.astype(np.int32),
                "frac_clustered": np.float32(clustered.mean() if clustered.size else math.nan),
                "act_variance": neuron_variance(d).astype(np.float32),
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(value)
        return {k: np.stack(v) for k, v in rows.items()}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {"frequencies": np.arange(1, n_freqs(self.p) + 1)},
            {"threshold": self.params["threshold"], "p": self.p},
        )


# -- fast per-frequency energies --------------------------------------------------------------------
# The fractions need only three classes per frequency: (const, k), (k, const) and (k, k). The
# first two are the 1-D spectra of the maps' column and row sums. For (k, k), the complex
# coefficients A^[+-k, +-k] are the 1-D DFTs of the sums along the wrapped diagonals a + b = s
# and a - b = t (mod p): O(p^2) additions per map instead of the O(p^3) full 2-D transform.
@cache
def _wrap_index(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row-major grid row a * p + b: (a + b) mod p and (a - b) mod p."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return (a + b) % p, (a - b) % p


def centre(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(maps minus their means [p*p, n] float32, mean [n], variance [n] float64) of maps given
    as [p*p, n]. Spectra of the centred maps keep their precision in float32 when a map's
    offset is far larger than its variation (no E[x^2] - E[x]^2 cancellation)."""
    x = flat.to(torch.float32)
    mean = x.mean(dim=0)
    centred = x - mean
    var = torch.linalg.vecdot(centred, centred, dim=0) / x.shape[0]  # no [p*p, n] temporary
    return centred, mean.to(torch.float64), var.to(torch.float64)


def centre_grid(grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`centre` for grid-first maps [H, W, n]: (centred maps [H, W, n], mean, variance)."""
    centred, mean, var = centre(grid.reshape(-1, grid.shape[2]))
    return centred.view(grid.shape), mean, var


def sum_spectra(flat: torch.Tensor, p: int) -> torch.Tensor:
    """[p, 4, n] float64 coefficients, in the orthonormal real basis (rows const, cos 1, sin 1,
    ...), of four 1-D sums of maps [p*p, n] (rows a * p + b): over a (a function of b), over b
    (of a), along a + b = s and along a - b = t (mod p). Dividing a coefficient by p gives the
    map's projection onto that basis function of b, a, a + b or a - b (`neuron_atlas`)."""
    x = flat.to(torch.float32)
    n = x.shape[1]
    grid = x.view(p, p, n)
    diag, anti = _wrap_index(p)
    sums = torch.stack(
        [
            grid.sum(dim=0),  # over a: a function of b -> (const, k)
            grid.sum(dim=1),  # over b: a function of a -> (k, const)
            x.new_zeros(p, n).index_add_(0, diag, x),
            x.new_zeros(p, n).index_add_(0, anti, x),
        ]
    )  # [4, p, n]
    v = sums.permute(1, 0, 2).reshape(p, 4 * n)
    return (_torch_basis(p, torch.float64) @ v.to(torch.float64)).view(p, 4, n)


def frequency_energy(flat: torch.Tensor, p: int, spectra: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """[3, p // 2, n] energies of the classes (const, k), (k, const), (k, k) of maps [p*p, n]
    (rows a * p + b), equal to those of the full transform `class_energy(grid_fourier(...))`.
    Pass centred maps (`centre`) for float32 precision on maps with a large offset;
    `spectra`: their `sum_spectra`, when already computed."""
    c = sum_spectra(flat, p) if spectra is None else spectra
    n = c.shape[2]
    e = _pair_sum(c.reshape(p, 4 * n).square(), 0)[1:].view(-1, 4, n) / p
    if p % 2 == 0:  # at the Nyquist frequency a + b and a - b give the same coefficient
        e[-1, 3] = 0.0
    return torch.stack([e[:, 0], e[:, 1], e[:, 2] + e[:, 3]])


def frequency_fractions(energy: torch.Tensor, var: torch.Tensor, mean: torch.Tensor, p: int
                        ) -> np.ndarray:
    """[n, p // 2] variance share per frequency from `frequency_energy` and `centre`
    (zeros for a constant map)."""
    total = var * (p * p)  # all energy but the mean's (Parseval)
    flat = var <= 1e-12 * (var + mean.square())
    frac = torch.where(flat, 0.0, energy.sum(dim=0) / total.clamp(min=1e-300))
    return frac.T.numpy()


def low_class_energy(grid: torch.Tensor, p: int, max_freq: int) -> torch.Tensor:
    """Energy by frequency class (ka, kb), both <= `max_freq`, of grid-first maps [p, p, n]:
    [max_freq + 1, max_freq + 1, n] float64 (index 0 = constant), the low corner of
    `class_energy`, from the basis rows of those frequencies only (centre the maps first, see
    `centre`, when their offset is large)."""
    rows = np.nonzero(_row_freq(p) <= max_freq)[0]  # const, cos 1, sin 1, ... (leading rows)
    F = _torch_basis(p, torch.float32)[: len(rows)]
    n = grid.shape[2]
    half = (F @ grid.to(torch.float32).reshape(p, p * n)).reshape(len(rows), p, n)  # over a
    c = torch.matmul(F, half)  # over b
    return _pair_sum(_pair_sum(c.square_(), 0), 1).to(torch.float64)


# -- shared per-epoch derived quantities (computed once per checkpoint, used by several) -----------
# Maps are kept grid-first, [p (a), p (b), n], which is how the probe's rows are laid out.
def neuron_grid(d: EpochData) -> torch.Tensor:
    """Final-position MLP activations as grid-first maps [p, p, d_mlp] (a view, no copy)."""
    p = d.probe.p
    return d.get(
        "neuron_grid", lambda: d.cache["mlp_post"].detach().to(torch.float32).reshape(p, p, -1)
    )


def head_grid(d: EpochData) -> torch.Tensor:
    """Attention from the '=' query to the `a` token as grid-first maps [p, p, heads]."""
    p = d.probe.p
    return d.get(
        "head_grid",
        lambda: d.cache["pattern"][:, :, 0].detach().to(torch.float32).reshape(p, p, -1),
    )


_GRIDS = {"neuron": neuron_grid, "head": head_grid}


def centred_maps(d: EpochData, kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centred grid-first maps [p, p, n], mean [n], variance [n]) of every `kind` ("neuron"
    or "head") map of epoch `d` (see `centre`)."""

    return d.get(f"{kind}_centred", lambda: centre_grid(_GRIDS[kind](d)))


def map_fractions(d: EpochData, kind: str) -> np.ndarray:
    """[n, p // 2] fraction of variance explained per frequency of every `kind` map (float64)."""

    def make() -> np.ndarray:
        centred, mean, var = centred_maps(d, kind)
        energy = frequency_energy(
            centred.reshape(-1, centred.shape[2]), d.probe.p, map_spectra(d, kind)
        )
        return frequency_fractions(energy, var, mean, d.probe.p)

    return d.get(f"{kind}_frac", make)


def map_spectra(d: EpochData, kind: str) -> torch.Tensor:
    """`sum_spectra` of the centred `kind` maps of epoch `d` [p, 4, n] (shared: the frequency
    shares and the compact neuron maps both read it)."""

    def make() -> torch.Tensor:
        centred = centred_maps(d, kind)[0]
        return sum_spectra(centred.reshape(-1, centred.shape[2]), d.probe.p)

    return d.get(f"{kind}_spectra", make)


def neuron_fractions(d: EpochData) -> np.ndarray:
    """[d_mlp, p // 2] fraction of variance explained per frequency (float64)."""
    return map_fractions(d, "neuron")


def neuron_variance(d: EpochData) -> np.ndarray:
    """Variance of each neuron's activation over the grid [d_mlp]."""
    return centred_maps(d, "neuron")[2].numpy()
