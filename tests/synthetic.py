"""Synthetic run bundles for tests, benchmarks and demos of the report (no torch needed).

`write_synthetic_bundle` writes a bundle whose metrics and analysis artifacts have the shapes
and the qualitative behaviour of a grokking run on modular addition (memorisation, a turn,
clean-up; Fourier key frequencies; specialising neurons; a self-intersecting PC2/PC3 loop),
made from closed-form curves plus noise. The numbers mean nothing; the shapes are realistic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment
from epochscope.collectors.analysis.trajectory import loop_measures, self_intersections

__all__ = ["SyntheticRun", "write_synthetic_bundle", "ALL_ANALYSES", "PER_INPUT_ANALYSES"]

PARAM_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
SVD_MATRICES = ("W_E", "W_O", "W_in", "W_out", "W_U")
ALL_ANALYSES = ("weight_norms", "effective_dim", "fourier_weights", "neuron_freq", "neuron_maps", "attention",
                "coarseness", "restricted_loss", "trajectory", "cusum", "turn")
# The every-neuron / per-input analyses (opt in: SyntheticRun(analyses=ALL_ANALYSES + PER_INPUT_ANALYSES)).
PER_INPUT_ANALYSES = ("neuron_atlas", "inputs", "input_graduation", "neuron_dynamics", "probe_demo")


@dataclass
class SyntheticRun:
    """Shape of the synthetic run (defaults: Nanda et al. 2023's p = 113 model)."""

    name: str = "synthetic"
    p: int = 113
    d_model: int = 128
    d_mlp: int = 512
    n_heads: int = 4
    epochs: int = 25000
    analysed: int = 100  # analysed checkpoints
    map_neurons: int = 8  # neurons whose activation maps the neuron_maps artifact holds
    key_freqs: tuple[int, ...] = (14, 35, 41, 42, 52)
    seed: int = 0
    analyses: tuple[str, ...] = ALL_ANALYSES
    checkpoints: bool = True
    nan_series: tuple[str, ...] = ()  # metric series written as all-NaN

    @property
    def turn(self) -> int:
        return int(0.38 * self.epochs)



def trajectory_update(eps: np.ndarray, proj: np.ndarray, vel: np.ndarray) -> ArtifactUpdate:
    """A `trajectory` artifact for PC1-3 coordinates `proj`, with the crossings and loop
    measures the analysis side stores (its own functions compute them)."""
    hits = self_intersections(proj[:, 1:3])
    loops = loop_measures(proj[:, 1:3])
    return ArtifactUpdate(
        "2", eps, {"pca": proj, "velocity": vel},
        summary={"explained_variance_ratio": np.array([0.61, 0.14, 0.07, 0.04, 0.03]),
                 "intersections": np.array([[eps[i], eps[j]] for i, j, _, _ in hits], dtype=np.int64).reshape(-1, 2),
                 "intersection_points": np.array([[x, y] for _, _, x, y in hits], dtype=np.float64).reshape(-1, 2)},
        scalars={"n_checkpoints": len(eps), "approximate": False, "self_intersects": bool(hits),
                 "n_intersections": len(hits), "loop_area": loops["loop_area"],
                 "excursion": loops["excursion"], "path_length": loops["path_length"]})

def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def checkpoint_epochs(run: SyntheticRun) -> np.ndarray:
    """Log-spaced up to 4% of training, uniform after: `run.analysed` distinct epochs."""
    n_log = max(2, run.analysed // 5)
    early = np.unique(np.rint(np.geomspace(1, 0.04 * run.epochs, n_log)).astype(np.int64))
    late = np.rint(np.linspace(0.04 * run.epochs, run.epochs, run.analysed - len(early) + 2)).astype(np.int64)
    eps = np.unique(np.concatenate([[0], early, late]))
    if len(eps) > run.analysed:  # drop the densest early ones, keep the last epoch
        eps = np.concatenate([eps[: run.analysed - 1], eps[-1:]])
    return eps


def _metrics(run: SyntheticRun, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    e = np.arange(1, run.epochs + 1, dtype=np.float64)
    T, E = run.turn, run.epochs
    noise = lambda s: np.exp(rng.normal(0, s, e.size))  # noqa: E731
    grok = _sig((e - T) / (0.03 * E))
    clean = _sig((e - 1.25 * T) / (0.05 * E))
    train_loss = (4.7 * np.exp(-e / (0.006 * E)) + 3e-3 * np.exp(-e / (0.4 * E))) * (1 - 0.999 * clean) * noise(0.05) + 1e-7
    test_loss = (4.7 + 6 * (1 - np.exp(-e / (0.02 * E)))) * (1 - grok) * (1 - 0.5 * clean) * noise(0.02) + 2e-7 + 1e-6 * noise(0.1)
    train_acc = np.clip(1 - np.exp(-e / (0.004 * E)) + rng.normal(0, 0.002, e.size), 0, 1)
    test_acc = np.clip(1 / run.p + (1 - 1 / run.p) * _sig((e - 1.03 * T) / (0.02 * E)) + rng.normal(0, 0.003, e.size), 0, 1)
    bump = np.exp(-(((e - T) / (0.05 * E)) ** 2))
    grad = (2.0 * np.exp(-e / (0.01 * E)) + 0.05 + 0.4 * bump) * noise(0.15)
    velocity = (1e-2 * np.exp(-e / (0.01 * E)) + 4e-4 + 2e-3 * bump) * noise(0.1)
    out = {"train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc, "test_acc": test_acc,
           "grad_norm": grad, "param_velocity": velocity}
    total = np.zeros_like(e)
    for i, name in enumerate(PARAM_NAMES):
        scale = 4 + 3 * np.sin(i)
        norm = scale * (1 + 0.8 * (1 - np.exp(-e / (0.01 * E)))) * np.exp(-0.6 * e / E) * (1 - 0.3 * clean) * noise(0.003)
        out[f"weight_norm.{name}"] = norm
        out[f"grad_norm.{name}"] = grad * (0.2 + 0.1 * i) * noise(0.05)
        total += norm**2
    out["weight_norm"] = np.sqrt(total)
    out["lr"] = np.minimum(1.0, e / 10) * 1e-3
    out["examples_per_sec"] = 31000 * noise(0.08)
    epochs = np.arange(1, run.epochs + 1, dtype=np.int64)
    for name in run.nan_series:
        out[name] = np.full(e.size, np.nan)
    return {k: (epochs, v) for k, v in out.items()}


def _artifacts(run: SyntheticRun, rng: np.random.Generator,
               metrics: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, ArtifactUpdate], list[dict]]:
    """Artifacts named and shaped as collectors/analysis/ writes them, and their events."""
    eps = checkpoint_epochs(run)
    n, p, K = len(eps), run.p, run.p // 2
    t = eps / run.epochs
    T = run.turn / run.epochs
    grok = _sig((t - T) / 0.03)[:, None]
    arts: dict[str, ArtifactUpdate] = {}
    events: list[dict] = []
    want = set(run.analyses)
    f32 = np.float32
    freqs = np.arange(1, K + 1)

    if "weight_norms" in want:
        norms = np.stack([(4 + 3 * np.sin(i)) * (1 + 0.8 * (1 - np.exp(-t / 0.01))) * np.exp(-0.6 * t)
                          for i in range(len(PARAM_NAMES))], 1)
        arts["weight_norms"] = ArtifactUpdate(
            "1", eps, {"norms": norms.astype(f32), "total": np.sqrt((norms**2).sum(1)).astype(f32)},
            summary={"tensors": np.array(PARAM_NAMES, dtype=object)})
    if "effective_dim" in want:
        k = np.arange(1, run.d_model + 1)
        svals = np.full((n, len(SVD_MATRICES), run.d_model), np.nan)
        for m, name in enumerate(SVD_MATRICES):
            width = p if name in ("W_E", "W_U") else run.d_model
            tail = (3.0 * np.exp(-2.5 * t))[:, None] * np.exp(-k[None, :width] / (40 + 40 * (1 - grok)))
            signal = np.zeros((n, width))
            signal[:, : 2 * len(run.key_freqs)] = (1 + 8 * grok) * (1 + 0.05 * m)
            svals[:, m, :width] = np.sort(tail + signal + 1e-3, axis=1)[:, ::-1]
        s2 = np.nan_to_num(svals) ** 2
        pr = s2.sum(-1) ** 2 / (s2**2).sum(-1)
        top = np.nanmean(svals[..., :10], -1) / np.nanmean(svals[..., 10:], -1)
        arts["effective_dim"] = ArtifactUpdate(
            "1", eps, {"participation_ratio": pr.astype(f32), "spectral_gap": top.astype(f32),
                       "singular_values": svals.astype(f32)},
            summary={"matrices": np.array(SVD_MATRICES, dtype=object)}, scalars={"top_k": 10}, params={"top_k": 10})
    if "trajectory" in want:
        s = np.linspace(0, 1, n)
        proj = np.stack([-30 * np.cos(np.pi * s), 12 * np.sin(2 * np.pi * s), 8 * np.sin(4 * np.pi * s)], 1)
        proj += rng.normal(0, 0.3, proj.shape)
        vel = 1e-2 * np.exp(-t / 0.01) + 4e-4 + 2e-3 * np.exp(-(((t - T) / 0.05) ** 2))
        vel[0] = np.nan
        arts["trajectory"] = trajectory_update(eps, proj, vel)
    if "cusum" in want:
        per_epoch, summary, monitors = {}, {}, {}
        all_epochs = metrics["test_loss"][0]
        for i, (key, series) in enumerate((("grad", "grad_norm"), ("tps", "examples_per_sec"), ("val", "test_loss"))):
            e = all_epochs / run.epochs
            up = np.maximum(0, (e - T + 0.01 * i) / 0.004) ** 1.3 * (e < T + 0.02 * (i + 1))
            up = np.where(up > 4.5, 0.0, up) + np.abs(rng.normal(0, 0.15, e.size)) * (rng.random(e.size) < 0.3)
            alarm_at = all_epochs[np.argmax(np.maximum(0, (e - T + 0.01 * i) / 0.004) ** 1.3 > 4.0)]
            per_epoch[f"{key}_pos"] = up.astype(f32)
            per_epoch[f"{key}_neg"] = (np.abs(rng.normal(0, 0.2, e.size)) * (rng.random(e.size) < 0.2)).astype(f32)
            summary[f"{key}_alarms"] = np.array([alarm_at])
            monitors[key] = {"series": series, "n_alarms": 1}
            events.append({"epoch": int(alarm_at), "kind": "cusum_alarm",
                           "message": f"CUSUM alarm on {series}: drift up (statistic 4.21 > h=4.0)",
                           "payload": {"monitor": key, "series": series, "direction": "up", "statistic": 4.21}})
        arts["cusum"] = ArtifactUpdate("1", all_epochs, per_epoch, summary=summary,
                                       scalars={"monitors": monitors, "k": 0.5, "h": 4.0, "baseline_n": 10},
                                       params={"k": 0.5, "h": 4.0, "baseline_n": 10})
    # Each neuron's eventual frequency: key frequencies for most, unclustered for some.
    owner = rng.choice(np.array(run.key_freqs), size=run.d_mlp)
    mixed = rng.random(run.d_mlp) < 0.08
    onset = T + rng.normal(0, 0.02, run.d_mlp)
    if "coarseness" in want:
        base = rng.beta(1.2, 30, run.d_mlp)
        base[rng.random(run.d_mlp) < 0.03] = 0.6
        coarse = base[None, :] * (0.6 + 0.4 * (1 - grok)) + np.abs(rng.normal(0, 0.01, (n, run.d_mlp)))
        arts["coarseness"] = ArtifactUpdate(
            "1", eps, {"neuron_fft_low": np.clip(coarse, 0, 1).astype(f32),
                       "head_fft_low": rng.random((n, run.n_heads)).astype(f32)},
            params={"radius_frac": 0.125, "down_size": 14})
    if "fourier_weights" in want:
        out = {}
        for prefix, delay in (("embed", 0.0), ("unembed", 0.02)):
            comp = 0.5 * np.exp(-1.5 * t)[:, None] * (1 + 0.2 * rng.random((n, p)))
            for kf in run.key_freqs:
                g = _sig((t - T - delay) / 0.03) * 3 + 0.3 * t
                comp[:, 2 * kf - 1] += g * (1.0 + 0.1 * kf / p)
                comp[:, 2 * kf] += g * 0.9
            comp[:, 0] = 0.05
            fn = np.sqrt(comp[:, 1::2][:, :K] ** 2 + comp[:, 2::2][:, :K] ** 2)
            share = fn**2 / (fn**2).sum(1, keepdims=True)
            x = np.sort(fn, 1)
            w = 2 * np.arange(1, K + 1) - K - 1
            out.update({f"{prefix}_basis_norms": comp.astype(f32), f"{prefix}_freq_norms": fn.astype(f32),
                        f"{prefix}_key_mask": share >= 3.0 / K,
                        f"{prefix}_gini": ((x * w).sum(1) / (K * x.sum(1))).astype(f32)})
        arts["fourier_weights"] = ArtifactUpdate("1", eps, out, summary={"frequencies": freqs}, scalars={"p": p},
                                                 params={"key_factor": 3.0, "max_key": 10})
    frac = None
    if "neuron_freq" in want:
        frac = rng.dirichlet(np.full(K, 0.6), size=(n, run.d_mlp)) * 0.5
        g = _sig((t[:, None] - onset[None, :]) / 0.02) * (~mixed)[None, :]
        frac *= (1 - 0.9 * g)[..., None]
        frac[:, np.arange(run.d_mlp), owner - 1] += 0.92 * g
        dom = frac.argmax(-1)
        top = frac.max(-1)
        clustered = top >= 0.85
        sizes = np.stack([np.bincount(dom[i][clustered[i]], minlength=K) for i in range(n)])
        arts["neuron_freq"] = ArtifactUpdate(
            "1", eps, {"frac_explained": frac.astype(np.float16), "dominant_freq": (dom + 1).astype(np.int16),
                       "max_frac": top.astype(f32), "clustered": clustered, "cluster_sizes": sizes.astype(np.int32)},
            summary={"frequencies": freqs}, scalars={"threshold": 0.85, "p": p}, params={"threshold": 0.85})
    a = np.arange(p)
    ab = (a[:, None] + a[None, :]) % p
    if "neuron_maps" in want:
        ids = np.sort(rng.choice(run.d_mlp, size=min(run.map_neurons, run.d_mlp), replace=False))
        maps = np.empty((n, len(ids), p, p), dtype=np.float16)
        for j, nid in enumerate(ids):
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.maximum(0, np.cos(2 * np.pi * owner[nid] * ab / p + phase))
            for i in range(n):
                g = float(_sig((t[i] - onset[nid]) / 0.02)) * (not mixed[nid])
                maps[i, j] = (g * wave + (1 - g) * 0.6 * rng.random((p, p))) * (1 + 2 * t[i])
        arts["neuron_maps"] = ArtifactUpdate("1", eps, {"heatmaps": maps}, summary={"neurons": ids},
                                             params={"n_neurons": len(ids)})
    if "attention" in want:
        heads = np.array([run.key_freqs[h % len(run.key_freqs)] for h in range(run.n_heads)])
        pat = np.empty((n, run.n_heads, p, p), dtype=np.float16)
        for h in range(run.n_heads):
            wave = 0.5 + 0.4 * np.cos(2 * np.pi * heads[h] * a / p)[:, None] * np.ones(p)[None, :]
            for i in range(n):
                g = float(grok[i, 0])
                pat[i, h] = g * wave + (1 - g) * (0.5 + 0.1 * rng.standard_normal((p, p)))
        head_freq = np.where(grok > 0.5, heads[None, :], rng.integers(1, K, (n, run.n_heads)))
        arts["attention"] = ArtifactUpdate(
            "1", eps, {"to_a": pat, "dominant_freq": head_freq.astype(np.int16),
                       "dominant_frac": np.clip(0.2 + 0.7 * grok + 0 * head_freq, 0, 1).astype(f32)},
            summary={"heads": np.arange(run.n_heads), "frequencies": freqs}, params={"max_heads": 8})
    if "restricted_loss" in want:
        restricted = 4.5 * (1 - _sig((t - 0.8 * T) / 0.05)) + 1e-4
        excluded = 1e-3 + 6 * _sig((t - T) / 0.03)
        per_freq = np.stack([1e-3 + (4 + j) * _sig((t - T - 0.01 * j) / 0.03) for j in range(len(run.key_freqs))], 1)
        arts["restricted_loss"] = ArtifactUpdate(
            "1", eps, {"restricted_loss": restricted.astype(f32), "restricted_loss_test": (1.1 * restricted).astype(f32),
                       "excluded_loss": excluded.astype(f32), "excluded_loss_per_freq": per_freq.astype(f32)},
            summary={"key_freqs": np.array(run.key_freqs)},
            scalars={"key_epoch": int(eps[-1]), "key_source": "neuron_clusters", "excluded_on": "train"})
    _per_input_artifacts(run, rng, arts, want, eps, grok, owner, onset, mixed)
    if "turn" in want:
        e, loss = metrics["test_loss"]
        grid = np.linspace(0, len(e) - 1, 400).astype(int)
        log_loss = np.log10(loss[grid])
        bkps = np.array([int(0.02 * run.epochs), run.turn, int(1.3 * run.turn)])
        fit = np.interp(e[grid], np.r_[e[0], bkps, e[-1]], np.r_[log_loss[0], log_loss[np.searchsorted(e[grid], bkps)], log_loss[-1]])
        arts["turn"] = ArtifactUpdate(
            "1", e[grid], {"log10_loss": log_loss, "fit": fit}, summary={"breakpoints": bkps},
            scalars={"epoch": run.turn, "method": "pelt-piecewise-linear on log10(test loss), BIC penalty",
                     "signals": ["test_loss", "velocity"], "confidence": 0.93, "reason": None})
        events.append({"epoch": run.turn, "kind": "turn", "message": f"turn (onset of generalisation) at epoch {run.turn}, "
                       "confidence 0.93", "payload": {"confidence": 0.93}})
    return arts, events


def _per_input_artifacts(run: SyntheticRun, rng: np.random.Generator, arts: dict, want: set, eps: np.ndarray,
                         grok: np.ndarray, owner: np.ndarray, onset: np.ndarray, mixed: np.ndarray) -> None:
    """neuron_atlas, inputs, input_graduation, neuron_dynamics and one probe, shaped as the analyzers write them."""
    n, p, M, K = len(eps), run.p, run.d_mlp, run.p // 2
    t = eps / run.epochs
    g = _sig((t[:, None] - onset[None, :]) / 0.02) * (~mixed)[None, :]  # [n, M] specialisation
    if "neuron_atlas" in want:
        freqs = np.stack([np.where(g > 0.5, owner[None, :], rng.integers(1, K + 1, (n, M))),
                          rng.integers(1, K + 1, (n, M))], -1).astype(np.uint8)
        coef = rng.normal(0, 0.05, (n, M, 2, 8)) * (1 - g)[..., None, None]
        coef[:, :, 0, 4:6] += (g * (1 + 2 * t[:, None]))[..., None] * np.array([0.8, 0.5])
        arts["neuron_atlas"] = ArtifactUpdate(
            "1", eps, {"mean": rng.normal(0.5, 0.1, (n, M)).astype(np.float16), "freqs": freqs,
                       "coef": coef.astype(np.float16), "residual": np.clip(1 - 0.95 * g, 0, 1).astype(np.float16)},
            summary={"coef_order": np.array(["a_cos", "a_sin", "b_cos", "b_sin", "apb_cos", "apb_sin", "amb_cos",
                                             "amb_sin"], dtype=object)}, scalars={"p": p, "n_freqs": 2})
    a, b = np.divmod(np.arange(p * p), p)
    in_train = rng.random(p * p) < 0.3
    hardness = rng.random(p * p)
    if "inputs" in want:
        correct = np.where(in_train[None, :], t[:, None] > 0.01, grok > hardness[None, :])
        margin = np.where(correct, 1, -1) * (0.5 + 10 * grok * rng.random((n, p * p)))
        loss = np.exp(-margin) * 2 + 1e-6
        classes = np.array(["all", "train", "test", "a_eq_b", "no_wrap", "wrap"], dtype=object)
        masks = [np.ones(p * p, bool), in_train, ~in_train, a == b, a + b < p, a + b >= p]
        per = lambda v: np.stack([v[:, m].mean(1) for m in masks], 1).astype(np.float32)  # noqa: E731
        arts["inputs"] = ArtifactUpdate(
            "1", eps, {"correct": correct, "loss": loss.astype(np.float32), "margin": margin.astype(np.float16),
                       "class_acc": per(correct.astype(float)), "class_loss": per(loss), "class_margin": per(margin)},
            summary={"classes": classes, "in_train": in_train}, scalars={"p": p, "unavailable_classes": []})
        if "input_graduation" in want:
            wrong_later = np.flip(np.maximum.accumulate(np.flip(~correct, 0), 0), 0)
            stays = ~wrong_later
            grad = np.where(stays.any(0), eps[np.argmax(stays, 0)], -1)
            share = np.array([[((grad[m] >= 0) & (grad[m] <= e)).mean() for m in masks] for e in eps])
            arts["input_graduation"] = ArtifactUpdate(
                "1", eps, {"graduated_share": share.astype(np.float32)},
                summary={"graduation_epoch": grad, "graduation_epoch_window": grad, "classes": classes},
                scalars={"p": p, "never_graduated": int((grad < 0).sum()), "unavailable_classes": []})
    if "neuron_dynamics" in want:
        committed = np.where(g > 0.5, owner[None, :], np.where(rng.random((n, M)) < 0.3, rng.integers(1, K + 1, (n, M)), 0))
        final = committed[-1]
        settled = (committed == final[None, :]) & (final[None, :] > 0)
        from_end = np.flip(np.minimum.accumulate(np.flip(settled, 0), 0), 0)
        commit = np.where(from_end.any(0), eps[np.argmax(from_end, 0)], -1)
        sw_e, sw_n, sw_f, sw_t = [], [], [], []
        for u in range(M):
            last = 0
            for i in range(n):
                c = int(committed[i, u])
                if c and last and c != last:
                    sw_e.append(int(eps[i])); sw_n.append(u); sw_f.append(last); sw_t.append(c)  # noqa: E702
                last = c or last
        counts = np.stack([np.bincount(np.where(g[i] > 0.7, owner, 0), minlength=K + 1)[1:] for i in range(n)])
        tk = int(owner[0] % K) + 1
        arts["neuron_dynamics"] = ArtifactUpdate(
            "1", eps, {"committed_freq": committed.astype(np.int16), "specialised_counts": counts.astype(np.int32)},
            summary={"commitment_epoch": commit, "final_freq": final.astype(np.int16),
                     "switch_count": np.bincount(np.array(sw_n, dtype=np.int64), minlength=M).astype(np.int32),
                     "switch_epoch": np.array(sw_e, dtype=np.int64), "switch_neuron": np.array(sw_n, dtype=np.int32),
                     "switch_from": np.array(sw_f, dtype=np.int16), "switch_to": np.array(sw_t, dtype=np.int16),
                     "transient_freq": np.array([tk], dtype=np.int16), "transient_rise": eps[[n // 5]],
                     "transient_peak": eps[[n // 4]], "transient_peak_share": np.array([0.08], np.float32),
                     "transient_peak_count": np.array([int(0.08 * M)]), "transient_disappear": eps[[n // 3]],
                     "transient_final_share": np.array([0.01], np.float32), "transient_homeless": np.array([2])},
            scalars={"commit_threshold": 3 / K})
    if "probe_demo" in want:
        N, H, F = 8, run.n_heads, len(run.key_freqs)
        pa, pb = rng.integers(0, p, N), rng.integers(0, p, N)
        ramp = grok[:, :1] * np.ones((1, N))
        mlp_freq = ramp[..., None] * rng.uniform(1, 4, (1, N, F))
        other = 6 * (1 - ramp)
        heads = rng.normal(0, 0.3, (n, N, H))
        mlp = mlp_freq.sum(-1) + other + 0.1
        total = 0.2 + heads.sum(-1) + mlp
        lens = np.stack([np.full((n, N), -np.log(p)), -np.log(p) * (1 - 0.3 * ramp), -np.exp(-total)], -1)
        f32 = np.float32
        arts["probe_demo"] = ArtifactUpdate(
            "1", eps, {"correct": total > 3, "loss": np.exp(-total).astype(f32), "margin": (total - 3).astype(f32),
                       "logit_centred": total.astype(f32), "dla_embed": np.full((n, N), 0.2, f32),
                       "dla_mlp": mlp.astype(f32), "dla_mlp_mean": np.full((n, N), 0.1, f32),
                       "dla_mlp_other": other.astype(f32), "dla_heads": heads.astype(f32),
                       "dla_mlp_freq": mlp_freq.astype(f32), "lens_logprob": lens.astype(f32),
                       "lens_rank": np.zeros((n, N, 3), np.int16), "lens_top": np.zeros((n, N, 3), np.int16),
                       "attention": np.full((n, N, H, 3), 1 / 3, f32)},
            summary={"a": pa, "b": pb, "label": (pa + pb) % p, "in_train": in_train[pa * p + pb].astype(np.int8),
                     "key_freqs": np.array(run.key_freqs), "stages": np.array(["embed", "attn", "mlp"], dtype=object)},
            scalars={"spec": "random:8", "probe": "demo", "resolved": []})


def write_synthetic_bundle(path: str | os.PathLike, run: SyntheticRun | None = None) -> Path:
    """Write a complete synthetic bundle at `path` (replacing one that exists); return it."""
    run = run or SyntheticRun()
    rng = np.random.default_rng(run.seed)
    path = Path(path)
    config = {"name": run.name, "p": run.p, "d_model": run.d_model, "d_mlp": run.d_mlp, "n_heads": run.n_heads,
              "epochs": run.epochs, "lr": 1e-3, "weight_decay": 1.0, "train_frac": 0.3, "data_seed": 598,
              "model_seed": 999, "synthetic": True}
    env = {"python": "3.11.7", "torch": "2.13.0", "numpy": np.__version__, "epochscope": "0.1.0",
           "device": "cuda", "cuda_device": "NVIDIA H100 80GB HBM3", "processor": "x86_64", "cpu_count": 16,
           "torch_threads": 8, "platform": "Linux-6.1-x86_64", "host": "synthetic-host",
           "argv": ["epochscope", "collect", "--preset", "nanda2023"],
           "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}}
    session = {"id": "synthetic", "started": "2026-02-11T09:00:00+00:00", "ended": "2026-02-11T10:42:13+00:00",
               "status": "complete", "host": "synthetic-host"}
    ckpts = {}
    if run.checkpoints:
        ckpts = {int(e): ({"synthetic": True}, {"marker": np.zeros(1, np.float32)}) for e in checkpoint_epochs(run)}
    metrics = _metrics(run, rng)
    artifacts, events = _artifacts(run, rng, metrics)
    events.append({"epoch": run.epochs, "kind": "finished", "message": "metrics of the final weights",
                   "payload": {"test_acc": 1.0}})
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(
            context={"config": config, "seeds": {"data_seed": 598, "model_seed": 999}, "environment": env},
            session=session, metrics=metrics, events=sorted(events, key=lambda e: e["epoch"]),
            checkpoints=ckpts, artifacts=artifacts,
        ))
        w.consolidate()
    return path
