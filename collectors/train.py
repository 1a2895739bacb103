"""Full-batch AdamW training of the modular-addition transformer into a run bundle.

Epoch convention: epoch ``e`` (1-based) is the e-th optimizer step. The metrics logged at
epoch ``e`` describe that step: losses, accuracies and weight norms of the weights it starts
from, the gradient it takes, the lr it uses, and how far it moves the weights. The checkpoint
at epoch ``e`` holds the weights after ``e`` steps (epoch 0: the initialization); it is written
after the metrics of epoch ``e``, so every checkpoint comes with all metrics up to it.

Runs are deterministic on CPU: the same config gives bit-identical metrics and weights, which
makes `resume` and `densify` exact replays.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from epochscope.archives import open_bundle
from epochscope.collectors.checkpoints import restore_checkpoint
from epochscope.collectors.config import TrainConfig, checkpoint_schedule, config_diff, lr_at
from epochscope.collectors.model import PARAM_NAMES, Transformer, make_dataset
from epochscope.collectors.recorder import Recorder
from epochscope.errors import EpochscopeError

__all__ = [
    "TIMING_SERIES",
    "Run",
    "TrainResult",
    "densify",
    "record_split",
    "seed_global_rngs",
    "split_data",
    "split_indices",
    "stored_config",
    "torch_threads",
    "train",
]

# Scalars in the order `Run.step` returns them (per-tensor norms follow, named by PARAM_NAMES).
_SCALARS = ("train_loss", "test_loss", "train_acc", "test_acc", "grad_norm", "clip_fraction",
            "param_velocity", "weight_norm")  # fmt: skip
# Seconds between metric flushes. Each checkpoint flushes too, and a resume drops what came
# after the last checkpoint, so frequent flushes would only serve live viewers (~50 ms each).
FLUSH_INTERVAL = 10.0
# Series that measure the machine, not the math: not expected to replay bit for bit.
TIMING_SERIES = ("examples_per_sec",)


@dataclass
class TrainResult:
    """What `train` did: where the bundle is, how far it got, and the final weights' metrics."""

    bundle_path: Path
    config: TrainConfig
    epochs: int
    final: dict[str, float]
    wall_time: float
    resumed_from: int | None = None


def split_indices(config: TrainConfig) -> tuple[Tensor, Tensor]:
    """(train, test) row indices into `make_dataset(p)` (row a * p + b): a `data_seed`-seeded
    permutation of all p*p pairs, the first `train_frac` of it for training."""
    g = torch.Generator().manual_seed(config.data_seed)
    perm = torch.randperm(config.p * config.p, generator=g)
    n_train = int(config.train_frac * config.p * config.p)
    return perm[:n_train], perm[n_train:]


def split_data(config: TrainConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train_x, train_y, test_x, test_y): the pairs of `split_indices`, in permutation order."""
    tokens, labels = make_dataset(config.p)
    tr, te = split_indices(config)
    return tokens[tr], labels[tr], tokens[te], labels[te]


def record_split(rec: Recorder, config: TrainConfig) -> None:
    """Store the train/test split in the bundle (analysis reads it, never rebuilds it)."""
    tr, te = split_indices(config)
    rec.split(config.p * config.p, {"train": tr.numpy(), "test": te.numpy()},
              {"dataset": "modular_addition", "p": config.p,
               "order": "row-major over the p x p grid: index a * p + b for the input (a, b, '=')",
               "train_frac": config.train_frac, "data_seed": config.data_seed})


def seed_global_rngs(seed: int) -> None:
    """Seed torch's, numpy's and Python's global generators from one seed."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class Run:
    """Model, optimizer and data of one config; `step` advances it one full-batch epoch."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.train_x, self.train_y, self.test_x, self.test_y = split_data(config)
        # the global RNGs: nothing here draws from them, but every checkpoint saves their
        # states, so they are seeded too (same config, same bundle, RNG states included)
        seed_global_rngs(config.model_seed)
        gen = torch.Generator().manual_seed(config.model_seed)
        self.model = Transformer(config.model_config(), generator=gen)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=config.betas,
            weight_decay=config.weight_decay, foreach=True,
        )  # fmt: skip
        self.params = list(self.model.parameters())
        assert [n for n, _ in self.model.named_parameters()] == list(PARAM_NAMES)
        self._prev = [torch.empty_like(p) for p in self.params]  # weights before the step
        self.names = (
            list(_SCALARS)
            + [f"grad_norm.{n}" for n in PARAM_NAMES]
            + [f"weight_norm.{n}" for n in PARAM_NAMES]
        )

    def step(self, epoch: int) -> dict[str, float]:
        """Optimizer step number `epoch` (1-based); returns its metrics (see module doc)."""
        cfg, model, params = self.config, self.model, self.params
        t0 = time.perf_counter()
        lr = lr_at(cfg, epoch - 1)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        logits = model(self.train_x)
        loss = F.cross_entropy(logits, self.train_y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()

        with torch.no_grad():
            test_logits = model(self.test_x)
            test_loss = F.cross_entropy(test_logits, self.test_y)
            train_acc = _accuracy(logits, self.train_y)
            test_acc = _accuracy(test_logits, self.test_y)
            grads = [p.grad for p in params]
            grad_norms = torch.stack(torch._foreach_norm(grads))
            grad_norm = grad_norms.norm()
            clip_fraction = torch.zeros(())
            if cfg.grad_clip is not None:  # as clip_grad_norm_: scale by max_norm / (norm + 1e-6)
                scale = (cfg.grad_clip / (grad_norm + 1e-6)).clamp(max=1.0)
                torch._foreach_mul_(grads, scale)
                clip_fraction = 1.0 - scale  # share of the gradient norm cut away
            weight_norms = torch.stack(torch._foreach_norm(params))
            torch._foreach_copy_(self._prev, params)

            self.optimizer.step()

            torch._foreach_sub_(self._prev, params)
            velocity = torch.stack(torch._foreach_norm(self._prev)).norm()
            values = torch.cat([
                torch.stack([loss.detach(), test_loss, train_acc, test_acc, grad_norm,
                             clip_fraction, velocity, weight_norms.norm()]),
                grad_norms, weight_norms,
            ]).tolist()  # fmt: skip
        metrics = dict(zip(self.names, values, strict=True))
        if cfg.grad_clip is None:
            del metrics["clip_fraction"]
        metrics["lr"] = lr
        metrics["examples_per_sec"] = len(self.train_x) / (time.perf_counter() - t0)
        return metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Losses and accuracies of the current weights (used for the final state)."""
        out = {}
        for split, x, y in (
            ("train", self.train_x, self.train_y),
            ("test", self.test_x, self.test_y),
        ):
            logits = self.model(x)
            out[f"{split}_loss"] = F.cross_entropy(logits, y).item()
            out[f"{split}_acc"] = _accuracy(logits, y).item()
        return out


def _accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Share of rows whose label's logit is the largest (a tie counts as correct).

    Same as argmax == label barring exact ties, and several times faster on CPU.
    """
    correct = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    return (correct >= logits.amax(dim=1)).float().mean()


# ---------------------------------------------------------------- the training loop


def train(
    config: TrainConfig,
    bundle_path: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train `config` into the bundle at `bundle_path`, or continue it from its last checkpoint.

    `resume=True` requires the stored config to equal `config`; the continued run is
    bit-identical to an uninterrupted one. A NaN/inf loss records a "diverged" event, closes
    the bundle as failed and raises EpochscopeError. `progress=None`: a bar when stderr is a TTY.
    `threads`: torch intra-op threads while training (None: see `torch_threads`).
    """
    with torch_threads(threads, config):
        return _train(config, Path(bundle_path), overwrite, resume, progress)


def _train(
    config: TrainConfig, path: Path, overwrite: bool, resume: bool, progress: bool | None
) -> TrainResult:
    t_start = time.perf_counter()
    run = Run(config)
    resume_epoch, finished = None, False
    if resume:
        resume_epoch, finished = _restore_last(path, config, run)
    start = resume_epoch or 0
    rec = Recorder(path, config.to_dict(), seeds=config.seeds(), overwrite=overwrite,
                   resume=resume, flush_interval=FLUSH_INTERVAL)  # fmt: skip
    schedule = set(checkpoint_schedule(config))
    with rec, _progress_bar(progress, config, start) as bar:
        if rec.resume_epoch != resume_epoch:
            raise EpochscopeError(f"{path} changed while resuming ({rec.resume_epoch=})")
        record_split(rec, config)
        if resume_epoch is None:
            rec.checkpoint(0, run.model, run.optimizer)
        else:
            rec.event(start, "resumed", f"resumed from the checkpoint at epoch {start}")
        for epoch in range(start + 1, config.epochs + 1):
            metrics = run.step(epoch)
            rec.log(epoch, **metrics)
            if not math.isfinite(metrics["train_loss"]):
                loss = metrics["train_loss"]
                rec.event(epoch, "diverged", f"train loss is {loss} at epoch {epoch}")
                rec.close(status="failed")
                raise EpochscopeError(
                    f"training diverged at epoch {epoch} (train loss {loss}); "
                    f"the bundle {path} is kept, marked failed"
                )
            if epoch in schedule:
                rec.checkpoint(epoch, run.model, run.optimizer)
            _update_bar(bar, epoch, metrics)
        final = run.evaluate()
        if not finished:
            rec.event(config.epochs, "finished", "metrics of the final weights", payload=final)
    return TrainResult(path, config, config.epochs, final, time.perf_counter() - t_start,
                       resumed_from=start if resume else None)  # fmt: skip


def _restore_last(path: Path, config: TrainConfig, run: Run) -> tuple[int | None, bool]:
    """Check the stored config equals `config`; load the last checkpoint into `run`.

    Returns that checkpoint's epoch (None: no checkpoint) and whether the run had finished.
    """
    try:
        bundle = open_bundle(path)
    except EpochscopeError as exc:
        raise EpochscopeError(f"cannot resume {path}: {exc}") from None
    with bundle as b:
        diffs = config_diff(b.config, config.to_dict())
        if diffs:
            raise EpochscopeError(
                f"cannot resume {path}: config differs from the stored one: " + "; ".join(diffs)
            )
        epochs = b.checkpoint_epochs
        if not epochs:
            return None, False
        restore_checkpoint(b, epochs[-1], run.model, run.optimizer, restore_rng=True)
        finished = any(e["epoch"] <= epochs[-1] for e in b.events("finished"))
        return epochs[-1], finished


def stored_config(bundle_path: str | os.PathLike) -> TrainConfig:
    """The TrainConfig a bundle was trained with (what the CLI resumes with)."""
    with open_bundle(bundle_path) as b:
        return TrainConfig.from_dict(b.config)


# ---------------------------------------------------------------- densify


def densify(
    bundle_path: str | os.PathLike,
    start: int,
    stop: int,
    every: int,
    *,
    progress: bool | None = None,
    threads: int | None = None,
) -> list[int]:
    """Add checkpoints every `every` epochs in [start, stop] by replaying from an earlier one.

    Replays from the last checkpoint at or before `start`; every replayed metric must equal the
    recorded one bit for bit (else EpochscopeError). Existing checkpoints are left alone.
    Returns the epochs of the checkpoints added.
    """
    path = Path(bundle_path)
    if every < 1:
        raise EpochscopeError(f"densify: every={every} must be at least 1")
    with open_bundle(path) as b:
        if b.being_written:
            raise EpochscopeError(f"cannot densify {path}: it is being written")
        config, status = TrainConfig.from_dict(b.config), b.status
        have = b.checkpoint_epochs
        recorded = {n: b.series(n) for n in b.series_names if n not in TIMING_SERIES}
    last_metric = max((int(e[-1]) for e, _ in recorded.values() if len(e)), default=0)
    if not have or have[-1] < last_metric:
        raise EpochscopeError(
            f"cannot densify {path}: its metrics go past its last checkpoint "
            f"({have[-1] if have else 'none'}); resume the run first"
        )
    if not 0 <= start <= stop <= have[-1]:
        raise EpochscopeError(
            f"densify range [{start}, {stop}] is outside the recorded epochs [0, {have[-1]}]"
        )
    targets = [e for e in range(start, stop + 1, every) if e not in set(have)]
    if not targets:
        return []
    todo, base = set(targets), max(e for e in have if e <= start)
    index = {n: dict(zip(e.tolist(), v.tolist(), strict=True)) for n, (e, v) in recorded.items()}

    with torch_threads(threads, config):
        run = Run(config)
        restore_checkpoint(path, base, run.model, run.optimizer, restore_rng=True)
        with (
            Recorder(path, resume=True, flush_interval=FLUSH_INTERVAL) as rec,
            _progress_bar(progress, config, base, total=targets[-1], desc="densify") as bar,
        ):
            epoch = base
            try:
                for epoch in range(base + 1, targets[-1] + 1):
                    _check_replay(run.step(epoch), index, epoch, path)
                    if epoch in todo:
                        rec.checkpoint(epoch, run.model, run.optimizer)
                    bar.update(1)
            except BaseException as exc:
                # the run itself is as good as before: keep its status, note what happened
                rec.event(epoch, "densify_failed", f"{type(exc).__name__}: {exc}")
                rec.close(status=status)
                raise
            message = f"added {len(targets)} checkpoints in [{start}, {stop}] every {every}"
            payload = {"start": start, "stop": stop, "every": every, "replayed_from": base}
            rec.event(targets[-1], "densified", message, payload={**payload, "added": targets})
            rec.close(status=status)
    return targets


def _check_replay(metrics: dict[str, float], index: dict[str, dict[int, float]], epoch: int,
                  path: Path) -> None:  # fmt: skip
    """Raise unless every replayed metric equals the recorded value exactly (NaN == NaN)."""
    bad = []
    for name, value in metrics.items():
        if name in TIMING_SERIES:
            continue
        stored = index.get(name, {}).get(epoch)
        same = stored is not None and (
            stored == value or (math.isnan(stored) and math.isnan(value))
        )
        if not same:
            bad.append(f"{name}: recorded {stored!r}, replayed {value!r}")
    if bad:
        raise EpochscopeError(
            f"densify {path}: the replay of epoch {epoch} does not reproduce the recorded metrics "
            f"({len(bad)} differ: {'; '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}); "
            "the run does not replay exactly with this machine/software; checkpoints added "
            "before this epoch were verified up to their own epoch"
        )


# ---------------------------------------------------------------- threads and progress display

_SMALL_MODEL_WORK = 1e8  # p^2 * d_model * d_mlp below which one thread is fastest


@contextmanager
def torch_threads(threads: int | None, config: TrainConfig) -> Iterator[None]:
    """Run with `threads` torch threads, restoring the setting after.

    None picks one thread for small models: their ops are too short to gain from more, and
    waiting on a thread descheduled by another process slowed them 8x on a shared 2-core box.
    Larger models keep torch's setting. Results do not depend on the thread count.
    """
    if threads is None and config.p**2 * config.d_model * config.d_mlp < _SMALL_MODEL_WORK:
        threads = 1
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None: ...

    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, s: str, refresh: bool = True) -> None: ...


def _progress_bar(enabled: bool | None, config: TrainConfig, initial: int, *, total: int | None = None,
                  desc: str | None = None) -> Any:  # fmt: skip
    """A tqdm bar on stderr, or a no-op one when disabled (default: only on a TTY)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total or config.epochs, initial=initial, desc=desc or config.name,
                unit="ep", file=sys.stderr, dynamic_ncols=True, mininterval=0.25)  # fmt: skip


def _update_bar(bar: Any, epoch: int, m: dict[str, float]) -> None:
    bar.update(1)
    if epoch % 25 == 0:
        bar.set_postfix_str(
            f"loss {m['train_loss']:.3g}/{m['test_loss']:.3g} acc {m['train_acc']:.3f}/{m['test_acc']:.3f}",
            refresh=False,
        )
