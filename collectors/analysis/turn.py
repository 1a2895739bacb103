"""Turn detection: where the test loss starts its first sustained fall into generalisation.

Method (docs/analysis.md, "Turn", has the full definition):

1. Work on log10(test loss). Loss spikes (`spikes.py`) are found first and replaced by the
   curve's running level, so they neither place nor unmake the turn; they are stored as
   events of their own (kind "loss_spike"), for the train loss as well.
2. Find where the run has generalised, the epoch G: where test accuracy first reaches 95%
   when accuracy is recorded; else (a loss-only run) where the binned test loss first lies
   `min_drop` decades below its plateau (its running maximum) and stays more than
   `min_drop` / 2 below it for the sustain window (2% of the grid, at least 3 points).
   No G: no turn, with the reason.
3. Bin the cleaned curve (median per bin, at most `max_points`) and segment it into straight
   pieces with PELT (ruptures; least-squares line cost, BIC penalty 3 sigma^2 ln n, sigma the
   robust noise). Pieces and the jumps between them that drop by more than max(2 sigma,
   `min_step`) decades descend; maximal chains of them are falls. THE fall is the one that
   carries the loss into generalisation: the chain holding G, else the last one ending
   before G. Later falls, spikes and rebounds never move it.
4. The turn is the start of the first element of that fall carrying 10% of its drop,
   refined on the raw (cleaned) points by a continuous two-piece line fit; never before
   train accuracy reaches 99% when memorisation comes first, never after G.
5. No turn also when the fall starts within the first `min_plateau` of the run and
   memorisation did not come first (ordinary learning: no plateau, no delayed generalisation).
6. Cross-checks (they only change the confidence): parameter velocity and PCA turning angle
   are segmented the same way; a signal agrees when one of its change points lies within
   `window` of the turn. confidence = strength x (0.6 + 0.4 x share agreeing), or strength x
   0.8 without cross-checks, strength = min(1, drop / (2 min_drop)).
7. The run's health class (`health.py`): healthy, late grokker, degraded, rebound or no
   grokking, with a one-sentence reason, stored with the turn.

`detect_turn` is the function; the `turn` analyzer stores its result (artifact "turn", an
event of kind "turn" and one "loss_spike" event per spike).
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import (
    Analyzer,
    MetricsView,
    Output,
    signals_fingerprint,
)
from epochscope.collectors.analysis.health import classify_health
from epochscope.collectors.analysis.spikes import Spike, clean_spikes, detect_spikes

__all__ = ["Turn", "TurnResult", "detect_turn", "segment_piecewise_linear"]

METHOD = "first sustained fall into generalisation (PELT piecewise-linear, log10 test loss, spikes removed)"
LOSS_SERIES = ("test_loss", "val_loss")


@dataclass
class TurnResult:
    """The turn (or None with `reason`) and what it was based on."""

    epoch: int | None
    method: str
    signals: list[str]
    confidence: float
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    grid_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    grid_log_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grid_fit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    breakpoints: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def scalars(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "method": self.method,
            "signals": list(self.signals),
            "confidence": round(float(self.confidence), 4),
            "reason": self.reason,
            **self.details,
        }


# -- segmentation -------------------------------------------------------------------------------------
def _line_cost():
    from ruptures.base import BaseCost

    class LinearTrendCost(BaseCost):
        """Residual sum of squares of the least-squares line on [start, end), O(1) by prefix sums."""

        model = "linear_trend"
        min_size = 2

        def fit(self, signal):
            self.signal = signal
            y, x = signal[:, 0], signal[:, 1]

            def cum(v):
                return np.concatenate([[0.0], np.cumsum(v)])

            # plain Python floats: error() is called O(n^2) times by PELT
            self._c = list(
                zip(*(cum(v).tolist() for v in (x, y, x * x, x * y, y * y)), strict=True)
            )
            return self

        def error(self, start, end):
            a, b = self._c[start], self._c[end]
            n = end - start
            sx, sy, sxx, sxy, syy = b[0] - a[0], b[1] - a[1], b[2] - a[2], b[3] - a[3], b[4] - a[4]
            vx = sxx - sx * sx / n
            vy = syy - sy * sy / n
            cxy = sxy - sx * sy / n
            return max(vy - (cxy * cxy / vx if vx > 1e-15 else 0.0), 0.0)

    return LinearTrendCost()


def noise_sigma(y: np.ndarray) -> float:
    """Robust noise level of a piecewise-smooth series: MAD of second differences / sqrt(6)."""
    if len(y) < 4:
        return float(np.std(y)) if len(y) else 0.0
    d2 = np.diff(y, n=2)
    mad = np.median(np.abs(d2 - np.median(d2)))
    return float(1.4826 * mad / math.sqrt(6))


def segment_piecewise_linear(
    x: np.ndarray,
    y: np.ndarray,
    *,
    sigma: float | None = None,
    min_size: int = 3,
    pen_factor: float = 3.0,
) -> tuple[list[int], np.ndarray]:
    """PELT segmentation of y(x) into straight pieces; (breakpoint indices incl. n, fitted y)."""
    import ruptures as rpt

    n = len(y)
    if n < 2 * min_size:
        bkps = [n]
    else:
        sigma = noise_sigma(y) if sigma is None else sigma
        span = float(np.ptp(y)) or 1.0
        sigma = max(sigma, 1e-4 * span, 1e-9)
        xs = (x - x[0]) / max(float(x[-1] - x[0]), 1e-12)
        algo = rpt.Pelt(custom_cost=_line_cost(), min_size=min_size, jump=1).fit(np.c_[y, xs])
        bkps = [int(b) for b in algo.predict(pen=pen_factor * sigma**2 * math.log(n))]
    fit = np.empty(n)
    start = 0
    for end in bkps:
        xs, ys = x[start:end].astype(np.float64), y[start:end]
        if end - start >= 2 and np.ptp(xs) > 0:
            slope, icpt = np.polyfit(xs, ys, 1)
            fit[start:end] = slope * xs + icpt
        else:
            fit[start:end] = ys.mean()
        start = end
    return bkps, fit


def _bin(epochs: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(epochs) <= max_points:
        return epochs.astype(np.float64), values
    edges = np.linspace(epochs[0], epochs[-1], max_points + 1)
    which = np.clip(np.searchsorted(edges, epochs, side="right") - 1, 0, max_points - 1)
    return _bin_medians(which, epochs), _bin_medians(which, values)


def _bin_medians(which: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The median of `values` in each non-empty bin, bins in ascending order: the same
    numbers as np.median per bin (the middle value, or the mean of the two middle ones),
    for all bins in one sort instead of one call per bin."""
    order = np.lexsort((values, which))
    sorted_values = np.asarray(values, dtype=np.float64)[order]
    _, starts, counts = np.unique(which[order], return_index=True, return_counts=True)
    lo = sorted_values[starts + (counts - 1) // 2]
    hi = sorted_values[starts + counts // 2]
    return np.where(counts % 2 == 1, lo, (lo + hi) / 2)


def _elements(bkps: list[int], fit: np.ndarray, x: np.ndarray) -> list[dict[str, Any]]:
    """Pieces and the jumps between them, in order: start/end grid index, drop (decades), slope."""
    out = []
    start = 0
    for i, end in enumerate(bkps):
        out.append(
            {
                "kind": "piece",
                "start": start,
                "end": end - 1,
                "drop": float(fit[start] - fit[end - 1]),
            }
        )
        if i + 1 < len(bkps):
            out.append(
                {
                    "kind": "jump",
                    "start": end - 1,
                    "end": end,
                    "drop": float(fit[end - 1] - fit[end]),
                }
            )
        start = end
    for e in out:
        dx = float(x[e["end"]] - x[e["start"]])
        e["slope"] = e["drop"] / dx if dx > 0 else (math.inf if e["drop"] > 0 else 0.0)
    return out


def _first_epoch_at_least(series: tuple[np.ndarray, np.ndarray] | None, level: float) -> int | None:
    if series is None:
        return None
    epochs, values = series
    hit = np.nonzero(np.asarray(values) >= level)[0]
    return int(epochs[hit[0]]) if hit.size else None


def _hinge_refine(epochs: np.ndarray, y: np.ndarray, lo: float, hi: float, coarse: float,
                  knee_from: float | None = None) -> int:  # fmt: skip
    """Knee of a continuous two-piece line fit on the raw points in [lo, hi], the loss falling
    faster after it; knees are tried from `knee_from` (default lo) on, at most 400 of them."""
    sel = (epochs >= lo) & (epochs <= hi)
    t, v = epochs[sel].astype(np.float64), y[sel]
    if len(t) < 5:
        return int(round(coarse))
    cands = t[1:-1]
    if knee_from is not None:
        cands = cands[cands >= knee_from] if np.any(cands >= knee_from) else cands[-1:]
    if len(cands) > 400:
        cands = cands[np.linspace(0, len(cands) - 1, 400).round().astype(int)]
    best, best_c = math.inf, coarse
    A = np.empty((len(t), 3))  # [1, min(t - c, 0), max(t - c, 0)], refilled per knee (not np.c_: slow)
    A[:, 0] = 1.0
    for c in cands:
        d = t - c
        np.minimum(d, 0, out=A[:, 1])
        np.maximum(d, 0, out=A[:, 2])
        coef, *_ = np.linalg.lstsq(A, v, rcond=None)
        sse = float(((A @ coef - v) ** 2).sum())
        if coef[2] < coef[1] and sse < best:  # the loss must fall faster after the knee
            best, best_c = sse, c
    return int(round(best_c))


def _change_near(
    series: tuple[np.ndarray, np.ndarray] | None,
    turn: int,
    window: float,
    max_points: int,
    log: bool,
) -> dict[str, Any] | None:
    """Nearest change point of another signal to the turn, and whether it is within `window`."""
    if series is None:
        return None
    epochs, values = series
    ok = np.isfinite(values) & ((values > 0) if log else True)
    epochs, values = epochs[ok], values[ok]
    if len(epochs) < 8:
        return None
    y = np.log10(values) if log else values.astype(np.float64)
    x, yb = _bin(epochs, y, max_points)
    bkps, _ = segment_piecewise_linear(x, yb)
    cps = [float(x[b]) for b in bkps[:-1]]
    if not cps:
        return {"nearest_change": None, "distance": None, "agrees": False}
    nearest = min(cps, key=lambda c: abs(c - turn))
    return {
        "nearest_change": int(round(nearest)),
        "distance": int(round(abs(nearest - turn))),
        "agrees": bool(abs(nearest - turn) <= window),
    }


def _clean_series(series, name: str) -> tuple[np.ndarray, np.ndarray, list[Spike]]:
    """(epochs, log10 values with spikes removed, spikes) of a positive loss series."""
    epochs = np.asarray(series[0], dtype=np.int64)
    values = np.asarray(series[1], dtype=np.float64)
    order = np.argsort(epochs, kind="stable")
    epochs, values = epochs[order], values[order]
    ok = np.isfinite(values) & (values > 0)
    epochs, values = epochs[ok], values[ok]
    spikes = detect_spikes(epochs, values, name)
    return epochs, clean_spikes(np.log10(values)), spikes


def _generalised_loss_only(x: np.ndarray, y: np.ndarray, min_drop: float, sustain_pts: int,
                           start_idx: int) -> tuple[int | None, float | None]:  # fmt: skip
    """Grid index where the cleaned, binned log loss first lies `min_drop` below its running
    maximum (from `start_idx`) and stays more than `min_drop` / 2 below it for `sustain_pts`."""
    peak = -np.inf
    for i in range(start_idx, len(y)):
        peak = max(peak, y[i])
        if y[i] <= peak - min_drop and np.all(y[i : i + sustain_pts] < peak - 0.5 * min_drop):
            return i, float(peak)
    return None, None


def detect_turn(
    test_loss: tuple[np.ndarray, np.ndarray],
    *,
    velocity: tuple[np.ndarray, np.ndarray] | None = None,
    curvature: tuple[np.ndarray, np.ndarray] | None = None,
    train_acc: tuple[np.ndarray, np.ndarray] | None = None,
    test_acc: tuple[np.ndarray, np.ndarray] | None = None,
    train_loss: tuple[np.ndarray, np.ndarray] | None = None,
    min_drop: float = 1.0,
    min_plateau: float = 0.02,
    min_step: float = 0.02,
    max_points: int = 400,
    window: float = 0.1,
    min_points: int = 20,
    late_share: float = 0.6,
    loss_name: str = "test_loss",
) -> TurnResult:
    """Find the turn in a test-loss curve (epochs, values); see the module doc for the method.

    `train_acc` / `test_acc` place the generalisation mark (95%) and the memorisation mark
    (99%); without them the loss alone decides. `train_loss` is only searched for spikes.
    `window` (share of the run's epoch span) bounds how far a cross-check change point may be
    from the turn to agree. The result's details hold the spikes and the run's health.
    """
    res, strength, span = _located(
        test_loss, train_acc=train_acc, test_acc=test_acc, train_loss=train_loss,
        min_drop=min_drop, min_plateau=min_plateau, min_step=min_step, max_points=max_points,
        min_points=min_points, late_share=late_share, loss_name=loss_name,
    )  # fmt: skip
    if res.epoch is None:
        return res
    # cross-checks: they only change the confidence (step 6 of the module doc)
    checks: dict[str, Any] = {}
    for name, series, log in (("velocity", velocity, True), ("pca_curvature", curvature, False)):
        found = _change_near(series, res.epoch, window * span, max_points, log)
        if found is not None:
            checks[name] = found
            res.signals.append(name)
    if checks:
        agree = sum(c["agrees"] for c in checks.values()) / len(checks)
        res.confidence = strength * (0.6 + 0.4 * agree)
    res.details["cross_checks"] = checks
    return res


_LOCATED: OrderedDict[bytes, tuple[TurnResult, float, float]] = OrderedDict()
_LOCATED_KEEP = 8
_LOCATED_LOCK = threading.Lock()


def _located(test_loss: tuple[np.ndarray, np.ndarray], **kwargs: Any
             ) -> tuple[TurnResult, float, float]:
    """`_locate`, remembered for the last few distinct inputs (a copy each time): the `turn`
    and `phases` analyzers of one run both need the turn of the same curves, and finding it
    (PELT) is most of what analysing a metrics-only bundle costs."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr(sorted((k, v) for k, v in kwargs.items() if not isinstance(v, tuple))).encode())
    for series in (test_loss, *(kwargs[k] for k in ("train_acc", "test_acc", "train_loss"))):
        for part in (series if series is not None else ()):
            a = np.ascontiguousarray(part)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        h.update(b"|")
    key = h.digest()
    with _LOCATED_LOCK:
        hit = _LOCATED.get(key)
        if hit is not None:
            _LOCATED.move_to_end(key)
    if hit is None:
        hit = _locate(test_loss, **kwargs)
        with _LOCATED_LOCK:
            _LOCATED[key] = hit
            while len(_LOCATED) > _LOCATED_KEEP:
                _LOCATED.popitem(last=False)
    return copy.deepcopy(hit)


def _locate(
    test_loss: tuple[np.ndarray, np.ndarray],
    *,
    train_acc: tuple[np.ndarray, np.ndarray] | None,
    test_acc: tuple[np.ndarray, np.ndarray] | None,
    train_loss: tuple[np.ndarray, np.ndarray] | None,
    min_drop: float,
    min_plateau: float,
    min_step: float,
    max_points: int,
    min_points: int,
    late_share: float,
    loss_name: str,
) -> tuple[TurnResult, float, float]:
    """Steps 1-5 and 7 of the module doc: (the turn before cross-checks, its strength, the
    binned grid's epoch span); the confidence is strength x 0.8 until cross-checked."""
    epochs, y_raw, spikes = _clean_series(test_loss, loss_name)
    if train_loss is not None:
        spikes += _clean_series(train_loss, "train_loss")[2]
    spikes.sort(key=lambda s: s.peak_epoch)
    t99 = _first_epoch_at_least(train_acc, 0.99)
    t95 = _first_epoch_at_least(test_acc, 0.95)
    details: dict[str, Any] = {
        "train_acc_99_epoch": t99,
        "test_acc_95_epoch": t95,
        "loss_series": loss_name,
        "spikes": [s.payload() for s in spikes],
        "n_spikes": len(spikes),
    }
    n_loss_spikes = sum(s.series == loss_name for s in spikes)
    signals = [loss_name]
    grid: dict[str, np.ndarray] = {}

    def result(epoch: int | None, confidence: float, reason: str | None, extra: dict[str, Any],
               generalised: int | None = None, plateau: float | None = None) -> TurnResult:  # fmt: skip
        d = {**details, **extra}
        span = float(epochs[-1] - epochs[0]) if len(epochs) else 0.0
        health, why = classify_health(
            turn=epoch, turn_reason=reason, generalised_epoch=generalised,
            loss=(epochs, y_raw), plateau_log=plateau, test_acc=test_acc,
            sustain=max(0.02 * span, 1.0), min_drop=min_drop, late_share=late_share,
            n_spikes=n_loss_spikes,
        )  # fmt: skip
        d["health"], d["health_reason"] = health, why
        res = TurnResult(epoch, METHOD, signals, confidence, reason, d)
        for k, v in grid.items():
            setattr(res, k, v)
        return res

    if len(epochs) < min_points:
        return result(None, 0.0, f"too few finite {loss_name} points ({len(epochs)} < {min_points})", {}), 0.0, 0.0
    x, y = _bin(epochs, y_raw, max_points)
    sigma = max(noise_sigma(y), 1e-3)
    bkps, fit = segment_piecewise_linear(x, y, sigma=sigma)
    span = float(x[-1] - x[0])
    base: dict[str, Any] = {"noise_decades": round(sigma, 5), "n_points": int(len(epochs))}
    grid.update({
        "grid_epochs": np.round(x).astype(np.int64),
        "grid_log_loss": y,
        "grid_fit": fit,
        "breakpoints": np.asarray([int(round(x[b])) for b in bkps[:-1]], dtype=np.int64),
    })  # fmt: skip
    sustain_pts = max(3, int(np.ceil(0.02 * len(x))))
    memorised_first = t99 is not None and (t95 is None or t99 < t95)
    # the plateau the fall leaves: the highest level after memorisation (or the whole curve)
    lo_idx = int(np.searchsorted(x, t99)) if memorised_first else 0
    lo_idx = min(lo_idx, len(x) - 1)

    # -- G: where the run has generalised
    if test_acc is not None:
        if t95 is None:
            best = float(np.nanmax(test_acc[1])) if len(test_acc[1]) else float("nan")
            return result(None, 0.0, f"no turn: test accuracy never reaches 95% (best {100 * best:.1f}%)", base), 0.0, 0.0
        g_idx = min(int(np.searchsorted(x, t95)), len(x) - 1)
        g_epoch = int(t95)
    else:
        g_idx, _peak = _generalised_loss_only(x, y, min_drop, sustain_pts, lo_idx)
        if g_idx is None:
            return result(None, 0.0, f"no turn: {loss_name} never falls {min_drop:g} decade(s) below its "
                          f"plateau and stays there", base), 0.0, 0.0  # fmt: skip
        g_epoch = int(round(x[g_idx]))

    # -- THE fall: the chain of descending elements that carries the loss to G
    elements = _elements(bkps, fit, x)
    sig = max(2 * sigma, min_step)
    falls: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for e in elements:
        # a piece that descends starts or continues a fall; a jump between pieces continues
        # it unless it rises (the small steps between the pieces of one curve are neutral)
        if e["end"] > lo_idx and (e["drop"] > sig or (current and e["kind"] == "jump" and e["drop"] > -sig)):
            current.append(e)
        else:
            if current:
                falls.append(current)
            current = []
    if current:
        falls.append(current)
    falls = [[e for e in f if e["drop"] > sig or e is not f[-1]] for f in falls]
    falls = [f for f in falls if f]
    holding = [f for f in falls if f[0]["start"] <= g_idx <= f[-1]["end"]]
    before = [f for f in falls if f[-1]["end"] <= g_idx]
    fall = holding[0] if holding else (before[-1] if before else None)
    if fall is None:  # G reached without a resolved descent: the knee of the loss before G
        drop = float(np.max(y[lo_idx : g_idx + 1]) - y[g_idx]) if g_idx >= lo_idx else 0.0
        fall_start, fall_end = lo_idx, g_idx
    else:
        fall = [dict(e, start=max(e["start"], lo_idx)) for e in fall]
        drop = float(sum(e["drop"] for e in fall))
        fall_start, fall_end = fall[0]["start"], fall[-1]["end"]
    plateau_level = float(np.max(fit[lo_idx : fall_start + 1])) if fall_start >= lo_idx else float(fit[fall_start])
    floor_level = float(fit[fall_end])
    tail = y_raw[epochs >= epochs[-1] - max(0.05 * span, 1)]
    base.update({
        "generalised_epoch": g_epoch,
        "drop_decades": round(drop, 4),
        "plateau_level": round(10**plateau_level, 6),
        "floor_level": round(10**floor_level, 6),
        "final_level": round(10 ** float(np.median(tail)), 6),
        "fall_start_epoch": int(round(x[fall_start])),
        "fall_end_epoch": int(round(x[fall_end])),
    })  # fmt: skip
    # the knee of a continuous two-piece fit on the raw (cleaned) points from the plateau
    # before the fall to G: the turn, somewhere between the fall's start and G
    reach = max(g_idx - fall_start, sustain_pts)
    lo = float(x[max(lo_idx, fall_start - reach)])
    turn = _hinge_refine(epochs, y_raw, lo, float(g_epoch), float(x[fall_start]),
                         knee_from=float(x[fall_start]))  # fmt: skip
    floor_epoch = int(t99) if memorised_first else int(epochs[0])
    turn = int(min(max(turn, floor_epoch), g_epoch))
    if not memorised_first and turn - x[0] < min_plateau * span:
        return result(None, 0.0, f"no turn: {loss_name} falls from the start, there is no plateau "
                      "before the fall (no delayed generalisation)", base), 0.0, 0.0  # fmt: skip
    strength = min(1.0, drop / (2 * min_drop))
    base["cross_checks"] = {}  # filled by detect_turn
    if t99 is not None and t95 is not None:
        base["between_acc_marks"] = bool((t99 <= turn or not memorised_first) and turn <= t95)
    return (result(turn, strength * 0.8, None, base, generalised=g_epoch, plateau=plateau_level),
            strength, span)


class Turn(Analyzer):
    """Detects the turn (onset of generalisation), the loss spikes and the run's health."""

    name = "turn"
    version = "2"
    consumes = "metrics"
    description = (
        "Onset of generalisation: the start of the first sustained fall of the test loss into "
        "generalisation (PELT change points on log test loss, spikes removed, placed between "
        "the 99% train and 95% test accuracy marks where recorded), cross-checked with "
        "parameter velocity and PCA curvature; loss spikes as events; the run's health class."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"min_drop": 1.0, "min_plateau": 0.02, "window": 0.1, "max_points": 400,
                "late_share": 0.6}  # fmt: skip

    @staticmethod
    def _loss(view: MetricsView) -> str | None:
        return next((n for n in LOSS_SERIES if view.has(n)), None)

    def applies_to(self, view: MetricsView) -> str | None:
        return None if self._loss(view) else f"no {' or '.join(LOSS_SERIES)} series"

    def _signals(self, view: MetricsView) -> dict[str, Any]:
        out: dict[str, Any] = {"loss": view.series(self._loss(view))}
        for name in ("train_acc", "test_acc", "train_loss"):
            out[name] = view.series(name) if view.has(name) else None
        if out["test_acc"] is None and view.has("val_acc"):
            out["test_acc"] = view.series("val_acc")
        out["velocity"] = view.series("param_velocity") if view.has("param_velocity") else None
        traj = view.artifact("trajectory")
        out["curvature"] = None
        if traj is not None:
            if out["velocity"] is None and "velocity" in traj.names:
                out["velocity"] = traj.per_epoch("velocity")
            if "pca_turn_angle" in traj.names:
                out["curvature"] = traj.per_epoch("pca_turn_angle")
        return out

    def inputs(self, view: MetricsView) -> str:
        return signals_fingerprint(self._signals(view))

    def compute_metrics(self, view: MetricsView) -> Output:
        s = self._signals(view)
        res = detect_turn(
            s["loss"],
            velocity=s["velocity"],
            curvature=s["curvature"],
            train_acc=s["train_acc"],
            test_acc=s["test_acc"],
            train_loss=s["train_loss"],
            loss_name=self._loss(view),
            **self.params,
        )
        epochs, idx = np.unique(res.grid_epochs, return_index=True)
        events = []
        if res.epoch is not None:
            events.append(
                {
                    "epoch": res.epoch,
                    "kind": "turn",
                    "message": f"turn (onset of generalisation) at epoch {res.epoch}, "
                    f"confidence {res.confidence:.2f}",
                    "payload": {
                        "confidence": round(res.confidence, 4),
                        "method": res.method,
                        "signals": res.signals,
                        "health": res.details["health"],
                        "analyzer_version": self.version,
                    },
                }
            )
        for sp in res.details["spikes"]:
            rec = sp["recovery_epoch"]
            events.append({
                "epoch": sp["peak_epoch"],
                "kind": "loss_spike",
                "message": f"{sp['series']} spike: +{sp['size_decades']:.2f} decades at epoch "
                + f"{sp['peak_epoch']}, " + (f"recovered by {rec}" if rec is not None else "not recovered"),
                "payload": {**sp, "analyzer_version": self.version},
            })  # fmt: skip
        return Output(
            epochs=epochs,
            per_epoch={
                "log10_loss": res.grid_log_loss[idx].astype(np.float64),
                "fit": res.grid_fit[idx].astype(np.float64),
            },
            summary={"breakpoints": res.breakpoints},
            scalars=res.scalars(),
            events=events,
        )
