"""What chart builders read: a bundle wrapped with tolerant, cached look-ups and a size budget.

Builders never touch h5py or the reader directly; they ask `BuildContext` for a series or an
artifact array by a list of candidate names (the analyzers' array names may evolve) and get
either clean numpy arrays or an `Unavailable` exception whose message says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from epochscope.archives import Bundle
from epochscope.archives.telemetry import DENSE_SERIES_PREFIX
from epochscope.generator.encode import F16_RTOL, ArrayStore
from epochscope.generator.events import current_events

__all__ = ["BuildContext", "Unavailable", "pick_epochs"]


class Unavailable(Exception):  # noqa: N818 - a state, not an error: the chart says why it is absent
    """A chart cannot be drawn from this bundle; the message tells the reader why."""


class BuildContext:
    """One bundle being turned into chart specs, with the array store they embed into."""

    def __init__(self, bundle: Bundle, store: ArrayStore):
        self.bundle = bundle
        self.store = store
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._series_refs: dict[str, dict[str, Any]] = {}
        self.budget_bytes = 0  # set per heavy chart by the renderer before it builds
        self.notes: dict[str, str] = {}  # chart name -> footnote (e.g. epochs thinned for size)
        # What the charts built so far drew (the generic pack shows the rest); `reading`
        # collects one chart's reads while it builds.
        self.shown_series: set[str] = set()
        self.shown_artifacts: set[str] = set()
        self.shown_tables: set[str] = set()  # tables a pack chart drew (generic `tables` skips them)
        self.shown_events: set[str] = set()  # event kinds a pack chart listed (generic `events` skips them)
        self.reading: tuple[set[str], set[str]] | None = None
        self.reading_tables: set[str] | None = None
        self.series_cap = 0  # points per embedded series (0: all); longer ones are thinned

    # -- metric series -----------------------------------------------------------------------
    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) sorted by epoch, one value per epoch (the last logged wins)."""
        if name not in self._series:
            if name not in self.bundle.series_names:
                raise Unavailable(f"no metric series '{name}' in this bundle")
            epochs, values = self.bundle.series(name)
            order = np.argsort(epochs, kind="stable")
            epochs, values = epochs[order], np.asarray(values, dtype=np.float64)[order]
            keep = np.r_[epochs[1:] != epochs[:-1], True] if epochs.size else np.zeros(0, bool)
            self._series[name] = (epochs[keep], values[keep])
        return self._series[name]

    def series_ref(self, name: str) -> dict[str, Any]:
        """The embedded form of a metric series, encoded once per report: {x, y} refs.

        Losses and accuracies keep float32 (they are the headline numbers, also offered as
        CSV); other series drop to float16 when it holds them to 0.2%.
        """
        if self.reading is not None:
            self.reading[0].add(name)
        if name not in self._series_refs:
            epochs, values = self.series(name)
            if not np.isfinite(values).all():  # inf draws as a gap, like NaN (the CSV says NaN too)
                values = np.where(np.isfinite(values), values, np.nan)
            if self.series_cap and epochs.size > self.series_cap:
                from epochscope.generator.compare.stats import decimate

                epochs, values = decimate(epochs, values, self.series_cap)
            exact = "loss" in name or "acc" in name
            self._series_refs[name] = {
                "x": self.store.add_int(epochs),
                "y": self.store.add_float(values, rtol=0.0 if exact else F16_RTOL, floor=0.0),
            }
        return self._series_refs[name]

    def consume(self, name: str) -> None:
        """Count series `name` as shown without drawing it (a chart used it otherwise, e.g. as
        an axis), so the generic pack leaves it out too."""
        if self.reading is not None and self.has_series(name):
            self.reading[0].add(name)

    def has_series(self, name: str) -> bool:
        return name in self.bundle.series_names

    def finite_series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Like `series`, but Unavailable('no data') when it holds no finite value."""
        epochs, values = self.series(name)
        if not np.isfinite(values).any():
            raise Unavailable(f"no data: metric series '{name}' has no finite values")
        return epochs, values

    # -- tables, events, recorded arrays -------------------------------------------------------
    def has_table(self, name: str) -> bool:
        return name in self.bundle.table_names

    def table(self, name: str) -> dict[str, np.ndarray]:
        """The columns of table `name` (recorded as shown: the generic pack leaves it out)."""
        if name not in self.bundle.table_names:
            raise Unavailable(f"no table '{name}' in this bundle")
        if self.reading_tables is not None:
            self.reading_tables.add(name)
        else:
            self.shown_tables.add(name)
        return self.bundle.table(name)

    def events(self, kind: str | None = None, *, listed: bool = False) -> list[dict[str, Any]]:
        """The bundle's events (of `kind`), in order, less superseded analysis events.

        `listed=True`: the chart lists them in a table of its own, so the generic events table
        leaves that kind out (they still mark the epoch axes)."""
        if listed and kind is not None:
            self.shown_events.add(kind)
        return [e for e in current_events(self.bundle) if kind is None or e["kind"] == kind]

    def array(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, stacked rows) of an array recorded with `Recorder.array` (artifact `array.<name>`)."""
        art = f"array.{name}"
        if not self.has_artifact(art):
            raise Unavailable(f"no recorded array '{name}' in this bundle")
        epochs, values = self.artifact(art).per_epoch(name)
        order = np.argsort(np.asarray(epochs), kind="stable")
        return np.asarray(epochs, dtype=np.int64)[order], np.asarray(values)[order]

    # -- artifacts -----------------------------------------------------------------------------
    def has_artifact(self, name: str) -> bool:
        return name in self.bundle.artifact_names

    def artifact(self, name: str):
        if self.reading is not None:
            self.reading[1].add(name)
        if not self.has_artifact(name):
            raise Unavailable(f"analysis '{name}' was not run for this bundle (no '{name}' artifact)")
        return self.bundle.artifact(name)

    def per_epoch(self, artifact: str, candidates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, stacked values) of the first per-epoch array of `artifact` that exists."""
        art = self.artifact(artifact)
        name = _first_present(art.names, candidates)
        if name is None:
            raise Unavailable(
                f"analysis '{artifact}' has no per-epoch array {_alternatives(candidates)}"
            )
        epochs, values = art.per_epoch(name)
        return np.asarray(epochs, dtype=np.int64), np.asarray(values)

    def array_epochs(self, artifact: str, candidates: Sequence[str]) -> tuple[str, np.ndarray]:
        """(array name, epochs the artifact has rows for) without loading the array."""
        art = self.artifact(artifact)
        name = _first_present(art.names, candidates)
        if name is None:
            raise Unavailable(
                f"analysis '{artifact}' has no per-epoch array {_alternatives(candidates)}"
            )
        return name, np.asarray(art.epochs, dtype=np.int64)

    def rows(self, artifact: str, name: str, epochs: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of one big per-epoch array at `epochs` only (each read alone from the file);
        epochs this array lacks are skipped."""
        art = self.artifact(artifact)
        got_epochs, got = [], []
        for epoch in epochs:
            try:
                got.append(np.asarray(art.at(name, int(epoch))))
            except KeyError:
                continue
            got_epochs.append(int(epoch))
        if not got:
            raise Unavailable(f"no data: analysis '{artifact}' array '{name}' has no rows")
        return np.asarray(got_epochs, dtype=np.int64), np.stack(got)

    def row_cost(self, artifact: str, name: str, epochs: np.ndarray,
                 cost: Callable[[np.ndarray], int], samples: int = 4) -> float:
        """Mean embedded bytes of one epoch's row, measured on a few evenly spread epochs.

        `cost(rows)` encodes a stack of rows and returns its size. Sampling across training
        matters: early, noisy maps compress far worse than late, periodic ones.
        """
        idx = np.unique(np.rint(np.linspace(0, len(epochs) - 1, min(samples, len(epochs)))).astype(int))
        got, rows = self.rows(artifact, name, epochs[idx])
        return cost(rows) / max(len(got), 1)

    def has_per_epoch(self, artifact: str, candidates: Sequence[str]) -> bool:
        return self.has_artifact(artifact) and _first_present(
            self.bundle.artifact(artifact).names, candidates) is not None

    def summary(self, artifact: str, candidates: Sequence[str]) -> np.ndarray:
        """The first summary array of `artifact` among `candidates`."""
        art = self.artifact(artifact)
        name = _first_present(art.summary_names, candidates)
        if name is None:
            raise Unavailable(f"analysis '{artifact}' has no summary array {_alternatives(candidates)}")
        return np.asarray(art.summary(name))

    def optional_summary(self, artifact: str, candidates: Sequence[str]) -> np.ndarray | None:
        try:
            return self.summary(artifact, candidates)
        except Unavailable:
            return None

    def scalar(self, artifact: str, candidates: Sequence[str], default: Any = None) -> Any:
        """The first scalar of `artifact` among `candidates` (params are searched too)."""
        if not self.has_artifact(artifact):
            return default
        art = self.bundle.artifact(artifact)
        for source in (art.scalars, art.params):
            for key in candidates:
                if key in source and source[key] is not None:
                    return source[key]
        return default

    def labels(self, artifact: str, candidates: Sequence[str], n: int, prefix: str) -> list[str]:
        """Names for `n` rows (matrices, monitors...) from a summary array or scalar, else
        `prefix0..prefix{n-1}`."""
        found: Any = self.optional_summary(artifact, candidates) if self.has_artifact(artifact) else None
        if found is None:
            found = self.scalar(artifact, candidates)
        if found is not None:
            names = [str(x) for x in np.asarray(found).ravel().tolist()]
            if len(names) == n:
                return names
        return [f"{prefix}{i}" for i in range(n)]

    @cached_property
    def final_epoch(self) -> int | None:
        """The last epoch anything was logged at (metrics or checkpoints). The telemetry
        profile's dense-trace series are indexed by batch step, not epoch: they do not count."""
        last = [int(self.series(n)[0][-1]) for n in self.bundle.series_names
                if self.series(n)[0].size and not n.startswith(DENSE_SERIES_PREFIX)]
        last += self.bundle.checkpoint_epochs[-1:]
        return max(last) if last else None


def pick_epochs(epochs: np.ndarray, keep: int, must: Iterable[int] = ()) -> np.ndarray:
    """Indices of at most `keep` epochs, evenly spread, always with the first and last and
    the epochs nearest to each of `must` (e.g. the turn)."""
    n = len(epochs)
    if keep >= n:
        return np.arange(n)
    keep = max(keep, 1)
    chosen = set(np.unique(np.rint(np.linspace(0, n - 1, keep)).astype(int)).tolist())
    for epoch in must:
        chosen.add(int(np.argmin(np.abs(epochs - epoch))))
    while len(chosen) > max(keep, 2):  # drop the most crowded non-essential ones
        ordered = sorted(chosen)
        protected = {ordered[0], ordered[-1]} | {int(np.argmin(np.abs(epochs - e))) for e in must}
        gaps = [(ordered[i + 1] - ordered[i - 1], ordered[i]) for i in range(1, len(ordered) - 1)
                if ordered[i] not in protected]
        if not gaps:
            break
        chosen.discard(min(gaps)[1])
    return np.array(sorted(chosen), dtype=np.int64)


def _first_present(have: Iterable[str], candidates: Sequence[str]) -> str | None:
    have = set(have)
    return next((c for c in candidates if c in have), None)


def _alternatives(candidates: Sequence[str]) -> str:
    return " or ".join(f"'{c}'" for c in candidates)
