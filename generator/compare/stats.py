"""The simple statistics a comparison page shows of the runs' stored series: which config
keys differ and which are seeds, groups of runs, the spread of a group's values, series
aligned onto a common grid, min/max-preserving decimation, robust z-scores and the
correlation of two per-run values.

Presentation-level aggregation of what the bundles hold (no analysis): the page's JS applies
the same rules when the user regroups (templates/compare.js: `alignTo`, `band`, `spread`),
and the tests hold the two to each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GRID_POINTS", "MAD_SCALE", "MEANAD_SCALE", "MIN_FLAG_VALUES", "MISSING", "Z_LIMIT", "Correlation",
           "RunGroup", "Spread", "align", "band", "common_grid", "correlation", "decimate", "differing_keys",
           "group_runs", "is_seed_key", "robust_z", "spread"]

# A value is flagged when its robust z-score exceeds this (Iglewicz & Hoaglin's cut-off).
Z_LIMIT = 3.5
# MAD -> standard deviation of a normal distribution.
MAD_SCALE = 1.4826
# Mean absolute deviation -> standard deviation, the fallback when the MAD is 0.
MEANAD_SCALE = 1.2533
# Fewer values than this: no flags (a median of three says little about "normal").
MIN_FLAG_VALUES = 4
# The value a run lacking a config key is grouped under.
MISSING = "–"
# Points of the common grid a group's runs are aligned on when their epochs differ.
GRID_POINTS = 400


# ----------------------------------------------------------------------------- config keys and groups

def is_seed_key(key: str, declared: Iterable[str] = ()) -> bool:
    """A seed key: its name contains "seed" (any case), or it is one of `declared`."""
    return "seed" in key.lower() or key in set(declared)


def config_text(value: Any) -> str:
    """How a config value is shown and compared (None: the key is missing)."""
    return MISSING if value is None else str(value)


def differing_keys(configs: Sequence[dict[str, Any]], ignore: Iterable[str] = ("name",)) -> list[str]:
    """Config keys whose value (or presence) is not the same in every run, sorted."""
    skip = set(ignore)
    keys = sorted({k for c in configs for k in c} - skip)
    return [k for k in keys if len({config_text(c.get(k)) for c in configs}) > 1]


@dataclass
class RunGroup:
    """Runs that share the values of the grouping keys."""

    values: tuple[str, ...]  # per grouping key (MISSING where a run lacks it)
    label: str
    members: list[int]


def group_runs(configs: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[RunGroup]:
    """Group runs by the values of `keys` (no keys: one group of every run); groups in the
    order of their first run."""
    by: dict[tuple[str, ...], list[int]] = {}
    for i, c in enumerate(configs):
        by.setdefault(tuple(config_text(c.get(k)) for k in keys), []).append(i)
    out = []
    for values, members in by.items():
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) if keys else "all runs"
        out.append(RunGroup(values, label, members))
    return out


# ----------------------------------------------------------------------------- spread

@dataclass
class Spread:
    """The spread of one group's values: n, mean, sample std (ddof 1), standard error, range."""

    n: int
    mean: float | None
    std: float | None
    sem: float | None
    lo: float | None
    hi: float | None


def spread(values: Iterable[float | None]) -> Spread:
    """Spread of the finite `values` (None and NaN left out); std and sem need n >= 2."""
    xs = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=np.float64)
    n = int(xs.size)
    if not n:
        return Spread(0, None, None, None, None, None)
    std = float(xs.std(ddof=1)) if n >= 2 else None
    return Spread(n, float(xs.mean()), std, std / math.sqrt(n) if std is not None else None,
                  float(xs.min()), float(xs.max()))


# ----------------------------------------------------------------------------- alignment

def common_grid(epoch_arrays: Sequence[np.ndarray], limit: int = GRID_POINTS) -> np.ndarray:
    """The grid a group's series are aligned on: the union of their epochs when it has at
    most `limit` points (runs logged on the same epochs need no interpolation), else `limit`
    evenly spaced points from the first epoch to the last."""
    arrays = [np.asarray(e, dtype=np.float64) for e in epoch_arrays if len(e)]
    if not arrays:
        return np.zeros(0)
    union = np.unique(np.concatenate(arrays))
    if union.size <= limit:
        return union
    return np.linspace(union[0], union[-1], limit)


def align(epochs: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`values` linearly interpolated onto `grid`, only inside the run's own range (between
    its first and last finite point); NaN outside it, never extrapolated."""
    e = np.asarray(epochs, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(e)
    out = np.full(len(grid), np.nan)
    if not ok.any():
        return out
    e, v = e[ok], v[ok]
    inside = (grid >= e[0]) & (grid <= e[-1])
    out[inside] = np.interp(grid[inside], e, v)
    return out


def band(series: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray | None = None
         ) -> dict[str, np.ndarray]:
    """A group's line and band on the common grid: per grid point the number of runs covering
    it (`n`), their mean, sample std, standard error, min and max (NaN where n = 0; std and
    sem NaN where n < 2)."""
    if grid is None:
        grid = common_grid([e for e, _ in series])
    stack = np.vstack([align(e, v, grid) for e, v in series]) if series else np.zeros((0, len(grid)))
    n = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)
        dev = np.where(np.isfinite(stack), stack - mean, 0.0)
        std = np.where(n > 1, np.sqrt((dev**2).sum(axis=0) / np.maximum(n - 1, 1)), np.nan)
        sem = std / np.sqrt(np.maximum(n, 1))
        lo = np.where(n > 0, np.nanmin(np.where(np.isfinite(stack), stack, np.inf), axis=0), np.nan)
        hi = np.where(n > 0, np.nanmax(np.where(np.isfinite(stack), stack, -np.inf), axis=0), np.nan)
    return {"grid": grid, "n": n, "mean": mean, "std": std, "sem": sem, "lo": lo, "hi": hi}


def decimate(epochs: np.ndarray, values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about `limit` points of a series: the first and last, and the minimum and
    maximum of each of limit/2 equal buckets, so spikes survive thinning."""
    n = len(values)
    if n <= limit:
        return epochs, values
    size = -(-n // max(1, limit // 2))
    buckets = -(-n // size)
    vals = np.asarray(values, dtype=np.float64)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = vals
    grid = padded.reshape(buckets, size)
    finite = np.isfinite(grid)
    lo = np.argmin(np.where(finite, grid, np.inf), axis=1)
    hi = np.argmax(np.where(finite, grid, -np.inf), axis=1)
    base = np.arange(buckets) * size
    keep = np.concatenate([[0, n - 1], base + lo, base + hi])  # an all-NaN bucket keeps its first point
    idx = np.unique(keep[keep < n])
    return epochs[idx], values[idx]


# ----------------------------------------------------------------------------- outliers

def robust_z(values: list[float | None], *, log: bool = False, floor: float = 0.0,
             rel_floor: float = 0.0) -> list[float | None]:
    """Robust z-score of each value against the others: (x - median) / (1.4826 MAD).

    With `log`, on log10 of the values (positive ones only: quantities spanning decades,
    such as losses). When the MAD is 0 (more than half the values equal) the scale falls
    back to 1.2533 x the mean absolute deviation from the median; when that is 0 too, every
    value is typical (z = 0). The scale is never below `floor`, nor below `rel_floor` times
    the median's magnitude: a column's resolution, so that noise on nearly equal values (all
    accuracies at 100% but one at 99.9%) is not a deviation. Missing (None, NaN) values get
    None; with fewer than MIN_FLAG_VALUES values nobody gets a score.
    """
    xs: list[float | None] = []
    for v in values:
        if v is None or not math.isfinite(float(v)) or (log and float(v) <= 0):
            xs.append(None)
        else:
            xs.append(math.log10(float(v)) if log else float(v))
    have = np.array([x for x in xs if x is not None], dtype=np.float64)
    if have.size < MIN_FLAG_VALUES:
        return [None] * len(values)
    med = float(np.median(have))
    dev = np.abs(have - med)
    scale = MAD_SCALE * float(np.median(dev))
    if scale <= 0:
        scale = MEANAD_SCALE * float(dev.mean())
    scale = max(scale, floor, rel_floor * abs(med))
    tiny = 1e-9 * max(1.0, abs(med))  # float jitter is never a deviation
    out: list[float | None] = []
    for x in xs:
        if x is None:
            out.append(None)
        elif abs(x - med) <= tiny or scale <= 0:
            out.append(0.0)
        else:
            out.append((x - med) / scale)
    return out


# ----------------------------------------------------------------------------- correlation

@dataclass
class Correlation:
    """Pearson and Spearman correlation of two per-run values, with N, p-values and 95%
    confidence intervals (Fisher z; for Spearman with the Fieller et al. variance 1.06/(n-3))."""

    n: int
    pearson: float
    pearson_p: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_p: float
    spearman_ci: tuple[float, float]

    def text(self) -> str:
        def ci(c: tuple[float, float]) -> str:
            return f"[{c[0]:+.2f}, {c[1]:+.2f}]" if all(math.isfinite(x) for x in c) else "[n/a]"

        return (f"Spearman ρ = {self.spearman:+.2f} (95% CI {ci(self.spearman_ci)}, p = {self.spearman_p:.2g}); "
                f"Pearson r = {self.pearson:+.2f} (95% CI {ci(self.pearson_ci)}, p = {self.pearson_p:.2g}); "
                f"N = {self.n}")


def _fisher_ci(r: float, n: int, var: float) -> tuple[float, float]:
    if n <= 3 or not math.isfinite(r) or abs(r) >= 1:
        return (math.nan, math.nan)
    z, half = math.atanh(r), 1.959963984540054 * math.sqrt(var / (n - 3))
    return (math.tanh(z - half), math.tanh(z + half))


def correlation(x: Sequence[float | None], y: Sequence[float | None]) -> Correlation | None:
    """Correlation of the pairs where both values are finite (scipy.stats); None with fewer
    than 3 pairs or when either side is constant."""
    from scipy import stats as sps

    pairs = [(float(a), float(b)) for a, b in zip(x, y, strict=True)
             if a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))]
    if len(pairs) < 3:
        return None
    xs, ys = np.array(pairs).T
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None
    n = len(pairs)
    pr = sps.pearsonr(xs, ys)
    sr = sps.spearmanr(xs, ys)
    r, rho = float(pr.statistic), float(sr.statistic)
    return Correlation(n, r, float(pr.pvalue), _fisher_ci(r, n, 1.0), rho, float(sr.pvalue),
                       _fisher_ci(rho, n, 1.06))
