"""A run's headline facts, computed in one place: the report's header, the comparison table,
the site index and the SQLite catalog all read `run_facts(bundle)`.

Per metric series: the final value, the best value and its epoch, the direction that makes
a value "better" (declared with `Recorder.describe`, else guessed from the name), and
whether the series peaked and then gave back a set share of its gain ("peaked, then
degraded", as in the VAE sweep where every config peaked at epochs 10-20). Per run: the
turn and the health class of the turn analysis where it ran, the first epoch test accuracy
reached 95%, the key frequencies, the CUSUM alarms.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from epochscope.archives import Bundle
from epochscope.generator import sources as src
from epochscope.generator.context import BuildContext
from epochscope.generator.encode import ArrayStore

__all__ = ["DEGRADE_SHARE", "GROK_ACC", "MetricFacts", "RunFacts", "direction_of", "metric_facts",
           "run_facts"]

# "Peaked, then degraded": the final value has given back at least this share of the gain
# from the first value to the best one (on a lightly smoothed curve, so one noisy last
# point does not decide it).
DEGRADE_SHARE = 0.25
# Test accuracy that counts as "grokked".
GROK_ACC = 0.95
# Headline metrics shown in a run's header (the loss family first).
HEADLINE_COUNT = 6

# Name conventions, matched on the name's words (split at anything not a letter or digit).
_LOWER_WORDS = {"loss", "losses", "error", "err", "errors", "perplexity", "ppl", "nll", "mse", "mae", "rmse",
                "regret", "distortion", "kl", "bpd", "cer", "wer", "cost"}
_HIGHER_WORDS = {"acc", "accuracy", "score", "f1", "auc", "precision", "recall", "reward", "return", "iou",
                 "bleu", "rouge", "fitness", "map", "r2", "top1", "top5", "success"}
# Signals of the training process, not of how good the model is: never a headline, no best.
_PROCESS = re.compile(r"^(lr|learning_rate|grad_norm|clip_fraction|param_velocity|weight_norm|examples_per_sec|"
                      r"step_time|epoch_time|batch_size|momentum|tokens_per_sec|tps)\b|grad_norm|_lr$", re.I)
_SPLITS = ("train", "val", "valid", "validation", "test", "eval", "dev")


@dataclass
class MetricFacts:
    """The headline of one metric series."""

    name: str
    points: int
    final: float | None = None
    final_epoch: int | None = None
    best: float | None = None
    best_epoch: int | None = None
    direction: str | None = None  # "min", "max" or None (unknown)
    direction_source: str = ""  # "declared", "name" or ""
    degraded: bool = False
    degraded_text: str = ""
    unit: str = ""
    description: str = ""


@dataclass
class RunFacts:
    """Everything a run is summed up by (see the module docstring)."""

    name: str
    status: str
    final_epoch: int | None
    checkpoints: int
    analyses: list[str]
    metrics: dict[str, MetricFacts] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)  # metric names, most important first
    turn: dict[str, Any] | None = None  # {"epoch", "method", "confidence", "reason", "signals"}
    health: str | None = None  # the turn analysis' class ("healthy", "late grokker", ...)
    health_reason: str | None = None
    grok_epoch: int | None = None
    key_frequencies: list[int] | None = None
    key_frequencies_how: str | None = None
    cusum_alarms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def final(self, name: str) -> float | None:
        m = self.metrics.get(name)
        return m.final if m else None


def direction_of(name: str, declared: str | None = None) -> tuple[str | None, str]:
    """("min" | "max" | None, where it came from): the declared direction, else the name's
    convention (loss, error, perplexity: lower is better; acc, score, f1: higher)."""
    if declared in ("min", "max"):
        return declared, "declared"
    if _PROCESS.search(name):
        return None, ""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    low = any(w in _LOWER_WORDS or w.endswith("loss") for w in words)
    high = any(w in _HIGHER_WORDS or w.startswith("acc") for w in words)
    if low and not high:
        return "min", "name"
    if high and not low:
        return "max", "name"
    return None, ""


def _smooth(values: np.ndarray) -> np.ndarray:
    """The medians of up to 100 equal buckets of the finite `values`, in order: a curve that
    keeps the trend and drops single noisy points, at any length."""
    n = values.size
    buckets = min(100, n)
    size = n // buckets
    head = values[: buckets * size].reshape(buckets, size)
    out = np.median(head, axis=1)
    if n > buckets * size:  # the tail: its own bucket, so the final value is the last bucket's
        out = np.append(out, np.median(values[buckets * size:]))
    return out


def metric_facts(name: str, epochs: np.ndarray, values: np.ndarray, info: dict[str, Any] | None = None
                 ) -> MetricFacts:
    """The headline of one series (epochs sorted, one value each; NaN/inf are gaps)."""
    info = info or {}
    direction, source = direction_of(name, info.get("direction"))
    m = MetricFacts(name, int(values.size), direction=direction, direction_source=source,
                    unit=str(info.get("unit") or ""), description=str(info.get("description") or ""))
    ok = np.nonzero(np.isfinite(values))[0]
    if not ok.size:
        return m
    m.final, m.final_epoch = float(values[ok[-1]]), int(epochs[ok[-1]])
    if direction is None:
        return m
    finite = values[ok]
    i = int(np.argmin(finite) if direction == "min" else np.argmax(finite))
    m.best, m.best_epoch = float(finite[i]), int(epochs[ok[i]])
    if finite.size >= 5:
        s = _smooth(finite)
        idx = np.linspace(0, finite.size - 1, s.size).round().astype(int)  # bucket -> a point's epoch
        sign = 1.0 if direction == "max" else -1.0
        j = int(np.argmax(sign * s))
        gain = sign * (s[j] - s[0])
        lost = sign * (s[j] - s[-1])
        tiny = 1e-12 * max(1.0, abs(float(s[j])))
        if gain > tiny and lost > tiny and lost >= DEGRADE_SHARE * gain and j < s.size - 1:
            m.degraded = True
            m.degraded_text = (f"peaked at epoch {int(epochs[ok[idx[j]]])}, then gave back "
                               f"{100 * lost / gain:.0f}% of its gain since epoch {int(epochs[ok[0]])}")
    return m


def _headline_order(metrics: dict[str, MetricFacts]) -> list[str]:
    def split_rank(name: str) -> int:
        low = name.lower()
        for r, s in enumerate(_SPLITS):
            if re.search(rf"(^|[_/.]){s}($|[_/.])", low):
                return r
        return len(_SPLITS)

    def family(m: MetricFacts) -> int:
        low = m.name.lower()
        if "loss" in low:
            return 0
        if "acc" in low:
            return 1
        if m.direction_source == "declared":
            return 2
        return 3 if m.direction else 4

    have = [m for m in metrics.values() if m.final is not None and not _PROCESS.search(m.name)]
    have.sort(key=lambda m: (family(m), split_rank(m.name), m.name))
    return [m.name for m in have[:HEADLINE_COUNT]]


def run_facts(bundle: Bundle, ctx: BuildContext | None = None) -> RunFacts:
    """The headline facts of `bundle` (`ctx`: reuse a report's context and its caches; the
    facts are computed once per context)."""
    if ctx is not None and getattr(ctx, "_run_facts", None) is not None:
        return ctx._run_facts
    ctx = ctx or BuildContext(bundle, ArrayStore())
    ctx._run_facts = facts = _compute(bundle, ctx)
    return facts


def _compute(bundle: Bundle, ctx: BuildContext) -> RunFacts:
    info = bundle.metric_info if hasattr(bundle, "metric_info") else {}
    facts = RunFacts(name=bundle.name, status=bundle.status, final_epoch=ctx.final_epoch,
                     checkpoints=len(bundle.checkpoint_epochs), analyses=list(bundle.artifact_names))
    for name in bundle.series_names:
        epochs, values = ctx.series(name)
        facts.metrics[name] = metric_facts(name, epochs, values, info.get(name))
    facts.headline = _headline_order(facts.metrics)
    facts.turn = src.turn(ctx)
    if ctx.has_artifact(src.TURN):
        scalars = ctx.bundle.artifact(src.TURN).scalars
        if isinstance(scalars.get("health"), str):
            facts.health = scalars["health"]
            reason = scalars.get("health_reason")
            facts.health_reason = str(reason) if reason is not None else None
        stored = scalars.get("test_acc_95_epoch")
        if isinstance(stored, (int, float)) and not isinstance(stored, bool) and math.isfinite(stored):
            facts.grok_epoch = int(stored)
    if facts.grok_epoch is None:
        for acc in ("test_acc", "val_acc"):
            if ctx.has_series(acc):
                e, v = ctx.series(acc)
                hit = np.nonzero(v >= GROK_ACC)[0]
                facts.grok_epoch = int(e[hit[0]]) if hit.size else None
                break
    keys = src.key_frequencies(ctx)
    if keys is not None:
        facts.key_frequencies, facts.key_frequencies_how = keys
    alarms = src.cusum_alarms(ctx)
    if alarms or ctx.has_artifact(src.CUSUM):
        facts.cusum_alarms = len(alarms)
    return facts
