"""The three runs the generic report is checked on (tests/test_generic_browser.py) and shown
in benchmarks/screenshots.py: (a) a modular-addition run with every analysis, (b) a plain
PyTorch loop recorded with `Recorder` (custom series, parts, a table, events of two kinds,
declared metric metadata), (c) an ingested TensorBoard log with 30 scalar tags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tests.synthetic import ALL_ANALYSES, PER_INPUT_ANALYSES, SyntheticRun, write_synthetic_bundle

SMALL = dict(p=23, d_model=32, d_mlp=48, n_heads=2, epochs=1500, analysed=24, key_freqs=(3, 7, 9))
TB_TAGS = 30


def modular_run(path: Path) -> Path:
    """(a) A modular-addition run with every analysis (the analyzers' artifact shapes)."""
    return write_synthetic_bundle(path, SyntheticRun(name="modular-addition", analyses=ALL_ANALYSES + PER_INPUT_ANALYSES,
                                                     **SMALL))


def plain_loop_run(path: Path, epochs: int = 80) -> Path:
    """(b) A small regression model trained by a plain PyTorch loop, recorded with Recorder."""
    import torch

    from epochscope import Recorder

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(256, 4)
    y = x[:, :1] * 2 - x[:, 1:2] + 0.1 * torch.randn(256, 1)
    xv = torch.randn(64, 4)
    yv = xv[:, :1] * 2 - xv[:, 1:2]
    with Recorder(path, config={"name": "plain-loop", "lr": 0.05, "hidden": 16}, overwrite=True) as rec:
        rec.describe("val_loss", direction="min", unit="nats", description="mean squared error on held-out data")
        rec.describe("hierarchy", direction="min", description="hierarchy score of the embedding (lower is better)")
        for epoch in range(epochs):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            norms = {f"grad_norm.{n.replace('.', '_')}": float(p.grad.norm()) for n, p in model.named_parameters()}
            opt.step()
            with torch.no_grad():
                val = float(torch.nn.functional.mse_loss(model(xv), yv))
            rec.log(epoch, train_loss=float(loss.detach()), val_loss=val,
                    hierarchy=-0.8 + 0.3 * abs(epoch - 15) / epochs + 0.01 * math.sin(epoch),
                    richness=0.005 + 1e-4 * epoch, coverage=min(1.0, epoch / 40), **norms)
            if epoch in (20, 50):
                rec.event(epoch, "activation_switch", f"tanh -> relu at {epoch}",
                          {"from": "tanh", "to": "relu", "fitness": 0.5})
            if epoch == 30:
                rec.event(epoch, "pruning", "pruned 10% of the neurons", {"pruned": 2})
        rec.table("candidates", {"id": ["gen0_silu_1", "gen0_gelu_2", "gen1_silu_3", "gen1_relu_4"],
                                 "activation": ["silu", "gelu", "silu", "relu"], "generation": [0, 0, 1, 1],
                                 "best_loss": [0.12, 0.15, 0.11, 0.2], "alive": [True, False, True, True]})
    return path


def metrics_only_run(path: Path, seed: int = 0, epochs: int = 5000) -> Path:
    """A run with metrics and no checkpoints (as ingested from a tracker), recorded with
    Recorder: train/test loss and accuracy per epoch, grokking-shaped (memorises early, the
    test loss turns at a seed-dependent epoch), with noise; some seeds never generalise."""
    from epochscope import Recorder

    rng = np.random.default_rng(seed)
    e = np.arange(epochs, dtype=np.float64)
    turn = epochs * rng.uniform(0.2, 0.6)
    grokked = seed % 7 != 3
    train = 4.6 * np.exp(-e / (0.03 * epochs)) + 1e-3
    fall = 1 / (1 + np.exp(-(e - turn) / (0.02 * epochs))) if grokked else np.zeros(epochs)
    test = 10 ** (np.log10(6.0) - 3.5 * fall)
    train_loss = train * np.exp(rng.normal(0, 0.05, epochs))
    test_loss = test * np.exp(rng.normal(0, 0.05, epochs))
    train_acc = np.clip(1 - train / 4.6 + rng.normal(0, 0.002, epochs), 0, 1)
    test_acc = np.clip(0.02 + 0.98 * fall + rng.normal(0, 0.005, epochs), 0, 1)
    config = {"name": f"metrics-{seed}", "lr": float(rng.choice([1e-3, 3e-3])), "seed": seed}
    with Recorder(path, config=config, overwrite=True, flush_interval=1e9) as rec:
        for i in range(epochs):
            rec.log(i, train_loss=float(train_loss[i]), test_loss=float(test_loss[i]),
                    train_acc=float(train_acc[i]), test_acc=float(test_acc[i]))
    return path


def tensorboard_run(logdir: Path, out: Path, steps: int = 60) -> Path:
    """(c) A TensorBoard log with 30 scalar tags (splits, per-layer parts, singles), ingested."""
    from torch.utils.tensorboard import SummaryWriter

    from epochscope.collectors.ingest import ingest

    w = SummaryWriter(log_dir=str(logdir))
    rng = np.random.default_rng(3)
    tags = ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr", "perplexity/val"]
    tags += [f"grad_norm/layer{i}" for i in range(12)]
    tags += [f"activation_mean/layer{i}" for i in range(6)]
    tags += ["throughput", "gpu_memory", "entropy", "kl", "reward", "alpha"]
    assert len(tags) == TB_TAGS
    for step in range(steps):
        t = step / steps
        for k, tag in enumerate(tags):
            base = {"loss/train": 3 * math.exp(-4 * t), "loss/val": 3.2 * math.exp(-3 * t) + 0.2 * t,
                    "accuracy/train": 1 - 0.9 * math.exp(-5 * t), "accuracy/val": 0.9 - 0.8 * math.exp(-4 * t),
                    "lr": 1e-3 * (1 - t)}.get(tag, 1 + k + math.sin(step / 5 + k))
            w.add_scalar(tag, base * (1 + 0.02 * rng.standard_normal()), step)
    w.close()
    return ingest(logdir, out).path
