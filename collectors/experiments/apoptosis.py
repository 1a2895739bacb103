"""Neuron-level apoptosis in a small transformer LM (research-notes/apoptosis-experiment-log.md).

Every `interval` steps each MLP layer loses its least fit neurons and gains as many new ones
(the width never changes). A neuron's fitness is |activation x gradient| summed over the
steps since the last round (the notes' "gradient x activation"). Strategies:

- `standard`: the `prune_rate` least fit die; each is replaced by a copy of a parent drawn
  from the fittest quarter (input and output weights) plus Gaussian mutation of
  `mutation_strength` x the layer's weight spread. Instant, hence the notes' spikes.
- `functional` (functional preservation): as standard, but the newborn is first fitted for
  `preservation_steps` Adam steps to reproduce the dying neuron's output contribution on the
  latest batch, then swapped in, so the network's function barely changes.
- `hybrid` (constant-capacity birth and death): `turnover_rate` die; as many are born by
  splitting fit parents: the child gets the parent's mutated input weights and half of its
  output weights, the parent keeps the other half, so births preserve the function.
- `crossover`: each newborn mixes two parents weight by weight; `crossover_mode` `uniform`
  (each weight from either parent, 50/50), `fitness_weighted` (from parent 1 with
  probability f1 / (f1 + f2)) or `random` (two random parents, not the fittest, 50/50).
- `none`: no apoptosis: the baseline.

With `baseline` (default), a `none` model with the same init trains on the same batches
alongside, so the notes' success criteria (loss gap to the baseline, variance, event count,
age diversity) are computed in the run and stored in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epochscope.collectors.experiments.base import (
    ExperimentResult,
    one_of,
    run_recorded,
)
from epochscope.collectors.experiments.lm import LMConfig, TinyLM, check_activation
from epochscope.collectors.experiments.loop import Telemetry, Trainer, evaluate, sample_text
from epochscope.collectors.experiments.monitors import measure_spikes
from epochscope.collectors.experiments.tasks import TASKS, make_task
from epochscope.errors import EpochscopeError

__all__ = ["STRATEGIES", "CROSSOVER_MODES", "ApoptosisConfig", "Apoptosis", "run_apoptosis"]

STRATEGIES = ("none", "standard", "functional", "hybrid", "crossover")
CROSSOVER_MODES = ("uniform", "fitness_weighted", "random")
# The notes' success criteria: (name, target description) -- computed in `success_criteria`.
TARGET_GAP, TARGET_VARIANCE, TARGET_EVENTS = 0.12, 0.1, 10


@dataclass
class ApoptosisConfig:
    """Every knob of one run; the defaults (with the baseline) run in about a minute on 2 cores."""

    name: str = "apoptosis"
    strategy: str = "functional"
    task: str = "chars"
    data: str | None = None
    steps: int = 500
    interval: int = 40  # steps between apoptosis rounds (12 rounds by default: the notes want > 10)
    prune_rate: float = 0.10  # standard, functional, crossover
    turnover_rate: float = 0.05  # hybrid
    mutation_strength: float = 0.3
    preservation_steps: int = 50  # functional
    crossover_mode: str = "uniform"
    baseline: bool = True
    # model and optimizer
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    act: str = "gelu"
    n_ctx: int = 64
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    p: int = 97
    train_frac: float = 0.3
    # telemetry
    metrics_interval: int = 25  # validation loss every so many steps
    checkpoint_every: int = 100  # neuron ages and lineage are stored at each checkpoint
    spike_window: int = 10
    sample_chars: int = 48
    seed: int = 0
    data_seed: int = 0

    def __post_init__(self) -> None:
        one_of("strategy", self.strategy, STRATEGIES)
        one_of("crossover_mode", self.crossover_mode, CROSSOVER_MODES)
        one_of("task", self.task, TASKS)
        check_activation(self.act)
        for key in ("prune_rate", "turnover_rate"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise EpochscopeError(f"{key}={getattr(self, key)} must be strictly between 0 and 1")
        for key in ("steps", "interval", "metrics_interval", "checkpoint_every", "batch_size",
                    "n_ctx", "spike_window", "preservation_steps"):
            if getattr(self, key) < 1:
                raise EpochscopeError(f"{key}={getattr(self, key)} must be at least 1")
        if self.mutation_strength < 0:
            raise EpochscopeError(f"mutation_strength={self.mutation_strength} must not be negative")
        if self.lr <= 0 or self.grad_clip <= 0 or self.weight_decay < 0:
            raise EpochscopeError("lr and grad_clip must be positive, weight_decay non-negative")
        LMConfig(vocab_size=2, n_ctx=self.n_ctx, d_model=self.d_model, n_heads=self.n_heads,
                 n_layers=self.n_layers, act=self.act)

    @property
    def rate(self) -> float:
        return self.turnover_rate if self.strategy == "hybrid" else self.prune_rate

    def seeds(self) -> dict[str, int]:
        return {"seed": self.seed, "data_seed": self.data_seed}


class Apoptosis:
    """The model, its neurons' ids, parents, ages and fitness; `run` trains it."""

    def __init__(self, config: ApoptosisConfig):
        c = self.config = config
        self.task = make_task(c.task, data=c.data, n_ctx=c.n_ctx, batch_size=c.batch_size,
                              p=c.p, train_frac=c.train_frac, data_seed=c.data_seed)
        torch.manual_seed(c.seed)
        shape = LMConfig(vocab_size=self.task.vocab_size, n_ctx=self.task.n_ctx, d_model=c.d_model,
                         n_heads=c.n_heads, n_layers=c.n_layers, act=c.act)
        self.model = TinyLM(shape, generator=torch.Generator().manual_seed(c.seed))
        self.trainer = self._trainer(self.model)
        self.base = None
        if c.baseline and c.strategy != "none":  # identical init: same seed, same draws
            self.base = TinyLM(LMConfig(**vars(shape)), generator=torch.Generator().manual_seed(c.seed))
            self.base_trainer = self._trainer(self.base)
        self.batches = torch.Generator().manual_seed(c.data_seed + 1)
        self.gen = torch.Generator().manual_seed(c.seed + 7919)  # apoptosis draws
        n_l, m = c.n_layers, shape.d_mlp
        self.ids = torch.arange(n_l * m, dtype=torch.long).reshape(n_l, m)
        self.parents = torch.full((n_l, m), -1, dtype=torch.long)
        self.parents2 = torch.full((n_l, m), -1, dtype=torch.long)
        self.born = torch.zeros((n_l, m), dtype=torch.long)  # step of birth
        self.next_id = n_l * m
        self.fitness = torch.zeros((n_l, m))
        for mlp in self.model.mlps:
            mlp.track = c.strategy != "none"
        self.rec: Any = None
        self.telemetry: Telemetry | None = None
        self.rounds: list[dict[str, Any]] = []
        self.loss: list[tuple[int, float]] = []
        self.base_loss: list[float] = []
        self.val: list[tuple[int, float, float]] = []  # (step, val loss, baseline val loss)
        self.prompt = "" if self.task.last_only else self.task.decode(self.task.val_batches()[0][0][0, :16].tolist())

    def _trainer(self, model: TinyLM) -> Trainer:
        c = self.config
        return Trainer(model, lr=c.lr, weight_decay=c.weight_decay, grad_clip=c.grad_clip,
                       last_only=self.task.last_only)

    def attach(self, rec: Any) -> None:
        self.rec = rec
        self.telemetry = Telemetry(rec, metrics_interval=self.config.metrics_interval)

    # -- training ------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        c, rec = self.config, self.rec
        val_batches = self.task.val_batches()
        if rec is not None:
            self._checkpoint(0)
        for step in range(1, c.steps + 1):
            x, y = self.task.batch(self.batches)
            m = self.trainer.step(x, y)
            self.loss.append((step, m["train_loss"]))
            if not math.isfinite(m["train_loss"]):
                raise _Diverged(step, m["train_loss"])
            if self.base is not None:
                bm = self.base_trainer.step(x, y)
                self.base_loss.append(bm["train_loss"])
            val_due = step % c.metrics_interval == 0 or step == c.steps
            if val_due:
                vl, va = evaluate(self.model, val_batches, self.task.last_only)
                bvl = evaluate(self.base, val_batches, self.task.last_only)[0] if self.base is not None else math.nan
                self.val.append((step, vl, bvl))
            if rec is not None:
                local = (step - 1) % c.interval + 1  # the step inside the apoptosis interval
                if self.base is not None:
                    m["baseline_train_loss"] = bm["train_loss"]
                self.telemetry.step(step, local, m)  # type: ignore[union-attr]
                if val_due:
                    self.telemetry.val(step, local, vl, va)  # type: ignore[union-attr]
                    if self.base is not None:
                        rec.log_step(step, local, baseline_val_loss=bvl)
            if c.strategy != "none":
                for layer, mlp in enumerate(self.model.mlps):
                    self.fitness[layer] += mlp.fitness
                    mlp.fitness.zero_()
                if step % c.interval == 0 and step < c.steps:
                    self._round(step, x)
            if rec is not None and (step % c.checkpoint_every == 0 or step == c.steps):
                self._checkpoint(step)
        final = self._final()
        if rec is not None:
            self._record_end(final)
        return final

    # -- one apoptosis round ---------------------------------------------------------------
    def _round(self, step: int, x: torch.Tensor) -> None:
        c = self.config
        n_l, m = self.ids.shape
        k = max(1, round(c.rate * m))
        hidden_inputs = self._mlp_inputs(x) if c.strategy == "functional" else None
        info = {"round": len(self.rounds) + 1, "strategy": c.strategy, "pruned": 0, "born": 0,
                "layers": []}
        with torch.no_grad():
            for layer, mlp in enumerate(self.model.mlps):
                fit = self.fitness[layer]
                order = torch.argsort(fit, stable=True)
                dying = order[:k]
                threshold = float(fit[dying].max())
                pool = order[k:][-max(1, (m - k) // 4):]  # the fittest quarter of the survivors
                if c.strategy == "crossover" and c.crossover_mode == "random":
                    pool = order[k:]
                if c.strategy == "hybrid":  # a split needs distinct parents (each halves once)
                    pool = order[k:][-max(k, len(pool)):]
                    p1 = pool[torch.randperm(len(pool), generator=self.gen)[:k]]
                else:
                    p1 = pool[torch.randint(0, len(pool), (k,), generator=self.gen)]
                p2 = pool[torch.randint(0, len(pool), (k,), generator=self.gen)] if c.strategy == "crossover" else None
                died_ids = self.ids[layer, dying].clone()
                died_fit = fit[dying].clone()
                self._birth(layer, mlp, dying, p1, p2, hidden_inputs)
                new_ids = torch.arange(self.next_id, self.next_id + k)
                self.next_id += k
                self.ids[layer, dying] = new_ids
                self.parents[layer, dying] = self.ids[layer, p1]
                self.parents2[layer, dying] = self.ids[layer, p2] if p2 is not None else -1
                self.born[layer, dying] = step
                self._reset_moments(mlp, dying)
                if self.rec is not None:
                    self.rec.append_rows("births", {
                        "step": np.full(k, step, dtype=np.int64), "layer": np.full(k, layer, dtype=np.int64),
                        "slot": dying.numpy().astype(np.int64), "neuron_id": new_ids.numpy().astype(np.int64),
                        "parent_id": self.parents[layer, dying].numpy().astype(np.int64),
                        "parent2_id": self.parents2[layer, dying].numpy().astype(np.int64),
                        "replaced_id": died_ids.numpy().astype(np.int64),
                        "replaced_fitness": died_fit.numpy().astype(np.float64),
                    })
                info["layers"].append({"layer": layer, "pruned": k, "born": k, "fitness_threshold": threshold,
                                       "mean_fitness": float(fit.mean())})
                info["pruned"] += k
                info["born"] += k
        info["fitness_threshold"] = max(entry["fitness_threshold"] for entry in info["layers"])
        self.rounds.append({"step": step, **info})
        self.fitness.zero_()
        if self.rec is not None:
            self.rec.event(step, "apoptosis", f"round {info['round']}: {info['pruned']} neurons pruned, "
                           f"{info['born']} born ({c.strategy})", payload=info)

    def _mlp_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each MLP's input on batch `x` (what the functional strategy fits newborns on)."""
        captured: list[torch.Tensor] = []
        hooks = [mlp.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
                 for mlp in self.model.mlps]
        try:
            with torch.no_grad():
                self.model(x)
        finally:
            for h in hooks:
                h.remove()
        # A fixed-stride subsample of the batch's tokens is plenty to fit a few neurons on.
        return [t.reshape(-1, t.shape[-1])[::4] for t in captured]

    def _birth(self, layer: int, mlp: Any, dying: torch.Tensor, p1: torch.Tensor,
               p2: torch.Tensor | None, inputs: list[torch.Tensor] | None) -> None:
        c = self.config
        w_in, b_in, w_out = mlp.fc_in.weight, mlp.fc_in.bias, mlp.fc_out.weight
        s_in, s_b, s_out = (float(t.std()) * c.mutation_strength for t in (w_in, b_in, w_out))

        def noise(shape: tuple[int, ...], scale: float) -> torch.Tensor:
            return torch.randn(shape, generator=self.gen) * scale

        new_in, new_b, new_out = w_in[p1].clone(), b_in[p1].clone(), w_out[:, p1].clone()
        if p2 is not None:
            if c.crossover_mode == "fitness_weighted":
                f1, f2 = self.fitness[layer, p1], self.fitness[layer, p2]
                prob = (f1 / (f1 + f2).clamp_min(1e-12))[:, None]
            else:
                prob = torch.full((len(p1), 1), 0.5)
            pick = torch.rand(new_in.shape, generator=self.gen) < prob
            new_in = torch.where(pick, new_in, w_in[p2])
            pick_b = torch.rand(new_b.shape, generator=self.gen) < prob[:, 0]
            new_b = torch.where(pick_b, new_b, b_in[p2])
            pick_o = torch.rand(new_out.shape, generator=self.gen) < prob[:, 0][None, :]
            new_out = torch.where(pick_o, new_out, w_out[:, p2])
        new_in += noise(new_in.shape, s_in)
        new_b += noise(new_b.shape, s_b)
        if c.strategy == "hybrid":  # split: parent and child each carry half the output
            half = w_out[:, p1] / 2
            w_out[:, p1] = half
            new_out = half.clone()
        else:
            new_out += noise(new_out.shape, s_out)
        if c.strategy == "functional" and inputs is not None:
            new_in, new_b, new_out = self._preserve(mlp, inputs[layer], dying, new_in, new_b, new_out)
        w_in[dying], b_in[dying], w_out[:, dying] = new_in, new_b, new_out

    def _preserve(self, mlp: Any, x: torch.Tensor, dying: torch.Tensor, w_in: torch.Tensor,
                  b: torch.Tensor, w_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fit the newborns to the dying neurons' output contributions (functional preservation)."""
        from epochscope.collectors.experiments.lm import ACTIVATIONS

        act = ACTIVATIONS[self.model.config.act]
        with torch.no_grad():
            target = act(x @ mlp.fc_in.weight[dying].T + mlp.fc_in.bias[dying])[:, :, None] \
                * mlp.fc_out.weight[:, dying].T[None]  # (tokens, k, d_model)
        params = [t.clone().requires_grad_(True) for t in (w_in, b, w_out)]
        opt = torch.optim.Adam(params, lr=1e-2)
        with torch.enable_grad():
            for _ in range(self.config.preservation_steps):
                h = act(x @ params[0].T + params[1])
                out = h[:, :, None] * params[2].T[None]
                loss = (out - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return tuple(p.detach() for p in params)  # type: ignore[return-value]

    def _reset_moments(self, mlp: Any, slots: torch.Tensor) -> None:
        """A newborn starts with no optimizer history (AdamW moments zeroed for its weights)."""
        st = self.trainer.optimizer.state
        for param, index in ((mlp.fc_in.weight, (slots,)), (mlp.fc_in.bias, (slots,)),
                             (mlp.fc_out.weight, (slice(None), slots))):
            s = st.get(param)
            if s:
                s["exp_avg"][index] = 0
                s["exp_avg_sq"][index] = 0

    # -- recording -----------------------------------------------------------------------
    def _checkpoint(self, step: int) -> None:
        rec = self.rec
        rec.checkpoint(step, self.model, self.trainer.optimizer)
        rec.array(step, "neuron_id", self.ids.numpy())
        rec.array(step, "neuron_parent", self.parents.numpy())
        rec.array(step, "neuron_parent2", self.parents2.numpy())
        rec.array(step, "neuron_age", (step - self.born).numpy())
        rec.array(step, "neuron_fitness", self.fitness.numpy().astype(np.float64))
        if step:
            rec.row("samples", checkpoint=step, prompt=self.prompt,
                    text=sample_text(self.model, self.task, self.prompt, self.config.sample_chars, seed=step))

    def _final(self) -> dict[str, float]:
        c = self.config
        last = [v for _, v, _ in self.val[-3:]]
        out = {"final_val_loss": float(np.mean(last)), "final_train_loss": float(np.mean([v for _, v in self.loss[-c.metrics_interval:]])),
               "events": float(len(self.rounds))}
        if self.base is not None:
            out["baseline_val_loss"] = float(np.mean([b for _, _, b in self.val[-3:]]))
            out["loss_gap"] = out["final_val_loss"] - out["baseline_val_loss"]
        half = [v for s, v in self.loss if s > c.steps // 2]
        out["variance"] = float(np.var(half))
        ages = (c.steps - self.born).numpy().ravel()
        out["age_std"] = float(ages.std())
        out["distinct_ages"] = float(len(np.unique(ages)))
        out["reborn_share"] = float((self.born > 0).float().mean())
        return out

    def _record_end(self, final: dict[str, float]) -> None:
        rec, c = self.rec, self.config
        rows = success_criteria(final)
        rec.table("success_criteria", {
            "criterion": [r[0] for r in rows], "value": np.array([r[1] for r in rows], dtype=np.float64),
            "target": [r[2] for r in rows], "passed": np.array([r[3] for r in rows], dtype=bool)})
        if self.rounds:
            steps, loss = np.array(self.loss).T
            spikes = measure_spikes([r["step"] for r in self.rounds], steps, loss, c.spike_window)
            base = np.array(self.base_loss) if self.base_loss else None
            rec.table("event_spikes", {
                "step": np.array([s["step"] for s in spikes], dtype=np.int64),
                "round": np.arange(1, len(spikes) + 1, dtype=np.int64),
                "pre_loss": np.array([s["pre_loss"] for s in spikes]),
                "peak_loss": np.array([s["peak_loss"] for s in spikes]),
                "height": np.array([s["height"] for s in spikes]),
                "recovery_steps": np.array([s["recovery_steps"] for s in spikes], dtype=np.int64),
                # the baseline's loss over the same steps: a spike the baseline shares is the data's
                "baseline_peak_loss": np.array([float(np.max(base[s["step"] - 1:s["step"] - 1 + c.spike_window]))
                                                if base is not None else math.nan for s in spikes]),
            })
        rec.event(c.steps, "finished", f"{c.strategy}: final val loss {final['final_val_loss']:.4f}"
                  + (f", gap to baseline {final['loss_gap']:+.4f}" if "loss_gap" in final else ""),
                  payload={**final, "success": {r[0]: r[3] for r in rows}})


def success_criteria(final: dict[str, float]) -> list[tuple[str, float, str, bool]]:
    """The notes' criteria as (criterion, value, target, passed) rows."""
    rows = []
    if "loss_gap" in final:
        rows.append(("loss_gap", final["loss_gap"], f"< {TARGET_GAP} (within {TARGET_GAP} of the baseline)",
                     final["loss_gap"] < TARGET_GAP))
        rows.append(("beats_baseline", final["loss_gap"], "<= 0 (stretch: match or beat the baseline)",
                     final["loss_gap"] <= 0))
    rows.append(("variance", final["variance"], f"< {TARGET_VARIANCE} (train loss, last half)",
                 final["variance"] < TARGET_VARIANCE))
    rows.append(("events", final["events"], f"> {TARGET_EVENTS} apoptosis events", final["events"] > TARGET_EVENTS))
    rows.append(("age_diversity", final["distinct_ages"], "> 1 distinct neuron age (neurons cycling)",
                 final["distinct_ages"] > 1))
    return rows


class _Diverged(Exception):
    def __init__(self, step: int, loss: float):
        super().__init__(f"training diverged at step {step} (train loss {loss})")
        self.step = step


def run_apoptosis(config: ApoptosisConfig, path: str | Path | None, *, overwrite: bool = False,
                  threads: int | None = 1) -> ExperimentResult:
    """Train into the bundle at `path` (None: bare, nothing recorded, for benchmarks)."""
    return run_recorded(lambda: Apoptosis(config), config, path, experiment="apoptosis", steps=config.steps,
                        overwrite=overwrite, threads=threads, diverged=_Diverged)
