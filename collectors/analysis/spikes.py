"""Loss spikes: short upward excursions of a loss curve above its robust running level.

Adam's "slingshot" spikes during memorisation and the spikes after grokking are events of
their own: they must neither place nor unmake the turn, and every chart draws them.

Method (docs/analysis.md, "Loss spikes"): on y = log10(loss), the running level b is a
centred running median over W points (W = 1.5% of the points, odd, 11..401; the end padded
with the median of the last W points, so a spike at the end is seen); a running median
follows monotone stretches (a memorisation rise, the grokking fall) exactly and drops
excursions shorter than W/2. A spike is a maximal run of points with y - b above
max(`min_size` / 2, 6 sigma) (sigma = 1.4826 MAD of y - b; runs less than W/4 points apart
merge) that peaks at least `min_size`
decades above the level just before it (the median of the W/2 points before its onset).
Excursions starting within the first W/2 points are not spikes. Its recovery epoch is the first epoch after the peak where y is back below the pre-spike
level plus half the spike's size (in decades); None when that does not happen in the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Spike", "clean_spikes", "detect_spikes", "running_level"]

MIN_SIZE = 0.5  # decades: a factor of ~3.2


@dataclass
class Spike:
    """One loss spike; sizes in decades of the loss."""

    series: str
    start_epoch: int
    peak_epoch: int
    recovery_epoch: int | None
    size_decades: float
    pre_level: float  # the loss before the spike (not log)
    peak_value: float

    def payload(self) -> dict:
        return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _window(n: int) -> int:
    w = int(round(0.015 * n))
    w = min(max(w, 11), 401)
    return w | 1  # odd


def running_level(y: np.ndarray, window: int | None = None) -> np.ndarray:
    """Centred running median of y over `window` points. The start repeats the first value;
    the end is padded with the median of the last `window` points, so that a spike in the
    run's last epochs stands out from the level instead of dragging it up."""
    from scipy.ndimage import median_filter

    n = len(y)
    if n == 0:
        return y.copy()
    w = window or _window(n)
    padded = np.concatenate([y, np.full(w // 2, np.median(y[-w:]))])
    return median_filter(padded, size=w, mode="nearest")[:n]


def _spans(y: np.ndarray, min_size: float, window: int | None) -> list[tuple[int, int, int, float]]:
    """(onset, peak, end exclusive, pre-level in log10) of each spike in y = log10(loss)."""
    n = len(y)
    if n < 11:
        return []
    w = window or _window(n)
    level = running_level(y, w)
    r = y - level
    sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    above = r > max(0.5 * min_size, 6.0 * sigma)
    # one spike, not several, when the excursion dips under the threshold for a few points
    gap = max(3, w // 4)
    idx = np.nonzero(above)[0]
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= gap:
            above[a:b] = True
    out = []
    i = 0
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j < n and above[j]:
            j += 1
        if i < w // 2:  # the first epochs have no level before them to stand out from
            i = j
            continue
        peak = i + int(np.argmax(y[i:j]))
        before = y[max(0, i - w // 2) : i]
        pre = float(np.median(before)) if len(before) else float(level[i])
        if y[peak] - pre >= min_size:
            out.append((i, peak, j, pre))
        i = j
    return out


def detect_spikes(
    epochs: np.ndarray,
    values: np.ndarray,
    series: str,
    *,
    min_size: float = MIN_SIZE,
    window: int | None = None,
) -> list[Spike]:
    """The spikes of a loss series (epochs, values > 0); see the module doc."""
    epochs = np.asarray(epochs)
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & (values > 0)
    epochs, y = epochs[ok], np.log10(values[ok])
    out = []
    for onset, peak, _end, pre in _spans(y, min_size, window):
        size = float(y[peak] - pre)
        back = np.nonzero(y[peak + 1 :] < pre + 0.5 * size)[0]
        rec = int(epochs[peak + 1 + back[0]]) if back.size else None
        out.append(Spike(series, int(epochs[onset]), int(epochs[peak]), rec, size, float(10**pre),
                         float(10 ** y[peak])))  # fmt: skip
    return out


def clean_spikes(y: np.ndarray, *, min_size: float = MIN_SIZE, window: int | None = None) -> np.ndarray:
    """y (log10 loss) with each spike's points replaced by the running level: what the
    curve does underneath its spikes."""
    out = np.array(y, dtype=np.float64, copy=True)
    if len(out) < 11:
        return out
    w = window or _window(len(out))
    level = running_level(out, w)
    for onset, _peak, end, _pre in _spans(out, min_size, w):
        out[onset:end] = level[onset:end]
    return out
