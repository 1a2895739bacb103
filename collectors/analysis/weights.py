"""Generic weight-space analyzers (any model): norms per tensor and effective dimensionality.

Effective dimensionality, per weight matrix, from its singular values s_1 >= s_2 >= ... >= s_r
(r = min of the matrix's dimensions), with lambda_i = s_i^2:

- participation ratio PR = (sum lambda_i)^2 / sum lambda_i^2 (1 .. r; r when all are equal);
- effective rank = number of s_i > 1% of s_1;
- spectral gap (top-k vs rest) = mean(s_1..s_k) / mean(s_{k+1}..s_r), k = `top_k` (capped at
  r - 1), and top-k energy = sum_{i<=k} lambda_i / sum lambda_i;
- largest consecutive gap = max s_i / s_{i+1} over i < effective rank, and the i where it is.

Attention tensors of the TransformerLens layout are combined over heads first: W_Q, W_K, W_V
[heads, d_model, d_head] as d_model x (heads * d_head), W_O [heads, d_head, d_model] as
(heads * d_head) x d_model; other tensors of 3+ dimensions are flattened to shape[0] x rest.
Spectra are computed for a whole batch of checkpoints at once (batched eigen-solves of the
smaller Gram matrix in float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, EpochData, RunInfo
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = ["EffectiveDim", "WeightNorms", "matrix_view", "spectrum_metrics", "weight_matrices"]

_HEAD_IN = ("W_Q", "W_K", "W_V")
_HEAD_OUT = ("W_O",)


def _is_float(shape_or_array: Any) -> bool:
    return np.asarray(shape_or_array).dtype.kind == "f"


def matrix_view(name: str, arr: np.ndarray) -> np.ndarray | None:
    """The 2-D matrix a tensor stands for (see module doc), or None for vectors and scalars."""
    leaf = name.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
    if arr.ndim == 3 and leaf in _HEAD_IN:
        h, d, e = arr.shape
        return arr.transpose(1, 0, 2).reshape(d, h * e)
    if arr.ndim == 3 and leaf in _HEAD_OUT:
        h, e, d = arr.shape
        return arr.reshape(h * e, d)
    if arr.ndim == 2:
        return arr
    if arr.ndim > 2:
        return arr.reshape(arr.shape[0], -1)
    return None


def weight_matrices(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every weight tensor of a state dict that is a matrix (in the sense of `matrix_view`)."""
    out = {}
    for name, arr in weights.items():
        m = matrix_view(name, np.asarray(arr)) if _is_float(arr) else None
        if m is not None and min(m.shape) >= 2:
            out[name] = m
    return out


def singular_values(stack: np.ndarray) -> np.ndarray:
    """Singular values, descending, of a stack of matrices [B, m, n] -> [B, min(m, n)]."""
    t = torch.from_numpy(np.ascontiguousarray(stack)).to(torch.float64)
    if t.shape[1] > t.shape[2]:
        t = t.transpose(1, 2)
    gram = t @ t.transpose(1, 2)
    lam = torch.linalg.eigvalsh(gram).flip(-1).clamp(min=0)
    return lam.sqrt().numpy()


def spectrum_metrics(s: np.ndarray, top_k: int) -> dict[str, np.ndarray]:
    """Metrics of singular values s [B, r] (descending): see module doc."""
    s = np.asarray(s, dtype=np.float64)
    lam = s**2
    total = lam.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pr = np.where(total > 0, total**2 / (lam**2).sum(axis=1), np.nan)
        eff = (s > 0.01 * s[:, :1]).sum(axis=1)
        r = s.shape[1]
        k = max(1, min(top_k, r - 1))
        gap = s[:, :k].mean(axis=1) / s[:, k:].mean(axis=1)
        energy = np.where(total > 0, lam[:, :k].sum(axis=1) / total, np.nan)
        ratios = s[:, :-1] / s[:, 1:]
    # Only gaps inside the numerically significant part of the spectrum count.
    valid = np.arange(r - 1)[None, :] < (eff[:, None] - 1)
    ratios = np.where(valid & np.isfinite(ratios), ratios, -np.inf)
    idx = ratios.argmax(axis=1)
    best = ratios[np.arange(len(s)), idx]
    has = np.isfinite(best)
    return {
        "participation_ratio": pr,
        "effective_rank": eff.astype(np.int32),
        "spectral_gap": np.where(np.isfinite(gap), gap, np.nan),
        "top_k_energy": energy,
        "max_gap_ratio": np.where(has, best, np.nan),
        "max_gap_index": np.where(has, idx + 1, 0).astype(np.int32),
    }


class WeightNorms(Analyzer):
    """Frobenius norm of every floating-point tensor, and the global norm."""

    name = "weight_norms"
    version = "1"
    consumes = "weights"
    description = "Frobenius norm of each weight tensor and of all of them together."

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.tensors = list(info.shapes)

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        norms = np.zeros((len(batch), len(self.tensors)), dtype=np.float64)
        for i, d in enumerate(batch):
            for j, name in enumerate(self.tensors):
                x = torch.from_numpy(np.ascontiguousarray(d.weights[name])).to(torch.float64)
                norms[i, j] = float(torch.linalg.vector_norm(x))
        total = np.sqrt((norms**2).sum(axis=1))
        return {"norms": norms.astype(np.float32), "total": total.astype(np.float32)}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"tensors": np.asarray(self.tensors, dtype=object)}, {}


class EffectiveDim(Analyzer):
    """Singular-value spectrum metrics of every weight matrix (see module doc)."""

    name = "effective_dim"
    version = "1"
    consumes = "weights"
    description = (
        "Per weight matrix: singular values, participation ratio, effective rank "
        "(s > 1% of s_max), spectral gap top-k vs rest, largest consecutive gap."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"top_k": 10}

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        dummy = {n: np.zeros(s, dtype=np.float32) for n, s in info.shapes.items()}
        mats = weight_matrices(dummy)
        self.matrices = list(mats)
        self.ranks = [min(m.shape) for m in mats.values()]

    def applies(self, info: RunInfo) -> str | None:
        dummy = {n: np.zeros(s, dtype=np.float32) for n, s in info.shapes.items()}
        return None if weight_matrices(dummy) else "the model has no weight matrices"

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        n, width = len(batch), max(self.ranks)
        spectra = np.full((n, len(self.matrices), width), np.nan, dtype=np.float32)
        metrics: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.matrices):
            stack = np.stack([matrix_view(name, np.asarray(d.weights[name])) for d in batch])
            s = singular_values(stack)
            spectra[:, j, : s.shape[1]] = s
            for key, value in spectrum_metrics(s, self.params["top_k"]).items():
                metrics.setdefault(key, np.zeros((n, len(self.matrices)), dtype=value.dtype))[
                    :, j
                ] = value
        out = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in metrics.items()}
        out["singular_values"] = spectra
        return out

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {
                "matrices": np.asarray(self.matrices, dtype=object),
                "ranks": np.asarray(self.ranks, dtype=np.int64),
            },
            {"top_k": self.params["top_k"]},
        )
