"""The analysis pipeline: run analyzers over a bundle's checkpoints and metrics, store artifacts.

`analyze(path)` works in three phases, each checkpoint read exactly once:

1. checkpoints (ascending epochs): read the model tensors; skip (with a recorded reason) a
   checkpoint whose weights are not finite; hand the weights to the weight analyzers (batched,
   `batch_size` checkpoints at a time); for activation analyzers, load the weights strictly into
   one rebuilt model and run ONE forward pass over the probe (the p x p grid), shared by all of
   them; keep the flattened weights for the trajectory. After each batch, one journal segment
   holds that batch's results (a crash loses at most one batch; re-running continues).
2. trajectory: PCA / velocity / curvature over all finite checkpoints (recomputed when the
   checkpoint set changed).
3. metrics: CUSUM monitors and turn detection from the metric series (recomputed when their
   inputs changed), with their events.

Then the journal is consolidated. Incremental: only missing (analyzer, epoch) pairs are
computed; an analyzer whose stored version or parameters differ, or `force=True`, is
recomputed from scratch (its first segment replaces what was stored).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from epochscope.archives import ArtifactUpdate, Bundle, BundleWriter, Segment, open_bundle
from epochscope.archives import format as fmt
from epochscope.collectors.analysis.base import (
    AnalysisError,
    Analyzer,
    EpochData,
    MetricsView,
    Output,
    RunInfo,
)
from epochscope.collectors.analysis.checkpoint_io import (
    ModelLoader,
    model_shapes,
    nonfinite,
    read_weights,
)
from epochscope.collectors.analysis.memory import reuse_freed_memory
from epochscope.collectors.analysis.registry import ANALYZERS, resolve
from epochscope.errors import EpochscopeError

__all__ = ["AnalysisResult", "analysis_status", "analyze", "auto_threads", "run_info"]

Progress = Callable[[int, int, str], None]
BATCH_SIZE = 32


@dataclass
class AnalysisResult:
    """What `analyze` did.

    `computed`: analyzer -> epochs written in this call (metric analyzers: their output epochs).
    `up_to_date`: analyzers that had nothing to do. `skipped`: analyzer -> why it did not run.
    `epoch_skips`: epoch -> why that checkpoint was left out (non-finite weights).
    `timings`: seconds per analyzer and per stage (read, model_load, forward, reference,
    trajectory_rows, write, consolidate, total).
    """

    bundle: Path
    computed: dict[str, list[int]] = field(default_factory=dict)
    up_to_date: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    epoch_skips: dict[int, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    checkpoints_read: int = 0
    forward_passes: int = 0
    threads: int = 0  # torch intra-op threads used for the checkpoints (`auto_threads`; 0: none read)
    segments_written: int = 0
    events_written: int = 0
    turn: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short human-readable report (one line per analyzer)."""
        out = [
            f"{self.bundle}: {self.checkpoints_read} checkpoints read, {self.forward_passes} "
            f"forward passes, {self.timings.get('total', 0.0):.1f}s"
            + (f" ({self.threads} torch thread{'s' if self.threads != 1 else ''})"
               if self.threads else "")
        ]
        for name, eps in self.computed.items():
            out.append(
                f"  {name}: computed {len(eps)} epoch(s) in {self.timings.get(name, 0.0):.2f}s"
            )
        for name in self.up_to_date:
            out.append(f"  {name}: up to date")
        for name, why in self.skipped.items():
            out.append(f"  {name}: skipped, {why}")
        for epoch, why in sorted(self.epoch_skips.items()):
            out.append(f"  epoch {epoch}: skipped, {why}")
        if self.turn is not None:
            t = self.turn
            out.append(
                f"  turn: epoch {t['epoch']} (confidence {t['confidence']:.2f})"
                if t.get("epoch") is not None
                else f"  turn: none, {t.get('reason')}"
            )
            if t.get("health"):
                out.append(f"  health: {t['health']}: {t.get('health_reason')}")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class _Plan:
    analyzer: Analyzer
    todo: set[int]
    fresh: bool
    stored: Any
    skips: dict[str, str]
    prepared: bool = False
    first_write: bool = True
    dirty_skips: bool = False
    epochs: list[int] = field(default_factory=list)
    rows: dict[str, list[np.ndarray]] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)


def _run_now(fn: Callable[..., Any], *args: Any) -> Future:
    """`Executor.submit` without a thread: run now, return a completed future."""
    fut: Future = Future()
    try:
        fut.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - re-raised by fut.result()
        fut.set_exception(exc)
    return fut


def auto_threads(requested: int | None = None) -> int:
    """Torch intra-op threads for an analysis: `requested`, else torch's setting unless the
    machine is busy: with the 1-minute load average at or above the core count, 1.

    Under oversubscription every parallel region waits for a descheduled worker thread, and
    the analyzers run hundreds of small ones per checkpoint: on the shared 2-core machine at
    load ~20, 2 threads made neuron_freq, coarseness and restricted_loss 5-15x slower than 1
    thread, on trained and random weights alike (benchmarks/bench_analysis.py --trained).
    """
    import torch

    if requested is not None:
        return max(1, int(requested))
    current = torch.get_num_threads()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return current
    idle = (os.cpu_count() or 1) - load
    return current if idle >= current - 0.5 else max(1, min(current, int(idle + 0.5)))


@contextlib.contextmanager
def _threads_for(prefetch: bool, threads: int | None = None) -> Iterator[None]:
    """Torch threads while the checkpoints are analysed (`auto_threads`); with prefetch two
    stages run at once, so each gets half (not all of them to both, which oversubscribes the
    cores). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    use = auto_threads(threads)
    if prefetch and use > 1:
        use = max(1, use // 2)
    torch.set_num_threads(use)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _jsonable(value: Any) -> Any:
    return json.loads(fmt.dumps(value))


def _staleness(a: Analyzer, stored: Any, force: bool) -> str | None:
    """Why the stored artifact cannot be extended (None: it can)."""
    if stored is None:
        return "new"
    if force:
        return "forced"
    if stored.version != a.version:
        return f"version {stored.version} -> {a.version}"
    if stored.params.get("config") != _jsonable(a.params):
        return "parameters changed"
    return None


def run_info(b: Bundle) -> RunInfo:
    """Model class/config and tensor shapes (from the first checkpoint), series names, config."""
    epochs = b.checkpoint_epochs
    meta = b.checkpoint_meta(epochs[0]) if epochs else {}
    shapes = model_shapes(b, epochs[0]) if epochs else {}
    return RunInfo(
        model_class=meta.get("model_class"),
        model_config=dict(meta.get("model_config") or {}),
        shapes=shapes,
        series=b.series_names,
        checkpoint_epochs=list(epochs),
        config=b.config,
        split=b.split,
    )


def _refuse_if_written(path: Path, b: Bundle) -> None:
    if b.being_written:
        raise AnalysisError(
            f"{path} is being written by another process (a run or an "
            "analysis is in progress); analyse it when that has finished"
        )


class _Run:
    """State of one `analyze` call."""

    def __init__(
        self,
        path: Path,
        writer: BundleWriter,
        analyzers: list[Analyzer],
        force: bool,
        epochs: Iterable[int] | None,
        progress: Progress | None,
        batch_size: int,
        result: AnalysisResult,
        prefetch: bool = False,
        threads: int | None = None,
    ):
        self.path = path
        self.writer = writer
        self.analyzers = analyzers
        self.force = force
        self.epochs = None if epochs is None else sorted({int(e) for e in epochs})
        self.progress = progress
        self.batch_size = max(1, int(batch_size))
        self.result = result
        self._ref = None
        self.probe = None
        self.prefetch = prefetch
        self.threads = threads
        self._act_ready = False
        self._precomputed: dict[int, Any] = {}
        self._wanted_act: set[int] = set()

    # -- helpers ------------------------------------------------------------------------------------
    def _time(self, key: str, since: float) -> None:
        self.result.timings[key] = self.result.timings.get(key, 0.0) + time.perf_counter() - since

    def _write(self, segment: Segment) -> None:
        if segment.is_empty():
            return
        t = time.perf_counter()
        self.writer.write(segment)
        self.result.segments_written += 1
        self._time("write", t)

    # -- phase 1 and 2: checkpoints ------------------------------------------------------------------
    def checkpoints(self, b: Bundle) -> None:
        info = run_info(b)
        self.info = info
        kinds = ("weights", "activations", "trajectory")
        users = [a for a in self.analyzers if a.consumes in kinds]
        if not users:
            return
        if not info.checkpoint_epochs:
            for a in users:
                self.result.skipped[a.name] = "the bundle has no checkpoints"
            return
        target = info.checkpoint_epochs
        if self.epochs is not None:
            have = set(info.checkpoint_epochs)
            missing = [e for e in self.epochs if e not in have]
            if missing:
                self.result.notes.append(
                    f"no checkpoint at epoch(s) {missing[:10]}"
                    f"{' ...' if len(missing) > 10 else ''}: ignored"
                )
            target = [e for e in info.checkpoint_epochs if e in set(self.epochs)]
        plans: list[_Plan] = []
        traj_plans: list[_Plan] = []
        for a in users:
            reason = a.applies(info)
            if reason:
                self.result.skipped[a.name] = reason
                continue
            stored = b.artifact(a.name) if a.name in b.artifact_names else None
            why = _staleness(a, stored, self.force)
            skips = {} if why else dict(stored.scalars.get("skipped") or {})
            if a.consumes == "trajectory":
                current = (
                    set(int(e) for e in stored.epochs) | {int(k) for k in skips}
                    if not why
                    else set()
                )
                if not why and current == set(info.checkpoint_epochs):
                    self.result.up_to_date.append(a.name)
                    continue
                traj_plans.append(_Plan(a, set(info.checkpoint_epochs), True, None, {}))
                continue
            have = set() if why else {int(e) for e in stored.epochs} | {int(k) for k in skips}
            todo = {e for e in target if e not in have}
            if not todo:
                self.result.up_to_date.append(a.name)
                continue
            plans.append(_Plan(a, todo, why is not None, None if why else stored, skips))
        if not plans and not traj_plans:
            return
        # torch's threads are set (and torch imported) only when there are checkpoints to read
        self.result.threads = auto_threads(self.threads)
        with _threads_for(self.prefetch, self.result.threads):
            self._analyse(b, info, plans, traj_plans)

    def _analyse(self, b: Bundle, info: RunInfo, plans: list[_Plan], traj_plans: list[_Plan]
                 ) -> None:
        """Phase 1 and 2 over the checkpoints the plans need."""
        for plan in plans:
            if plan.analyzer.consumes == "weights":
                plan.analyzer.prepare(info, plan.stored, self._reference)
                plan.prepared = True
        need = set().union(*(p.todo for p in plans)) if plans else set()
        if traj_plans:
            need |= set(info.checkpoint_epochs)
        self.b = b
        self.loader = ModelLoader(b)
        layout = [(n, s) for n, s in info.shapes.items()]
        rows = None
        if traj_plans:
            from epochscope.collectors.analysis.trajectory import RowStore

            rows = RowStore(sum(int(np.prod(s)) for _, s in layout), len(info.checkpoint_epochs))
        order = sorted(need)
        self._setup_activations(plans, order)
        act_plans = [p for p in plans if p.analyzer.consumes == "activations"]
        needs = {e: any(e in p.todo for p in act_plans) for e in order}
        batch: list[EpochData] = []
        weight_plans = [p for p in plans if p.analyzer.consumes == "weights"]
        with ThreadPoolExecutor(max_workers=1) as pool:
            # stage A (read, strict load, forward) of the next checkpoint runs while stage B
            # (the analyzers) works on this one
            submit = pool.submit if self.prefetch else _run_now
            ahead = submit(self._fetch, order[0], needs[order[0]])
            for i, epoch in enumerate(order):
                try:
                    fetched = ahead.result()
                    if i + 1 < len(order):
                        ahead = submit(self._fetch, order[i + 1], needs[order[i + 1]])
                    d = self._consume(fetched, plans, traj_plans, rows, layout)
                except Exception:
                    # keep what is done: the results of earlier checkpoints of this batch are valid
                    self._weights(batch, weight_plans)
                    self._flush(plans)
                    raise
                if d is not None:
                    batch.append(d)
                if len(batch) >= self.batch_size or i == len(order) - 1:
                    self._weights(batch, weight_plans)
                    batch = []
                    self._flush(plans)
                if self.progress:
                    self.progress(i + 1, len(order), f"epoch {epoch}")
        self._flush(plans, final=True)
        for plan in traj_plans:
            self._trajectory(plan, rows, layout)

    def _setup_activations(self, plans: list[_Plan], order: list[int]) -> None:
        """Rebuild the model, check its cache, fix run-level choices: before the loop starts."""
        act_plans = [p for p in plans if p.analyzer.consumes == "activations"]
        if not act_plans:
            return
        from epochscope.collectors.analysis.probe import missing_cache_keys, run_probe

        wanted = set().union(*(p.todo for p in act_plans))
        self._wanted_act = wanted
        for epoch in (e for e in order if e in wanted):
            weights = read_weights(self.b, epoch)
            self._check_layout(epoch, weights, self.info)
            if nonfinite({n: weights[n] for n in self.info.shapes}) is None:
                break
        else:
            return  # every checkpoint to analyse is non-finite: the loop records the skips
        t = time.perf_counter()
        model = self.loader.load(epoch, weights)
        self._time("model_load", t)
        if model is None or not hasattr(model, "run_with_cache"):
            why = (
                f"the model cannot be rebuilt ({self.loader.unavailable})"
                if model is None
                else f"{type(model).__name__} has no run_with_cache"
            )
            self._drop_activation_plans(plans, why)
            return
        self.probe = self._make_probe()
        t = time.perf_counter()
        cache = run_probe(model, self.probe)
        self.result.forward_passes += 1
        self._time("forward", t)
        missing = missing_cache_keys(cache)
        if missing:
            self._drop_activation_plans(plans, f"run_with_cache gives no {', '.join(missing)}")
            return
        self._precomputed[epoch] = cache
        for plan in act_plans:
            t = time.perf_counter()
            plan.analyzer.prepare(self.info, plan.stored, self._reference)
            plan.prepared = True
            self._time(plan.analyzer.name, t)
        self._act_ready = True

    def _fetch(
        self, epoch: int, activations: bool
    ) -> tuple[int, dict[str, np.ndarray], Any, str | None]:
        """Stage A: read the weights, check them, and (if wanted) run the forward pass."""
        from epochscope.collectors.analysis.probe import run_probe

        t = time.perf_counter()
        weights = read_weights(self.b, epoch)
        self.result.checkpoints_read += 1
        self._time("read", t)
        self._check_layout(epoch, weights, self.info)
        bad = nonfinite({n: weights[n] for n in self.info.shapes})
        if bad or not activations or not self._act_ready:
            return epoch, weights, None, bad
        cache = self._precomputed.pop(epoch, None)
        if cache is None:
            t = time.perf_counter()
            model = self.loader.load(epoch, weights)
            self._time("model_load", t)
            t = time.perf_counter()
            cache = run_probe(model, self.probe)
            self.result.forward_passes += 1
            self._time("forward", t)
        return epoch, weights, cache, None

    def _consume(
        self,
        fetched: tuple[int, dict[str, np.ndarray], Any, str | None],
        plans: list[_Plan],
        traj_plans: list[_Plan],
        rows: Any,
        layout: list[tuple[str, tuple[int, ...]]],
    ) -> EpochData | None:
        """Stage B: trajectory row and activation analyzers; None if the checkpoint is skipped."""
        epoch, weights, cache, bad = fetched
        if bad:
            self.result.epoch_skips[epoch] = bad
            for plan in plans + traj_plans:
                if epoch in plan.todo:
                    plan.skips[str(epoch)] = bad
                    plan.dirty_skips = True
            return None
        if rows is not None:
            t = time.perf_counter()
            flat = [np.asarray(weights[n], dtype=np.float32).ravel() for n, _ in layout]
            rows.add(epoch, np.concatenate(flat))
            self._time("trajectory_rows", t)
        d = EpochData(epoch, weights)
        if cache is not None:
            d.cache, d.probe = cache, self.probe
            for plan in plans:
                if plan.analyzer.consumes == "activations" and epoch in plan.todo:
                    t = time.perf_counter()
                    self._collect(plan, [epoch], plan.analyzer.compute([d]))
                    self._time(plan.analyzer.name, t)
            d.cache = None
            d.derived.clear()
        return d

    def _check_layout(self, epoch: int, weights: dict[str, np.ndarray], info: RunInfo) -> None:
        diffs = [f"missing {n}" for n in info.shapes if n not in weights]
        diffs += [
            f"{n} has shape {tuple(weights[n].shape)}, not {s}"
            for n, s in info.shapes.items()
            if n in weights and tuple(weights[n].shape) != s
        ]
        if diffs:
            raise AnalysisError(
                f"checkpoint at epoch {epoch} does not match the run's first checkpoint "
                f"(epoch {info.checkpoint_epochs[0]}): " + "; ".join(diffs)
            )

    def _reference(self):
        """ReferenceInfo of the last finite checkpoint (computed once, on first request)."""
        if self._ref is None:
            from epochscope.collectors.analysis.probe import reference_info, run_probe

            t = time.perf_counter()
            if self.probe is None:
                self.probe = self._make_probe()
            threshold = 0.85
            for a in self.analyzers:
                if a.name == "neuron_freq":
                    threshold = float(a.params["threshold"])
            for epoch in reversed(self.info.checkpoint_epochs):
                weights = read_weights(self.b, epoch)
                self._check_layout(epoch, weights, self.info)
                if nonfinite({n: weights[n] for n in self.info.shapes}):
                    continue
                model = self.loader.load(epoch, weights)
                d = EpochData(
                    epoch,
                    weights,
                    model=model,
                    cache=run_probe(model, self.probe),
                    probe=self.probe,
                )
                self.result.forward_passes += 1
                self._ref = reference_info(d, threshold=threshold)
                if epoch in self._wanted_act:  # its pass is reused: one forward per checkpoint
                    self._precomputed[epoch] = d.cache
                break
            else:
                raise AnalysisError(
                    "no checkpoint with finite weights to choose neurons/frequencies from"
                )
            self._time("reference", t)
        return self._ref

    def _make_probe(self):
        """The p x p probe with the bundle's stored split; notes which classes lack it."""
        from epochscope.collectors.analysis.probe import make_probe, split_note

        probe = make_probe(int(self.info.p), self.info.split)
        note = split_note(probe)
        if note and note not in self.result.notes:
            self.result.notes.append(note)
        return probe

    def _drop_activation_plans(self, plans: list[_Plan], why: str) -> None:
        for plan in [p for p in plans if p.analyzer.consumes == "activations"]:
            self.result.skipped[plan.analyzer.name] = why
            plans.remove(plan)

    def _weights(self, batch: list[EpochData], plans: list[_Plan]) -> None:
        for plan in plans:
            sub = [d for d in batch if d.epoch in plan.todo]
            if not sub:
                continue
            t = time.perf_counter()
            self._collect(plan, [d.epoch for d in sub], plan.analyzer.compute(sub))
            self._time(plan.analyzer.name, t)

    @staticmethod
    def _collect(plan: _Plan, epochs: list[int], values: dict[str, np.ndarray]) -> None:
        plan.epochs += epochs
        for name, arr in values.items():
            plan.rows.setdefault(name, []).append(np.asarray(arr))

    def _flush(self, plans: list[_Plan], final: bool = False) -> None:
        artifacts = {}
        for plan in plans:
            a = plan.analyzer
            if not plan.epochs and not (final and plan.dirty_skips):
                continue
            summary, scalars = a.summary() if plan.prepared else ({}, {})
            per_epoch = {n: np.concatenate(v, axis=0) for n, v in plan.rows.items()}
            artifacts[a.name] = ArtifactUpdate(
                version=a.version,
                epochs=np.asarray(plan.epochs, dtype=np.int64),
                per_epoch=per_epoch,
                summary=summary,
                scalars={**scalars, "skipped": dict(plan.skips)},
                params={"config": a.params, "consumes": a.consumes},
                replace=plan.fresh and plan.first_write,
            )
            plan.first_write = plan.dirty_skips = False
            plan.done += plan.epochs
            plan.epochs, plan.rows = [], {}
        if artifacts:
            self._write(Segment(artifacts=artifacts))
        if final:
            for plan in plans:
                self.result.computed[plan.analyzer.name] = sorted(plan.done)

    def _trajectory(
        self, plan: _Plan, rows: Any, layout: list[tuple[str, tuple[int, ...]]]
    ) -> None:
        a = plan.analyzer
        epochs, matrix = rows.matrix()
        if len(epochs) < 2:
            self.result.skipped[a.name] = (
                f"needs at least 2 checkpoints with finite weights (has {len(epochs)})"
            )
            return
        t = time.perf_counter()
        out = a.compute_run(epochs, matrix, layout, rows.approximate)
        self._time(a.name, t)
        skips = {str(e): why for e, why in self.result.epoch_skips.items()}
        self._write(
            Segment(
                artifacts={
                    a.name: ArtifactUpdate(
                        version=a.version,
                        epochs=out.epochs,
                        per_epoch=out.per_epoch,
                        summary=out.summary,
                        scalars={**out.scalars, "skipped": skips},
                        params={"config": a.params, "consumes": a.consumes},
                        replace=True,
                    )
                }
            )
        )
        self.result.computed[a.name] = [int(e) for e in out.epochs]

    # -- phase 3: metrics ---------------------------------------------------------------------------------
    def metrics(self, b: Bundle) -> None:
        users = [a for a in self.analyzers if a.consumes == "metrics"]
        if not users:
            return
        view = MetricsView(b.metrics(), {n: b.artifact(n) for n in b.artifact_names})
        artifacts: dict[str, ArtifactUpdate] = {}
        events: list[dict[str, Any]] = []
        for a in users:
            reason = a.applies_to(view)
            if reason:
                self.result.skipped[a.name] = reason
                continue
            stored = b.artifact(a.name) if a.name in b.artifact_names else None
            fp = a.inputs(view)
            why = _staleness(a, stored, self.force)
            if why is None and stored.params.get("inputs") == fp:
                self.result.up_to_date.append(a.name)
                if a.name == "turn":
                    self.result.turn = stored.scalars
                continue
            t = time.perf_counter()
            out: Output = a.compute_metrics(view)
            self._time(a.name, t)
            artifacts[a.name] = ArtifactUpdate(
                version=a.version,
                epochs=out.epochs,
                per_epoch=out.per_epoch,
                summary=out.summary,
                scalars=out.scalars,
                params={"config": a.params, "consumes": a.consumes, "inputs": fp},
                replace=True,
            )
            self.result.computed[a.name] = [int(e) for e in out.epochs]
            if a.name == "turn":
                self.result.turn = _jsonable(out.scalars)
            events += _new_events(b, out.events)
        self.result.events_written += len(events)
        self._write(Segment(artifacts=artifacts, events=events))


def _new_events(b: Bundle, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events not already in the bundle (same epoch, kind and message): re-runs do not duplicate."""
    seen = {
        (e["epoch"], e["kind"], e["message"])
        for e in b.events()
        if e["kind"] in {x["kind"] for x in events}
    }
    return [e for e in events if (int(e["epoch"]), e["kind"], e["message"]) not in seen]


def analyze(
    bundle_path: str | os.PathLike,
    *,
    analyzers: list[str] | None = None,
    force: bool = False,
    epochs: Iterable[int] | None = None,
    progress: Progress | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    batch_size: int = BATCH_SIZE,
    prefetch: bool = False,
    probes: Iterable[str] | None = None,
    threads: int | None = None,
) -> AnalysisResult:
    """Run analyzers over the bundle at `bundle_path` and store their artifacts in it.

    analyzers: names (default: all registered, see `ANALYZERS`); an unknown name raises.
    force: recompute everything selected, replacing what was stored.
    epochs: restrict per-checkpoint analyzers to these checkpoint epochs (the trajectory and
        metric analyzers always use the whole run).
    progress: called as progress(done, total, message) after each checkpoint.
    params: per-analyzer parameter overrides, e.g. {"neuron_freq": {"threshold": 0.9}}.
    batch_size: checkpoints per journal segment (and per batched weight computation).
    prefetch: read + forward the next checkpoint in a background thread while the analyzers
        work on this one; each of the two stages then gets half of torch's intra-op threads
        for the duration of the call. Off by default: on 2 cores it was slower (26-30 s
        against 19-21 s for 100 nanda2023 checkpoints, benchmarks/bench_analysis.py).
    probes: per-input trace specs, e.g. ["4+29,17+96", "wrong:16"] (`traces.parse_probe`);
        each becomes the artifact `probe_<name>`. Probes stored earlier are extended to new
        checkpoints whenever all analyzers run (`analyzers=None`).
    threads: torch intra-op threads for the checkpoint phase (None: `auto_threads`, i.e.
        torch's setting, or 1 when the machine's load average leaves no core idle).
    Raises EpochscopeError (AnalysisError / BundleError) with a one-line message.
    """
    t_start = time.perf_counter()
    path = Path(bundle_path)
    classes = resolve(analyzers)
    params = dict(params or {})
    unknown = [n for n in params if n not in ANALYZERS]
    if unknown:
        raise AnalysisError(
            f"parameters given for unknown analyzer(s) {unknown}; valid: {', '.join(ANALYZERS)}"
        )
    instances = [cls(**params.get(cls.name, {})) for cls in classes]
    with open_bundle(path) as b:  # one open for both checks
        _refuse_if_written(path, b)
        instances += _probe_analyzers(b, list(probes or []), extend_stored=analyzers is None)
    result = AnalysisResult(bundle=path)
    writer = BundleWriter(path, create=False)
    failed = True
    try:
        run = _Run(path, writer, instances, force, epochs, progress, batch_size, result, prefetch,
                   threads)
        with writer.open_reader() as b, reuse_freed_memory():
            run.checkpoints(b)
            wrote = result.segments_written > 0
            if not wrote:  # nothing new to see (e.g. no checkpoints): the same reader serves
                run.metrics(b)
        if wrote:
            with writer.open_reader() as b:  # sees what phase 1-2 just wrote
                run.metrics(b)
        failed = False
    finally:
        try:
            if result.segments_written:
                t = time.perf_counter()
                writer.consolidate()
                result.timings["consolidate"] = time.perf_counter() - t
        except Exception:
            if not failed:
                raise  # a failure here is the real error; otherwise keep the original one
        finally:
            writer.close()
    result.timings["total"] = time.perf_counter() - t_start
    return result


def _probe_analyzers(b: Bundle, specs: list[str], extend_stored: bool) -> list[Analyzer]:
    """Trace analyzers for the probe specs given, plus (with `extend_stored`) the probes
    already stored in the bundle, so that they follow new checkpoints."""
    from epochscope.collectors.analysis.traces import Trace

    new = [Trace(spec=s) for s in specs]  # a malformed spec raises before anything is read
    names = [t.name for t in new]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AnalysisError(f"two probes are named {dup[0][len('probe_'):]!r}; name them NAME=...")
    if extend_stored:
        for name in b.artifact_names:
            if not name.startswith("probe_") or name in names:
                continue
            config = b.artifact(name).params.get("config") or {}
            try:
                new.append(Trace(**config))
            except EpochscopeError:
                continue  # a probe this version cannot rebuild: left as stored
    return new


def analysis_status(bundle_path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Per registered analyzer: stored and current version, epochs it has, epochs missing.

    Each entry: kind, version (stored, None if never run), current_version, applicable,
    reason (why not applicable / stale), epochs (list), missing (checkpoint epochs without
    results and not skipped), skipped (epoch -> reason), up_to_date (bool). Metric analyzers
    are up to date when their inputs (metric series, trajectory) have not changed since.
    """
    path = Path(bundle_path)
    out: dict[str, dict[str, Any]] = {}
    with open_bundle(path) as b:
        info = run_info(b)
        view = MetricsView(b.metrics(), {n: b.artifact(n) for n in b.artifact_names})
        for name, cls in ANALYZERS.items():
            a = cls()
            stored = b.artifact(name) if name in b.artifact_names else None
            entry: dict[str, Any] = {
                "kind": cls.consumes,
                "version": stored.version if stored else None,
                "current_version": cls.version,
                "description": cls.description,
            }
            if cls.consumes == "metrics":
                reason = a.applies_to(view)
            elif not info.checkpoint_epochs:
                reason = "the bundle has no checkpoints"
            else:
                reason = a.applies(info)
            entry["applicable"] = reason is None
            entry["reason"] = reason
            have = [int(e) for e in stored.epochs] if stored is not None else []
            skipped = dict(stored.scalars.get("skipped") or {}) if stored is not None else {}
            stale = _staleness(a, stored, False) if stored is not None else None
            entry["epochs"] = have
            entry["skipped"] = skipped
            if cls.consumes == "metrics":
                entry["missing"] = []
                up = (
                    stored is not None
                    and stale is None
                    and reason is None
                    and stored.params.get("inputs") == a.inputs(view)
                )
                if stored is not None and not up and reason is None and stale is None:
                    stale = "inputs changed"
            else:
                known = set(have) | {int(k) for k in skipped}
                entry["missing"] = [
                    e for e in info.checkpoint_epochs if stale is not None or e not in known
                ]
                up = stored is not None and stale is None and not entry["missing"]
            if stale is not None:
                entry["reason"] = entry["reason"] or f"stale: {stale}"
            entry["up_to_date"] = bool(up) if reason is None else True
            out[name] = entry
        for name in b.artifact_names:  # probe traces: one artifact per probe, not registered
            if not name.startswith("probe_") or name in out:
                continue
            art = b.artifact(name)
            have = [int(e) for e in art.epochs]
            skipped = dict(art.scalars.get("skipped") or {})
            known = set(have) | {int(k) for k in skipped}
            missing = [e for e in info.checkpoint_epochs if e not in known]
            out[name] = {
                "kind": "activations", "version": art.version, "current_version": art.version,
                "description": f"probe trace {art.scalars.get('spec')!r}", "applicable": True,
                "reason": None, "epochs": have, "skipped": skipped, "missing": missing,
                "up_to_date": not missing,
            }
    return out
