"""Fractional designs for sweeps: Taguchi orthogonal arrays, and main effects of each factor.

An orthogonal array L_N(q^k) has N runs and k columns of q levels in which every pair of
columns holds every pair of levels equally often, so each factor's main effect is estimated
from N runs instead of the full grid's product (the apoptosis notes: "16 configs instead of
100"). The arrays come from the Rao-Hamming construction over the finite field GF(q): the
rows are all vectors u of GF(q)^t, the columns all nonzero v whose first nonzero entry is 1,
and the entry is the dot product u.v. That gives the standard L4(2^3), L8(2^7), L9(3^4),
L16(4^5), L25(5^6), L27(3^13), L49(7^8) ... A factor with fewer levels than q uses
dummy levels (array level j -> j mod n): its levels stay orthogonal to the other factors'
but are not all equally frequent unless n divides q. Runs that come out identical are run
once (a run is deterministic, a replicate would only cost time).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from epochscope.errors import EpochscopeError

__all__ = ["main_effects", "orthogonal_array", "taguchi_points"]

# GF(4) = {0, 1, a, a+1} with a^2 = a + 1, elements numbered 0..3 (bits of the polynomial).
_GF4_ADD = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]])
_GF4_MUL = np.array([[0, 0, 0, 0], [0, 1, 2, 3], [0, 2, 3, 1], [0, 3, 1, 2]])
_FIELDS = (2, 3, 4, 5, 7)


def _ops(q: int) -> tuple[Any, Any]:
    if q == 4:
        return (lambda a, b: _GF4_ADD[a, b]), (lambda a, b: _GF4_MUL[a, b])
    return (lambda a, b: (a + b) % q), (lambda a, b: (a * b) % q)


def orthogonal_array(q: int, factors: int) -> np.ndarray:
    """The smallest Rao-Hamming array with q levels and at least `factors` columns,
    cut to `factors` columns: shape (q^t, factors), entries 0..q-1."""
    if q not in _FIELDS:
        raise EpochscopeError(f"orthogonal arrays are built for {', '.join(map(str, _FIELDS))} levels, not {q}")
    t = 2
    while (q**t - 1) // (q - 1) < factors:
        t += 1
    add, mul = _ops(q)
    rows = np.array(list(itertools.product(range(q), repeat=t)), dtype=np.int64)
    cols = [v for v in itertools.product(range(q), repeat=t)
            if any(v) and v[next(i for i, x in enumerate(v) if x)] == 1]
    out = np.zeros((len(rows), len(cols)), dtype=np.int64)
    for j, v in enumerate(cols):
        acc = np.zeros(len(rows), dtype=np.int64)
        for i in range(t):
            acc = add(acc, mul(rows[:, i], np.full(len(rows), v[i])))
        out[:, j] = acc
    return out[:, :factors]


def taguchi_points(grid: dict[str, list[Any]]) -> tuple[list[dict[str, Any]], str]:
    """The runs of a Taguchi design over `grid` (factor -> levels) and the array's name."""
    if not grid:
        return [], "L0"
    q = next((f for f in _FIELDS if f >= max(len(v) for v in grid.values())), None)
    if q is None:
        raise EpochscopeError(f"a Taguchi design supports factors of up to {_FIELDS[-1]} levels")
    array = orthogonal_array(q, len(grid))
    points, seen = [], set()
    for row in array:
        point = {k: levels[int(row[j]) % len(levels)] for j, (k, levels) in enumerate(grid.items())}
        key = repr(list(point.values()))
        if key not in seen:  # dummy levels (or a lone factor) can repeat a run: runs are deterministic
            seen.add(key)
            points.append(point)
    return points, f"L{len(array)}({q}^{len(grid)})"


def main_effects(points: list[dict[str, Any]], responses: list[float | None], goal: str = "min"
                 ) -> dict[str, Any]:
    """Per factor: the mean response at each level, Taguchi's signal-to-noise ratio, the
    effect size (max - min of the level means) and its rank; the best level for `goal`.

    S/N: smaller-is-better -10 log10(mean(y^2)) for goal "min", larger-is-better
    -10 log10(mean(1 / y^2)) for "max"; a higher S/N is better either way. Variants without
    a finite response (failed, not run) are left out and counted.
    """
    if goal not in ("min", "max"):
        raise EpochscopeError(f"goal={goal!r} must be 'min' or 'max'")
    used = [(p, float(r)) for p, r in zip(points, responses, strict=True)
            if r is not None and math.isfinite(float(r))]
    factors: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for p in points for k in p))
    for key in keys:
        levels = list(dict.fromkeys(_hashable(p[key]) for p, _ in used if key in p))
        rows = []
        for level in levels:
            ys = np.array([y for p, y in used if _hashable(p.get(key)) == level])
            if goal == "min":
                sn = -10 * math.log10(float(np.mean(ys**2))) if np.any(ys) else math.inf
            else:
                sn = -10 * math.log10(float(np.mean(1 / ys**2))) if np.all(ys) else -math.inf
            rows.append({"level": level, "mean": float(ys.mean()), "n": int(len(ys)), "sn_ratio": sn})
        if not rows:
            continue
        means = [r["mean"] for r in rows]
        best = rows[int(np.argmin(means) if goal == "min" else np.argmax(means))]["level"]
        factors[key] = {"levels": rows, "effect": float(max(means) - min(means)), "best_level": best}
    for rank, key in enumerate(sorted(factors, key=lambda k: -factors[k]["effect"]), start=1):
        factors[key]["rank"] = rank
    return {"goal": goal, "runs_used": len(used), "runs_missing": len(points) - len(used),
            "overall_mean": float(np.mean([y for _, y in used])) if used else None,
            "factors": factors}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
