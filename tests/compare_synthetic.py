"""Synthetic sweeps for the comparison page's tests, benchmark and demos (no torch needed).

`write_sweep` writes one synthetic bundle per variant of a small sweep over primes and seeds
(the shapes of tests/synthetic.py: memorisation, a turn, clean-up, Fourier key
frequencies, specialising neurons, a self-crossing PC2/PC3 loop), each with its own turn and
key frequencies. Optionally one variant is planted as anomalous the way the research notes
describe p = 101, seed 999: slow grokking after the turn, a higher final test loss, an open
PC2/PC3 path, a 6 : 1 cos/sin imbalance, many unclustered neurons, less compression, extra
CUSUM alarms. With `weights=True` the checkpoints hold model tensors whose trajectories share
a few directions, so a shared PCA basis can be fitted across variants of one shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment
from tests.synthetic import (
    SVD_MATRICES,
    SyntheticRun,
    _artifacts,
    _metrics,
    _sig,
    checkpoint_epochs,
    trajectory_update,
)

__all__ = ["VariantSpec", "sweep_specs", "write_sweep", "write_variant"]


@dataclass
class _VariantRun(SyntheticRun):
    turn_frac: float = 0.38

    @property
    def turn(self) -> int:
        return int(self.turn_frac * self.epochs)


@dataclass
class VariantSpec:
    """One variant of a sweep: its prime, seed and turn (as a share of training)."""

    name: str
    p: int
    seed: int
    turn_frac: float = 0.38
    anomalous: bool = False
    shape: dict = field(default_factory=dict)  # SyntheticRun fields: d_model, d_mlp, epochs, ...


def sweep_specs(n: int, *, primes: tuple[int, ...] = (97, 101, 103, 107, 109, 113), seeds: tuple[int, ...] = (485, 999),
                anomalous: int | None = None, shape: dict | None = None,
                same_p: int | None = None) -> list[VariantSpec]:
    """`n` variants cycling through seeds and primes (or all with `same_p`), turns spread
    evenly over 32-42% of training; variant `anomalous` (an index) is the planted outlier."""
    out = []
    for i in range(n):
        p = same_p if same_p is not None else primes[(i // len(seeds)) % len(primes)]
        seed = seeds[i % len(seeds)] + (i if same_p is not None else (i // (len(seeds) * len(primes))) * 1000)
        frac = 0.32 + 0.10 * (i / max(n - 1, 1))
        out.append(VariantSpec(f"p{p}-s{seed}", p, seed, frac,
                               anomalous == i, dict(shape or {})))
    return out


def write_sweep(directory: str | os.PathLike, specs: list[VariantSpec], *, weights: bool = False) -> list[Path]:
    """Write one bundle per spec into `directory` (created); return their paths in order."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return [write_variant(d / f"{s.name}.h5", s, weights=weights) for s in specs]


def _key_freqs(p: int, seed: int, rng: np.random.Generator) -> tuple[int, ...]:
    k = p // 2
    return tuple(sorted(int(x) for x in rng.choice(np.arange(2, k), size=min(4, k - 2), replace=False)))


def write_variant(path: str | os.PathLike, spec: VariantSpec, *, weights: bool = False) -> Path:
    """Write the bundle of one variant at `path` (replacing one that exists); return it."""
    shape = dict(spec.shape)
    keys = _key_freqs(spec.p, spec.seed, np.random.default_rng(spec.seed * 7 + spec.p))
    run = _VariantRun(name=spec.name, p=spec.p, seed=spec.seed, key_freqs=keys, checkpoints=False,
                      turn_frac=spec.turn_frac, **shape)
    rng = np.random.default_rng(spec.seed * 1000 + spec.p)
    metrics = _metrics(run, rng)
    wanted = run.analyses
    run.analyses = tuple(a for a in wanted if a != "effective_dim")
    artifacts, events = _artifacts(run, rng, metrics)
    run.analyses = wanted
    if "effective_dim" in wanted:
        artifacts["effective_dim"] = _effective_dim(run)
    if spec.anomalous:
        _plant_anomaly(run, metrics, artifacts, events, rng)
    ckpts = _weights(run, spec) if weights else {}
    config = {"name": spec.name, "p": spec.p, "d_model": run.d_model, "d_mlp": run.d_mlp, "n_heads": run.n_heads,
              "epochs": run.epochs, "lr": 1e-3, "weight_decay": 1.0, "train_frac": 0.3, "data_seed": 598,
              "model_seed": spec.seed, "synthetic": True}
    session = {"id": f"synthetic-{spec.name}", "started": "2026-02-11T09:00:00+00:00",
               "ended": "2026-02-11T10:42:13+00:00", "status": "complete", "host": "synthetic-host"}
    events.append({"epoch": run.epochs, "kind": "finished", "message": "metrics of the final weights", "payload": {}})
    path = Path(path)
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": config, "seeds": {"data_seed": 598, "model_seed": spec.seed},
                                 "environment": {"python": "3.11.7", "epochscope": "0.1.0"}},
                        session=session, metrics=metrics, events=sorted(events, key=lambda e: e["epoch"]),
                        checkpoints=ckpts, artifacts=artifacts))
        w.consolidate()
    return path


def _effective_dim(run: _VariantRun) -> ArtifactUpdate:
    """Singular values and participation ratios like tests/synthetic.py's, for any p and
    d_model (W_E and W_U have rank min(p, d_model))."""
    eps = checkpoint_epochs(run)
    n, t = len(eps), eps / run.epochs
    grok = _sig((t - run.turn / run.epochs) / 0.03)[:, None]
    k = np.arange(1, run.d_model + 1)
    svals = np.full((n, len(SVD_MATRICES), run.d_model), np.nan)
    for m, name in enumerate(SVD_MATRICES):
        width = min(run.p, run.d_model) if name in ("W_E", "W_U") else run.d_model
        tail = (3.0 * np.exp(-2.5 * t))[:, None] * np.exp(-k[None, :width] / (40 + 40 * (1 - grok)))
        signal = np.zeros((n, width))
        signal[:, : min(width, 2 * len(run.key_freqs))] = (1 + 8 * grok) * (1 + 0.05 * m)
        svals[:, m, :width] = np.sort(tail + signal + 1e-3, axis=1)[:, ::-1]
    s2 = np.nan_to_num(svals) ** 2
    pr = s2.sum(-1) ** 2 / (s2**2).sum(-1)
    top = np.nanmean(svals[..., :10], -1) / np.nanmean(svals[..., 10:], -1)
    return ArtifactUpdate("1", eps, {"participation_ratio": pr.astype(np.float32),
                                     "spectral_gap": top.astype(np.float32),
                                     "singular_values": svals.astype(np.float32)},
                          summary={"matrices": np.array(SVD_MATRICES, dtype=object)}, scalars={"top_k": 10},
                          params={"top_k": 10})


def _plant_anomaly(run: _VariantRun, metrics: dict, artifacts: dict, events: list, rng: np.random.Generator) -> None:
    """Make this variant deviate the way p = 101 / seed 999 did, on every dimension."""
    e, acc = metrics["test_acc"]
    E, T = run.epochs, run.turn
    ef = e.astype(np.float64)
    slow = 1 / run.p + (1 - 1 / run.p) * _sig((ef - 1.03 * T) / (0.1 * E))
    metrics["test_acc"] = (e, np.clip(slow + rng.normal(0, 0.003, e.size), 0, 1))
    _, loss = metrics["test_loss"]
    metrics["test_loss"] = (e, loss + 2e-2 * _sig((ef - T) / (0.03 * E)))
    eps = checkpoint_epochs(run)
    n = len(eps)
    if "trajectory" in artifacts:  # an open arch: PC3 monotone, so the PC2/PC3 path never crosses
        s = np.linspace(0, 1, n)
        proj = np.stack([-30 * np.cos(np.pi * s), 30 * np.sin(np.pi * s) + rng.normal(0, 0.3, n), -15 * s], 1)
        artifacts["trajectory"] = trajectory_update(eps, proj, artifacts["trajectory"].per_epoch["velocity"])
    if "fourier_weights" in artifacts:  # sin of the first key frequency at a sixth of its cos
        art = artifacts["fourier_weights"]
        k = run.key_freqs[0]
        late = (eps / E) > (T / E)
        for prefix in ("embed",):
            comp = np.array(art.per_epoch[f"{prefix}_basis_norms"], dtype=np.float64)
            comp[late, 2 * k] = comp[late, 2 * k - 1] / 6.0
            art.per_epoch[f"{prefix}_basis_norms"] = comp.astype(np.float32)
            K = run.p // 2
            fn = np.sqrt(comp[:, 1::2][:, :K] ** 2 + comp[:, 2::2][:, :K] ** 2)
            art.per_epoch[f"{prefix}_freq_norms"] = fn.astype(np.float32)
    if "neuron_freq" in artifacts:  # most neurons stay mixed
        art = artifacts["neuron_freq"]
        clustered = np.array(art.per_epoch["clustered"])
        mixed = rng.random(clustered.shape[1]) < 0.6
        clustered[:, mixed] = False
        dom = np.asarray(art.per_epoch["dominant_freq"]) - 1
        K = run.p // 2
        sizes = np.stack([np.bincount(dom[i][clustered[i]], minlength=K) for i in range(len(dom))])
        art.per_epoch["clustered"] = clustered
        art.per_epoch["cluster_sizes"] = sizes.astype(np.int32)
    if "effective_dim" in artifacts:  # compresses less
        art = artifacts["effective_dim"]
        art.per_epoch["participation_ratio"] = (np.asarray(art.per_epoch["participation_ratio"]) * 1.8).astype(np.float32)
    for j in range(4):
        epoch = int(T + (j + 1) * 0.08 * E)
        events.append({"epoch": epoch, "kind": "cusum_alarm", "message": "CUSUM alarm on grad_norm: drift up",
                       "payload": {"monitor": "grad", "series": "grad_norm", "direction": "up", "statistic": 5.0}})


def _layout(run: SyntheticRun) -> list[tuple[str, tuple[int, ...]]]:
    d, m, h, p = run.d_model, run.d_mlp, run.n_heads, run.p
    e = d // h
    return [("W_E", (p + 1, d)), ("W_pos", (3, d)), ("W_Q", (h, d, e)), ("W_K", (h, d, e)), ("W_V", (h, d, e)),
            ("W_O", (h, e, d)), ("W_in", (d, m)), ("b_in", (m,)), ("W_out", (m, d)), ("b_out", (d,)), ("W_U", (d, p))]


def _weights(run: _VariantRun, spec: VariantSpec) -> dict[int, tuple[dict, dict]]:
    """Checkpoints whose flattened weights move along three directions shared by every
    variant of this shape (coefficients like the trajectory artifact's PC1-3), plus a small
    variant-specific start and wobble."""
    layout = _layout(run)
    dim = sum(int(np.prod(s)) for _, s in layout)
    shared = np.random.default_rng(dim).standard_normal((3, dim))
    shared /= np.linalg.norm(shared, axis=1, keepdims=True)
    rng = np.random.default_rng(spec.seed * 31 + spec.p)
    start = rng.standard_normal(dim) * 0.02
    eps = checkpoint_epochs(run)
    s = np.linspace(0, 1, len(eps))
    if spec.anomalous:
        coef = np.stack([-30 * np.cos(np.pi * s), 30 * np.sin(np.pi * s), -15 * s], 1)
    else:
        scale = 1 + 0.1 * rng.standard_normal()
        coef = scale * np.stack([-30 * np.cos(np.pi * s), 12 * np.sin(2 * np.pi * s), 8 * np.sin(4 * np.pi * s)], 1)
    out = {}
    for i, epoch in enumerate(eps):
        flat = start + coef[i] @ shared + rng.standard_normal(dim) * 0.01
        tensors, at = {}, 0
        for name, shp in layout:
            size = int(np.prod(shp))
            tensors[name] = flat[at: at + size].reshape(shp).astype(np.float32)
            at += size
        out[int(epoch)] = ({"model_class": "synthetic", "model_config": {"p": run.p, "d_model": run.d_model}},
                           {"model": tensors})
    return out
