"""Evolutionary search over FFN activations (research-notes/symbiogenesis-ui-feedback.md).

One small transformer trains throughout; a population of candidates that differ only in
their FFN activation is evaluated one after another, each for `steps_per_candidate` steps
starting from the weights the previous candidate left (weights carry over when the
activation switches, hence the notes' loss spike after a switch). A candidate's fitness is
its validation accuracy minus `complexity_weight` x the activation's relative cost
(`lm.ACTIVATION_COST` / the dearest in the pool). Each next generation keeps the
`elite_count` best activations (elite preservation: clones with a new id and a fresh
evaluation) and fills the rest with offspring of tournament-selected parents, whose
activation is redrawn from the pool with probability `mutation_rate` (possibly the same).

Recorded (element names in docs/experiments.md): per-step series with the step inside the
candidate's window, the four CUSUM monitors, effective rank every `metrics_interval` steps,
the Search Candidates table, an `activation_switch` event per switch, the architecture
distribution per generation, samples at each checkpoint, the spike after each switch, and
the best checkpoints by fitness.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epochscope.collectors.experiments.base import (
    ExperimentResult,
    one_of,
    run_recorded,
)
from epochscope.collectors.experiments.lm import ACTIVATION_COST, LMConfig, TinyLM, check_activation
from epochscope.collectors.experiments.loop import Telemetry, Trainer, evaluate, sample_text
from epochscope.collectors.experiments.monitors import measure_spikes
from epochscope.collectors.experiments.tasks import TASKS, Task, make_task
from epochscope.errors import EpochscopeError

__all__ = ["EvolutionConfig", "Search", "run_evolution"]

MONITOR_ROWS = 4  # sequences (or pairs) in the validation monitor's batch


@dataclass
class EvolutionConfig:
    """Every knob of one search; the defaults run in well under two minutes on 2 cores."""

    name: str = "evolution"
    task: str = "chars"  # "chars" (a text corpus) or "modular-addition"
    data: str | None = None  # corpus file; None: pydoc_data.topics
    activations: tuple[str, ...] = ("gelu", "silu", "relu", "tanh")
    population_size: int = 4
    generations: int = 3
    steps_per_candidate: int = 80  # the notes: 20 leaves "barely enough time to recover"
    mutation_rate: float = 0.25
    elite_count: int = 1
    tournament_size: int = 2
    complexity_weight: float = 0.02
    keep_best: int = 3  # checkpoints kept by fitness
    reset_optimizer_on_switch: bool = False
    # model and optimizer (the notes' test config: dim 64, 2 heads, 2 layers)
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    n_ctx: int = 64
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # modular addition
    p: int = 97
    train_frac: float = 0.3
    # telemetry
    metrics_interval: int = 20
    sample_chars: int = 48
    spike_window: int = 5
    seed: int = 0
    data_seed: int = 0

    def __post_init__(self) -> None:
        one_of("task", self.task, TASKS)
        self.activations = tuple(self.activations)
        if not self.activations:
            raise EpochscopeError("activations: the pool is empty")
        for a in self.activations:
            check_activation(a)
        for key in ("population_size", "generations", "steps_per_candidate", "metrics_interval",
                    "tournament_size", "keep_best", "batch_size", "n_ctx", "spike_window"):
            if getattr(self, key) < 1:
                raise EpochscopeError(f"{key}={getattr(self, key)} must be at least 1")
        if not 0.0 <= self.mutation_rate <= 1.0:
            raise EpochscopeError(f"mutation_rate={self.mutation_rate} must be in [0, 1]")
        if not 0 <= self.elite_count <= self.population_size:
            raise EpochscopeError(f"elite_count={self.elite_count} must be in [0, population_size]")
        if self.lr <= 0 or self.grad_clip <= 0 or self.weight_decay < 0 or self.complexity_weight < 0:
            raise EpochscopeError("lr and grad_clip must be positive, weight_decay and complexity_weight non-negative")
        LMConfig(vocab_size=2, n_ctx=self.n_ctx, d_model=self.d_model, n_heads=self.n_heads,
                 n_layers=self.n_layers)  # validates the shape

    @property
    def total_steps(self) -> int:
        return self.population_size * self.generations * self.steps_per_candidate

    def seeds(self) -> dict[str, int]:
        return {"seed": self.seed, "data_seed": self.data_seed}


@dataclass
class Candidate:
    id: str
    activation: str
    generation: int
    parent: str | None = None
    elite: bool = False
    best_loss: float = math.inf
    best_val_loss: float = math.inf
    val_acc: float = math.nan
    fitness: float = math.nan
    steps: int = 0
    start_step: int = 0


@dataclass
class Search:
    """The search's state; `run` executes it, recording into `rec` (None: a bare run)."""

    config: EvolutionConfig
    rec: Any = None
    candidates: list[Candidate] = field(default_factory=list)

    def __post_init__(self) -> None:
        c = self.config
        self.task: Task = make_task(c.task, data=c.data, n_ctx=c.n_ctx, batch_size=c.batch_size,
                                    p=c.p, train_frac=c.train_frac, data_seed=c.data_seed)
        torch.manual_seed(c.seed)
        self.model = TinyLM(LMConfig(vocab_size=self.task.vocab_size, n_ctx=self.task.n_ctx,
                                     d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers,
                                     act=c.activations[0]),
                            generator=torch.Generator().manual_seed(c.seed))
        self.trainer = Trainer(self.model, lr=c.lr, weight_decay=c.weight_decay,
                               grad_clip=c.grad_clip, last_only=self.task.last_only)
        self.batches = torch.Generator().manual_seed(c.data_seed + 1)
        self.rng = random.Random(c.seed)
        self.counter = 0
        self.step = 0
        self.max_cost = max(ACTIVATION_COST[a] for a in c.activations)
        self.telemetry: Telemetry | None = None
        # The validation monitor's batch: the first MONITOR_ROWS rows of the first validation
        # batch, the same every time (a fixed small batch: the monitor runs every
        # metrics_interval steps, the full validation once per candidate).
        self.monitor_batch = [tuple(t[:MONITOR_ROWS] for t in self.task.val_batches()[0])]
        self.losses: list[tuple[int, float]] = []  # (step, train loss): for the spike measurements
        self.switches: list[dict[str, Any]] = []
        self.prompt = "" if self.task.last_only else self.task.decode(self.task.val_batches()[0][0][0, :16].tolist())

    def attach(self, rec: Any) -> None:
        """Record into `rec` from now on (the data are loaded first, so bad input fails early)."""
        self.rec = rec
        self.telemetry = Telemetry(rec, metrics_interval=self.config.metrics_interval)

    # -- population ----------------------------------------------------------------------
    def _new(self, activation: str, generation: int, parent: str | None = None, elite: bool = False) -> Candidate:
        self.counter += 1
        cand = Candidate(f"gen{generation}_{activation}_{self.counter}", activation, generation,
                         parent=parent, elite=elite)
        self.candidates.append(cand)
        return cand

    def initial_population(self) -> list[Candidate]:
        pool = self.config.activations  # cycling: more candidates than activations wrap around
        return [self._new(pool[i % len(pool)], 0) for i in range(self.config.population_size)]

    def next_generation(self, current: list[Candidate], generation: int) -> list[Candidate]:
        c = self.config
        ranked = sorted(current, key=lambda k: (-_finite(k.fitness), k.id))
        out = [self._new(e.activation, generation, parent=e.id, elite=True) for e in ranked[:c.elite_count]]
        while len(out) < c.population_size:
            contenders = self.rng.sample(current, min(c.tournament_size, len(current)))
            parent = max(contenders, key=lambda k: (_finite(k.fitness), k.id))
            act = parent.activation
            if self.rng.random() < c.mutation_rate:
                act = self.rng.choice(c.activations)  # may redraw the same one (notes: 25 % of 4)
            out.append(self._new(act, generation, parent=parent.id))
        return out

    # -- evaluation ----------------------------------------------------------------------
    def penalty(self, activation: str) -> float:
        return self.config.complexity_weight * ACTIVATION_COST[activation] / self.max_cost

    def evaluate_candidate(self, cand: Candidate, previous: Candidate | None) -> None:
        c, rec = self.config, self.rec
        switched = previous is not None and previous.activation != cand.activation
        self.model.set_activation(cand.activation)
        if switched and c.reset_optimizer_on_switch:
            self.trainer.reset_optimizer()
        cand.start_step = self.step + 1
        val_batches = self.task.val_batches()
        for local in range(1, c.steps_per_candidate + 1):
            self.step += 1
            x, y = self.task.batch(self.batches)
            m = self.trainer.step(x, y)
            cand.best_loss = min(cand.best_loss, m["train_loss"])
            cand.steps += 1
            self.losses.append((self.step, m["train_loss"]))
            if not math.isfinite(m["train_loss"]):
                raise _Diverged(self.step, m["train_loss"])
            if rec is not None:
                self.telemetry.step(self.step, local, m)  # type: ignore[union-attr]
                if self.step % c.metrics_interval == 0:
                    vl = self.telemetry.val_monitor(self.step, local, self.model,  # type: ignore[union-attr]
                                                    self.monitor_batch, self.task.last_only)
                    cand.best_val_loss = min(cand.best_val_loss, vl)
                    self.telemetry.effective_ranks(self.step, self.model)  # type: ignore[union-attr]
        val_loss, val_acc = evaluate(self.model, val_batches, self.task.last_only)
        cand.best_val_loss = min(cand.best_val_loss, val_loss)
        cand.val_acc = val_acc
        cand.fitness = val_acc - self.penalty(cand.activation)
        if switched:
            self.switches.append({"step": cand.start_step, "from": previous.activation,  # type: ignore[union-attr]
                                  "to": cand.activation, "from_candidate": previous.id,  # type: ignore[union-attr]
                                  "to_candidate": cand.id, "from_fitness": previous.fitness,  # type: ignore[union-attr]
                                  "to_fitness": cand.fitness, "generation": cand.generation})
        if rec is not None:
            if switched:
                s = self.switches[-1]
                rec.event(s["step"], "activation_switch", f"{s['from']} -> {s['to']} ({cand.id})",
                          payload={k: v for k, v in s.items() if k != "step"})
            rec.log(self.step, fitness=cand.fitness, candidate_val_acc=val_acc,
                    candidate_val_loss=val_loss)
            # Offered to the top-k policy; the sample is taken either way, so every candidate
            # has one (its checkpoint is stored while it ranks among the best by fitness).
            rec.checkpoint(self.step, self.model, self.trainer.optimizer)
            self._sample(cand)

    def _sample(self, cand: Candidate) -> None:
        text = sample_text(self.model, self.task, self.prompt, self.config.sample_chars, seed=self.step)
        self.rec.row("samples", checkpoint=self.step, candidate=cand.id, activation=cand.activation,
                     generation=cand.generation, prompt=self.prompt, text=text)

    # -- the whole run -------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        c, rec = self.config, self.rec
        if rec is not None:
            rec.keep_best("fitness", k=c.keep_best, mode="max")
            rec.checkpoint(0, self.model, self.trainer.optimizer, always=True)
        population = self.initial_population()
        previous = None
        for generation in range(c.generations):
            if generation:
                population = self.next_generation(population, generation)
            for cand in population:
                self.evaluate_candidate(cand, previous)
                previous = cand
            if rec is not None:
                self._record_generation(generation, population)
        best = max(self.candidates, key=lambda k: (_finite(k.fitness), k.id))
        final = {"best_fitness": best.fitness, "best_val_loss": min(k.best_val_loss for k in self.candidates),
                 "final_val_loss": population[-1].best_val_loss, "switches": float(len(self.switches))}
        if rec is not None:
            self._record_end(population, best, final)
        return final

    def _record_generation(self, generation: int, population: list[Candidate]) -> None:
        rec, pool = self.rec, self.config.activations
        alive = {k.id for k in population}
        rec.table("search_candidates", {
            "id": [k.id for k in self.candidates],
            "activation": [k.activation for k in self.candidates],
            "generation": np.array([k.generation for k in self.candidates], dtype=np.int64),
            "best_loss": np.array([k.best_loss for k in self.candidates], dtype=np.float64),
            "best_val_loss": np.array([k.best_val_loss for k in self.candidates], dtype=np.float64),
            "fitness": np.array([k.fitness for k in self.candidates], dtype=np.float64),
            "steps": np.array([k.steps for k in self.candidates], dtype=np.int64),
            "alive": np.array([k.id in alive for k in self.candidates], dtype=bool),
            # beyond the notes' eight fields: why a candidate exists
            "parent": [k.parent or "" for k in self.candidates],
            "elite": np.array([k.elite for k in self.candidates], dtype=bool),
            "val_acc": np.array([k.val_acc for k in self.candidates], dtype=np.float64),
            "start_step": np.array([k.start_step for k in self.candidates], dtype=np.int64),
        })
        counts = {a: sum(k.activation == a for k in population) for a in pool}
        fit = [k.fitness for k in population]
        rec.row("architecture_distribution", generation=generation, step=self.step,
                **{f"count.{a}": counts[a] for a in pool},
                distinct=sum(v > 0 for v in counts.values()),
                best_fitness=max(fit), mean_fitness=float(np.mean(fit)))
        rec.array(self.step, "architecture_counts", np.array([counts[a] for a in pool], dtype=np.int64))
        rec.log(self.step, generation_best_fitness=max(fit), generation_mean_fitness=float(np.mean(fit)))

    def _record_end(self, population: list[Candidate], best: Candidate, final: dict[str, float]) -> None:
        rec, c = self.rec, self.config
        steps, loss = np.array(self.losses).T if self.losses else (np.zeros(0), np.zeros(0))
        spikes = measure_spikes([s["step"] for s in self.switches], steps, loss, c.spike_window)
        by_step = {s["step"]: s for s in self.switches}
        if spikes:
            rec.table("switch_spikes", {
                "step": np.array([s["step"] for s in spikes], dtype=np.int64),
                "from": [by_step[s["step"]]["from"] for s in spikes],
                "to": [by_step[s["step"]]["to"] for s in spikes],
                "candidate": [by_step[s["step"]]["to_candidate"] for s in spikes],
                "pre_loss": np.array([s["pre_loss"] for s in spikes]),
                "peak_loss": np.array([s["peak_loss"] for s in spikes]),
                "height": np.array([s["height"] for s in spikes]),
                "recovery_steps": np.array([s["recovery_steps"] for s in spikes], dtype=np.int64),
            })
        rec.checkpoint(self.step, self.model, self.trainer.optimizer, always=True)
        rec.event(self.step, "finished", f"best candidate {best.id} (fitness {best.fitness:.4f})",
                  payload={**final, "best_candidate": best.id, "best_activation": best.activation,
                           "activation_pool": list(c.activations)})


class _Diverged(Exception):
    def __init__(self, step: int, loss: float):
        super().__init__(f"training diverged at step {step} (train loss {loss})")
        self.step = step


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def run_evolution(config: EvolutionConfig, path: str | Path | None, *, overwrite: bool = False,
                  threads: int | None = 1) -> ExperimentResult:
    """Run the search into the bundle at `path` (None: bare, nothing recorded, for benchmarks)."""
    return run_recorded(lambda: Search(config), config, path, experiment="evolution",
                        steps=config.total_steps, overwrite=overwrite, threads=threads, diverged=_Diverged)
