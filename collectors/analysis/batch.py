"""Analysing many bundles in one go: in this process (imports paid once, not per bundle) or
on a Dask cluster, as `sweep` runs its variants.

    from epochscope.collectors.analysis.batch import analyze_many
    batch = analyze_many(["runs/"])               # every *.h5 under runs/, recursively
    print(batch.summary())                        # "100 bundles in 12.3 s: 99 analysed, 1 failed"

A bundle that cannot be analysed (damaged, not a bundle, being written) is reported as a
failed outcome with its one-line reason; the others go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epochscope.collectors.analysis.base import AnalysisError
from epochscope.collectors.analysis.pipeline import AnalysisResult, analyze
from epochscope.errors import one_line

__all__ = ["BatchResult", "BundleOutcome", "analyze_many", "find_bundles"]

BUNDLE_SUFFIX = ".h5"


@dataclass
class BundleOutcome:
    """How the analysis of one bundle ended: `result` when it ran, `error` (one line) when not."""

    bundle: Path
    seconds: float
    result: AnalysisResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """One line: what was computed (or the error)."""
        if not self.ok:
            return f"{self.bundle}: failed: {self.error}"
        r = self.result
        done = list(r.computed)
        parts = [f"computed {', '.join(done)}" if done else "nothing to compute"]
        if r.up_to_date:
            parts.append(f"{len(r.up_to_date)} up to date")
        if r.turn is not None:
            epoch = r.turn.get("epoch")
            parts.append(f"turn at epoch {epoch}" if epoch is not None else "no turn")
            if r.turn.get("health"):
                parts.append(str(r.turn["health"]))
        return f"{self.bundle}: {'; '.join(parts)} ({self.seconds:.2f} s)"


@dataclass
class BatchResult:
    """Every bundle's outcome, in the order the bundles were found, and the wall time."""

    outcomes: list[BundleOutcome] = field(default_factory=list)
    seconds: float = 0.0
    where: str = "in this process"

    @property
    def failed(self) -> list[BundleOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> str:
        n, bad = len(self.outcomes), len(self.failed)
        return (f"{n} bundle{'s' if n != 1 else ''} in {self.seconds:.1f} s {self.where}: "
                f"{n - bad} analysed, {bad} failed")


def find_bundles(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The bundles named by `paths`: files as given, directories searched recursively for
    `*.h5` (sorted); each bundle once. A directory without bundles raises AnalysisError; a
    file that does not exist is kept (its analysis fails with the reason, the rest go on)."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob(f"*{BUNDLE_SUFFIX}") if p.is_file())
            if not found:
                raise AnalysisError(f"no *{BUNDLE_SUFFIX} bundles under {path}")
        else:
            found = [path]
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def analyse_one(path: str | os.PathLike, options: dict[str, Any]) -> BundleOutcome:
    """`analyze(path, **options)` as an outcome; never raises (a worker's task)."""
    t0 = time.perf_counter()
    try:
        result = analyze(path, **options)
    except Exception as exc:  # noqa: BLE001 - reported per bundle, the batch goes on
        return BundleOutcome(Path(path), time.perf_counter() - t0, error=one_line(exc))
    return BundleOutcome(Path(path), time.perf_counter() - t0, result=result)


def analyze_many(
    paths: Iterable[str | os.PathLike],
    *,
    analyzers: list[str] | None = None,
    force: bool = False,
    epochs: Iterable[int] | None = None,
    probes: Iterable[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    on_outcome: Callable[[BundleOutcome], None] | None = None,
) -> BatchResult:
    """Analyse every bundle `paths` name (see `find_bundles`), storing results in each.

    By default in this process, one bundle after another. `workers` >= 2: on a local Dask
    cluster of that many single-threaded worker processes; `scheduler` ("tcp://host:port"):
    on that existing Dask cluster (as `run_sweep`). On Dask each bundle's torch work runs on
    one thread (one bundle per core). The other options are `analyze`'s, applied to every
    bundle. `on_outcome` is called as each bundle finishes (in completion order); the result
    lists the outcomes in the order of `find_bundles`.
    """
    t0 = time.perf_counter()
    bundles = find_bundles(paths)
    options: dict[str, Any] = {
        "analyzers": list(analyzers) if analyzers else None, "force": force,
        "epochs": None if epochs is None else list(epochs), "probes": list(probes or []),
        "params": params,
    }
    if analyzers:  # an unknown analyzer name is the caller's mistake: say so once, not per bundle
        from epochscope.collectors.analysis.registry import resolve

        resolve(list(analyzers))
    distributed = bool(scheduler) or (workers is not None and workers > 1)
    if distributed:
        outcomes = _on_dask(bundles, {**options, "threads": 1}, scheduler, workers, on_outcome)
        where = f"on Dask ({scheduler})" if scheduler else f"on {min(workers, len(bundles))} Dask workers"
    else:
        outcomes = []
        for path in bundles:
            outcome = analyse_one(path, options)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
        where = "in this process"
    return BatchResult(outcomes, time.perf_counter() - t0, where)


def _on_dask(bundles: list[Path], options: dict[str, Any], scheduler: str | None,
             workers: int | None, on_outcome: Callable[[BundleOutcome], None] | None
             ) -> list[BundleOutcome]:
    from dask.distributed import as_completed

    from epochscope.collectors.cluster import dask_client

    done: dict[Path, BundleOutcome] = {}
    with dask_client(scheduler, workers, len(bundles)) as client:
        futures = {
            client.submit(analyse_one, str(p.resolve()), options, pure=False,
                          key=f"epochscope-analyze-{i}-{time.time_ns()}"): p
            for i, p in enumerate(bundles)
        }
        for fut in as_completed(futures):
            path = futures[fut]
            try:
                outcome = fut.result()
                outcome.bundle = path  # as the caller named it, not the worker's absolute path
            except Exception as exc:  # noqa: BLE001 - a worker died: this bundle failed
                outcome = BundleOutcome(path, 0.0, error=f"worker failed: {one_line(exc)}")
            done[path] = outcome
            if on_outcome:
                on_outcome(outcome)
    return [done[p] for p in bundles]
