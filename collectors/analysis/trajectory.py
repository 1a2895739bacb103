"""The parameter trajectory: PCA over checkpoints, velocity, curvature, PC2/PC3 self-intersection.

Each checkpoint's weights, flattened into one vector x_e, is a point of the trajectory. The
`trajectory` analyzer sees all of them at once (it is recomputed whenever the set of
checkpoints changes, since the PCA basis depends on all of them):

- PCA: centred principal components of {x_e} (from the N x N Gram matrix); per epoch the
  coordinates on PC1-3 (`pca`), in the summary the explained-variance ratios (top 10). Each
  component's sign makes the run move in its positive direction (last minus first >= 0).
- velocity: |x_e - x_prev| / (e - prev), parameter distance per epoch between consecutive
  checkpoints (`step_distance` is the distance itself). NaN at the first checkpoint.
- curvature: the turning angle between consecutive displacements at each interior checkpoint
  (`turn_angle`, radians, 0 = straight on, pi = reversal; independent of checkpoint spacing),
  and `curvature` = angle / mean length of the two displacements. `pca_turn_angle` is the
  same angle in PC1-3 space.
- self-intersection: whether the path of (PC2, PC3) crosses itself (research notes
  2026-02-11: a closed loop in all normal runs, open in the anomalous one); every crossing of
  two non-adjacent segments is listed (`intersections`: the start epochs of both segments).
- loop measures (`loop_measures`, scalars `loop_area`, `excursion`, `path_length`): the
  largest loop's area / L^2 and the farthest distance from the start / L of the PC2/PC3 path
  (L its length), free of scale, rotation and position, so paths from different PCA bases
  compare (the comparison page's columns).

`shared_pca_basis` fits one basis over the checkpoints of several bundles so their
trajectories can be compared on the same axes.

Models too big to hold every checkpoint in memory are sketched: each row is compressed with a
fixed CountSketch to `sketch_dim` coordinates, which preserves inner products in expectation;
the artifact then says `approximate: true`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import AnalysisError, Analyzer, Output, RunInfo

__all__ = [
    "RowStore",
    "SharedPCA",
    "Trajectory",
    "loop_measures",
    "pca_from_rows",
    "self_intersections",
    "shared_pca_basis",
    "turn_angles",
]

N_COMPONENTS = 3
MAX_ROW_BYTES = 1536 * 1024 * 1024
SKETCH_DIM = 1 << 16
_CHUNK = 1 << 16


class RowStore:
    """Collects flattened checkpoints as float32 rows, sketching them when they would not fit."""

    def __init__(
        self,
        dim: int,
        expected_rows: int,
        *,
        max_bytes: int = MAX_ROW_BYTES,
        sketch_dim: int = SKETCH_DIM,
        seed: int = 0,
    ):
        self.dim = dim
        self.approximate = dim * max(expected_rows, 1) * 4 > max_bytes and dim > sketch_dim
        self.width = sketch_dim if self.approximate else dim
        if self.approximate:
            rng = np.random.default_rng(seed)
            self._bucket = rng.integers(0, sketch_dim, size=dim, dtype=np.int64)
            self._sign = rng.choice(np.asarray([-1.0, 1.0], dtype=np.float32), size=dim)
        self.epochs: list[int] = []
        self._rows: list[np.ndarray] = []

    def add(self, epoch: int, row: np.ndarray) -> None:
        row = np.asarray(row, dtype=np.float32).ravel()
        if row.size != self.dim:
            raise AnalysisError(
                f"checkpoint at epoch {epoch} has {row.size} parameters, the others {self.dim}"
            )
        if self.approximate:
            row = np.bincount(self._bucket, weights=row * self._sign, minlength=self.width).astype(
                np.float32
            )
        self.epochs.append(int(epoch))
        self._rows.append(row)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(epochs sorted, rows [N, width] in that order)."""
        order = np.argsort(self.epochs, kind="stable")
        epochs = np.asarray(self.epochs, dtype=np.int64)[order]
        rows = (
            np.stack([self._rows[i] for i in order])
            if self._rows
            else np.zeros((0, self.width), np.float32)
        )
        return epochs, rows


def _centered_gram(rows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(X - mean)(X - mean)^T, float32 products accumulated in float64 chunk by chunk."""
    import torch

    n, d = rows.shape
    gram = torch.zeros((n, n), dtype=torch.float64)
    x = torch.from_numpy(rows)
    m = torch.from_numpy(mean.astype(np.float32))
    for start in range(0, d, _CHUNK):
        block = x[:, start : start + _CHUNK] - m[start : start + _CHUNK]
        gram += (block @ block.T).to(torch.float64)
    return gram.numpy()


@dataclass
class PCAResult:
    mean: np.ndarray  # [D]
    coords: np.ndarray  # [N, k]
    eigvecs: np.ndarray  # [N, k] of the Gram matrix
    eigvals: np.ndarray  # [k]
    explained_ratio: np.ndarray  # [min(N, 10)]


def pca_from_rows(rows: np.ndarray, n_components: int = N_COMPONENTS) -> PCAResult:
    """Centred PCA of the rows [N, D] via the N x N Gram matrix (cheap when N << D)."""
    n = rows.shape[0]
    mean = rows.astype(np.float64).mean(axis=0) if n else np.zeros(rows.shape[1])
    if n < 2:
        return PCAResult(
            mean, np.full((n, n_components), np.nan), np.zeros((n, 0)), np.zeros(0), np.zeros(0)
        )
    gram = _centered_gram(rows, mean)
    lam, vec = np.linalg.eigh(gram)
    lam, vec = lam[::-1].clip(min=0), vec[:, ::-1]
    total = lam.sum()
    k = min(n_components, n - 1)
    coords = np.full((n, n_components), np.nan)
    coords[:, :k] = vec[:, :k] * np.sqrt(lam[:k])
    for j in range(k):  # orientation: the run moves towards + on every axis
        delta = coords[-1, j] - coords[0, j]
        if delta < 0 or (delta == 0 and coords[np.abs(coords[:, j]).argmax(), j] < 0):
            coords[:, j] *= -1
            vec[:, j] *= -1
    ratio = lam[: min(n, 10)] / total if total > 0 else np.zeros(min(n, 10))
    return PCAResult(mean, coords, vec[:, :k], lam[:k], ratio)


def turn_angles(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(turning angle, step length) per point of a path [N, D]; angle NaN at both ends.

    Step length i is |x_i - x_{i-1}| (NaN at 0). Works on float32 rows chunk by chunk.
    """
    n = points.shape[0]
    angle = np.full(n, np.nan)
    steps = np.full(n, np.nan)
    if n < 2:
        return angle, steps
    dots = np.zeros(max(n - 2, 0))
    sq = np.zeros(n - 1)
    for start in range(0, points.shape[1], _CHUNK):
        block = np.diff(points[:, start : start + _CHUNK], axis=0).astype(np.float64)
        sq += (block**2).sum(axis=1)
        if n > 2:
            dots += (block[:-1] * block[1:]).sum(axis=1)
    length = np.sqrt(sq)
    steps[1:] = length
    if n > 2:
        denom = length[:-1] * length[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.where(denom > 0, dots / denom, np.nan)
        angle[1:-1] = np.arccos(np.clip(cos, -1.0, 1.0))
    return angle, steps


def self_intersections(path: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Proper crossings of non-adjacent segments of a 2-D polyline [N, 2].

    Returns (i, j, x, y): segment i (points i..i+1) crosses segment j > i + 1 at (x, y).
    Touching and collinear overlaps are not counted.
    """
    pts = np.asarray(path, dtype=np.float64)
    ok = np.all(np.isfinite(pts), axis=1)
    n = len(pts)
    found: list[tuple[int, int, float, float]] = []
    if n < 4:
        return found
    a, b = pts[:-1], pts[1:]
    seg_ok = ok[:-1] & ok[1:]

    def orient(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            r[..., 0] - p[..., 0]
        )

    for i in range(n - 3):
        if not seg_ok[i]:
            continue
        j = np.arange(i + 2, n - 1)
        p1, p2 = a[i], b[i]
        p3, p4 = a[j], b[j]
        d1, d2 = orient(p3, p4, p1), orient(p3, p4, p2)
        d3, d4 = orient(p1, p2, p3), orient(p1, p2, p4)
        hit = (d1 * d2 < 0) & (d3 * d4 < 0) & seg_ok[j]
        for jj, e1, e2 in zip(j[hit], d1[hit], d2[hit], strict=True):
            t = e1 / (e1 - e2)
            x, y = p1 + t * (p2 - p1)
            found.append((i, int(jj), float(x), float(y)))
    return found


def loop_measures(path: np.ndarray) -> dict[str, float | None]:
    """Measures of a 2-D path that do not depend on its scale, rotation or position:
    `crossings`, `loop_area` (the largest loop's area / L^2, L = path length; a circle
    traversed once gives 1/(4 pi) = 0.080), `excursion` (the farthest distance from the start
    / L) and `path_length` (L). Area and excursion are None for a path of no length.

    A loop is the part of the path between the two segments of a crossing, closed at the
    crossing point; its area is the shoelace area of that polygon.
    """
    pts = np.asarray(path, dtype=np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1)] if pts.ndim == 2 else pts.reshape(0, 2)
    if len(pts) < 2:
        return {"crossings": 0, "loop_area": None, "excursion": None, "path_length": 0.0}
    length = float(np.sqrt((np.diff(pts, axis=0) ** 2).sum(1)).sum())
    hits = self_intersections(pts)
    best = 0.0
    for i, j, x, y in hits:
        poly = np.vstack([[x, y], pts[i + 1 : j + 1], [x, y]])
        area = 0.5 * abs(float(np.dot(poly[:-1, 0], poly[1:, 1]) - np.dot(poly[1:, 0], poly[:-1, 1])))
        best = max(best, area)
    far = float(np.sqrt(((pts - pts[0]) ** 2).sum(1)).max())
    if not length > 0 or not math.isfinite(length):
        return {"crossings": len(hits), "loop_area": None, "excursion": None, "path_length": 0.0}
    return {"crossings": len(hits), "loop_area": best / length**2, "excursion": far / length, "path_length": length}


class Trajectory(Analyzer):
    """PCA of the parameter trajectory, velocity, curvature and PC2/PC3 self-intersection."""

    name = "trajectory"
    version = "2"  # 2: loop measures (loop_area, excursion, path_length)
    consumes = "trajectory"
    description = (
        "Parameter-trajectory PCA over checkpoints (PC1-3, explained variance), "
        "velocity, turning angle / curvature, and whether the PC2/PC3 path crosses itself."
    )

    def applies(self, info: RunInfo) -> str | None:
        return None if len(info.checkpoint_epochs) >= 2 else "needs at least 2 checkpoints"

    def compute_run(
        self,
        epochs: np.ndarray,
        rows: np.ndarray,
        layout: list[tuple[str, tuple[int, ...]]],
        approximate: bool,
    ) -> Output:
        pca = pca_from_rows(rows, N_COMPONENTS)
        angle, steps = turn_angles(rows)
        gaps = np.diff(epochs.astype(np.float64), prepend=np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            velocity = steps / gaps
            mean_step = (steps + np.roll(steps, -1)) / 2
            curvature = angle / mean_step
        pca_angle, _ = turn_angles(np.nan_to_num(pca.coords))
        crossings = self_intersections(pca.coords[:, 1:3])
        inter = np.asarray(
            [[epochs[i], epochs[j]] for i, j, _, _ in crossings], dtype=np.int64
        ).reshape(-1, 2)
        points = np.asarray([[x, y] for _, _, x, y in crossings], dtype=np.float64).reshape(-1, 2)
        loops = loop_measures(pca.coords[:, 1:3])
        return Output(
            epochs=epochs,
            per_epoch={
                "pca": pca.coords.astype(np.float64),
                "step_distance": steps,
                "velocity": velocity,
                "turn_angle": angle,
                "curvature": curvature,
                "pca_turn_angle": pca_angle,
            },
            summary={
                "explained_variance_ratio": pca.explained_ratio,
                "intersections": inter,
                "intersection_points": points,
                "tensors": np.asarray([n for n, _ in layout], dtype=object),
            },
            scalars={
                "self_intersects": bool(crossings),
                "n_intersections": len(crossings),
                "first_intersection": inter[0].tolist() if len(inter) else None,
                "n_params": int(sum(int(np.prod(s)) for _, s in layout)),
                "approximate": bool(approximate),
                "n_checkpoints": int(len(epochs)),
                "loop_area": loops["loop_area"],
                "excursion": loops["excursion"],
                "path_length": loops["path_length"],
            },
        )


# -- shared basis across bundles ----------------------------------------------------------------------
@dataclass
class SharedPCA:
    """One PCA basis fitted on the checkpoints of several runs, and every run projected on it."""

    mean: np.ndarray  # [D] float64
    components: np.ndarray  # [k, D] float64, orthonormal
    explained_variance_ratio: np.ndarray  # [k], of the fitted checkpoints' total variance
    layout: list[tuple[str, tuple[int, ...]]]
    runs: dict[str, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )  # name -> (epochs, [N, k])
    fitted_on: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # name -> epochs used for the fit

    def project(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        """Coordinates [k] of one state dict (same tensor layout) in this basis."""
        row = np.concatenate(
            [np.asarray(weights[n], dtype=np.float64).ravel() for n, _ in self.layout]
        )
        return self.components @ (row - self.mean)

    def self_intersections(self, name: str) -> list[tuple[int, int, float, float]]:
        """Crossings of run `name`'s (PC2, PC3) path in the shared basis (epochs, not indices)."""
        epochs, coords = self.runs[name]
        return [
            (int(epochs[i]), int(epochs[j]), x, y)
            for i, j, x, y in self_intersections(coords[:, 1:3])
        ]


def shared_pca_basis(
    bundle_paths: list[str | os.PathLike],
    *,
    n_components: int = N_COMPONENTS,
    max_bytes: int = MAX_ROW_BYTES,
) -> SharedPCA:
    """Fit one PCA basis on the checkpoints of several bundles (same architecture) and project
    every checkpoint of every bundle on it.

    When all checkpoints do not fit in `max_bytes` as float32, an evenly spaced subset of each
    run is used for the fit (recorded in `fitted_on`); projections always cover every
    checkpoint. Checkpoints with non-finite weights are left out. Run names are the bundles'
    names, made unique with a suffix if needed.
    """
    from epochscope.archives import open_bundle
    from epochscope.collectors.analysis.checkpoint_io import flatten, read_weights

    if not bundle_paths:
        raise AnalysisError("shared_pca_basis needs at least one bundle")
    runs: list[tuple[str, Any, list[int]]] = []
    layout: list[tuple[str, tuple[int, ...]]] | None = None
    try:
        for path in bundle_paths:
            b = open_bundle(path)
            runs.append((b.name, b, b.checkpoint_epochs))
            if not b.checkpoint_epochs:
                raise AnalysisError(f"{path}: no checkpoints")
            w = read_weights(b, b.checkpoint_epochs[0])
            this = [(n, tuple(a.shape)) for n, a in w.items()]
            if layout is None:
                layout = this
            elif this != layout:
                raise AnalysisError(
                    f"{path}: its model's tensors differ from {bundle_paths[0]}'s; "
                    "a shared basis needs one architecture"
                )
        assert layout is not None
        dim = sum(int(np.prod(s)) for _, s in layout)
        total = sum(len(e) for _, _, e in runs)
        budget = max(2 * len(runs), max_bytes // (4 * dim))
        fit_rows, fit_index = [], []
        names: list[str] = []
        for name, b, epochs in runs:
            unique = name
            suffix = 2
            while unique in names:
                unique, suffix = f"{name}-{suffix}", suffix + 1
            names.append(unique)
            share = max(2, int(budget * len(epochs) / max(total, 1)))
            pick = (
                epochs
                if len(epochs) <= share
                else [epochs[i] for i in np.linspace(0, len(epochs) - 1, share).round().astype(int)]
            )
            for e in dict.fromkeys(pick):
                row = flatten(read_weights(b, e), layout)
                if np.all(np.isfinite(row)):
                    fit_rows.append(row.astype(np.float32))
                    fit_index.append((unique, e))
        rows = np.stack(fit_rows)
        pca = pca_from_rows(rows, n_components)
        k = pca.eigvecs.shape[1]
        comps = np.zeros((k, dim))
        centered_mean = pca.mean
        for start in range(0, dim, _CHUNK):
            block = (
                rows[:, start : start + _CHUNK].astype(np.float64)
                - centered_mean[start : start + _CHUNK]
            )
            comps[:, start : start + _CHUNK] = (
                pca.eigvecs / np.sqrt(np.maximum(pca.eigvals, 1e-300))
            ).T @ block
        result = SharedPCA(
            mean=centered_mean,
            components=comps,
            explained_variance_ratio=pca.explained_ratio[:k],
            layout=layout,
        )
        for unique, (_, b, epochs) in zip(names, runs, strict=True):
            eps, coords = [], []
            for e in epochs:
                row = flatten(read_weights(b, e), layout)
                if np.all(np.isfinite(row)):
                    eps.append(e)
                    coords.append(comps @ (row - centered_mean))
            result.runs[unique] = (
                np.asarray(eps, dtype=np.int64),
                np.asarray(coords).reshape(len(eps), k),
            )
            result.fitted_on[unique] = np.asarray(
                [e for n, e in fit_index if n == unique], dtype=np.int64
            )
        return result
    finally:
        for _, b, _ in runs:
            b.close()
