"""Telemetry the experiments compute while they train: online CUSUM monitors, and the loss
spike after an event (a switch, an apoptosis round) measured as height and recovery time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CUSUM_MONITORS", "OnlineCusum", "measure_spikes"]

# The notes' four monitors: series name in the bundle -> the metric it watches.
CUSUM_MONITORS = {"cusum_grad": "grad_norm", "cusum_clip": "clip_fraction",
                  "cusum_tps": "tokens_per_sec", "cusum_val": "val_loss"}


@dataclass
class OnlineCusum:
    """Page's two-sided CUSUM one point at a time, as the evolution group's notes define
    their in-training monitors: standardised against a baseline of the first `baseline_n`
    points, re-baselined after each alarm (tested equal to the textbook batch recursion).
    The post-hoc `analysis.cusum` analyzer uses a trend-robust variant instead (it has the
    whole series); these live monitors keep the notes' definition.

    `update(x)` returns (S+, S-, alarm) where alarm is None or ("up"|"down", statistic).
    During a baseline window both sums are 0.
    """

    k: float = 0.5
    h: float = 4.0
    baseline_n: int = 10
    _collect: list[float] = field(default_factory=list)
    _mean: float | None = None
    _std: float = 1.0
    _sp: float = 0.0
    _sn: float = 0.0

    def update(self, value: float) -> tuple[float, float, tuple[str, float] | None]:
        if not math.isfinite(value):
            return math.nan, math.nan, None
        if self._mean is None:
            self._collect.append(float(value))
            if len(self._collect) >= self.baseline_n:
                self._mean, self._std = _baseline(self._collect)
                self._collect = []
            return 0.0, 0.0, None
        z = (value - self._mean) / self._std
        self._sp = max(0.0, self._sp + z - self.k)
        self._sn = max(0.0, self._sn - z - self.k)
        sp, sn = self._sp, self._sn
        if sp > self.h or sn > self.h:
            up = sp >= sn
            self._sp = self._sn = 0.0
            self._mean = None
            return sp, sn, ("up" if up else "down", sp if up else sn)
        return sp, sn, None


def _baseline(values: list[float]) -> tuple[float, float]:
    m = float(np.mean(values))
    s = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    floor = max(1e-8, 1e-3 * abs(m))
    return m, max(s, floor)


def measure_spikes(event_steps: list[int], steps: np.ndarray, loss: np.ndarray,
                   window: int) -> list[dict[str, Any]]:
    """The loss spike after each event: height above the pre-event level and steps to recover.

    pre_loss: mean loss over the `window` steps before the event; peak_loss: the highest loss
    in the `window` steps from the event on (height = peak - pre, 0 when it did not rise);
    recovery_steps: steps from the event until a 3-step moving average first falls back to
    pre_loss or below, searched up to the next event (-1: it did not recover by then).
    """
    steps = np.asarray(steps)
    loss = np.asarray(loss, dtype=np.float64)
    order = np.argsort(steps, kind="stable")
    steps, loss = steps[order], loss[order]
    out = []
    bounds = sorted(event_steps)
    for i, ev in enumerate(bounds):
        nxt = bounds[i + 1] if i + 1 < len(bounds) else (int(steps[-1]) + 1 if len(steps) else ev)
        before = loss[(steps < ev) & (steps >= ev - window)]
        after_mask = (steps >= ev) & (steps < nxt)
        after, after_steps = loss[after_mask], steps[after_mask]
        if not len(before) or not len(after):
            continue
        pre = float(np.mean(before))
        peak = float(np.max(after[:window]))
        smooth = np.convolve(after, np.ones(3) / 3, mode="valid") if len(after) >= 3 else after
        below = np.nonzero(smooth <= pre)[0]
        recovery = int(after_steps[below[0] + (len(after) - len(smooth))] - ev) if below.size else -1
        out.append({"step": int(ev), "pre_loss": pre, "peak_loss": peak,
                    "height": max(0.0, peak - pre), "recovery_steps": recovery})
    return out
