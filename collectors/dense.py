"""Adaptive dense traces (tier 3): per-batch detail around the epochs worth a closer look.

The loop hands every batch's cheap scalars to `DenseTracer.batch` (kept in memory for the
current epoch only) and, when `tracer.detailed` is true, its expensive arrays too (gradient
histograms, activation means/stds, dead-neuron counts). At each epoch's end `end_epoch`
checks the triggers of the telemetry design:

- a stage transition; a failed gate;
- a loss spike: the epoch's loss above `loss_spike` (2) times its average over the previous
  `rolling` (5) epochs;
- an accuracy drop of more than `accuracy_drop` (5) points from the previous epoch
  (accuracies are fractions in [0, 1]);
- a gradient explosion: a gradient norm above `gradient_explosion` (100) times its typical
  value (the median of the previous epochs);
- `force=True` (or `force_epochs`).

Anomalies (not stage transitions or forced traces) also become `alert` events carrying the
value, the threshold and the reference it was compared with. The three modes:

- ``standard``: a triggering epoch's per-batch scalars are stored as one trace; no arrays;
- ``research``: every epoch is traced, arrays included (`detailed` is always true);
- ``adaptive`` (escalation): as standard, and from the next epoch on the loop collects the
  arrays too, until `calm_epochs` (2) epochs in a row pass without a trigger; the trace covers
  the triggering epoch through the last calm one. Rows of a trace's arrays from epochs before
  escalation are NaN (they were not captured).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from epochscope.archives import telemetry as tm

__all__ = ["MODES", "DenseTracer", "DenseTriggers"]

MODES = ("standard", "research", "adaptive")
_ANOMALIES = ("loss_spike", "accuracy_drop", "gradient_explosion", "gate_failure")


@dataclass
class DenseTriggers:
    """Thresholds of the dense-trace triggers (None or False switches one off)."""

    stage_transition: bool = True
    gate_failure: bool = True
    loss_spike: float | None = 2.0          # x rolling average
    accuracy_drop: float | None = 5.0       # points, epoch over epoch
    gradient_explosion: float | None = 100.0  # x typical (median) gradient norm
    rolling: int = 5                        # epochs in the loss average
    min_history: int = 3                    # epochs seen before spikes/explosions can fire


class DenseTracer:
    """Decides when a Recorder stores dense traces, and stores them via `rec.dense`."""

    def __init__(self, rec: Any, mode: str = "adaptive", triggers: DenseTriggers | None = None, *,
                 calm_epochs: int = 2, force_epochs: tuple[int, ...] | list[int] = ()):
        if mode not in MODES:
            raise ValueError(f"dense mode {mode!r}: expected one of {', '.join(MODES)}")
        self.rec, self.mode = rec, mode
        self.triggers = triggers or DenseTriggers()
        self.calm_epochs = max(1, int(calm_epochs))
        self.force_epochs = {int(e) for e in force_epochs}
        self._batches: list[tuple[int, int, dict[str, float], dict[str, np.ndarray] | None]] = []
        self._window: dict[str, Any] | None = None  # the open adaptive trace
        self._losses: list[float] = []
        self._grads: list[float] = []
        self._last_acc: float | None = None
        self.fired: list[dict[str, Any]] = []  # every trigger so far (for displays)

    @property
    def detailed(self) -> bool:
        """Whether the loop should pass per-batch arrays for the current epoch."""
        return self.mode == "research" or self._window is not None

    @property
    def escalated(self) -> bool:
        return self._window is not None

    def batch(self, step: int, epoch: int, arrays: dict[str, Any] | None = None, **scalars: float) -> None:
        """One batch's scalars (always) and arrays (when `detailed`)."""
        arr = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()} if arrays else None
        self._batches.append((int(step), int(epoch), {k: float(v) for k, v in scalars.items()}, arr))

    def end_epoch(self, epoch: int, *, loss: float | None = None, accuracy: float | None = None,
                  grad_norm: float | None = None, transitions: list[str] | tuple[str, ...] = (),
                  gate_failures: list[str] | tuple[str, ...] = (), force: bool = False) -> list[dict[str, Any]]:
        """Check the triggers on this epoch's values, store what the mode asks; returns what fired."""
        fired = self._check(epoch, loss, accuracy, grad_norm, transitions, gate_failures,
                            force or epoch in self.force_epochs)
        for f in fired:
            if f["reason"] in _ANOMALIES:
                self.rec.event(epoch, tm.ALERT_EVENT, f["message"], payload=f)
        self.fired.extend(fired)
        batches, self._batches = self._batches, []
        reasons = [f["reason"] for f in fired]
        if self.mode == "research":
            self._store(epoch, epoch, batches, reasons[0] if reasons else "research_mode",
                        reasons or ["research_mode"], fired)
        elif self._window is not None:
            w = self._window
            w["batches"].extend(batches)
            w["fired"].extend(fired)
            w["calm"] = 0 if fired else w["calm"] + 1
            w["end"] = epoch
            if w["calm"] >= self.calm_epochs:
                self.close()
        elif fired:
            if self.mode == "standard":
                self._store(epoch, epoch, batches, reasons[0], reasons, fired)
            else:
                self._window = {"start": epoch, "end": epoch, "batches": list(batches),
                                "fired": list(fired), "calm": 0}
        self._remember(loss, accuracy, grad_norm)
        return fired

    def close(self) -> None:
        """Store the open adaptive trace, if any (call once training ends)."""
        w, self._window = self._window, None
        if w is not None:
            reasons = list(dict.fromkeys(f["reason"] for f in w["fired"]))
            self._store(w["start"], w["end"], w["batches"], reasons[0], reasons, w["fired"])

    # -- internals -----------------------------------------------------------------------------
    def _check(self, epoch: int, loss: float | None, acc: float | None, grad: float | None,
               transitions: Any, gate_failures: Any, force: bool) -> list[dict[str, Any]]:
        t, out = self.triggers, []

        def fire(reason: str, message: str, value: float | None = None,
                 threshold: float | None = None, reference: float | None = None) -> None:
            out.append({"reason": reason, "epoch": int(epoch), "message": message, "value": value,
                        "threshold": threshold, "reference": reference})

        if t.stage_transition:
            for what in transitions:
                fire("stage_transition", f"stage transition: {what}")
        if t.gate_failure:
            for what in gate_failures:
                fire("gate_failure", f"gate failed: {what}")
        if t.loss_spike and loss is not None and len(self._losses) >= t.min_history:
            ref = statistics.fmean(self._losses[-t.rolling:])
            if not math.isfinite(loss) or loss > t.loss_spike * ref:
                fire("loss_spike", f"loss {loss:.4g} > {t.loss_spike:g}x its rolling average {ref:.4g}",
                     loss, t.loss_spike * ref, ref)
        if t.accuracy_drop and acc is not None and self._last_acc is not None:
            drop = 100.0 * (self._last_acc - acc)
            if drop > t.accuracy_drop:
                fire("accuracy_drop", f"accuracy fell {drop:.1f} points ({self._last_acc:.3f} -> {acc:.3f})",
                     drop, t.accuracy_drop, self._last_acc)
        if t.gradient_explosion and grad is not None and len(self._grads) >= t.min_history:
            ref = statistics.median(self._grads)
            if not math.isfinite(grad) or (ref > 0 and grad > t.gradient_explosion * ref):
                fire("gradient_explosion",
                     f"gradient norm {grad:.4g} > {t.gradient_explosion:g}x its typical {ref:.4g}",
                     grad, t.gradient_explosion * ref, ref)
        if force:
            fire("forced", "dense trace forced")
        return out

    def _remember(self, loss: float | None, acc: float | None, grad: float | None) -> None:
        if loss is not None and math.isfinite(loss):
            self._losses.append(float(loss))
        if grad is not None and math.isfinite(grad):
            self._grads.append(float(grad))
        if acc is not None and math.isfinite(acc):
            self._last_acc = float(acc)

    def _store(self, start: int, end: int, batches: list, trigger: str, reasons: list[str],
               fired: list[dict[str, Any]]) -> None:
        if not batches:
            return
        steps = [b[0] for b in batches]
        names = list(dict.fromkeys(k for b in batches for k in b[2]))
        cols = {n: [b[2].get(n, math.nan) for b in batches] for n in names}
        cols["epoch"] = [float(b[1]) for b in batches]
        shapes = {}
        for b in batches:
            for k, v in (b[3] or {}).items():
                shapes.setdefault(k, v.shape)
        arrays = {k: np.stack([(b[3] or {}).get(k, np.full(shape, np.nan)) for b in batches])
                  for k, shape in shapes.items()}
        first = next((f for f in fired if f["reason"] == trigger), {})
        self.rec.dense(start, trigger, batches=cols, steps=steps, arrays=arrays or None, end_epoch=end,
                       reasons=list(dict.fromkeys(reasons)), value=first.get("value"),
                       threshold=first.get("threshold"), mode=self.mode,
                       message="; ".join(dict.fromkeys(f["message"] for f in fired)) or trigger)
