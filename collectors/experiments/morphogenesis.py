"""Morphogenetic growth on scikit-learn's 8x8 digits, with counterfactual attribution.

A small CNN host has three slots, `early` (after the first convolution), `mid` (after the
second) and `late` (after the hidden dense layer). A *seed* module grown in a slot is
blended in residually: ``h <- h + alpha * seed(h)``. A host-only baseline (same initial
weights, same batch order, its own optimizer) trains alongside, so every epoch says what
the seeds bought.

Blueprints: ``conv`` (a 3x3 convolution, or a width-3 1-D convolution on a vector), ``bottleneck``
(down to a quarter of the width and back), ``norm`` (a normalisation with a learned
per-channel scale and shift: two parameters per channel), and ``noop`` (learnable parameters, zero output: a negative control for attribution).
Every seed's last layer starts at zero, so germinating changes nothing at first.

The lifecycle policy is a fixed heuristic (one seed in flight at a time):

1. **dormant -> germinated**: after `warmup_epochs`, when validation accuracy gained less than
   `plateau_delta` over the last `plateau_window` epochs, the next dormant slot in
   `slot_order` germinates its next blueprint. A germinated seed trains *isolated* (its input
   is detached, so no gradient reaches the host through it) at `alpha_train`.
2. **G0** after the first epoch: the seed's output and gradient are finite and its parameters
   are within `max_seed_params` -> **training**; else culled.
3. **G1** after `train_epochs` more epochs: switching it off (in the counterfactual matrix)
   must raise validation loss by more than `g1_min_loss_gain` (0: the seed must have learnt
   something useful; loss, not accuracy, because at `alpha_train` the effect is small) ->
   **blending**; else culled.
4. **blending**: isolation ends, alpha ramps linearly to 1 over `blend_epochs` epochs.
5. **G2** at the end of blending: its removal contribution (accuracy with all active seeds
   minus with this one off) must be at least `g2_min_contribution` points -> **fossilised**
   (kept for good, at alpha 1); else **culled** (removed). A culled slot is dormant again
   after `embargo_epochs` and tries its next blueprint.

Counterfactual matrices over the active slots are taken every `cf_every` epochs, at every
gate and at the end. Dense traces follow `dense_mode` (collectors/dense.py). Everything lands
in the bundle under the telemetry profile (archives/telemetry.py, docs/bundle-format.md).
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from epochscope.archives import telemetry as tm
from epochscope.collectors.attribution import CounterfactualMatrix
from epochscope.collectors.checkpoints import register_model
from epochscope.collectors.dense import MODES, DenseTracer, DenseTriggers
from epochscope.collectors.recorder import Recorder
from epochscope.errors import EpochscopeError

__all__ = ["BLUEPRINTS", "MorphConfig", "MorphModel", "MorphResult", "config_from", "run"]

SLOTS = ("early", "mid", "late")
BLUEPRINTS = ("conv", "bottleneck", "norm", "noop")
_HIST_BINS = np.linspace(-10.0, 2.0, 25)  # log10 |gradient| histogram edges


@dataclass
class MorphConfig:
    """Every knob of one morphogenesis run (defaults: the `collect --experiment` run)."""

    name: str = "morphogenesis"
    seed: int = 0                 # model init and batch order
    data_seed: int = 0            # train/val/test split
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    channels: tuple[int, int] = (4, 8)
    hidden: int = 16
    val_frac: float = 0.2
    test_frac: float = 0.2
    # the policy
    slot_order: tuple[str, ...] = SLOTS
    blueprints: dict[str, list[str]] = field(default_factory=lambda: {
        "early": ["conv", "norm"], "mid": ["norm", "bottleneck"], "late": ["bottleneck", "norm"]})
    warmup_epochs: int = 5
    plateau_window: int = 3
    plateau_delta: float = 1.0    # points of validation accuracy
    alpha_train: float = 0.1
    train_epochs: int = 3
    blend_epochs: int = 3
    g1_min_loss_gain: float = 0.0  # validation loss without the seed minus with it
    g2_min_contribution: float = 0.0  # points
    embargo_epochs: int = 2
    max_seed_params: int = 5000
    # telemetry
    cf_every: int = 2
    cf_max_factorial: int = 4
    cf_permutations: int = 20
    dense_mode: str = "adaptive"
    dense_force_epochs: tuple[int, ...] = ()
    loss_spike: float = 2.0
    accuracy_drop: float = 5.0
    gradient_explosion: float = 100.0
    # fault injection, to see the alerts work: multiply lr by lr_spike_factor for one epoch
    lr_spike_epoch: int | None = None
    lr_spike_factor: float = 30.0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)  # type: ignore[assignment]
        self.slot_order = tuple(self.slot_order)
        self.dense_force_epochs = tuple(int(e) for e in self.dense_force_epochs)
        problems = []
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("epochs and batch_size must be at least 1")
        if len(self.channels) != 2 or min(self.channels) < 1 or self.hidden < 1:
            problems.append("channels must be two positive widths and hidden positive")
        if not 0 < self.val_frac < 1 or not 0 < self.test_frac < 1 or self.val_frac + self.test_frac >= 1:
            problems.append("val_frac and test_frac must be in (0, 1) and leave training data")
        bad_slots = [s for s in self.slot_order if s not in SLOTS] + [s for s in self.blueprints if s not in SLOTS]
        if bad_slots:
            problems.append(f"unknown slot(s) {sorted(set(bad_slots))}; slots: {', '.join(SLOTS)}")
        bad_bp = sorted({b for bps in self.blueprints.values() for b in bps if b not in BLUEPRINTS})
        if bad_bp:
            problems.append(f"unknown blueprint(s) {bad_bp}; blueprints: {', '.join(BLUEPRINTS)}")
        if self.dense_mode not in MODES:
            problems.append(f"dense_mode must be one of {', '.join(MODES)}")
        if self.cf_every < 1 or self.train_epochs < 0 or self.blend_epochs < 1:
            problems.append("cf_every and blend_epochs must be at least 1, train_epochs at least 0")
        if problems:
            raise EpochscopeError("morphogenesis config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["experiment"] = "morphogenesis"
        return d


def config_from(overrides: list[str] | tuple[str, ...] | dict[str, Any] = (),
                base: dict[str, Any] | None = None) -> MorphConfig:
    """A MorphConfig from `key=value` strings (values as JSON, else plain strings) or a dict."""
    known = {f.name for f in fields(MorphConfig)}
    values = dict(base or {})
    values.pop("experiment", None)
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, raw in items:
        if key not in known:
            raise EpochscopeError(f"unknown morphogenesis config key {key!r}; valid keys: "
                                  f"{', '.join(sorted(known))}")
        values[key] = _parse(raw) if isinstance(raw, str) and key != "name" else raw
    try:
        return MorphConfig(**values)
    except TypeError as exc:
        raise EpochscopeError(f"morphogenesis config: {exc}") from None


def _split(item: str) -> tuple[str, str]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise EpochscopeError(f"override {item!r} is not of the form key=value")
    return key.strip(), raw.strip()


def _parse(raw: str) -> Any:
    if raw.lower() in ("none", "null"):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if "," in raw:
            return [_parse(x) for x in raw.strip("[]()").split(",")]
        return raw


# ------------------------------------------------------------------------------ data


def load_data(config: MorphConfig) -> dict[str, tuple[Tensor, Tensor]]:
    """The 1797 digits, scaled to [0, 1], split by a `data_seed` permutation."""
    pixels, labels = _digits()
    x = torch.tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(labels, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(config.data_seed))
    n_val, n_test = int(config.val_frac * len(y)), int(config.test_frac * len(y))
    idx = {"val": perm[:n_val], "test": perm[n_val:n_val + n_test], "train": perm[n_val + n_test:]}
    return {k: (x[i], y[i]) for k, i in idx.items()}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797 x 64 pixels 0..16, labels) from scikit-learn's copy of the UCI digits.

    Read straight from the file scikit-learn ships (what `load_digits` reads), because
    importing scikit-learn takes seconds; `load_digits` itself if the file is not where
    this scikit-learn keeps it.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise EpochscopeError("the morphogenesis experiment needs scikit-learn (its digits data set): "
                              "pip install 'epochscope[morphogenesis]'")
    csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        data = np.loadtxt(csv, delimiter=",", dtype=np.float64)
        return data[:, :-1], data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # pragma: no cover - a differently laid-out release

    digits = load_digits()  # pragma: no cover
    return digits.data, digits.target  # pragma: no cover


# ------------------------------------------------------------------------------ models


class Host(nn.Module):
    """conv(1->c1) [early] conv(c1->c2, stride 2) [mid] dense(hidden) [late] dense(10)."""

    def __init__(self, channels: tuple[int, int], hidden: int):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(c2 * 16, hidden)
        self.fc2 = nn.Linear(hidden, 10)
        self.widths = {"early": c1, "mid": c2, "late": hidden}

    def forward(self, x: Tensor, slot: Any = None) -> Tensor:
        h = F.relu(self.conv1(x))
        h = slot("early", h) if slot else h
        h = F.relu(self.conv2(h))
        h = slot("mid", h) if slot else h
        h = F.relu(self.fc1(h.flatten(1)))
        h = slot("late", h) if slot else h
        return self.fc2(h)


class _ZeroOut(nn.Module):
    def forward(self, h: Tensor) -> Tensor:
        return h * 0.0


class _Affine(nn.Module):
    def __init__(self, width: int, spatial: bool):
        super().__init__()
        shape = (1, width, 1, 1) if spatial else (1, width)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, h: Tensor) -> Tensor:
        return h * self.weight + self.bias


def make_seed(blueprint: str, width: int, spatial: bool) -> nn.Module:
    """A seed module for a slot of `width` channels (`spatial`: feature maps, else a vector)."""
    if blueprint == "conv":
        if spatial:
            seed = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, width, 1))
        else:
            seed = nn.Sequential(nn.Unflatten(1, (1, width)), nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(),
                                 nn.Conv1d(4, 1, 1), nn.Flatten(1))
    elif blueprint == "bottleneck":
        r = max(2, width // 4)
        seed = (nn.Sequential(nn.Conv2d(width, r, 1), nn.ReLU(), nn.Conv2d(r, width, 1)) if spatial
                else nn.Sequential(nn.Linear(width, r), nn.ReLU(), nn.Linear(r, width)))
    elif blueprint == "norm":
        # normalise, then a per-channel scale and shift (2 x width parameters, zero at first)
        return nn.Sequential(nn.GroupNorm(1, width, affine=False) if spatial
                             else nn.LayerNorm(width, elementwise_affine=False), _Affine(width, spatial))
    elif blueprint == "noop":
        seed = nn.Sequential(nn.Linear(width, width) if not spatial else nn.Conv2d(width, width, 1),
                             _ZeroOut())
        return seed
    else:
        raise EpochscopeError(f"unknown blueprint {blueprint!r}; blueprints: {', '.join(BLUEPRINTS)}")
    last = [m for m in seed.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return seed


@register_model
class MorphModel(nn.Module):
    """The host plus its seeds; `alpha.<slot>` buffers hold the blend coefficients."""

    def __init__(self, channels: tuple[int, int] = (4, 8), hidden: int = 16,
                 seeds: dict[str, str] | None = None):
        super().__init__()
        self.host = Host(tuple(channels), hidden)
        self.seeds = nn.ModuleDict()
        for slot in SLOTS:
            self.register_buffer(f"alpha_{slot}", torch.zeros(()))
        self.blueprint: dict[str, str] = {}
        for slot, bp in (seeds or {}).items():
            self.add_seed(slot, bp)
        self.isolated: set[str] = set()
        self.override: dict[str, float] | None = None  # counterfactual alphas
        self.record: dict[str, Any] | None = None      # per-slot tensors for telemetry

    @property
    def config(self) -> dict[str, Any]:
        return {"channels": list(self.host.conv1.weight.shape[:1]) + list(self.host.conv2.weight.shape[:1]),
                "hidden": int(self.host.fc1.out_features), "seeds": dict(self.blueprint)}

    def add_seed(self, slot: str, blueprint: str) -> nn.Module:
        seed = make_seed(blueprint, self.host.widths[slot], spatial=slot != "late")
        self.seeds[slot] = seed
        self.blueprint[slot] = blueprint
        return seed

    def remove_seed(self, slot: str) -> None:
        del self.seeds[slot]
        self.blueprint.pop(slot, None)
        self.set_alpha(slot, 0.0)

    def alpha(self, slot: str) -> float:
        return float(getattr(self, f"alpha_{slot}"))

    def set_alpha(self, slot: str, value: float) -> None:
        getattr(self, f"alpha_{slot}").fill_(float(value))

    def forward(self, x: Tensor) -> Tensor:
        return self.host(x, self._slot)

    def _slot(self, slot: str, h: Tensor) -> Tensor:
        rec = self.record
        if rec is not None:
            rec[f"pre.{slot}"] = h
        a = self.override.get(slot, 0.0) if self.override is not None else self.alpha(slot)
        if slot in self.seeds and a != 0.0:
            inp = h
            if slot in self.isolated:
                inp = h.detach()
                if rec is not None and h.requires_grad:
                    # what the seed would send back into the host without isolation
                    inp.requires_grad_(True)
                    h.retain_grad()
                    rec[f"iso.{slot}"] = (inp, h)
            h = h + a * self.seeds[slot](inp)
        if rec is not None:
            rec[f"out.{slot}"] = h
        return h


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------ the lifecycle


@dataclass
class Slot:
    """Lifecycle state of one slot (the tier-2 snapshot is built from it)."""

    name: str
    stage: str = "dormant"
    since: int = 0                       # epoch the stage began
    seed_id: str | None = None
    blueprint: str | None = None
    tried: int = 0                       # blueprints tried so far
    acc_at_germination: float | None = None
    last_acc: float | None = None
    contribution: float | None = None    # removal contribution, points (latest matrix)
    loss_gain: float | None = None       # val loss with it off minus with it on (latest matrix)
    shapley: float | None = None
    gate: str | None = None
    gate_passed: bool | None = None
    gate_reason: str | None = None
    culled_at: int | None = None

    @property
    def in_flight(self) -> bool:
        return self.stage in ("germinated", "training", "blending")

    def active(self, model: MorphModel) -> bool:
        return self.name in model.seeds and model.alpha(self.name) > 0.0


@dataclass
class MorphResult:
    """What `run` did: the bundle, the headline numbers and the measured costs."""

    bundle_path: Path
    config: MorphConfig
    final: dict[str, float]
    wall_time: float
    counterfactual_seconds: float
    counterfactual_evaluations: int
    matrices: int
    stages: dict[str, str]
    alerts: int
    dense_traces: int

    def describe(self) -> str:
        """One line for the console."""
        f = self.final
        return (f"{self.config.epochs} epochs in {self.wall_time:.1f} s; val acc {f['val_acc']:.3f} vs "
                f"host-only {f['host_only.val_acc']:.3f} ({100 * f['accuracy_delta']:+.1f} points), "
                f"param ratio {f['param_ratio']:.2f}x, efficiency {f['efficiency_ratio']:.2f}x; "
                f"{self.matrices} counterfactual matrices ({self.counterfactual_evaluations} evaluations, "
                f"{self.counterfactual_seconds:.2f} s); slots: "
                + ", ".join(f"{k} {v}" for k, v in self.stages.items())
                + f"; {self.alerts} alert(s), {self.dense_traces} dense trace(s)")


class _Run:
    def __init__(self, config: MorphConfig, rec: Recorder, progress: bool):
        self.cfg, self.rec = config, rec
        self.data = load_data(config)
        torch.manual_seed(config.seed)
        self.model = MorphModel(config.channels, config.hidden)
        self.baseline = Host(config.channels, config.hidden)
        self.baseline.load_state_dict(self.model.host.state_dict())  # same initial weights
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.base_opt = torch.optim.Adam(self.baseline.parameters(), lr=config.lr,
                                         weight_decay=config.weight_decay)
        self.order = torch.Generator().manual_seed(config.seed + 1)  # batch order, shared by both
        self.slots = {s: Slot(s) for s in SLOTS}
        self.host_params = param_count(self.model.host)
        self.fossilised_params = 0
        self.tracer = DenseTracer(rec, config.dense_mode, DenseTriggers(
            loss_spike=config.loss_spike, accuracy_drop=config.accuracy_drop,
            gradient_explosion=config.gradient_explosion), force_epochs=config.dense_force_epochs)
        self.step = 0
        self.history: list[float] = []
        self.matrix: CounterfactualMatrix | None = None
        self.cf_seconds, self.cf_evals, self.cf_count = 0.0, 0, 0
        self.train_seconds = 0.0
        self.view = _LiveView(config, enabled=progress)
        self.alerts: list[str] = []
        self.tracer_traces = 0
        self._leak: dict[str, float] = {}

    # -- one epoch -------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, model, base = self.cfg, self.model, self.baseline
        x, y = self.data["train"]
        perm = torch.randperm(len(y), generator=self.order)
        lr = cfg.lr * (cfg.lr_spike_factor if epoch == cfg.lr_spike_epoch else 1.0)
        for opt in (self.opt, self.base_opt):
            for g in opt.param_groups:
                g["lr"] = lr
        model.train()
        sums: dict[str, float] = {}
        n_batches = 0
        leak: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for start in range(0, len(y), cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            xb, yb = x[idx], y[idx]
            detailed = self.tracer.detailed
            model.record = {}
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            rec, model.record = model.record, None
            host_g = _grad_norm(model.host.parameters())
            seed_g = {s: _grad_norm(m.parameters()) for s, m in model.seeds.items()}
            for key, (inp, h) in ((k, v) for k, v in rec.items() if k.startswith("iso.")):
                if inp.grad is not None and h.grad is not None:
                    denom = float(h.grad.norm())
                    leak.setdefault(key[4:], []).append(float(inp.grad.norm()) / denom if denom > 0 else 0.0)
            arrays = self._detail(rec) if detailed else None
            self.opt.step()
            # the host-only baseline: same batch, its own optimizer
            b_logits = base(xb)
            b_loss = F.cross_entropy(b_logits, yb)
            self.base_opt.zero_grad(set_to_none=True)
            b_loss.backward()
            self.base_opt.step()
            acc = float((logits.argmax(1) == yb).float().mean())
            b_acc = float((b_logits.argmax(1) == yb).float().mean())
            scalars = {"loss": loss.item(), "accuracy": acc, "grad_norm.host": host_g,
                       "host_only.loss": b_loss.item(), "host_only.accuracy": b_acc,
                       **{f"grad_norm.{s}": g for s, g in seed_g.items()}}
            self.tracer.batch(self.step, epoch, arrays, **scalars)
            self.step += 1
            n_batches += 1
            for k, v in scalars.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
        self.train_seconds += time.perf_counter() - t0
        n = len(y)
        out = {"train_loss": sums["loss"] / n, "train_acc": sums["accuracy"] / n,
               "host_only.train_loss": sums["host_only.loss"] / n,
               "host_only.train_acc": sums["host_only.accuracy"] / n,
               "grad_norm.host": sums["grad_norm.host"] / n, "lr": lr}
        for s in model.seeds:
            if f"grad_norm.{s}" in sums:
                out[f"grad_norm.{s}"] = sums[f"grad_norm.{s}"] / n
        out["isolation_leakage"] = max((float(np.mean(v)) for v in leak.values()), default=math.nan)
        self._leak = {s: float(np.mean(v)) for s, v in leak.items()}
        return out

    def _detail(self, rec: dict[str, Any]) -> dict[str, np.ndarray]:
        """Per-batch arrays of a dense trace: gradient histograms, activation stats, dead units."""
        groups = [("host", list(self.model.host.parameters()))] + [
            (s, list(self.model.seeds[s].parameters()) if s in self.model.seeds else []) for s in SLOTS]
        hist = np.zeros((len(groups), len(_HIST_BINS) - 1))
        for i, (_, params) in enumerate(groups):
            grads = [p.grad.detach().abs().flatten() for p in params if p.grad is not None]
            if grads:
                g = torch.cat(grads).clamp_min(1e-30).log10().numpy()
                hist[i] = np.histogram(np.clip(g, _HIST_BINS[0], _HIST_BINS[-1]), _HIST_BINS)[0]
        means, stds, dead = [], [], []
        for s in SLOTS:
            out = rec[f"out.{s}"].detach()
            means.append(float(out.mean()))
            stds.append(float(out.std()))
            pre = rec[f"pre.{s}"].detach()
            units = pre.transpose(0, 1).reshape(pre.shape[1], -1)  # per channel / feature
            dead.append(float((units.amax(1) <= 0).sum()))
        return {"grad_hist": hist, "activation_mean": np.asarray(means),
                "activation_std": np.asarray(stds), "dead_units": np.asarray(dead)}

    @torch.no_grad()
    def evaluate(self, split: str, model: nn.Module | None = None,
                 alphas: dict[str, float] | None = None) -> dict[str, float]:
        m = model or self.model
        x, y = self.data[split]
        m.eval()
        if alphas is not None:
            self.model.override = alphas
        try:
            logits = m(x)
        finally:
            self.model.override = None
            m.train()
        right = logits.argmax(1) == y
        out = {"loss": float(F.cross_entropy(logits, y)), "acc": float(right.float().mean())}
        if self.cfg.dense_mode == "research":  # the design's research mode: per-class breakdowns
            for k in range(10):
                out[f"class_{k}_acc"] = float(right[y == k].float().mean())
        return out

    # -- counterfactuals -------------------------------------------------------------------
    def counterfactual(self, epoch: int) -> CounterfactualMatrix | None:
        active = {s: self.model.alpha(s) for s in SLOTS if self.slots[s].active(self.model)}
        if not active:
            return None

        def evaluate(alphas: dict[str, float]) -> dict[str, float]:
            r = self.evaluate("val", alphas=alphas)
            return {"val_acc": r.pop("acc"), "val_loss": r.pop("loss"), **{f"val_{k}": v for k, v in r.items()}}

        m = self.rec.counterfactual(epoch, evaluate, active, metric="val_acc",
                                    max_factorial=self.cfg.cf_max_factorial,
                                    permutations=self.cfg.cf_permutations, seed=self.cfg.seed * 100003 + epoch)
        self.matrix = m
        self.cf_seconds += m.seconds
        self.cf_evals += len(m.configs)
        self.cf_count += 1
        by_code = {c.code: c for c in m.configs}
        full_loss = by_code["1" * len(m.slots)].metrics.get("val_loss", math.nan)
        for i, s in enumerate(m.slots):
            self.slots[s].contribution = 100.0 * m.removal[s]
            self.slots[s].shapley = 100.0 * m.shapley[s]
            off = "".join("0" if j == i else "1" for j in range(len(m.slots)))
            self.slots[s].loss_gain = by_code[off].metrics.get("val_loss", math.nan) - full_loss
        return m

    # -- the policy ------------------------------------------------------------------------
    def policy(self, epoch: int, val_acc: float, seed_finite: bool) -> tuple[list[str], list[str]]:
        """Advance the lifecycle after `epoch`; returns (transitions, failed gates) as text."""
        cfg, model = self.cfg, self.model
        transitions: list[str] = []
        failed: list[str] = []
        for s in self.slots.values():
            age = epoch - s.since + 1  # epochs spent in the stage, this one included
            if s.stage == "germinated":
                params = param_count(model.seeds[s.name])
                ok = seed_finite and params <= cfg.max_seed_params
                reason = (f"output and gradient finite, {params} parameters <= {cfg.max_seed_params}" if ok
                          else f"{'non-finite output or gradient' if not seed_finite else ''}"
                               f"{'; ' if not seed_finite and params > cfg.max_seed_params else ''}"
                               f"{f'{params} parameters > {cfg.max_seed_params}' if params > cfg.max_seed_params else ''}")
                self._gate(epoch, s, "G0", ok, reason, transitions, failed,
                           "training" if cfg.train_epochs > 0 else "blending")
            elif s.stage == "training" and age >= cfg.train_epochs:
                g = s.loss_gain if s.loss_gain is not None else math.nan
                ok = math.isfinite(g) and g > cfg.g1_min_loss_gain
                self._gate(epoch, s, "G1", ok, f"switching it off changes validation loss by {g:+.4g} "
                           f"({'>' if ok else '<='} {cfg.g1_min_loss_gain:g})", transitions, failed, "blending")
            elif s.stage == "blending":
                if age >= cfg.blend_epochs:
                    c = s.contribution if s.contribution is not None else math.nan
                    ok = math.isfinite(c) and c >= cfg.g2_min_contribution
                    self._gate(epoch, s, "G2", ok, f"removal contribution {c:+.2f} points "
                               f"{'>=' if ok else '<'} {cfg.g2_min_contribution:g}", transitions, failed,
                               "fossilised")
                else:
                    model.set_alpha(s.name, cfg.alpha_train + (1 - cfg.alpha_train) * (age + 1) / cfg.blend_epochs)
            elif s.stage == "culled" and s.culled_at is not None and epoch - s.culled_at >= cfg.embargo_epochs:
                if s.tried < len(cfg.blueprints.get(s.name, [])):
                    self._move(epoch, s, "dormant", transitions, "embargo over")
        self.history.append(val_acc)
        if (epoch >= cfg.warmup_epochs and not any(s.in_flight for s in self.slots.values())
                and len(self.history) > cfg.plateau_window
                and 100.0 * (val_acc - self.history[-1 - cfg.plateau_window]) < cfg.plateau_delta):
            for name in cfg.slot_order:
                s = self.slots[name]
                options = cfg.blueprints.get(name, [])
                if s.stage == "dormant" and s.tried < len(options):
                    self._germinate(epoch, s, options[s.tried], val_acc, transitions)
                    break
        return transitions, failed

    def gate_due(self, s: Slot, epoch: int) -> bool:
        age = epoch - s.since + 1
        return ((s.stage == "training" and age >= self.cfg.train_epochs)
                or (s.stage == "blending" and age >= self.cfg.blend_epochs))

    def _germinate(self, epoch: int, s: Slot, blueprint: str, val_acc: float, transitions: list[str]) -> None:
        seed = self.model.add_seed(s.name, blueprint)
        self.opt.add_param_group({"params": list(seed.parameters()), "lr": self.cfg.lr,
                                  "weight_decay": self.cfg.weight_decay, "slot": s.name})
        self.model.set_alpha(s.name, self.cfg.alpha_train)
        self.model.isolated.add(s.name)
        s.tried += 1
        s.seed_id = f"{s.name}-{s.tried}-{blueprint}"
        s.blueprint = blueprint
        s.acc_at_germination = val_acc
        s.contribution = s.shapley = s.loss_gain = None
        s.gate = s.gate_passed = s.gate_reason = None
        self._move(epoch, s, "germinated", transitions, f"{blueprint}, {param_count(seed)} parameters")

    def _gate(self, epoch: int, s: Slot, gate: str, ok: bool, reason: str, transitions: list[str],
              failed: list[str], on_pass: str) -> None:
        s.gate, s.gate_passed, s.gate_reason = gate, ok, reason
        self.rec.event(epoch, tm.GATE_EVENT, f"{s.name} {gate} {'passed' if ok else 'failed'}: {reason}",
                       payload={"slot": s.name, "gate": gate, "passed": ok, "reason": reason,
                                "seed_id": s.seed_id, "blueprint": s.blueprint,
                                "contribution": s.contribution})
        if ok:
            if on_pass == "blending":
                self.model.isolated.discard(s.name)
                a0 = self.cfg.alpha_train
                self.model.set_alpha(s.name, a0 + (1 - a0) / self.cfg.blend_epochs)
            if on_pass == "fossilised":
                self.model.set_alpha(s.name, 1.0)
                self.fossilised_params += param_count(self.model.seeds[s.name])
            self._move(epoch, s, on_pass, transitions, f"{gate} passed")
        else:
            failed.append(f"{s.name} {gate}: {reason}")
            self._cull(epoch, s, transitions, f"{gate} failed")

    def _cull(self, epoch: int, s: Slot, transitions: list[str], why: str) -> None:
        seed = self.model.seeds[s.name]
        ids = {id(p) for p in seed.parameters()}
        for p in seed.parameters():
            self.opt.state.pop(p, None)
        self.opt.param_groups = [g for g in self.opt.param_groups if not ids & {id(p) for p in g["params"]}]
        self.model.remove_seed(s.name)
        self.model.isolated.discard(s.name)
        s.culled_at = epoch
        self._move(epoch, s, "culled", transitions, why)

    def _move(self, epoch: int, s: Slot, stage: str, transitions: list[str], why: str) -> None:
        before, s.stage, s.since = s.stage, stage, epoch + 1
        text = f"{s.name} {before} -> {stage} ({why})"
        transitions.append(text)
        self.rec.event(epoch, tm.STAGE_EVENT, text, payload={
            "slot": s.name, "from": before, "to": stage, "seed_id": s.seed_id, "blueprint": s.blueprint,
            "reason": why})

    # -- tier 2 snapshot ------------------------------------------------------------------
    def snapshot(self, epoch: int, val_acc: float) -> list[dict[str, Any]]:
        rows = []
        for s in self.slots.values():
            has = s.name in self.model.seeds
            improvement = (100.0 * (val_acc - s.acc_at_germination)
                           if has and s.acc_at_germination is not None else None)
            this_epoch = 100.0 * (val_acc - s.last_acc) if has and s.last_acc is not None else None
            s.last_acc = val_acc if has else None
            rows.append({
                "slot": s.name, "stage": s.stage, "epochs_in_stage": max(0, epoch - s.since + 1),
                "seed_id": s.seed_id if has else None, "blueprint": s.blueprint if has else None,
                "seed_params": param_count(self.model.seeds[s.name]) if has else 0,
                "alpha": self.model.alpha(s.name),
                "contribution": s.contribution if has else None,
                "total_improvement": improvement, "improvement_this_epoch": this_epoch,
                "last_gate": s.gate, "last_gate_passed": s.gate_passed, "last_gate_reason": s.gate_reason})
        return rows


def _grad_norm(params: Any) -> float:
    grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


# ------------------------------------------------------------------------------ the run


def run(config: MorphConfig, output: str | Path, *, overwrite: bool = False, progress: bool | None = None,
        threads: int | None = 1) -> MorphResult:
    """Grow seeds on the digits host, with the host-only baseline alongside, into `output`.

    `progress=None`: the live console view only when stderr is a terminal. `threads`: torch
    intra-op threads (1: fastest for this tiny model on a shared machine; results do not
    depend on it).
    """
    path = Path(output)
    if progress is None:
        progress = sys.stderr.isatty()
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t_start = time.perf_counter()
    try:
        seeds = {"seed": config.seed, "data_seed": config.data_seed}
        with Recorder(path, config.to_dict(), seeds=seeds, overwrite=overwrite, flush_interval=5.0) as rec:
            r = _Run(config, rec, progress)
            with r.view:
                final = _loop(r, config, rec)
    finally:
        torch.set_num_threads(before)
    wall = time.perf_counter() - t_start
    return MorphResult(path, config, final, wall, r.cf_seconds, r.cf_evals, r.cf_count,
                       {s.name: s.stage for s in r.slots.values()}, len(r.alerts), r.tracer_traces)


def _loop(r: _Run, cfg: MorphConfig, rec: Recorder) -> dict[str, float]:
    model = r.model
    init = r.evaluate("val")
    rec.checkpoint(0, model, r.opt)  # the initial state: a replay starts here
    rec.episode(
        episode_id=uuid.uuid4().hex, experiment="morphogenesis", task_type="classification",
        dataset="sklearn digits 8x8 (1797 images, 10 classes)",
        splits={k: int(len(v[1])) for k, v in r.data.items()},
        host_architecture=f"cnn conv{cfg.channels[0]}-conv{cfg.channels[1]}-fc{cfg.hidden}",
        host_params=r.host_params, slot_config={s: int(w) for s, w in model.host.widths.items()},
        blueprints=cfg.blueprints, max_epochs=cfg.epochs, base_seed=cfg.seed, torch_seed=cfg.seed,
        numpy_seed=None, data_seed=cfg.data_seed, dense_mode=cfg.dense_mode,
        hyperparameters={"lr": cfg.lr, "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay,
                         "optimizer": "Adam"},
        initial_checkpoint_epoch=0,
        baseline={"initial_loss": init["loss"], "initial_accuracy": init["acc"]},
        policy="heuristic (collectors/experiments/morphogenesis.py)")
    final: dict[str, float] = {}
    for epoch in range(1, cfg.epochs + 1):
        m = r.train_epoch(epoch)
        val, base_val = r.evaluate("val"), r.evaluate("val", r.baseline)
        test, base_test = r.evaluate("test"), r.evaluate("test", r.baseline)
        seed_finite = all(math.isfinite(m.get(f"grad_norm.{s}", 0.0)) for s in model.seeds) and math.isfinite(val["loss"])
        # the matrix sees the model as it was trained this epoch; the gates read it
        if (epoch % cfg.cf_every == 0 or epoch == cfg.epochs
                or any(r.gate_due(s, epoch) for s in r.slots.values())):
            r.counterfactual(epoch)
        transitions, failed = r.policy(epoch, val["acc"], seed_finite)
        seeds_p = sum(param_count(model.seeds[s]) for s in model.seeds)
        total = r.host_params + seeds_p
        eff = ((val["acc"] / total) / (base_val["acc"] / r.host_params) if base_val["acc"] > 0 else math.nan)
        m.update({"val_loss": val["loss"], "val_acc": val["acc"], "test_loss": test["loss"],
                  "test_acc": test["acc"], "host_only.val_loss": base_val["loss"],
                  "host_only.val_acc": base_val["acc"], "host_only.test_loss": base_test["loss"],
                  "host_only.test_acc": base_test["acc"], "accuracy_delta": val["acc"] - base_val["acc"],
                  "test_accuracy_delta": test["acc"] - base_test["acc"],
                  "params.host": r.host_params, "params.seeds": seeds_p - r.fossilised_params,
                  "params.fossilised": r.fossilised_params, "params.total": total,
                  "param_ratio": total / r.host_params, "efficiency_ratio": eff,
                  "slots.active": sum(s.active(model) for s in r.slots.values())})
        for s, v in r._leak.items():
            m[f"isolation_leakage.{s}"] = v
        rec.log(epoch, **m)
        rec.slots(epoch, r.snapshot(epoch, val["acc"]))
        fired = r.tracer.end_epoch(epoch, loss=m["train_loss"], accuracy=val["acc"],
                                   grad_norm=m["grad_norm.host"], transitions=transitions,
                                   gate_failures=failed)
        r.alerts.extend(f["message"] for f in fired if f["reason"] not in ("stage_transition", "forced"))
        final = m
        r.view.update(epoch, m, r)
    r.tracer.close()
    r.tracer_traces = r.rec._telemetry.traces
    rec.checkpoint(cfg.epochs, model, r.opt)
    summary = {"final_loss": final["val_loss"], "final_accuracy": final["val_acc"],
               "final_test_accuracy": final["test_acc"],
               "final_host_only_loss": final["host_only.val_loss"],
               "final_host_only_accuracy": final["host_only.val_acc"],
               "final_host_only_test_accuracy": final["host_only.test_acc"]}
    rec.episode(
        baseline={"initial_loss": init["loss"], "initial_accuracy": init["acc"],
                  "final_host_only_loss": final["host_only.val_loss"],
                  "final_host_only_accuracy": final["host_only.val_acc"],
                  "final_host_only_test_accuracy": final["host_only.test_acc"]},
        final={**summary, "accuracy_delta": final["accuracy_delta"],
               "test_accuracy_delta": final["test_accuracy_delta"], "param_ratio": final["param_ratio"],
               "efficiency_ratio": final["efficiency_ratio"], "params_total": final["params.total"],
               "stages": {s.name: s.stage for s in r.slots.values()},
               "seeds": {s.name: s.seed_id for s in r.slots.values() if s.name in model.seeds}},
        cost={"counterfactual_seconds": r.cf_seconds, "counterfactual_evaluations": r.cf_evals,
              "counterfactual_matrices": r.cf_count, "train_seconds": r.train_seconds})
    rec.event(cfg.epochs, "finished", "final metrics", payload=summary)
    return final


# ------------------------------------------------------------------------------ the live view


class _LiveView:
    """The design's training monitor, redrawn every epoch with rich (off when not wanted)."""

    def __init__(self, config: MorphConfig, enabled: bool):
        self.cfg, self.enabled, self._live = config, enabled, None

    def __enter__(self) -> _LiveView:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, epoch: int, m: dict[str, float], r: _Run) -> None:
        if self._live is not None:
            self._live.update(monitor(epoch, self.cfg.epochs, m, r.slots, r.model, r.alerts))


def monitor(epoch: int, epochs: int, m: dict[str, float], slots: dict[str, Slot], model: MorphModel,
            alerts: list[str]) -> Any:
    """A rich renderable: accuracy delta, parameter ratio, efficiency, per-seed Shapley, alerts."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    delta = 100 * m["accuracy_delta"]
    win = Text(" WIN", style="green") if delta > 0 else Text(" behind", style="red")
    t.add_row("ACCURACY", Text(f"{100 * m['val_acc']:.1f}% ({delta:+.1f} points vs host-only "
                               f"{100 * m['host_only.val_acc']:.1f}%)") + win)
    t.add_row("PARAM RATIO", f"{m['param_ratio']:.2f}x host parameters ({int(m['params.total'])} "
                             f"vs {int(m['params.host'])})")
    eff = m["efficiency_ratio"]
    t.add_row("EFFICIENCY", Text(f"{eff:.2f}x acc/param vs host-only")
              + (Text(" WIN", style="green") if eff > 1 else Text("")))
    seeds = Table("slot", "stage", "seed", "params", "alpha", "Shapley", "removal", "per 1k params",
                  box=None)
    for s in slots.values():
        has = s.name in model.seeds
        n = param_count(model.seeds[s.name]) if has else 0
        per_k = s.shapley * 1000 / n if has and n and s.shapley is not None else None
        seeds.add_row(s.name, s.stage, Text(s.seed_id or "-") if has else "-", str(n) if has else "-",
                      f"{model.alpha(s.name):.2f}", _pts(s.shapley) if has else "-",
                      _pts(s.contribution) if has else "-", _pts(per_k) if has else "-")
    recent = alerts[-3:]
    body = Table.grid()
    body.add_row(t)
    body.add_row(Text("SEED CONTRIBUTIONS (points of validation accuracy)", style="bold"))
    body.add_row(seeds)
    body.add_row(Text("ALERTS: " + ("; ".join(recent) if recent else "none"),
                      style="yellow" if recent else ""))
    return Panel(body, title="MORPHOGENETIC TRAINING MONITOR", subtitle=f"epoch {epoch}/{epochs}")


def _pts(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:+.2f}"
