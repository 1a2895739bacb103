"""Per-input analysis: every (a, b) at every checkpoint, and each input's graduation epoch.

`inputs` (per checkpoint, from the shared forward pass over the p x p grid): whether each
input is answered correctly, its loss and its logit margin (the correct logit minus the
largest other one; > 0 correct), plus accuracy, mean loss and mean margin per input class:

- `all`; `train` and `test` (only when the bundle stores the split: otherwise NaN and listed
  in the scalar `unavailable_classes`);
- `a_eq_b` (a = b), `no_wrap` (a + b < p) and `wrap` (a + b >= p, the sum wraps around).

`input_graduation` (once per run, from the stored `inputs` rows): each input's graduation
epoch, the first checkpoint from which it stays correct at every later checkpoint (-1: wrong
at the last one), and the workbench's variant (the first checkpoint that starts `window`
consecutive correct checkpoints; roaringsurfdev/training-dynamics-workbench,
`input_trace_graduation.py`), with the share of each class graduated by every checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import (
    Analyzer,
    EpochData,
    MetricsView,
    Output,
    RunInfo,
    fingerprint,
)
from epochscope.collectors.analysis.loss import per_example_ce
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = ["CLASSES", "InputGraduation", "Inputs", "class_masks", "margin_and_loss", "margins"]

CLASSES = ("all", "train", "test", "a_eq_b", "no_wrap", "wrap")


def class_masks(p: int, train_idx: np.ndarray | None, test_idx: np.ndarray | None
                ) -> dict[str, np.ndarray | None]:
    """Boolean masks over the row-major grid per class (None: unavailable without a split)."""
    a = np.arange(p).repeat(p)
    b = np.tile(np.arange(p), p)
    masks: dict[str, np.ndarray | None] = {"all": np.ones(p * p, dtype=bool)}
    for name, idx in (("train", train_idx), ("test", test_idx)):
        if idx is None:
            masks[name] = None
        else:
            m = np.zeros(p * p, dtype=bool)
            m[idx] = True
            masks[name] = m
    masks["a_eq_b"] = a == b
    masks["no_wrap"] = a + b < p
    masks["wrap"] = a + b >= p
    return masks


def margins(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(margin, correct): correct logit minus the largest other logit per row, and margin >= 0
    (a tie counts as correct, as in training's accuracy)."""
    x = logits.to(torch.float32)
    right = x.gather(1, labels[:, None])[:, 0]
    other = x.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    margin = right - other
    return margin, margin >= 0


def margin_and_loss(logits: torch.Tensor, labels: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(margin, cross-entropy) per row from one pass over the logit differences x_j - x_y:
    the margin is minus their maximum over j != y, the loss log(1 + sum exp) as in
    `loss.per_example_ce` (rows whose sum overflows are redone there)."""
    x = logits.to(torch.float32)
    d = x - x.gather(1, labels[:, None])
    d.scatter_(1, labels[:, None], float("-inf"))
    margin = -d.amax(dim=1)
    s = d.exp_().sum(dim=1)
    loss = torch.log1p(s)
    bad = ~torch.isfinite(s) | (s > 1e30)
    if bool(bad.any()):
        loss[bad] = per_example_ce(x[bad], labels[bad])
    return margin, loss


class Inputs(Analyzer):
    """Per input (a, b): correct, loss, logit margin; and their means per input class."""

    name = "inputs"
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "For every (a, b) input: whether the model answers it correctly, its loss and its logit "
        "margin (correct logit minus the best other), row-major over the p x p grid; accuracy, "
        "mean loss and mean margin per input class (all, train, test, a = b, a + b < p, wrap)."
    )

    def prepare(self, info: RunInfo, stored: Any, reference: Any) -> None:
        self.p = int(info.p)
        self._masks: dict[str, np.ndarray | None] | None = None
        self._matrix: np.ndarray | None = None
        self.unavailable: list[str] = []

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        rows: dict[str, list[np.ndarray]] = {}
        for d in batch:
            if self._masks is None:
                self._masks = class_masks(self.p, d.probe.train_idx, d.probe.test_idx)
                self.unavailable = [c for c, m in self._masks.items() if m is None]
            logits = d.cache["logits"].detach()
            labels = d.probe.labels
            margin, loss = margin_and_loss(logits, labels)
            c, lo, mg = (margin >= 0).numpy(), loss.numpy(), margin.numpy()
            if self._matrix is None:  # [classes, inputs] weights of each class mean (NaN row: n/a)
                rows_ = [np.full(len(c), np.nan) if m is None or not m.any() else m / m.sum()
                         for m in (self._masks[name] for name in CLASSES)]
                self._matrix = np.stack(rows_)
            stats = self._matrix @ np.stack([c, lo, mg]).astype(np.float64).T  # [classes, 3]
            acc, mloss, mmargin = stats[:, 0], stats[:, 1], stats[:, 2]
            values = {
                "correct": c,
                "loss": lo.astype(np.float32),
                "margin": np.clip(mg, -65504, 65504).astype(np.float16),
                "class_acc": np.asarray(acc, dtype=np.float32),
                "class_loss": np.asarray(mloss, dtype=np.float32),
                "class_margin": np.asarray(mmargin, dtype=np.float32),
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(value)
        return {k: np.stack(v) for k, v in rows.items()}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        masks = self._masks or {}
        summary = {"classes": np.asarray(CLASSES, dtype=object)}
        if masks.get("train") is not None:
            summary["in_train"] = masks["train"]
        return summary, {
            "p": self.p,
            "layout": "row-major over the p x p grid: index a * p + b",
            "unavailable_classes": self.unavailable,
        }


def graduation(correct: np.ndarray, epochs: np.ndarray, window: int = 3
               ) -> tuple[np.ndarray, np.ndarray]:
    """(stays-correct epoch, workbench window epoch) per input from `correct` [n, inputs]:
    the first checkpoint from which every later one is correct, and the first that starts
    `window` consecutive correct ones (-1 when there is none)."""
    n = correct.shape[0]
    c = correct.astype(bool)
    # last wrong checkpoint index per input: the input stays correct from the next one
    wrong_any = ~c
    last_wrong = np.where(wrong_any.any(axis=0), n - 1 - np.argmax(wrong_any[::-1], axis=0), -1)
    stays = np.where(last_wrong < n - 1, epochs[np.minimum(last_wrong + 1, n - 1)], -1)
    if window > n:
        return stays.astype(np.int64), np.full(c.shape[1], -1, dtype=np.int64)
    csum = np.vstack([np.zeros((1, c.shape[1]), dtype=np.int64), np.cumsum(c, axis=0)])
    runs = (csum[window:] - csum[:-window]) == window  # [n - window + 1, inputs]
    first = np.where(runs.any(axis=0), np.argmax(runs, axis=0), -1)
    stable = np.where(first >= 0, epochs[np.maximum(first, 0)], -1)
    return stays.astype(np.int64), stable.astype(np.int64)


class InputGraduation(Analyzer):
    """Each input's graduation epoch and the share of each class graduated over training."""

    name = "input_graduation"
    version = "1"
    consumes = "metrics"
    description = (
        "Each input's graduation epoch (from which it stays correct at every later checkpoint; "
        "and the workbench's first run of `window` correct checkpoints), row-major over the "
        "grid, and per checkpoint the share of each input class graduated by then."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"window": 3}

    def applies_to(self, view: MetricsView) -> str | None:
        art = view.artifact("inputs")
        if art is None or len(art.epochs) == 0:
            return "needs the `inputs` artifact (per-input correctness at each checkpoint)"
        return None

    def inputs(self, view: MetricsView) -> str:
        art = view.artifact("inputs")
        if art is None:
            return ""
        return fingerprint(art.version, np.asarray(art.epochs), art.scalars.get("p"),
                           art.per_epoch("class_acc")[1])

    def compute_metrics(self, view: MetricsView) -> Output:
        art = view.artifact("inputs")
        epochs, correct = art.per_epoch("correct")
        p = int(art.scalars["p"])
        stays, stable = graduation(correct, epochs, int(self.params["window"]))
        in_train = art.summary("in_train") if "in_train" in art.summary_names else None
        masks = class_masks(p, None if in_train is None else np.nonzero(in_train)[0],
                            None if in_train is None else np.nonzero(~in_train.astype(bool))[0])
        share = np.full((len(epochs), len(CLASSES)), np.nan, dtype=np.float32)
        median = {}
        for j, name in enumerate(CLASSES):
            m = masks[name]
            if m is None or not m.any():
                median[name] = None
                continue
            g = stays[m]
            done = g[g >= 0]
            share[:, j] = [(done <= e).sum() / m.sum() for e in epochs]
            median[name] = int(np.median(done)) if len(done) else None
        return Output(
            epochs=np.asarray(epochs, dtype=np.int64),
            per_epoch={"graduated_share": share},
            summary={
                "graduation_epoch": stays,
                "graduation_epoch_window": stable,
                "classes": np.asarray(CLASSES, dtype=object),
            },
            scalars={
                "p": p,
                "window": int(self.params["window"]),
                "median_graduation": median,
                "never_graduated": int((stays < 0).sum()),
                "unavailable_classes": [c for c, m in masks.items() if m is None],
            },
        )
