"""The three phases of grokking (Nanda et al. 2023), found from the progress measures.

Memorisation, circuit formation, cleanup (docs/analysis.md, "Phases"):

- memorisation: from the start until the train accuracy first reaches 99% (without accuracy:
  until the train loss is 2 decades below its first value);
- circuit formation: from there until the turn (the test loss starts its sustained fall,
  `turn.detect_turn`); during it the restricted loss falls and the excluded loss rises while
  the test loss stays high;
- cleanup: from the turn until the test loss and the restricted loss have both levelled
  off: the first epoch after the turn from which the test loss stays within `level`
  decades (0.3, x2) of its final value (the median of the run's last 5%), and the same
  for the restricted loss (test pairs when known); the later of the two.

Alongside: the first epochs where the restricted loss and the test loss fall below 1 (the
restricted loss should lead) and the excluded loss at the phase boundaries (it should rise).
A phase that the run has not reached is reported as such (e.g. a run stopped before its
turn), never guessed. The analyzer stores the phases as scalars and one "phase" event each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import (
    Analyzer,
    MetricsView,
    Output,
    signals_fingerprint,
)
from epochscope.collectors.analysis.turn import LOSS_SERIES, detect_turn

__all__ = ["Phases", "find_phases"]

PHASES = ("memorisation", "circuit formation", "cleanup")


def _first_below(epochs: np.ndarray, values: np.ndarray, level: float) -> int | None:
    hit = np.nonzero(np.asarray(values) < level)[0]
    return int(epochs[hit[0]]) if hit.size else None


def _levelled(epochs: np.ndarray, values: np.ndarray, after: int, level: float) -> int | None:
    """First epoch >= after from which log10(values) stays within `level` of its final value."""
    ok = np.isfinite(values) & (values > 0)
    e, y = epochs[ok], np.log10(values[ok])
    if len(e) < 3:
        return None
    span = e[-1] - e[0]
    final = float(np.median(y[e >= e[-1] - max(0.05 * span, 1)]))
    outside = np.nonzero((e >= after) & (np.abs(y - final) > level))[0]
    if not outside.size:
        first = np.nonzero(e >= after)[0]
        return int(e[first[0]]) if first.size else None
    nxt = outside[-1] + 1
    if nxt >= len(e) or e[-1] - e[nxt] < 0.05 * span:  # still moving at the end of the run
        return None
    return int(e[nxt])


def _last_outside(epochs: np.ndarray, values: np.ndarray, after: int, level: float) -> tuple[int, float] | None:
    """The last epoch >= after where log10(values) is more than `level` from its final value,
    and that final value (for saying why a loss has not levelled off)."""
    ok = np.isfinite(values) & (values > 0)
    e, y = epochs[ok], np.log10(values[ok])
    if len(e) < 3:
        return None
    final = float(np.median(y[e >= e[-1] - max(0.05 * (e[-1] - e[0]), 1)]))
    outside = np.nonzero((e >= after) & (np.abs(y - final) > level))[0]
    return (int(e[outside[-1]]), 10**final) if outside.size else None


def _at(epochs: np.ndarray, values: np.ndarray, epoch: int | None) -> float | None:
    if epoch is None or not len(epochs):
        return None
    i = int(np.clip(np.searchsorted(epochs, epoch), 0, len(epochs) - 1))
    return float(values[i])


def find_phases(
    *,
    test_loss: tuple[np.ndarray, np.ndarray],
    train_loss: tuple[np.ndarray, np.ndarray] | None = None,
    train_acc: tuple[np.ndarray, np.ndarray] | None = None,
    test_acc: tuple[np.ndarray, np.ndarray] | None = None,
    restricted: tuple[np.ndarray, np.ndarray] | None = None,
    excluded: tuple[np.ndarray, np.ndarray] | None = None,
    level: float = 0.3,
) -> dict[str, Any]:
    """Phase boundaries and the progress-measure readings behind them (see the module doc)."""
    e_te = np.asarray(test_loss[0], dtype=np.int64)
    last = int(e_te[-1]) if len(e_te) else 0
    out: dict[str, Any] = {"last_epoch": last, "method": "train acc 99% | turn | test & restricted loss level off"}
    mem_end = None
    if train_acc is not None:
        hit = np.nonzero(np.asarray(train_acc[1]) >= 0.99)[0]
        mem_end = int(train_acc[0][hit[0]]) if hit.size else None
        out["memorisation_rule"] = "train accuracy first >= 99%"
    elif train_loss is not None:
        e, v = np.asarray(train_loss[0]), np.asarray(train_loss[1], dtype=np.float64)
        ok = np.isfinite(v) & (v > 0)
        if ok.any():
            mem_end = _first_below(e[ok], v[ok], float(v[ok][0]) / 100)
        out["memorisation_rule"] = "train loss first 2 decades below its first value"
    turn = detect_turn(test_loss, train_acc=train_acc, test_acc=test_acc, train_loss=train_loss)
    out["turn_epoch"] = turn.epoch
    cleanup_end, why = None, None
    if turn.epoch is not None:
        losses = [("test loss", e_te, np.asarray(test_loss[1], dtype=np.float64))]
        if restricted is not None:
            losses.append(("restricted loss", np.asarray(restricted[0]), np.asarray(restricted[1], dtype=np.float64)))
        ends = [_levelled(e, v, turn.epoch, level) for _, e, v in losses]
        cleanup_end = None if None in ends else max(ends)
        if cleanup_end is None:
            # Say which loss has not levelled off and where it last left the band around its end value
            # (a loss still falling and one that keeps spiking read differently).
            parts = []
            for (name, e, v), end in zip(losses, ends, strict=True):
                got = _last_outside(e, v, turn.epoch, level) if end is None else None
                if got is not None:
                    parts.append(f"the {name} is more than x{10**level:.0f} from its final {got[1]:.3g} "
                                 f"as late as epoch {got[0]}")
            why = ("not levelled off by the end of the run: " + "; ".join(parts) if parts
                   else "the test or restricted loss is still moving at the end of the run")
    bounds = {
        "memorisation": (0, mem_end, None if mem_end else "train accuracy never reaches 99%"),
        "circuit formation": (mem_end, turn.epoch if mem_end is not None else None,
                              None if turn.epoch else (turn.reason or "no turn")),
        "cleanup": (turn.epoch, cleanup_end, why if turn.epoch else "no turn"),
    }  # fmt: skip
    phases = []
    for name in PHASES:
        start, end, reason = bounds[name]
        phases.append({"phase": name, "start": start, "end": end,
                       "reason": None if end is not None else (reason or "not reached")})  # fmt: skip
    out["phases"] = phases
    out["n_phases_found"] = sum(p["end"] is not None for p in phases)
    if restricted is not None:
        re_, rv = np.asarray(restricted[0]), np.asarray(restricted[1], dtype=np.float64)
        out["restricted_below_1_epoch"] = _first_below(re_, rv, 1.0)
    out["test_below_1_epoch"] = _first_below(e_te, np.asarray(test_loss[1]), 1.0)
    if excluded is not None:
        ee, ev = np.asarray(excluded[0]), np.asarray(excluded[1], dtype=np.float64)
        out["excluded_loss_at"] = {
            "memorisation_end": _at(ee, ev, mem_end),
            "turn": _at(ee, ev, turn.epoch),
            "cleanup_end": _at(ee, ev, cleanup_end),
            "last": float(ev[-1]) if len(ev) else None,
        }
    return out


class Phases(Analyzer):
    """Memorisation, circuit formation and cleanup found from the progress measures."""

    name = "phases"
    version = "2"  # 2: the reason says which loss has not levelled off, and where
    consumes = "metrics"
    description = (
        "The three phases of grokking (memorisation, circuit formation, cleanup; Nanda et al. "
        "2023) from train accuracy, the turn of the test loss and the levelling off of the "
        "test and restricted loss; excluded loss at each boundary."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"level": 0.3}

    def applies_to(self, view: MetricsView) -> str | None:
        return None if any(view.has(n) for n in LOSS_SERIES) else f"no {' or '.join(LOSS_SERIES)} series"

    def _signals(self, view: MetricsView) -> dict[str, Any]:
        loss = next(n for n in LOSS_SERIES if view.has(n))
        out: dict[str, Any] = {"test_loss": view.series(loss)}
        for name in ("train_loss", "train_acc", "test_acc"):
            out[name] = view.series(name) if view.has(name) else None
        art = view.artifact("restricted_loss")
        out["restricted"] = out["excluded"] = None
        if art is not None:
            for cand in ("restricted_loss_test", "restricted_loss"):
                if cand in art.names:
                    e, v = art.per_epoch(cand)
                    out["restricted"] = (e, np.asarray(v, dtype=np.float64).reshape(len(e), -1)[:, 0])
                    break
            if "excluded_loss" in art.names:
                e, v = art.per_epoch("excluded_loss")
                out["excluded"] = (e, np.asarray(v, dtype=np.float64).reshape(len(e), -1)[:, 0])
        return out

    def inputs(self, view: MetricsView) -> str:
        return signals_fingerprint(self._signals(view))

    def compute_metrics(self, view: MetricsView) -> Output:
        res = find_phases(**self._signals(view), level=self.params["level"])
        events = [
            {"epoch": int(p["start"]), "kind": "phase",
             "message": f"{p['phase']}: epochs {p['start']}-{p['end'] if p['end'] is not None else '?'}",
             "payload": {**p, "analyzer_version": self.version}}
            for p in res["phases"] if p["start"] is not None
        ]  # fmt: skip
        return Output(epochs=np.zeros(0, dtype=np.int64), per_epoch={}, summary={}, scalars=res,
                      events=events)  # fmt: skip
