"""Counterfactual attribution: which slots make the model better, measured by switching them off.

A *configuration* switches each active slot on (its current alpha) or off (alpha 0). With n
slots there are 2^n configurations; `counterfactual_matrix` evaluates all of them for n up to
`max_factorial` (4) and derives, from the matrix:

- **marginal contribution** of slot i: the average of v(S + i) - v(S) over all configurations
  S of the other slots (the design's acc(1xx) - acc(0xx); the Banzhaf value);
- **removal contribution**: v(all) - v(all but i), what switching only i off costs now;
- **pairwise interaction** of i and j: the average over configurations S of the other slots
  of v(S+i+j) - v(S+i) - v(S+j) + v(S) (positive: together better than apart);
- **Shapley values**: the average of v(S + i) - v(S) over all orderings of the slots. They
  add up to v(all) - v(none) (efficiency).

Beyond `max_factorial` slots the matrix would be too costly; `counterfactual_matrix` then
samples `permutations` random orderings (Castro et al. 2009): every ordering's marginal
contributions add up to v(all) - v(none), so the sampled Shapley values keep efficiency
exactly. The marginal (Banzhaf) value is estimated from the same evaluations by importance
weighting; interactions are not estimated (NaN) in that mode. Evaluations are cached per
configuration, so no configuration is evaluated twice.

A callback that raises, or returns NaN, gives a NaN value for that configuration (the error
is kept); derived quantities that need it become NaN and the rest are still computed.
Nothing here knows about torch, HTML or bundles.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ConfigResult",
    "CounterfactualMatrix",
    "MAX_FACTORIAL",
    "counterfactual_matrix",
    "shapley_from_values",
]

MAX_FACTORIAL = 4  # slots up to which every on/off configuration is evaluated
DEFAULT_PERMUTATIONS = 20

Evaluate = Callable[[dict[str, float]], "float | Mapping[str, float]"]


@dataclass
class ConfigResult:
    """One evaluated configuration: which slots were on, the alphas passed, what came back."""

    mask: tuple[bool, ...]
    alphas: dict[str, float]
    metrics: dict[str, float]
    value: float  # the attribution metric (NaN when missing)
    seconds: float
    error: str | None = None

    @property
    def code(self) -> str:
        """The design's notation: '101' = first and third slot on."""
        return "".join("1" if on else "0" for on in self.mask)


@dataclass
class CounterfactualMatrix:
    """Configurations evaluated at one epoch and the attributions derived from them."""

    epoch: int
    slots: list[str]
    metric: str
    method: str  # "factorial" or "sampled"
    configs: list[ConfigResult]
    marginal: dict[str, float]
    removal: dict[str, float]
    shapley: dict[str, float]
    shapley_stderr: dict[str, float]
    interactions: dict[tuple[str, str], float]
    full: float
    empty: float
    seconds: float
    permutations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigResult]:
        return [c for c in self.configs if c.error is not None]

    @property
    def efficiency_gap(self) -> float:
        """sum(Shapley) - (v(all) - v(none)); 0 up to rounding when nothing is missing."""
        return float(sum(self.shapley.values()) - (self.full - self.empty))

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest (for an event payload)."""
        return {"epoch": self.epoch, "slots": self.slots, "metric": self.metric, "method": self.method,
                "evaluations": len(self.configs), "permutations": self.permutations,
                "seconds": self.seconds, "full": self.full, "empty": self.empty,
                "shapley": self.shapley, "marginal": self.marginal, "removal": self.removal,
                "errors": len(self.errors), "notes": self.notes}


def counterfactual_matrix(epoch: int, evaluate: Evaluate, slots: Mapping[str, float] | Sequence[str], *,
                          metric: str | None = None, max_factorial: int = MAX_FACTORIAL,
                          permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0) -> CounterfactualMatrix:
    """Evaluate on/off configurations of `slots` through `evaluate` and attribute the metric.

    `slots`: slot name -> alpha when on (a sequence means alpha 1.0 for each). `evaluate`
    gets {slot: alpha} for every slot (0.0 when off) and returns a number or a mapping of
    metrics; `metric` names the one attributed (default: `val_acc` or `accuracy` when
    present, else the first). `seed` fixes the sampled orderings.
    """
    on_alpha = dict(slots) if isinstance(slots, Mapping) else dict.fromkeys(slots, 1.0)
    names = list(on_alpha)
    if len(set(names)) != len(names):
        raise ValueError("counterfactual: slot names must be unique")
    n = len(names)
    t0 = time.perf_counter()
    cache: dict[tuple[bool, ...], ConfigResult] = {}
    chosen = [metric]

    def value(mask: tuple[bool, ...]) -> float:
        if mask not in cache:
            cache[mask] = _evaluate_one(evaluate, names, on_alpha, mask, chosen)
        return cache[mask].value

    notes: list[str] = []
    full_mask, empty_mask = (True,) * n, (False,) * n
    if n <= max_factorial:
        method, perms = "factorial", 0
        for mask in itertools.product((False, True), repeat=n):
            value(mask)
        values = {m: c.value for m, c in cache.items()}
        shapley = dict(zip(names, shapley_from_values(values, n), strict=True))
        stderr = dict.fromkeys(names, 0.0)
        marginal = dict(zip(names, _banzhaf(values, n), strict=True))
        interactions = _interactions(values, names)
    else:
        method, perms = "sampled", max(1, int(permutations))
        notes.append(f"{n} slots: more than the {max_factorial} a full factorial allows "
                     f"({2 ** n} configurations); Shapley values from {perms} sampled orderings, "
                     "no interactions")
        value(full_mask)
        value(empty_mask)
        rng = np.random.default_rng(seed)
        samples: list[list[float]] = [[] for _ in names]
        weighted: list[list[tuple[float, float]]] = [[] for _ in names]
        for _ in range(perms):
            order = rng.permutation(n)
            mask = [False] * n
            prev = value(tuple(mask))
            for k, i in enumerate(order):
                mask[i] = True
                cur = value(tuple(mask))
                samples[i].append(cur - prev)
                # P(S) under Banzhaf / under a random ordering, for |S| = k
                weighted[i].append((cur - prev, n * math.comb(n - 1, k) / 2 ** (n - 1)))
                prev = cur
        shapley = {nm: _mean(s) for nm, s in zip(names, samples, strict=True)}
        stderr = {nm: (float(np.std(s, ddof=1) / math.sqrt(len(s))) if len(s) > 1 and _finite(s) else math.nan)
                  for nm, s in zip(names, samples, strict=True)}
        marginal = {nm: _weighted_mean(w) for nm, w in zip(names, weighted, strict=True)}
        interactions = {}
    for i in range(n):
        value(tuple(j != i for j in range(n)))  # leave-one-out
    full, empty = value(full_mask), value(empty_mask)
    removal = {nm: full - cache[tuple(j != i for j in range(n))].value for i, nm in enumerate(names)}
    configs = sorted(cache.values(), key=lambda c: c.code)
    errors = [c for c in configs if c.error is not None]
    missing = [c for c in configs if not math.isfinite(c.value)]
    if errors:
        notes.append(f"{len(errors)} configuration(s) failed in the callback: {errors[0].error}")
    if missing:
        notes.append(f"{len(missing)} configuration(s) without a finite {chosen[0]}: "
                     f"{', '.join(c.code for c in missing[:8])}; values that need them are NaN")
    return CounterfactualMatrix(
        epoch=int(epoch), slots=names, metric=str(chosen[0]), method=method, configs=configs,
        marginal=marginal, removal=removal, shapley=shapley, shapley_stderr=stderr,
        interactions=interactions, full=full, empty=empty, seconds=time.perf_counter() - t0,
        permutations=perms, notes=notes,
    )


def shapley_from_values(values: Mapping[tuple[bool, ...], float], n: int) -> list[float]:
    """Exact Shapley values from v on every configuration of n slots (index order).

    phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S+i) - v(S)).
    """
    out = []
    for i in range(n):
        total = 0.0
        for mask, v in values.items():
            if mask[i]:
                continue
            k = sum(mask)
            with_i = tuple(True if j == i else b for j, b in enumerate(mask))
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            total += weight * (values[with_i] - v)
        out.append(total)
    return out


def _evaluate_one(evaluate: Evaluate, names: list[str], on_alpha: dict[str, float],
                  mask: tuple[bool, ...], chosen: list[str | None]) -> ConfigResult:
    alphas = {nm: (float(on_alpha[nm]) if on else 0.0) for nm, on in zip(names, mask, strict=True)}
    t0 = time.perf_counter()
    try:
        raw = evaluate(dict(alphas))
        metrics = _as_metrics(raw)
        error = None
    except Exception as exc:  # noqa: BLE001 - a failing evaluation is data, training goes on
        metrics, error = {}, " ".join(f"{type(exc).__name__}: {exc}".split())
    if chosen[0] is None and metrics:
        chosen[0] = next((k for k in ("val_acc", "accuracy", "acc") if k in metrics), next(iter(metrics)))
    v = metrics.get(chosen[0], math.nan) if chosen[0] is not None else math.nan
    return ConfigResult(mask=mask, alphas=alphas, metrics=metrics, value=float(v),
                        seconds=time.perf_counter() - t0, error=error)


def _as_metrics(raw: Any) -> dict[str, float]:
    if isinstance(raw, Mapping):
        return {str(k): _to_float(v) for k, v in raw.items()}
    return {"value": _to_float(raw)}


def _to_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _banzhaf(values: Mapping[tuple[bool, ...], float], n: int) -> list[float]:
    return [_mean([values[tuple(True if j == i else b for j, b in enumerate(m))] - v
                   for m, v in values.items() if not m[i]]) for i in range(n)]


def _interactions(values: Mapping[tuple[bool, ...], float], names: list[str]) -> dict[tuple[str, str], float]:
    out = {}
    for i, j in itertools.combinations(range(len(names)), 2):
        terms = []
        for m, v in values.items():
            if m[i] or m[j]:
                continue
            mi = tuple(True if k == i else b for k, b in enumerate(m))
            mj = tuple(True if k == j else b for k, b in enumerate(m))
            mij = tuple(True if k in (i, j) else b for k, b in enumerate(m))
            terms.append(values[mij] - values[mi] - values[mj] + v)
        out[(names[i], names[j])] = _mean(terms)
    return out


def _finite(xs: Sequence[float]) -> bool:
    return all(math.isfinite(x) for x in xs)


def _mean(xs: Sequence[float]) -> float:
    """Mean, NaN if empty or if any term is NaN (a missing configuration is not skipped)."""
    return float(np.mean(xs)) if xs and _finite(xs) else math.nan


def _weighted_mean(pairs: Sequence[tuple[float, float]]) -> float:
    if not pairs or not _finite([x for x, _ in pairs]):
        return math.nan
    w = np.asarray([w for _, w in pairs])
    x = np.asarray([x for x, _ in pairs])
    return float((w * x).sum() / w.sum())
