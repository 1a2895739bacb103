"""Synthetic sweeps of generic training runs (any experiment: a config of hyperparameters and
seeds, metric series only) for the comparison page's tests and the scale benchmark.

Run i of `generic_specs(n)` has lr in (1e-3, 3e-4, 1e-4) and width in (64, 256) cycling, and a
seed; its curves depend on the configuration (a higher lr learns faster, a wider model ends
lower) plus seed noise, and every tenth run logs every second epoch and stops early, so
epoch grids differ within a group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epochscope.archives import BundleWriter, Segment

__all__ = ["GenericSpec", "generic_specs", "write_generic", "write_generic_sweep"]

LRS = (1e-3, 3e-4, 1e-4)
WIDTHS = (64, 256)


@dataclass
class GenericSpec:
    name: str
    lr: float
    width: int
    seed: int
    epochs: int = 5000
    stride: int = 1
    series: tuple[str, ...] = ("train_loss", "val_loss", "val_acc")
    extra: dict | None = None  # more config keys


def generic_specs(n: int, *, epochs: int = 5000, seeds_per_config: int | None = None) -> list[GenericSpec]:
    """`n` runs cycling through the 6 configurations (lr x width), seeds 0, 1, 2, ..."""
    out = []
    for i in range(n):
        c = i % (len(LRS) * len(WIDTHS))
        lr, width = LRS[c % len(LRS)], WIDTHS[c // len(LRS)]
        seed = i // (len(LRS) * len(WIDTHS))
        odd = i % 10 == 9
        out.append(GenericSpec(f"run-{i:04d}", lr, width, seed, epochs=int(epochs * 0.8) if odd else epochs,
                               stride=2 if odd else 1))
    return out


def curves(spec: GenericSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The run's metric series (deterministic in its spec)."""
    rng = np.random.default_rng(spec.seed * 7919 + int(spec.lr * 1e6) + spec.width)
    e = np.arange(0, spec.epochs, spec.stride, dtype=np.int64)
    t = e / 5000.0
    speed = spec.lr / 1e-4
    floor = 0.05 + 10.0 / spec.width + 0.02 * rng.standard_normal()
    init = 2.3 + 0.2 * rng.standard_normal()
    train = floor + (init - floor) * np.exp(-speed * 3 * t) + 0.01 * rng.standard_normal(e.size)
    val = train + 0.05 + 0.1 * t * speed / 10 + 0.02 * rng.standard_normal(e.size)
    acc = np.clip(1 - val / 2.5 + 0.01 * rng.standard_normal(e.size), 0, 1)
    out = {"train_loss": (e, train), "val_loss": (e, val), "val_acc": (e, acc)}
    return {k: (ep, v.astype(np.float32)) for k, (ep, v) in out.items() if k in spec.series}


def write_generic(path: str | os.PathLike, spec: GenericSpec) -> Path:
    path = Path(path)
    config = {"name": spec.name, "lr": spec.lr, "width": spec.width, "seed": spec.seed, **(spec.extra or {})}
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": config}, metrics=curves(spec),
                        session={"id": spec.name, "status": "complete"}))
        w.consolidate()
    return path


def write_generic_sweep(directory: str | os.PathLike, specs: list[GenericSpec]) -> list[Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return [write_generic(d / f"{s.name}.h5", s) for s in specs]
