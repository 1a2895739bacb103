"""Run health: the class a researcher gives a grokking run, with the reason in one sentence.

Exactly one of (rule in docs/analysis.md, "Run health"):

- "no grokking": there is no turn (the run never generalises after a plateau);
- "degraded": it generalised, then lost it and has not recovered by the end of the run;
- "rebound": it generalised, lost it for a while, and recovered;
- "late grokker": it generalised for good, but its turn comes after `late_share` of the run;
- "healthy": it generalised at its turn and kept it to the end (spikes may come and go).

"Generalised" means test accuracy >= 95% where accuracy is recorded, else the test loss at
least `min_drop` decades below its plateau. "Lost it" means the running median (over the
sustain window) of test accuracy below 90%, or of the log test loss back within
`min_drop` / 2 decades of the plateau; "at the end" is the median of the last 5% of the run.
A loss spike is shorter than the sustain window and does not count as losing it, and
neither does the rise itself: "lost" is judged where the whole window lies after generalising.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HEALTH_CLASSES", "classify_health"]

HEALTH_CLASSES = ("healthy", "late grokker", "degraded", "rebound", "no grokking")
LOST_ACC = 0.90
GOOD_ACC = 0.95


def _running_median(v: np.ndarray, w: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    return median_filter(v, size=max(1, w) | 1, mode="nearest") if len(v) else v


def classify_health(
    *,
    turn: int | None,
    turn_reason: str | None,
    generalised_epoch: int | None,
    loss: tuple[np.ndarray, np.ndarray],
    plateau_log: float | None,
    test_acc: tuple[np.ndarray, np.ndarray] | None,
    sustain: float,
    min_drop: float = 1.0,
    late_share: float = 0.6,
    n_spikes: int = 0,
) -> tuple[str, str]:
    """(health class, one-sentence reason); `loss` in log10, `sustain` in epochs."""
    if turn is None or generalised_epoch is None:
        why = (turn_reason or "no turn").removeprefix("no turn: ")
        return "no grokking", f"No turn: {why}."
    if test_acc is not None:
        e, v = np.asarray(test_acc[0]), np.asarray(test_acc[1], dtype=np.float64)
        ok = np.isfinite(v)
        e, v = e[ok], v[ok]
        what = "test accuracy"

        def fmt(x: float) -> str:
            return f"{100 * x:.1f}%"

        lost_at, good_at, higher_is_better = LOST_ACC, GOOD_ACC, True
    else:
        e, v = np.asarray(loss[0]), np.asarray(loss[1], dtype=np.float64)
        what = "test loss"

        def fmt(x: float) -> str:
            return f"{10**x:.3g}"

        lost_at = good_at = plateau_log - 0.5 * min_drop
        higher_is_better = False

    def lost_if(s):
        return s < lost_at if higher_is_better else s > lost_at

    def good_if(s):
        return s >= good_at if higher_is_better else s <= good_at

    span = float(e[-1] - e[0]) if len(e) else 0.0
    per_point = span / max(len(e) - 1, 1)
    w = int(round(sustain / max(per_point, 1e-9)))
    smooth = _running_median(v, w)
    # Losing it is judged only where the whole median window lies after generalisation: the
    # first w/2 points after it still mix in the plateau before it (not a loss, the rise).
    after = np.arange(len(v)) >= int(np.searchsorted(e, generalised_epoch)) + w // 2
    # the last w/2 points have no full window: a dip there is a spike, not a loss (the end
    # of the run is judged by its final median below)
    inside = np.arange(len(v)) < len(v) - w // 2
    lost = np.nonzero(after & inside & lost_if(smooth))[0]
    tail = v[e >= e[-1] - max(0.05 * span, 1)]
    final = float(np.median(tail)) if len(tail) else float("nan")
    spikes = f" ({n_spikes} loss spike{'s' if n_spikes != 1 else ''} along the way)" if n_spikes else ""
    if not good_if(final):
        since = f" from epoch {int(e[lost[0]])}" if lost.size else ""
        return "degraded", (f"Generalised at epoch {generalised_epoch}, then lost it{since}: {what} "
                            f"is {fmt(final)} at the end of the run.")  # fmt: skip
    if lost.size:
        back = np.nonzero((e > e[lost[-1]]) & good_if(smooth))[0]
        rec = f", recovered by epoch {int(e[back[0]])}" if back.size else ", recovered by the end"
        return "rebound", (f"Generalised at epoch {generalised_epoch}, lost it at epoch "
                           f"{int(e[lost[0]])} ({what} {fmt(float(smooth[lost[0]]))}){rec}.")  # fmt: skip
    if span > 0 and turn - e[0] > late_share * span:
        return "late grokker", (f"Turn at epoch {turn}, after {100 * late_share:.0f}% of the run's "
                                f"{int(e[-1])} epochs; generalised at epoch {generalised_epoch} and "
                                f"kept it{spikes}.")  # fmt: skip
    return "healthy", (f"Turn at epoch {turn}, generalised at epoch {generalised_epoch} and kept "
                       f"it to the end{spikes}.")  # fmt: skip
