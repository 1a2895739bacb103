"""Restricted and excluded loss (Nanda et al. 2023, "Progress measures for grokking").

With key frequencies K (fixed for the run, chosen at the reference epoch) and, for each k in
K, the unit vectors c_k, s_k over the p x p grid, c_k(a, b) ∝ cos(2 pi k (a + b) / p) and
s_k ∝ sin(...):

- restricted loss: keep only the key-frequency part of the final-position MLP activations,
  N' = mean(N) + sum_k (c_k c_k^T + s_k s_k^T) N, map it to logits through W_out W_U, shift
  to the true logits' mean per class, and take the cross-entropy on all pairs
  (`restricted_loss`) and on the test pairs when the split is known (`restricted_loss_test`).
  Low restricted loss = the Fourier circuit alone computes the answer.
- excluded loss: remove the key-frequency directions (c_k, s_k for all k in K) from the logits
  and take the cross-entropy on the training pairs (all pairs when the split is unknown).
  It rises as the model comes to rely on the Fourier circuit instead of memorisation;
  `excluded_loss_per_freq` removes one key frequency at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, EpochData, RunInfo
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = ["RestrictedLoss", "cross_entropy", "key_parts", "per_example_ce", "sum_directions"]


def sum_directions(p: int, freqs: list[int]) -> torch.Tensor:
    """[p*p, 2 len(freqs)] unit vectors cos/sin(2 pi k (a + b) / p) over the row-major grid."""
    a = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    b = torch.arange(p, dtype=torch.float64).repeat(p)
    cols = []
    for k in freqs:
        angle = 2 * torch.pi * k * (a + b) / p
        for v in (torch.cos(angle), torch.sin(angle)):
            norm = v.norm()
            if norm > 1e-9:  # sin of the Nyquist frequency (even p) vanishes
                cols.append(v / norm)
    if not cols:
        return torch.zeros(p * p, 0, dtype=torch.float64)
    return torch.stack(cols, dim=1)


def key_parts(d: EpochData, freqs: list[int], dirs: torch.Tensor, acts: torch.Tensor
              ) -> torch.Tensor:
    """[1 + 2F, d_mlp]: the mean activation and the activations' components along the
    key-frequency directions `dirs` [p*p, 2F] (`sum_directions(p, freqs)`), memoised per epoch
    (the restricted loss and the probe traces both need them; one read of the activations)."""
    n = acts.shape[0]
    return d.get(
        "key_parts:" + ",".join(map(str, freqs)),
        lambda: torch.cat([torch.full((1, n), 1.0 / n), dirs.T]) @ acts,
    )


def per_example_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy, accurate down to tiny losses without converting to float64.

    CE = log(1 + sum_{j != y} exp(x_j - x_y)): working with differences to the label's logit
    avoids the cancellation of logsumexp(x) - x_y that makes float32 losses below ~1e-6
    meaningless (the reason Nanda et al. compute their loss in float64). Rows whose sum
    overflows (a wrong answer by more than ~80 nats) are redone with the max shifted out.
    """
    x = logits.to(torch.float32)

    def diffs(rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = rows - rows.gather(1, y[:, None])
        return d.scatter_(1, y[:, None], float("-inf"))

    s = diffs(x, labels).exp_().sum(dim=1)
    ce = torch.log1p(s)
    bad = ~torch.isfinite(s) | (s > 1e30)
    if bool(bad.any()):
        db = diffs(x[bad], labels[bad])  # the few overflowing rows, again
        m = db.max(dim=1).values
        ce[bad] = m + torch.log(torch.exp(-m) + torch.exp(db - m[:, None]).sum(dim=1))
    return ce


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, idx: np.ndarray | None = None
) -> float:
    """Mean cross-entropy (on rows `idx` if given), see `per_example_ce`."""
    if idx is not None:
        sel = torch.as_tensor(idx)
        logits, labels = logits[sel], labels[sel]
    return float(per_example_ce(logits, labels).to(torch.float64).mean())


class RestrictedLoss(Analyzer):
    """Restricted and excluded loss over the probe grid (see module doc)."""

    name = "restricted_loss"
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "Loss with only the key frequencies of the MLP activations kept (restricted) "
        "and with the key frequencies removed from the logits (excluded), Nanda et "
        "al. 2023; key frequencies fixed at the reference epoch (summary `key_freqs`)."
    )

    def applies(self, info: RunInfo) -> str | None:
        reason = super().applies(info)
        if reason is None and "W_out" not in info.shapes:
            reason = "the model has no W_out tensor"
        return reason

    def prepare(self, info: RunInfo, stored: Any, reference: Callable[[], Any]) -> None:
        self.p = int(info.p)
        if stored is not None and "key_freqs" in stored.summary_names:
            self.key_freqs = [int(k) for k in stored.summary("key_freqs")]
            self.scalars = {k: v for k, v in stored.scalars.items() if k.startswith("key_")}
        else:
            ref = reference()
            self.key_freqs = list(ref.key_freqs)
            self.scalars = {"key_epoch": ref.epoch, "key_source": ref.key_source}
        self.excluded_on = "all"
        self.dirs = sum_directions(self.p, self.key_freqs).to(torch.float32)
        self.freq_cols, start = [], 0
        for k in self.key_freqs:  # the columns of self.dirs that belong to each frequency
            width = sum_directions(self.p, [k]).shape[1]
            self.freq_cols.append(list(range(start, start + width)))
            start += width
        self._test: np.ndarray | None = None

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        rows: dict[str, list[Any]] = {}
        V = self.dirs  # [p*p, 2K], orthonormal, each orthogonal to the constant
        for d in batch:
            probe = d.probe
            labels = probe.labels
            train = probe.train_idx
            if train is not None and self._test is None:
                self._test = np.setdiff1d(np.arange(self.p * self.p), train, assume_unique=True)
            test = self._test if train is not None else None
            self.excluded_on = "train" if train is not None else "all"
            logits = d.cache["logits"].detach().to(torch.float32)
            acts = d.cache["mlp_post"].detach().to(torch.float32)
            w_out = torch.from_numpy(np.asarray(d.weights["W_out"], dtype=np.float32))
            w_logit = w_out @ torch.from_numpy(np.asarray(d.weights["W_U"], dtype=np.float32))
            n = acts.shape[0]
            ones = torch.full((1, n), 1.0 / n)
            # restricted: (mean + V V^T acts) W_out W_U, evaluated right to left (cheap); the
            # mean and the key-frequency parts of the activations come from one read of them
            parts = key_parts(d, self.key_freqs, V, acts)  # [1 + 2K, d_mlp]
            restricted = parts[:1] @ w_logit + V @ (parts[1:] @ w_logit)
            restricted = restricted + (ones @ logits - ones @ restricted)
            ce_r = per_example_ce(restricted, labels).to(torch.float64)
            # excluded: logits minus their key-frequency components, on the training pairs
            sel = torch.as_tensor(train) if train is not None else torch.arange(n)
            coef = V.T @ logits  # [2K, p]
            lg, vs, ls = logits[sel], V[sel], labels[sel]
            removed = [vs @ coef] + [vs[:, c] @ coef[c] for c in self.freq_cols]
            stacked = (lg[None] - torch.stack(removed)).reshape(-1, lg.shape[1])
            ce = per_example_ce(stacked, ls.repeat(len(removed))).reshape(len(removed), -1)
            excluded = ce.to(torch.float64).mean(dim=1).numpy()
            values = {
                "restricted_loss": float(ce_r.mean()),
                "restricted_loss_test": float(ce_r[torch.as_tensor(test)].mean())
                if test is not None
                else np.nan,
                # all key frequencies removed, then each alone: one batched loss computation
                "excluded_loss": float(excluded[0]),
                "excluded_loss_per_freq": excluded[1:],
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(np.asarray(value, dtype=np.float32))
        return {k: np.stack(v) for k, v in rows.items()}

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {"key_freqs": np.asarray(self.key_freqs, dtype=np.int64)},
            {
                **self.scalars,
                "excluded_on": self.excluded_on,
                "restricted_on": "all (and test when the split is known)",
            },
        )
