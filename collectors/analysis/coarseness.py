"""Coarseness of 2-D maps (research notes 2026-02-02, "Quantitative Metrics for Structural Analysis").

Three complementary numbers per map:

- `fft_low`: share of the map's spectral power (DC removed) inside a disc of radius
  floor(radius_frac * min(H, W)) around zero frequency. High = large-scale structure.
- `var_kept`: variance of the map after bilinear down-sampling to `down_size` x `down_size` and
  back, divided by the original variance. High = structure survives aggressive blurring.
- `gradient`: (mean |horizontal difference| + mean |vertical difference|) / 2. High = many
  edges / much local intensity variation (in the map's own units).

`map_coarseness` works on any 2-D map (numpy or torch); the `coarseness` analyzer applies it to
every MLP neuron's activation map and every head's attention map over the p x p probe grid,
sharing each map's mean and variance with the frequency analyzers of that epoch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, EpochData, RunInfo
from epochscope.collectors.analysis.fourier import (
    centre_grid,
    centred_maps,
    head_grid,
    low_class_energy,
    neuron_grid,
)
from epochscope.optional import LazyModule

torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")

__all__ = [
    "Coarseness",
    "coarseness_batch",
    "fft_low_ratio",
    "gradient_magnitude",
    "map_coarseness",
    "variance_kept",
]

RADIUS_FRAC = 0.125
DOWN_SIZE = 14
_FLAT = 1e-12  # a map whose variation is below this share of its energy is constant (NaN)


def _as_batch(maps: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(maps) if not isinstance(maps, torch.Tensor) else maps)
    t = t.detach().to(torch.float64)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"expected a 2-D map or a batch [n, H, W], got shape {tuple(t.shape)}")
    return t


def _radius(h: int, w: int, radius_frac: float) -> int:
    return int(math.floor(radius_frac * min(h, w)))


def fft_low_ratio(maps: Any, radius_frac: float = RADIUS_FRAC) -> np.ndarray:
    """Low-frequency share of spectral power with the DC term removed, per map ([n] or scalar)."""
    t = _as_batch(maps)
    n, h, w = t.shape
    power = torch.fft.fft2(t).abs() ** 2
    dc = power[:, 0, 0].clone()
    power[:, 0, 0] = 0.0
    fy = torch.fft.fftfreq(h, d=1.0 / h)[:, None]
    fx = torch.fft.fftfreq(w, d=1.0 / w)[None, :]
    mask = fy**2 + fx**2 <= _radius(h, w, radius_frac) ** 2
    total = power.sum(dim=(1, 2))
    low = (power * mask).sum(dim=(1, 2))
    out = torch.where(total > _FLAT * (total + dc), low / total.clamp(min=1e-300), torch.nan)
    return out.numpy()


def variance_kept(maps: Any, down_size: int = DOWN_SIZE) -> np.ndarray:
    """var(bilinear up(down(map))) / var(map), per map (NaN for a constant map)."""
    t = _as_batch(maps)
    _, h, w = t.shape
    x = t[:, None]  # float64: a large offset must not swamp the variation
    small = F.interpolate(x, size=(down_size, down_size), mode="bilinear", align_corners=False)
    back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    var = t.var(dim=(1, 2), unbiased=False)
    var = torch.where(var > _FLAT * (var + t.mean(dim=(1, 2)) ** 2), var, 0.0)
    kept = back.var(dim=(1, 2), unbiased=False)
    return torch.where(var > 0, kept / var.clamp(min=1e-300), torch.nan).numpy()


def gradient_magnitude(maps: Any) -> np.ndarray:
    """(mean |dx| + mean |dy|) / 2 per map, dx along columns and dy along rows."""
    t = _as_batch(maps)
    dx = (t[:, :, 1:] - t[:, :, :-1]).abs().mean(dim=(1, 2))
    dy = (t[:, 1:, :] - t[:, :-1, :]).abs().mean(dim=(1, 2))
    return ((dx + dy) / 2).numpy()


def coarseness_batch(
    maps: Any, *, radius_frac: float = RADIUS_FRAC, down_size: int = DOWN_SIZE
) -> dict[str, np.ndarray]:
    """The three metrics for a batch of maps [n, H, W]: {fft_low, var_kept, gradient} of shape [n]."""
    return {
        "fft_low": fft_low_ratio(maps, radius_frac),
        "var_kept": variance_kept(maps, down_size),
        "gradient": gradient_magnitude(maps),
    }


def map_coarseness(
    map2d: Any, *, radius_frac: float = RADIUS_FRAC, down_size: int = DOWN_SIZE
) -> dict[str, float]:
    """The three coarseness metrics of one 2-D map, as floats."""
    out = coarseness_batch(map2d, radius_frac=radius_frac, down_size=down_size)
    return {k: float(v[0]) for k, v in out.items()}


def fft_low_grid(
    grid: torch.Tensor,
    p: int,
    radius_frac: float = RADIUS_FRAC,
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> np.ndarray:
    """`fft_low_ratio` of square grid-first maps [p, p, n] (same value), from the low
    frequencies of their real Fourier transform only.

    The cos/sin rows of frequency k span the same space as the complex exponentials +-k, so by
    Parseval the power at signed frequencies (+-ka, +-kb) equals the energy of the real
    coefficients of classes (ka, kb): the disc mask applies to sqrt(ka^2 + kb^2), and only
    classes up to the disc's radius are transformed. The total (all power but DC) is p^2 times
    the variance. `stats`: (centred maps, mean, variance), when already known (`centre_grid`).
    """
    centred, mean, var = stats if stats is not None else centre_grid(grid)
    radius = _radius(p, p, radius_frac)
    q = low_class_energy(centred, p, min(radius, p // 2))
    k = torch.arange(q.shape[0], dtype=torch.float64)
    mask = (k[:, None] ** 2 + k[None, :] ** 2) <= radius**2
    mask[0, 0] = False
    low = (q * mask[:, :, None]).sum(dim=(0, 1))
    total = var * (p * p)
    flat = var <= _FLAT * (var + mean.square())
    return torch.where(flat, torch.nan, low / total.clamp(min=1e-300)).numpy()


def _interp_matrix(src: int, dst: int) -> torch.Tensor:
    """[dst, src] matrix of 1-D linear resampling exactly as F.interpolate(align_corners=False)."""
    eye = torch.eye(src, dtype=torch.float64)[None]  # [1, src(channels), src(length)]
    return F.interpolate(eye, size=dst, mode="linear", align_corners=False)[0].T.contiguous()


def variance_kept_grid(
    grid: torch.Tensor,
    down_size: int = DOWN_SIZE,
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> np.ndarray:
    """`variance_kept` of square grid-first maps [p, p, n] without materialising the resampled maps.

    Bilinear resampling is separable: up(down(A)) = U D A D^T U^T with D [s, p] and U [p, s]
    the 1-D linear resampling matrices, so with S = D (A - mean) D^T (s x s per map) and
    G = U^T U, u = U^T 1: sum of squares = sum((G S G) * S), sum = u^T S u. `stats`:
    (centred maps, mean, variance), when already known (`centre_grid`).
    """
    p, n = grid.shape[0], grid.shape[2]
    D = _interp_matrix(p, down_size)
    U = _interp_matrix(down_size, p)
    centred, mean, var = stats if stats is not None else centre_grid(grid)
    var = torch.where(var > _FLAT * (var + mean.square()), var, 0.0)
    half = (D.to(torch.float32) @ centred.reshape(p, p * n)).reshape(down_size, p, n)
    S = torch.matmul(D, half.to(torch.float64))  # [s, s, n], centred: D's rows sum to 1
    G = U.T @ U
    u = U.sum(dim=0)
    GSG = torch.einsum("ab,bcn,cd->adn", G, S, G)
    sumsq = (GSG * S).sum(dim=(0, 1))
    total = torch.einsum("a,abn,b->n", u, S, u)
    kept = sumsq / (p * p) - (total / (p * p)) ** 2
    return torch.where(var > 0, kept / var.clamp(min=1e-300), torch.nan).numpy()


def gradient_grid(grid: torch.Tensor, rows: int = 8) -> np.ndarray:
    """`gradient_magnitude` of grid-first maps [H, W, n] (rows a, columns b).

    Works `rows` rows at a time so the differences stay in cache (the maps are ~26 MB).
    """
    h, w, n = grid.shape
    g = grid.to(torch.float32)
    sx = torch.zeros(n, dtype=torch.float64)
    sy = torch.zeros(n, dtype=torch.float64)
    for start in range(0, h, rows):
        stop = min(start + rows, h)
        block = g[start:stop]
        sx += torch.sub(block[:, 1:], block[:, :-1]).abs_().reshape(-1, n).sum(0).to(torch.float64)
        nxt = g[start + 1 : min(stop + 1, h)]  # the row below each row of the block
        if len(nxt):
            sy += torch.sub(nxt, block[: len(nxt)]).abs_().reshape(-1, n).sum(0).to(torch.float64)
    return ((sx / (h * (w - 1)) + sy / ((h - 1) * w)) / 2).numpy()


class Coarseness(Analyzer):
    """Coarseness of every neuron activation map and every head's attention map, per epoch."""

    name = "coarseness"
    # 2: var_kept computed on mean-centred maps; version 1 lost up to ~4e-4 of it to float32
    # cancellation on near-constant attention maps
    version = "2"
    consumes = "activations"
    modular = True
    description = (
        "FFT low-frequency energy share (DC removed), variance kept by bilinear "
        "down/up-sampling, and mean gradient magnitude of each MLP neuron's and each "
        "attention head's map over the p x p grid."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"radius_frac": RADIUS_FRAC, "down_size": DOWN_SIZE}

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.p = int(info.p)

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        rows: dict[str, list[np.ndarray]] = {}
        r, s = self.params["radius_frac"], self.params["down_size"]
        for d in batch:
            for prefix, grid in (("neuron", neuron_grid(d)), ("head", head_grid(d))):
                stats = centred_maps(d, prefix)  # shared with the frequency analyzers
                values = {
                    "fft_low": fft_low_grid(grid, self.p, r, stats),
                    "var_kept": variance_kept_grid(grid, s, stats),
                    "gradient": gradient_grid(grid),
                }
                for key, value in values.items():
                    rows.setdefault(f"{prefix}_{key}", []).append(value.astype(np.float32))
        return {k: np.stack(v) for k, v in rows.items()}
