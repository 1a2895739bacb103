"""CUSUM on synthetic series with known change points: detection delay and false alarms.

    python benchmarks/bench_cusum.py [--seeds 10] [--n 10000]

`page_cusum` (collectors/analysis/cusum.py) with the analyzer's defaults, on the raw points
(the analyzer first bins a run to at most 300 medians; here one point is one bin), sigma
estimated from the series itself, no floors:

- false alarms per 10,000 stationary points: white Gaussian noise, Student-t (3 degrees of
  freedom, heavy tails), AR(1) noise (rho 0.5), noise on a slow linear drift (10 sigma over the
  series) and on a smooth exponential decay (a loss curve);
- detection: level shifts of 1, 2, 3 and 5 sigma every 500 points (alternating up and down),
  slope changes (a knee: +-0.1 or 0.3 sigma per point for 250 points, then flat again: two
  changes), and spikes (+8 sigma for 5 points): the
  share detected within 100 points (the right direction) and the median / 90th percentile
  delay in points from the change to the alarm; alarms matching no change count as false.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from epochscope.collectors.analysis.cusum import Cusum, page_cusum

PRM = {k: v for k, v in Cusum.defaults().items() if k != "max_points"}
MATCH = 100  # an alarm within this many points after a change detects it


def stationary(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    if kind == "gaussian":
        return rng.standard_normal(n)
    if kind == "student-t3":
        return rng.standard_t(3, n) / np.sqrt(3.0)
    if kind == "ar1 rho=0.5":
        e = rng.standard_normal(n)
        x = np.empty(n)
        x[0] = e[0]
        for i in range(1, n):
            x[i] = 0.5 * x[i - 1] + e[i] * np.sqrt(1 - 0.25)
        return x
    if kind == "linear drift":
        return 10.0 * t / n + rng.standard_normal(n)
    if kind == "exponential decay":
        return 30.0 * np.exp(-t / (n / 5)) + rng.standard_normal(n)
    raise ValueError(kind)


def with_changes(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """A noisy series with a change every 500 points; (series, [(index, direction)])."""
    x = rng.standard_normal(n)
    level = np.zeros(n)
    changes = []
    for j, c in enumerate(range(500, n - 250, 500)):
        up = j % 2 == 0
        if kind.startswith("shift"):
            size = float(kind.split()[1])
            level[c:] += size if up else -size
        elif kind.startswith("slope"):
            # a knee: the slope changes by +-q sigma per point for 250 points, then flat
            q = float(kind.split()[1])
            ramp = np.clip(np.arange(n - c, dtype=np.float64), 0, 250) * q
            level[c:] += ramp if up else -ramp
        elif kind == "spike":
            level[c : c + 5] += 8.0
            up = True
        changes.append((c, "up" if up else "down"))
        if kind.startswith("slope"):  # the ramp's end is a change too (the trend flattens)
            changes.append((c + 250, "down" if up else "up"))
    return x + level, changes


def score(alarms, changes) -> tuple[list[int], int, int]:
    """(delays of detected changes, changes missed, false alarms)."""
    delays, used = [], set()
    for c, direction in changes:
        hit = [i for i, a in enumerate(alarms) if i not in used and c <= a.index <= c + MATCH
               and a.direction == direction]  # fmt: skip
        if hit:
            used.add(hit[0])
            delays.append(alarms[hit[0]].index - c)
    false = len([a for i, a in enumerate(alarms) if i not in used
                 and not any(c <= a.index <= c + MATCH for c, _ in changes)])  # fmt: skip
    return delays, len(changes) - len(delays), false


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"page_cusum {PRM}, {args.seeds} seeds x {args.n} points each")
    print(f"\n{'stationary series':22s} {'false alarms / 10,000 points':>30s}")
    for kind in ("gaussian", "student-t3", "ar1 rho=0.5", "linear drift", "exponential decay"):
        counts = [len(page_cusum(stationary(kind, args.n, np.random.default_rng(s)), **PRM).alarms)
                  for s in range(args.seeds)]  # fmt: skip
        per = 10_000 * np.mean(counts) / args.n
        print(f"{kind:22s} {per:30.2f}   (max {max(counts)} in one series)")
    print(f"\n{'change':22s} {'detected':>9s} {'median delay':>13s} {'p90 delay':>10s} "
          f"{'false / 10k':>12s}")  # fmt: skip
    for kind in ("shift 1", "shift 2", "shift 3", "shift 5", "slope 0.1", "slope 0.3", "spike"):
        delays, missed, false, total = [], 0, 0, 0
        for s in range(args.seeds):
            x, changes = with_changes(kind, args.n, np.random.default_rng(100 + s))
            d, m, f = score(page_cusum(x, **PRM).alarms, changes)
            delays += d
            missed += m
            false += f
            total += len(changes)
        det = f"{100 * len(delays) / total:.0f}%"
        med = f"{np.median(delays):.0f}" if delays else "-"
        p90 = f"{np.percentile(delays, 90):.0f}" if delays else "-"
        name = {"shift": f"{kind} sigma", "slope": f"{kind} sigma/point"}.get(kind.split()[0], kind)
        print(f"{name:22s} {det:>9s} {med:>13s} {p90:>10s} {10_000 * false / (args.seeds * args.n):12.2f}")
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
