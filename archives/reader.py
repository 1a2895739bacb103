"""Reading bundles: one merged view over the main file and any journal segments.

`open_bundle(path)` works on finished bundles, on bundles still being written (it reads
only the committed segments), and on bundles whose writer was killed.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from epochscope.archives import format as fmt
from epochscope.archives.errors import (
    BundleError,
    DamagedBundleError,
    NewerFormatError,
    NotABundleError,
)
from epochscope.archives.journal import journal_dir, list_segments, writer_active

__all__ = ["Artifact", "Bundle", "Checkpoint", "open_bundle"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Recorder.array(epoch, name, values) is stored as the artifact "array.<name>".
ARRAY_PREFIX = "array."
# The table a top-k checkpoint policy keeps its ranking in.
BEST_TABLE = "best_checkpoints"


@dataclass
class Checkpoint:
    """One stored checkpoint: `meta` (JSON: model class and config, ...) and `state` (arrays)."""

    epoch: int
    meta: dict[str, Any]
    state: dict[str, Any]


class Artifact:
    """Merged results of one analyzer: per-epoch arrays (sorted by epoch) and summaries."""

    def __init__(self, name: str, parts: list[h5py.Group], bundle: Bundle | None = None):
        self.name = name
        self._parts = parts
        self._bundle = bundle
        last = parts[-1]
        self.version = fmt._attr_str(last, "analyzer-version") or "?"
        self.params: dict[str, Any] = fmt.attr_json(last, "params", {})
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def names(self) -> list[str]:
        """Names of the per-epoch arrays."""
        seen: dict[str, None] = {}
        for g in self._parts:
            seen.update(dict.fromkeys(g["per_epoch"].keys()))
        return list(seen)

    @property
    def summary_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for g in self._parts:
            seen.update(dict.fromkeys(g["summary"].keys()))
        return list(seen)

    @property
    def epochs(self) -> np.ndarray:
        """Every epoch this analyzer has results for, sorted."""
        eps = [self._epochs(g) for g in self._parts]
        eps = [e for e in eps if e is not None]
        return np.unique(np.concatenate(eps)) if eps else np.zeros(0, dtype=np.int64)

    def _read(self, dset: h5py.Dataset) -> np.ndarray | None:
        """A verified read; None (and a finding) for damage when the bundle allows it."""
        if self._bundle is None:
            return fmt.read_array(dset)
        return self._bundle._read_checked(dset)

    def _epochs(self, g: h5py.Group) -> np.ndarray | None:
        arr = self._read(g["epoch"])
        return None if arr is None else np.asarray(arr, dtype=np.int64)

    def per_epoch(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, stacked values) for `name`; later writes of an epoch win."""
        if name not in self._cache:
            epochs, values = [], []
            for g in self._parts:
                if name in g["per_epoch"]:
                    eps, vals = self._epochs(g), self._read(g["per_epoch"][name])
                    if eps is None or vals is None:
                        continue  # damaged, and the bundle was opened with allow_damaged
                    epochs.append(eps)
                    values.append(vals)
            if not epochs:
                raise KeyError(f"analyzer {self.name!r} has no per-epoch array {name!r}")
            self._cache[name] = _merge_rows(np.concatenate(epochs), np.concatenate(values))
        return self._cache[name]

    def at(self, name: str, epoch: int) -> np.ndarray:
        """The value of `name` at one epoch, read without loading the whole stack."""
        for g in reversed(self._parts):
            if name in g["per_epoch"]:
                idx = np.nonzero(np.asarray(g["epoch"][()]) == epoch)[0]
                if idx.size:
                    return g["per_epoch"][name][int(idx[-1])]
        raise KeyError(f"analyzer {self.name!r}: no {name!r} at epoch {epoch}")

    def summary(self, name: str) -> np.ndarray:
        for g in reversed(self._parts):
            if name in g["summary"]:
                arr = self._read(g["summary"][name])
                if arr is not None:
                    return arr
        raise KeyError(f"analyzer {self.name!r} has no summary array {name!r}")

    @property
    def scalars(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for g in self._parts:
            out.update(fmt.attr_json(g["summary"], "scalars", {}))
        return out

    def to_xarray(self):
        """These results as an xarray Dataset (see archives/frames.py; needs xarray)."""
        from epochscope.archives.frames import artifact_dataset

        return artifact_dataset(self)


def _merge_rows(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort rows by epoch, keeping the last occurrence of a repeated epoch."""
    rev = epochs[::-1]
    uniq, first_in_rev = np.unique(rev, return_index=True)
    idx = len(epochs) - 1 - first_in_rev
    return uniq, values[idx]


class Bundle:
    """Read-only merged view of a bundle. Use `open_bundle`; close it (or use `with`).

    Everything it returns was checked: datasets against their SHA-256 (and fletcher32),
    structures by HDF5. A bundle with damage raises DamagedBundleError when the damage is
    met, unless opened with `allow_damaged`: then damaged parts are left out and each is
    listed in `damage`, so a page or a summary can say so.
    """

    def __init__(self, path: str | os.PathLike, *, allow_damaged: bool = False,
                 _locked_by_me: bool = False):
        self.path = Path(path)
        self.allow_damaged = allow_damaged
        self.damage: list[str] = []
        self._files: list[h5py.File] = []
        self._being_written = False if _locked_by_me else writer_active(self.path)
        for attempt in range(_ATTEMPTS):
            try:
                try:
                    self._open_parts()
                    self._merge()
                except OSError as exc:
                    # HDF5 reports checksum failures and corruption as OSError without a name.
                    self._found(f"{self.path.name}: data unreadable, checksum mismatch or corruption "
                                f"({fmt.short_reason(exc)})")
                    raise self._refusal() from None
                except NewerFormatError:
                    raise
                except (KeyError, RuntimeError, AttributeError, TypeError, ValueError) as exc:
                    # A damaged object header or B-tree: HDF5 and h5py fail in many ways.
                    self._found(f"{self.path.name}: structure unreadable ({fmt.short_reason(exc)})")
                    raise self._refusal() from None
                return
            except _Vanished:
                # A writer consolidated or packed the journal while we read it: what we saw
                # was replaced by a file holding the same data. Read the new state.
                self.close()
                self.damage = []
                if attempt == _ATTEMPTS - 1:
                    raise BundleError(f"{self.path}: the journal kept changing while it was read; "
                                      "try again") from None
                time.sleep(0.01 * attempt)
            except BaseException:
                self.close()
                raise

    @classmethod
    def _merged_view(cls, path: Path, files: list[Path]) -> Bundle:
        """A strict merged view of some journal files alone (no main file): what a pack of
        them must hold."""
        self = cls.__new__(cls)
        self.path, self.allow_damaged, self.damage = Path(path), False, []
        self._files, self._being_written, self.main, self.segments = [], False, None, []
        try:
            for p in files:
                f = _open_h5(p)
                self._files.append(f)
                _check_root(f, fmt.SEGMENT_NAME, p)
                self.segments.append(f)
            self._merge()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def problems(self) -> list[str]:
        """Damage found so far (kept for older callers; see `damage`)."""
        return self.damage

    def _found(self, text: str) -> None:
        if text not in self.damage:
            self.damage.append(text)

    def _refusal(self) -> DamagedBundleError:
        first = self.damage[0] if self.damage else "damaged"
        more = f" (and {len(self.damage) - 1} more)" if len(self.damage) > 1 else ""
        return DamagedBundleError(
            f"{self.path} is damaged: {first}{more}; see `epochscope verify`", self.damage)

    def _damaged(self, exc: DamagedBundleError) -> None:
        """Record damage met while reading; refuse unless the bundle allows damage."""
        for text in exc.findings or [str(exc)]:
            self._found(text)
        if not self.allow_damaged:
            raise self._refusal() from None

    @contextlib.contextmanager
    def _checking(self, what: str):
        """Damage met inside is recorded (or refused); so is any way a damaged HDF5
        structure makes h5py fail."""
        try:
            yield
        except DamagedBundleError as exc:
            self._damaged(exc)
        except Exception as exc:  # noqa: BLE001 - a damaged structure fails in many ways
            text = f"{what}: unreadable ({fmt.short_reason(exc)})"
            self._damaged(DamagedBundleError(text, [text]))

    def _read_checked(self, dset: h5py.Dataset) -> np.ndarray | None:
        try:
            return fmt.read_array(dset)
        except DamagedBundleError as exc:
            self._damaged(exc)
            return None

    # -- opening -------------------------------------------------------------------------
    def _open_parts(self) -> None:
        if self.path.is_dir():
            raise NotABundleError(f"{self.path} is a directory, not a bundle file")
        self.main: h5py.File | None = None
        self.segments: list[h5py.File] = []
        # The main file first, then the journal: a consolidation renames its new main file
        # in before it deletes the journal, so a journal file listed here that vanishes
        # before we open it was folded into a main file newer than ours (retry).
        try:
            self.main = _open_h5(self.path)
        except FileNotFoundError:
            pass
        entries = list_segments(self.path)
        if self.main is None and not entries:
            if self.path.exists():
                raise _Vanished()
            if journal_dir(self.path).is_dir():
                raise BundleError(f"{self.path}: journal exists but holds no complete segment yet")
            raise BundleError(f"no such bundle: {self.path}")
        if self.main is not None:
            self._files.append(self.main)
            _check_root(self.main, fmt.FORMAT_NAME, self.path)
        applied = fmt.attr_json(self.main, "applied-segments", {}) if self.main else {}
        for _seq, seg_path in entries:
            try:
                seg = _open_h5(seg_path)
            except FileNotFoundError:
                raise _Vanished() from None
            except NewerFormatError:
                raise
            except BundleError as exc:
                self._damaged(DamagedBundleError(f"journal {seg_path.name}: {exc}",
                                                 [f"journal {seg_path.name}: {_clip_path(exc)}"]))
                continue
            self._files.append(seg)
            try:
                _check_root(seg, fmt.SEGMENT_NAME, seg_path)
            except NewerFormatError as exc:
                if not self.allow_damaged:
                    raise
                self._found(f"journal {seg_path.name}: {_clip_path(exc)} (left out)")
                continue
            except BundleError as exc:
                self._damaged(DamagedBundleError(str(exc), [f"journal {seg_path.name}: {_clip_path(exc)}"]))
                continue
            if _already_applied(seg, applied):
                continue  # already folded into the main file by an interrupted consolidation
            self.segments.append(seg)

    @property
    def parts(self) -> list[h5py.File]:
        """The main file (if any) followed by unconsolidated segments, in write order."""
        return ([self.main] if self.main is not None else []) + self.segments

    # -- merging -------------------------------------------------------------------------
    def _merge(self) -> None:
        self.context: dict[str, Any] = {}
        sessions: dict[str, dict[str, Any]] = {}
        series: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        steps: dict[str, list[np.ndarray | None]] = {}  # aligned with `series` parts (since 1.2)
        events: list[dict[str, Any]] = []
        self._checkpoints: dict[int, h5py.Group | tuple[h5py.Group, str]] = {}
        artifacts: dict[str, list[h5py.Group]] = {}
        self._tables: dict[str, list[h5py.Group]] = {}  # a whole table, then appended rows
        self.checkpoint_policy: dict[str, Any] | None = None
        self._metric_info: dict[str, dict[str, Any]] = {}
        self._split: h5py.Group | None = None
        self.applied: dict[str, int] = {}
        for part in self.parts:
            if part.attrs.get("reset", False):
                # `--overwrite`: everything before this segment belongs to the replaced run.
                self.context, sessions, series, events = {}, {}, {}, []
                self._checkpoints, artifacts, self._tables = {}, {}, {}
                self._metric_info = {}
                self._split = None
                steps, self.checkpoint_policy = {}, None
            if part is self.main:
                self.applied.update(fmt.attr_json(part, "applied-segments", {}))
            else:
                for jid, seq in _journals_of(part).items():
                    self.applied[jid] = max(self.applied.get(jid, 0), seq)
            # Main file: every session; a pack: its segments' session updates, merged.
            for s in fmt.attr_json(part, "sessions", []):
                sessions.setdefault(s["id"], {}).update(s)
            if "truncate-after" in part.attrs:
                cut = int(part.attrs["truncate-after"])
                steps = {n: [None if s is None else s[e <= cut] for (e, _), s in zip(series[n], ss, strict=True)]
                         for n, ss in steps.items()}
                series = {n: [(e[e <= cut], v[e <= cut]) for e, v in ps] for n, ps in series.items()}
                events = [e for e in events if e["epoch"] <= cut]
                self._checkpoints = {e: g for e, g in self._checkpoints.items() if e <= cut}
            if "context" in part and not self.context:
                g = part["context"]
                fmt.check_encoding(g, "context")
                self.context = {k: fmt.attr_json(g, k) for k in g.attrs if not k.startswith("encoding-")}
            session = fmt.attr_json(part, "session")
            if session:
                sessions.setdefault(session["id"], {}).update(session)
            if "metrics" in part:
                info = fmt.attr_json(part["metrics"], "info", {})
                if isinstance(info, dict):
                    for name, fields in info.items():
                        if isinstance(fields, dict):
                            self._metric_info.setdefault(str(name), {}).update(fields)
                for name, g in part["metrics"].items():
                    fmt.check_encoding(g, "series")
                    epochs, values = self._read_checked(g["epoch"]), self._read_checked(g["value"])
                    if epochs is not None and values is not None:
                        series.setdefault(name, []).append((epochs, values))
                        steps.setdefault(name, []).append(self._read_checked(g["step"]) if "step" in g else None)
            if "events" in part:
                try:
                    events.extend(_read_events(part["events"]))
                except DamagedBundleError as exc:
                    self._damaged(exc)
            if "checkpoints" in part:
                group = part["checkpoints"]
                for key in group:
                    # The epoch is in the name (e0000001000): no need to open 10,000 groups.
                    epoch = _epoch_of(key)
                    self._checkpoints[epoch] = (group, key)
            for epoch in fmt.attr_json(part, "drop-checkpoints", []):
                self._checkpoints.pop(int(epoch), None)
            policy = fmt.attr_json(part, "checkpoint-policy")
            if policy is not None:
                self.checkpoint_policy = policy
            if "artifacts" in part:
                for name, g in part["artifacts"].items():
                    fmt.check_encoding(g, "artifact")
                    if bool(g.attrs.get("replace", False)):
                        artifacts[name] = []
                    artifacts.setdefault(name, []).append(g)
            if "tables" in part:
                for name, g in part["tables"].items():
                    fmt.check_encoding(g, "table")
                    if bool(g.attrs.get("append", False)) and name in self._tables:
                        _check_table_columns(name, self._tables[name][0], g)
                        self._tables[name].append(g)
                    else:
                        self._tables[name] = [g]
            if "split" in part:
                fmt.check_encoding(part["split"], "split")
                self._split = part["split"]  # a later split replaces an earlier one
        self._sessions = list(sessions.values())
        self._series = {
            n: (np.concatenate([e for e, _ in ps]).astype(np.int64), np.concatenate([v for _, v in ps]))
            for n, ps in series.items()
        }
        self._steps = {
            n: np.concatenate([np.full(len(e), -1, np.int64) if s is None else np.asarray(s, np.int64)
                               for (e, _), s in zip(series[n], ss, strict=True)])
            for n, ss in steps.items() if any(s is not None for s in ss)
        }
        self._events = sorted(events, key=lambda e: e["epoch"])  # stable: write order kept
        self._artifacts = {n: Artifact(n, ps, self) for n, ps in artifacts.items() if ps}

    def check(self, *, tensors: bool = False) -> list[str]:
        """Read and verify everything the read API returns; the damage found (all of it).

        Series and events are checked when the bundle opens; this adds tables and analysis
        results, and with `tensors` every checkpoint, metadata and tensors (what `verify`
        does). Without `allow_damaged` the first damage raises DamagedBundleError.
        """
        for name in self.table_names:
            with self._checking(f"table {name!r}"):
                self.table(name)
        for name in self.artifact_names:
            with self._checking(f"artifact {name!r}"):
                art = self.artifact(name)
                art.epochs  # noqa: B018 - reads and checks every part's epochs
                for arr in art.names:
                    with contextlib.suppress(KeyError):
                        art.per_epoch(arr)
                for arr in art.summary_names:
                    with contextlib.suppress(KeyError):
                        art.summary(arr)
        # Checkpoints are checked whenever they are read (metadata by HDF5, tensors by their
        # SHA-256); opening all of them here would cost `info` seconds on a long run.
        for epoch in self.checkpoint_epochs if tensors else ():
            with self._checking(f"checkpoint {epoch}"):
                group = self.checkpoint_group(epoch)
                fmt.attr_json(group, "meta", {})
                fmt.read_tree(group["state"])
        return list(self.damage)

    # -- public API ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The run's name: config["name"] when given, else the file's stem."""
        config = self.context.get("config") or {}
        name = config.get("name") if isinstance(config, dict) else None
        return str(name) if name else self.path.name.removesuffix(".h5").removesuffix(".hdf5")

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.context.get("config") or {})

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """One record per writing session (start/end time, argv, host, status)."""
        return list(self._sessions)

    @property
    def status(self) -> str:
        """complete, failed, running (a writer holds the lock) or interrupted (writer died)."""
        if self._being_written:
            return "running"
        if not self._sessions:
            return "complete" if self.main is not None else "interrupted"
        status = str(self._sessions[-1].get("status") or "running")
        # A session still marked running with nobody holding the lock: its writer died.
        return "interrupted" if status == "running" else status

    @property
    def being_written(self) -> bool:
        return self._being_written

    @property
    def series_names(self) -> list[str]:
        return sorted(self._series)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs int64, values float64) of one metric series, in logging order."""
        try:
            return self._series[name]
        except KeyError:
            raise KeyError(f"no metric series {name!r}; have: {', '.join(self.series_names) or 'none'}") from None

    def metrics(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return dict(self._series)

    def series_steps(self, name: str) -> np.ndarray | None:
        """The step index beside each epoch of a per-step series (`Recorder.log_step`), or
        None for a series logged per epoch only; -1 marks points logged without a step."""
        self.series(name)  # KeyError listing the series when absent
        return self._steps.get(name)

    @property
    def array_names(self) -> list[str]:
        """Per-epoch arrays recorded with `Recorder.array` (artifacts named `array.<name>`)."""
        return sorted(n.removeprefix(ARRAY_PREFIX) for n in self._artifacts if n.startswith(ARRAY_PREFIX))

    def array(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, stacked values) of a recorded per-epoch array."""
        try:
            art = self._artifacts[ARRAY_PREFIX + name]
        except KeyError:
            raise KeyError(f"no recorded array {name!r}; have: {', '.join(self.array_names) or 'none'}") from None
        return art.per_epoch(name)

    @property
    def best_checkpoints(self) -> list[dict[str, Any]]:
        """Checkpoints kept by a top-k policy (`Recorder.keep_best`), best first:
        dicts with epoch, score and rank; [] without a policy."""
        if not self.checkpoint_policy or BEST_TABLE not in self._tables:
            return []
        t = self.table(BEST_TABLE)
        return [{"epoch": int(e), "score": float(s), "rank": int(r)}
                for e, s, r in zip(t["epoch"], t["score"], t["rank"], strict=True)
                if int(e) in self._checkpoints]

    @property
    def metric_info(self) -> dict[str, dict[str, Any]]:
        """What the recording code declared per series (`Recorder.describe`): a dict of
        `direction` ("min"/"max"), `unit`, `description`; series never described are absent."""
        return {k: dict(v) for k, v in self._metric_info.items()}

    @property
    def checkpoint_epochs(self) -> list[int]:
        return sorted(self._checkpoints)

    def checkpoint_meta(self, epoch: int) -> dict[str, Any]:
        return fmt.attr_json(self.checkpoint_group(epoch), "meta", {})

    def checkpoint(self, epoch: int) -> Checkpoint:
        """The whole checkpoint at `epoch`, read into memory and checked.

        Damaged tensors always raise DamagedBundleError, even with `allow_damaged`: nothing
        may be computed from (or resumed with) weights that are not the ones stored.
        """
        g = self.checkpoint_group(epoch)
        return Checkpoint(int(epoch), fmt.attr_json(g, "meta", {}), fmt.read_tree(g["state"]))

    def checkpoint_group(self, epoch: int) -> h5py.Group:
        """The checkpoint's HDF5 group, for lazy reads of part of it (e.g. only `state/model`).

        Read-only, and valid while this Bundle is open.
        """
        try:
            item = self._checkpoints[int(epoch)]
        except KeyError:
            have = self.checkpoint_epochs
            hint = f"{len(have)} checkpoints, epochs {have[0]}..{have[-1]}" if have else "no checkpoints"
            raise KeyError(f"no checkpoint at epoch {epoch} ({hint})") from None
        if isinstance(item, tuple):  # opened on first use
            parent, key = item
            try:
                item = parent[key]
                fmt.check_encoding(item, "checkpoint")
            except (OSError, RuntimeError, KeyError) as exc:
                raise DamagedBundleError(
                    f"{self.path.name}: checkpoint {epoch} unreadable ({fmt.short_reason(exc)})",
                    [f"checkpoint {epoch}: unreadable ({fmt.short_reason(exc)})"]) from None
            self._checkpoints[int(epoch)] = item
        return item

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Events sorted by epoch: dicts with epoch, kind, message, payload."""
        return [dict(e) for e in self._events if kind is None or e["kind"] == kind]

    @property
    def artifact_names(self) -> list[str]:
        return sorted(self._artifacts)

    def artifact(self, name: str) -> Artifact:
        try:
            return self._artifacts[name]
        except KeyError:
            raise KeyError(f"no artifacts of analyzer {name!r}; have: {', '.join(self.artifact_names) or 'none'}") from None

    @property
    def table_names(self) -> list[str]:
        return sorted(self._tables)

    def table(self, name: str) -> dict[str, np.ndarray]:
        """Columns in their stored order, with their stored dtypes (strings as str objects)."""
        parts = self._tables[name]
        columns = fmt.attr_json(parts[0], "columns", [])
        if len(parts) == 1:
            return {col: fmt.read_array(parts[0][col]) for col in columns}
        return {col: np.concatenate([fmt.read_array(g[col]) for g in parts]) for col in columns}

    @property
    def split(self) -> dict[str, Any] | None:
        """The dataset split recorded at collect time, or None (bundles from before it, or
        runs that recorded none): {"n", "subsets": {name: sorted int64 indices}, "meta"}."""
        g = self._split
        if g is None:
            return None
        names = fmt.attr_json(g, "subsets", [])
        return {
            "n": int(g.attrs["n"]),
            "subsets": {name: fmt.read_array(g[name]).astype(np.int64) for name in names},
            "meta": fmt.attr_json(g, "meta", {}),
        }

    def checkpoint_items(self) -> dict[int, h5py.Group]:
        """epoch -> checkpoint group, for copying them whole (consolidation, packs)."""
        return {epoch: self.checkpoint_group(epoch) for epoch in self.checkpoint_epochs}

    def as_segment(self):
        """Everything in this bundle as one Segment (used to write a consolidated file)."""
        from epochscope.archives.writer import ArtifactUpdate, Segment

        arts = {}
        for name, art in self._artifacts.items():
            per_epoch = {n: art.per_epoch(n) for n in art.names}
            epochs = art.epochs
            aligned = {}
            for n, (eps, vals) in per_epoch.items():
                if len(eps) != len(epochs) or np.any(eps != epochs):
                    raise BundleError(f"analyzer {name!r}: array {n!r} does not cover all epochs")
                aligned[n] = vals
            arts[name] = ArtifactUpdate(
                version=art.version, epochs=epochs, per_epoch=aligned,
                summary={n: art.summary(n) for n in art.summary_names},
                scalars=art.scalars, params=art.params,
            )
        return Segment(
            context=self.context or None,
            sessions=self._sessions,
            applied=self.applied,
            metrics=dict(self._series),
            metric_steps=dict(self._steps),
            checkpoint_policy=self.checkpoint_policy,
            events=self._events,
            checkpoints=self.checkpoint_items(),
            artifacts=arts,
            tables={n: self.table(n) for n in self._tables},
            metric_info=self.metric_info,
            split=self.split,
        )

    def close(self) -> None:
        for f in self._files:
            try:
                f.close()
            except Exception:  # noqa: BLE001 - closing a damaged file must not mask the real error
                pass
        self._files = []

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Bundle {self.name!r} {self.status} at {self.path}>"

    def series_frame(self, names=None, *, long: bool = False):
        """The metric series as a pandas DataFrame (wide by epoch, or `long`); needs pandas."""
        from epochscope.archives.frames import series_frame

        return series_frame(self, names, long=long)

    def chart(self, name: str, **state):
        """Chart `name` of this bundle's report as a plotly Figure (`.show()` draws it inline),
        built by the report's own chart registry; `state`: epoch, neuron, head. Needs plotly."""
        from epochscope.generator.figures import chart_figure

        return chart_figure(self, name, **state)

    def chart_names(self) -> list[str]:
        """The names `chart()` takes: this bundle's report charts, in page order."""
        from epochscope.generator.figures import chart_names

        return chart_names(self)

    def _repr_html_(self) -> str:
        """Jupyter's inline view: a short, escaped summary (drawn by the generator)."""
        from epochscope.generator.notebook import bundle_html

        return bundle_html(self)


def open_bundle(path: str | os.PathLike, *, allow_damaged: bool = False) -> Bundle:
    """Open a bundle for reading (finished, being written, or left by a killed writer).

    Damage it meets raises DamagedBundleError; with `allow_damaged` the damaged parts are
    left out and listed in `Bundle.damage` instead.
    """
    return Bundle(path, allow_damaged=allow_damaged)


_ATTEMPTS = 20


class _Vanished(Exception):
    """A journal file listed a moment ago is gone: a writer replaced it (read again)."""


def _epoch_of(key: str) -> int:
    if key[:1] == "e" and key[1:].isdigit():
        return int(key[1:])
    raise KeyError(f"unexpected checkpoint name {key!r}")


def _journals_of(part: h5py.File) -> dict[str, int]:
    """{journal id: last sequence} a journal file holds (a pack may hold several sessions')."""
    packed = fmt.attr_json(part, "journals")
    if packed:
        return {str(k): int(v) for k, v in packed.items()}
    return {fmt._attr_str(part, "journal-id") or "?": int(part.attrs["sequence"])}


def _already_applied(part: h5py.File, applied: dict[str, int]) -> bool:
    return all(jid in applied and seq <= applied[jid] for jid, seq in _journals_of(part).items())


def _clip_path(exc: BaseException) -> str:
    """An error text without the long path prefix it may start with."""
    return " ".join(str(exc).split())[:200]


def _open_h5(path: Path) -> h5py.File:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise BundleError(f"cannot read {path}: {exc.strerror}") from None
    if head != _HDF5_SIGNATURE:
        raise NotABundleError(f"{path} is not an HDF5 file")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise BundleError(f"{path} is truncated or corrupt: HDF5 cannot open it ({_h5_reason(exc)})") from None


def _h5_reason(exc: OSError) -> str:
    text = str(exc)
    return text.split("(", 1)[-1].rstrip(")") if "(" in text else text


def _check_root(f: h5py.File, expected: str, path: Path) -> None:
    kind = fmt._attr_str(f, "encoding-type")
    if kind != expected:
        raise NotABundleError(f"{path} is an HDF5 file but not an epochscope bundle")
    version = fmt._attr_str(f, "encoding-version") or "0"
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise NotABundleError(f"{path}: unreadable format version {version!r}") from None
    if major > fmt.SUPPORTED_MAJOR:
        raise NewerFormatError(
            f"{path} uses bundle format {version}, newer than this epochscope reads "
            f"({fmt.FORMAT_VERSION}); upgrade epochscope"
        )


def _check_table_columns(name: str, first: h5py.Group, rows: h5py.Group) -> None:
    """Appended rows must have the table's columns and dtypes (the writer checks it too)."""
    a = (fmt.attr_json(first, "columns", []), fmt.attr_json(first, "dtypes", {}))
    b = (fmt.attr_json(rows, "columns", []), fmt.attr_json(rows, "dtypes", {}))
    if a != b:
        raise BundleError(f"table {name!r}: appended rows have columns {b[0]} {b[1]}, "
                          f"the table has {a[0]} {a[1]}")


def _read_events(g: h5py.Group) -> list[dict[str, Any]]:
    import json

    fmt.check_encoding(g, "event-table")
    epochs = fmt.read_array(g["epoch"])
    kinds = fmt.read_array(g["kind"])
    messages = fmt.read_array(g["message"])
    payloads = fmt.read_array(g["payload"])
    try:
        return [
            {"epoch": int(e), "kind": str(k), "message": str(m), "payload": json.loads(p)}
            for e, k, m, p in zip(epochs, kinds, messages, payloads, strict=True)
        ]
    except ValueError as exc:  # unequal lengths or a payload that is no longer JSON
        raise fmt.damaged(g["payload"], f"events unreadable ({fmt.short_reason(exc)})") from None
