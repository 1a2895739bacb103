"""Builders shared by the analysis tests: tiny real bundles and synthetic training curves.

Bundles are written with the real Recorder and a real (tiny) modular-addition transformer, so
the pipeline reads exactly what `epochscope collect` produces. No tests live here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from epochscope.archives import BundleWriter, Segment
from epochscope.collectors.checkpoints import capture_checkpoint
from epochscope.collectors.model import ModelConfig, Transformer
from epochscope.collectors.recorder import Recorder

P = 13
MODEL = {"p": P, "d_model": 16, "n_heads": 2, "d_mlp": 32}


def grid(p: int = P) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], 1), (a + b) % p


def make_model(seed: int = 0) -> Transformer:
    return Transformer(ModelConfig(**MODEL), generator=torch.Generator().manual_seed(seed))


def train_bundle(
    path: Path,
    *,
    epochs: int = 60,
    every: int = 10,
    seed: int = 0,
    nan_at: int | None = None,
    grad_step_at: int | None = None,
    config: dict | None = None,
    split: bool = False,
) -> Path:
    """Train the tiny model full-batch, logging the trainer's metric names, checkpoint every `every`.

    `nan_at`: that checkpoint is written with NaN in W_in (the live model stays finite).
    `grad_step_at`: grad_norm jumps x10 from that epoch (a regime change for CUSUM).
    `split`: record the train/test split in the bundle (as `collect` does).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only add overhead on a busy machine
    try:
        return _train(path, epochs, every, seed, nan_at, grad_step_at, config, split)
    finally:
        torch.set_num_threads(threads)


def _train(
    path: Path,
    epochs: int,
    every: int,
    seed: int,
    nan_at: int | None,
    grad_step_at: int | None,
    config: dict | None,
    split: bool = False,
) -> Path:
    torch.manual_seed(seed)
    model = make_model(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98))
    x, y = grid()
    perm = torch.randperm(P * P, generator=torch.Generator().manual_seed(seed))
    tr, te = perm[: P * P // 2], perm[P * P // 2 :]
    rng = np.random.default_rng(seed)
    with Recorder(path, config=config or {"name": "tiny", **MODEL}, overwrite=True) as rec:
        if split:
            rec.split(P * P, {"train": tr.numpy(), "test": te.numpy()},
                      {"dataset": "modular_addition", "p": P})
        rec.checkpoint(0, model, opt)
        for e in range(1, epochs + 1):
            logits = model(x[tr])
            loss = F.cross_entropy(logits, y[tr])
            acc = (logits.argmax(-1) == y[tr]).float().mean().item()
            opt.zero_grad()
            loss.backward()
            gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9))
            opt.step()
            with torch.no_grad():
                tl = F.cross_entropy(model(x[te]), y[te]).item()
            if grad_step_at is not None:
                gn = (10.0 if e >= grad_step_at else 1.0) * (1.0 + 0.05 * rng.standard_normal())
            rec.log(
                e,
                train_loss=loss.item(),
                test_loss=tl,
                train_acc=acc,
                grad_norm=gn,
                examples_per_sec=1000.0 * (1 + 0.01 * rng.standard_normal()),
                param_velocity=0.01 * (1 + 0.01 * rng.standard_normal()),
            )
            if e % every == 0:
                if e == nan_at:
                    saved = model.W_in.detach().clone()
                    with torch.no_grad():
                        model.W_in[0, 0] = float("nan")
                    rec.checkpoint(e, model, opt)
                    with torch.no_grad():
                        model.W_in.copy_(saved)
                else:
                    rec.checkpoint(e, model, opt)
    return path


def add_checkpoint(
    path: Path,
    epoch: int,
    *,
    drop: str | None = None,
    seed: int = 1,
    reshape: str | None = None,
    nan: str | None = None,
) -> None:
    """Append a checkpoint of a fresh model at `epoch`; `drop` removes a tensor, `reshape`
    stores one with a wrong shape (a checkpoint that fails strict loading), `nan` puts a NaN
    into one."""
    meta, tree = capture_checkpoint(make_model(seed), rng=False)
    if nan:
        tree["model"][nan].flat[0] = np.nan
    if drop:
        del tree["model"][drop]
    if reshape:
        tree["model"][reshape] = tree["model"][reshape][..., :-1].copy()
    with BundleWriter(path, create=False) as w:
        w.write(Segment(checkpoints={epoch: (meta, tree)}))  # left in the journal


def grok_curve(
    *,
    E: int = 5000,
    T: int = 2000,
    width: float = 150.0,
    noise: float = 0.05,
    every: int = 1,
    slow: float = 0.0,
    spikes: int = 0,
    seed: int = 0,
    floor: float = 1e-4,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A grokking run's curves: train acc passes 99% at ~450 (memorisation), test loss rises to
    a plateau, leaves it at ~T and falls to `floor`; test acc passes 95% during the fall."""
    rng = np.random.default_rng(seed)
    e = np.arange(0, E + 1, every)
    base = np.log10(4.7) + (np.log10(8.0) - np.log10(4.7)) * np.clip(e / 400, 0, 1)
    base = base - slow * np.clip((e - 400) / max(T - 400, 1), 0, 1)
    depth = base[np.searchsorted(e, T)] - np.log10(floor)
    s = 1 / (1 + np.exp(-(e - (T + 3 * width)) / width))
    log_loss = base - depth * s + noise * rng.standard_normal(len(e))
    for _ in range(spikes):
        i = rng.integers(len(e) - 3)
        log_loss[i : i + 3] += 1.0
    train_loss = 10 ** (np.log10(4.7) - 4 * np.clip(e / 450, 0, 1))
    return {
        "test_loss": (e, 10**log_loss),
        "train_loss": (e, train_loss),
        "train_acc": (e, np.clip(e / 450, 0, 1)),
        "test_acc": (e, 0.02 + 0.98 * s),
    }


def metrics_bundle(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """A metrics-only bundle (an ingested run: no checkpoints)."""
    with Recorder(path, config={"name": "ingested"}, overwrite=True) as rec:
        names = list(curves)
        epochs = curves[names[0]][0]
        for i, e in enumerate(epochs):
            rec.log(int(e), **{n: float(curves[n][1][i]) for n in names})
    return path
