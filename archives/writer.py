"""Writing bundles: segments appended to the journal, and consolidation into one file.

`BundleWriter` is the only way data gets into a bundle. Each `write` call produces one
segment (atomic); `consolidate` merges main file + journal into a fresh main file and swaps
it in atomically. The same element writers serve segments and the consolidated file.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from epochscope import __version__
from epochscope.archives import format as fmt
from epochscope.archives.compaction import Compactor
from epochscope.archives.compaction import drop_redundant as _drop_redundant
from epochscope.archives.errors import BundleError, BundleLockedError, DamagedBundleError
from epochscope.archives.journal import (
    Committer,
    WriterLock,
    atomic_h5,
    journal_dir,
    list_journal,
    list_segments,
    remove_stale_tmp,
    require_space,
)

__all__ = ["ArtifactUpdate", "BundleWriter", "Segment", "consolidate"]


@dataclass
class ArtifactUpdate:
    """New results of one analyzer: per-epoch rows, summary arrays and JSON scalars.

    `per_epoch[name]` is stacked along axis 0 in the order of `epochs`. With `replace`,
    everything the analyzer had before is dropped (a forced re-run).
    """

    version: str
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    per_epoch: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    replace: bool = False


@dataclass
class Segment:
    """One atomic addition to a bundle. Every field is optional."""

    context: dict[str, Any] | None = None
    session: dict[str, Any] | None = None
    metrics: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    # epoch -> (meta JSON, tree of arrays) or epoch -> h5py.Group to copy verbatim
    checkpoints: dict[int, Any] = field(default_factory=dict)
    artifacts: dict[str, ArtifactUpdate] = field(default_factory=dict)
    tables: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # series name -> what the recording code declared about it (direction, unit, description)
    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    truncate_after: int | None = None
    # The dataset split: {"n": int, "subsets": {name: sorted int64 indices}, "meta": JSON}
    split: Mapping[str, Any] | None = None
    # Since 1.2. A step index beside the epoch for series named here (same length as epochs).
    metric_steps: dict[str, np.ndarray] = field(default_factory=dict)
    # Rows appended to tables (columns of equal length), after what earlier parts hold.
    table_rows: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # Checkpoints removed from the bundle (a top-k policy evicted them), and that policy.
    drop_checkpoints: list[int] = field(default_factory=list)
    checkpoint_policy: dict[str, Any] | None = None
    # Only in a consolidated file: every session record, and per journal id the highest
    # segment sequence already folded in (so a crash right after the swap never applies twice).
    sessions: list[dict[str, Any]] | None = None
    applied: dict[str, int] | None = None

    def is_empty(self) -> bool:
        return not (
            self.context or self.session or self.metrics or self.events or self.checkpoints
            or self.artifacts or self.tables or self.metric_info or self.truncate_after is not None
            or self.split is not None
            or self.table_rows or self.drop_checkpoints or self.checkpoint_policy
        )


class BundleWriter:
    """Exclusive writer of one bundle path; appends segments, consolidates on request."""

    def __init__(self, path: str | os.PathLike, *, create: bool, overwrite: bool = False,
                 durable: bool = True, compaction: bool = True):
        self.path = Path(path)
        self.durable = durable  # fsync each segment (power-loss safe); False: rename only
        # Merge older segments into packs in the background, so that a long journal stays
        # quick to read (see archives/compaction.py).
        self.compaction = compaction
        if not self.path.parent.is_dir():
            raise BundleError(f"output directory does not exist: {self.path.parent}")
        if not os.access(self.path.parent, os.W_OK):
            raise BundleError(f"output directory is not writable: {self.path.parent}")
        self._lock = WriterLock(self.path)
        if not self._lock.acquire():
            raise BundleLockedError(f"{self.path} is being written by another process")
        try:
            exists = self.path.exists() or bool(list_segments(self.path))
            # With overwrite, the old bundle stays intact until the new one is consolidated:
            # the first new segment carries `reset`, so readers ignore what came before it.
            self._reset_pending = create and exists
            if create and exists and not overwrite:
                raise BundleError(f"{self.path} already exists (use --overwrite to replace it)")
            if not create and not exists:
                raise BundleError(f"no bundle at {self.path}")
            if self.path.exists() and not create:
                # Validate before appending: never add segments to something that isn't ours.
                from epochscope.archives.reader import Bundle

                # (damage is not refused here: appending cannot spread it; consolidation refuses)
                Bundle(self.path, allow_damaged=True, _locked_by_me=True).close()
            # We hold the lock: whoever wrote the temporaries of this bundle is gone.
            remove_stale_tmp(self.path)
            _drop_redundant(self.path)
            entries = list_journal(self.path)
            self._journal_id = uuid.uuid4().hex
            self._seq = max((e.last for e in entries), default=0)
            self._committer: Committer | None = None
            self._compactor: Compactor | None = None
        except BaseException:
            self._lock.release()
            raise

    def write(self, segment: Segment, *, wait: bool = True) -> None:
        """Append `segment` to the journal atomically (nothing happens if it is empty).

        With `wait=False` the fsync and rename finish in the background (in order); the
        segment is durable after the next waiting `write`, `sync` or `consolidate`.
        """
        if segment.is_empty() and not self._reset_pending:
            if wait:
                # Nothing new, but "write and wait" still promises that everything handed over
                # before (checkpoints committing in the background) is durable on return.
                self.sync()
            return
        jdir = journal_dir(self.path)
        target = jdir / f"seg-{self._seq + 1:08d}.h5"
        require_space(target, _estimate(segment))
        jdir.mkdir(exist_ok=True)
        self._seq += 1
        if not wait and self._committer is None:
            self._committer = Committer()
        deferred: list = []  # checkpoint tensors: written raw once HDF5 has closed the file
        with atomic_h5(jdir / f"seg-{self._seq:08d}.h5", committer=None if wait else self._committer,
                       durable=self.durable, deferred=deferred) as f:
            fmt.set_attr_str(f, "encoding-type", fmt.SEGMENT_NAME)
            fmt.set_attr_str(f, "encoding-version", fmt.FORMAT_VERSION)
            fmt.set_attr_str(f, "journal-id", self._journal_id)
            f.attrs["sequence"] = self._seq
            f.attrs["written"] = time.time()
            if self._reset_pending:
                f.attrs["reset"] = True
            write_content(f, segment, deferred=deferred)
            if wait:
                self.sync()  # earlier background commits land before this one is renamed
        packable = self.compaction and not (self._reset_pending or segment.artifacts)
        self._reset_pending = False
        if self.compaction:
            if self._compactor is None:
                self._compactor = Compactor(self.path, durable=self.durable, committer=self._committer)
            self._compactor.added(self._seq, packable, committer=self._committer)

    def open_reader(self, *, allow_damaged: bool = False):
        """A read-only merged view of this bundle while this writer holds its lock."""
        from epochscope.archives.reader import Bundle

        self.sync()
        return Bundle(self.path, allow_damaged=allow_damaged, _locked_by_me=True)

    def sync(self) -> None:
        """Wait until every segment written so far is durable."""
        if self._committer is not None:
            self._committer.wait()

    def consolidate(self) -> None:
        """Fold the journal into a new main file (atomic swap), then drop the journal."""
        self.sync()
        self._stop_compactor()
        consolidate(self.path, _locked=True)

    def _stop_compactor(self) -> None:
        if self._compactor is not None:
            self._compactor.stop()
            self._compactor = None

    def close(self) -> None:
        try:
            self._stop_compactor()
            if self._committer is not None:
                self._committer.wait()
                self._committer.stop()
                self._committer = None
        finally:
            self._lock.release()

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_content(f: h5py.File, seg: Segment, *, deferred: list | None = None) -> None:
    """Write the elements of `seg` under the root of `f` (segment or consolidated file).

    `deferred`: see `format.write_tree` (the caller writes those bytes after closing `f`).
    """
    if seg.context is not None:
        g = f.create_group("context")
        fmt.set_encoding(g, "context")
        for key, value in seg.context.items():
            fmt.set_attr_json(g, key, value)
    if seg.session is not None:
        fmt.set_attr_json(f, "session", seg.session)
    if seg.sessions is not None:
        fmt.set_attr_json(f, "sessions", seg.sessions)
    if seg.applied is not None:
        fmt.set_attr_json(f, "applied-segments", seg.applied)
    if seg.truncate_after is not None:
        f.attrs["truncate-after"] = int(seg.truncate_after)
    if seg.drop_checkpoints:
        fmt.set_attr_json(f, "drop-checkpoints", sorted(int(e) for e in seg.drop_checkpoints))
    if seg.checkpoint_policy is not None:
        fmt.set_attr_json(f, "checkpoint-policy", seg.checkpoint_policy)
    if seg.metrics or seg.metric_info:
        g = f.create_group("metrics")
        fmt.set_encoding(g, "metrics")
        if seg.metric_info:
            fmt.set_attr_json(g, "info", {fmt.check_name(n): dict(v) for n, v in seg.metric_info.items()})
        for name, (epochs, values) in seg.metrics.items():
            s = g.create_group(fmt.check_name(name))
            fmt.set_encoding(s, "series")
            fmt.write_array(s, "epoch", np.asarray(epochs, dtype=np.int64))
            fmt.write_array(s, "value", np.asarray(values, dtype=np.float64))
            if name in seg.metric_steps:
                steps = np.asarray(seg.metric_steps[name], dtype=np.int64)
                if steps.shape != np.shape(epochs):
                    raise ValueError(f"series {name!r}: {steps.shape[0]} steps for {len(epochs)} epochs")
                fmt.write_array(s, "step", steps)
    if seg.events:
        _write_events(f, seg.events)
    if seg.checkpoints:
        g = f.create_group("checkpoints")
        fmt.set_encoding(g, "checkpoints")
        for epoch in sorted(seg.checkpoints):
            item = seg.checkpoints[epoch]
            key = fmt.checkpoint_key(epoch)
            if isinstance(item, h5py.Group):
                item.file.copy(item, g, name=key)
                continue
            meta, tree = item
            c = g.create_group(key)
            fmt.set_encoding(c, "checkpoint")
            c.attrs["epoch"] = int(epoch)
            fmt.set_attr_json(c, "meta", meta)
            fmt.write_tree(c.create_group("state"), tree, deferred=deferred)
    if seg.artifacts:
        g = f.create_group("artifacts")
        fmt.set_encoding(g, "artifacts")
        for name, art in seg.artifacts.items():
            _write_artifact(g.create_group(fmt.check_name(name)), art)
    if seg.split is not None:
        write_split(f.create_group("split"), seg.split)
    if seg.tables or seg.table_rows:
        g = f.create_group("tables")
        fmt.set_encoding(g, "tables")
        for name, columns in seg.tables.items():
            write_table(g.create_group(fmt.check_name(name)), columns)
        for name, columns in seg.table_rows.items():
            if name in seg.tables:
                raise ValueError(f"table {name!r} is both replaced and appended to in one segment")
            t = g.create_group(fmt.check_name(name))
            write_table(t, columns)
            t.attrs["append"] = True


def _write_events(f: h5py.File, events: list[dict[str, Any]]) -> None:
    g = f.create_group("events")
    fmt.set_encoding(g, "event-table")
    fmt.write_array(g, "epoch", np.asarray([int(e["epoch"]) for e in events], dtype=np.int64))
    fmt.write_array(g, "kind", np.asarray([str(e["kind"]) for e in events], dtype=object))
    fmt.write_array(g, "message", np.asarray([str(e.get("message", "")) for e in events], dtype=object))
    payloads = [fmt.dumps(e.get("payload") or {}) for e in events]
    fmt.write_array(g, "payload", np.asarray(payloads, dtype=object))


def _write_artifact(g: h5py.Group, art: ArtifactUpdate) -> None:
    fmt.set_encoding(g, "artifact")
    fmt.set_attr_str(g, "analyzer-version", str(art.version))
    g.attrs["replace"] = bool(art.replace)
    fmt.set_attr_json(g, "params", art.params)
    epochs = np.asarray(art.epochs, dtype=np.int64)
    fmt.write_array(g, "epoch", epochs)
    pe = g.create_group("per_epoch")
    fmt.set_encoding(pe, "array-group")
    for name, arr in art.per_epoch.items():
        arr = np.asarray(arr)
        if arr.shape[:1] != epochs.shape:
            raise ValueError(f"artifact array {name!r}: first axis {arr.shape[:1]} != epochs {epochs.shape}")
        fmt.write_array(pe, fmt.check_name(name), arr, per_row=True)
    sm = g.create_group("summary")
    fmt.set_encoding(sm, "array-group")
    for name, arr in art.summary.items():
        fmt.write_array(sm, fmt.check_name(name), np.asarray(arr))
    fmt.set_attr_json(sm, "scalars", art.scalars)


def write_split(g: h5py.Group, split: Mapping[str, Any]) -> None:
    """The dataset split: attribute `n` (examples), `meta` (JSON), one sorted int64 index
    dataset per subset (`train`, `test`, ...), each index in 0..n-1, subsets disjoint."""
    fmt.set_encoding(g, "split")
    n = int(split["n"])
    subsets = dict(split.get("subsets") or {})
    if not subsets:
        raise ValueError("a split needs at least one subset")
    seen = np.zeros(n, dtype=bool)
    g.attrs["n"] = n
    fmt.set_attr_json(g, "meta", dict(split.get("meta") or {}))
    fmt.set_attr_json(g, "subsets", list(subsets))
    for name, idx in subsets.items():
        arr = np.unique(np.asarray(idx, dtype=np.int64))
        if len(arr) != len(np.asarray(idx).ravel()):
            raise ValueError(f"split subset {name!r} repeats an index")
        if arr.size and (arr[0] < 0 or arr[-1] >= n):
            raise ValueError(f"split subset {name!r} has indices outside 0..{n - 1}")
        if seen[arr].any():
            raise ValueError(f"split subset {name!r} overlaps an earlier subset")
        seen[arr] = True
        fmt.write_array(g, fmt.check_name(str(name)), arr)


_TABLE_KINDS = "biufUO"


def write_table(g: h5py.Group, columns: Mapping[str, Any]) -> None:
    """A table: one dataset per column, equal lengths, column order kept in `columns`."""
    fmt.set_encoding(g, "table")
    arrays = {}
    for name, values in columns.items():
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"table column {name!r} must be one-dimensional")
        if arr.dtype.kind not in _TABLE_KINDS:
            raise TypeError(f"table column {name!r}: unsupported dtype {arr.dtype}")
        arrays[fmt.check_name(str(name))] = arr
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"table columns differ in length: {sorted(lengths)}")
    fmt.set_attr_json(g, "columns", list(arrays))
    fmt.set_attr_json(g, "dtypes", {k: ("str" if a.dtype.kind in "UO" else a.dtype.str) for k, a in arrays.items()})
    for name, arr in arrays.items():
        fmt.write_array(g, name, arr)


def consolidate(path: str | os.PathLike, *, _locked: bool = False) -> None:
    """Merge bundle `path` (main file + journal) into one new main file, atomically.

    Everything it copies is checked first (SHA-256, fletcher32, structure): a bundle with
    damage is refused, never rewritten with fresh checksums over damaged bytes. Checkpoints
    are copied whole with the checksums they were written with, so their damage, if any,
    stays detectable. Nothing is changed when it refuses or the disk is full.
    """
    from epochscope.archives.reader import Bundle

    path = Path(path)
    lock = None
    if not _locked:
        lock = WriterLock(path)
        if not lock.acquire():
            raise BundleLockedError(f"{path} is being written by another process")
    try:
        remove_stale_tmp(path)
        segments = list_segments(path)
        if not segments and path.exists():
            return
        needed = sum(_size(p) for _, p in segments) + (_size(path) if path.exists() else 0)
        require_space(path, needed + (1 << 20))
        try:
            with Bundle(path, _locked_by_me=True) as b:
                merged = b.as_segment()  # strict: every element read is verified
                with atomic_h5(path) as f:
                    f.attrs["encoding-type"] = fmt.FORMAT_NAME
                    fmt.set_attr_str(f, "encoding-version", fmt.FORMAT_VERSION)
                    f.attrs["epochscope-version"] = __version__
                    f.attrs["name"] = b.name
                    f.attrs["consolidated"] = time.time()
                    write_content(f, merged)
                    _write_manifest(f, skip=_copied_from(path, merged))
        except (OSError, RuntimeError, KeyError, AttributeError, TypeError, ValueError) as exc:
            # HDF5 failing to read or copy a part: damaged structure or data.
            text = f"a part cannot be read ({fmt.short_reason(exc)})"
            raise DamagedBundleError(
                f"{path} not consolidated: {text}; nothing was changed (the journal is kept); "
                "see `epochscope verify`", [text]) from None
        except DamagedBundleError as exc:
            first = exc.findings[0] if exc.findings else str(exc)
            raise DamagedBundleError(
                f"{path} not consolidated: {first}; consolidating would turn damaged data into "
                "data that verifies; nothing was changed (the journal is kept); see `epochscope verify`",
                exc.findings) from None
        # The new main file holds every segment; only now is the journal redundant.
        shutil.rmtree(journal_dir(path), ignore_errors=True)
    finally:
        if lock is not None:
            lock.release()


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _estimate(seg: Segment) -> int:
    """Bytes a segment will take on disk, roughly (for refusing early on a full disk)."""
    total = 64 * 1024  # HDF5 superblock, object headers, B-trees
    total += sum(16 * len(e) for e, _ in seg.metrics.values())
    total += sum(len(str(e)) for e in seg.events)

    def walk(tree: Any) -> int:
        if isinstance(tree, Mapping):
            return sum(walk(v) for v in tree.values())
        if isinstance(tree, fmt.Concat):
            return sum(p.nbytes for p in tree.parts)
        return tree.nbytes if isinstance(tree, np.ndarray) else 0

    for item in seg.checkpoints.values():
        if isinstance(item, tuple):
            total += walk(item[1]) + 4096
    for art in seg.artifacts.values():
        total += walk(art.per_epoch) + walk(art.summary)
    for table in seg.tables.values():
        total += sum(np.asarray(v).nbytes for v in table.values())
    return total


def _copied_from(path: Path, merged: Segment) -> set[str]:
    """Checkpoint groups `merged` copies from the main file at `path` (which has a manifest)."""
    if not path.exists():
        return set()
    return {f"checkpoints/{fmt.checkpoint_key(epoch)}" for epoch, item in (merged.checkpoints or {}).items()
            if isinstance(item, h5py.Group) and os.path.samefile(item.file.filename, path)}


def _write_manifest(f: h5py.File, skip: Collection[str] = ()) -> None:
    """Store a SHA-256 of every dataset's content as its `sha256` attribute.

    A dataset copied whole from the previous main file keeps the checksum it was given when
    first consolidated: rehashing it would cost most of a consolidation's time and would bless
    any damage it took since (`verify` compares against the original). `skip`: paths of groups
    copied whole from the previous main file, not even walked (its checkpoints).
    """

    def walk(group: h5py.Group, prefix: str) -> None:
        for name, obj in group.items():
            if prefix + name in skip:
                continue
            if isinstance(obj, h5py.Group):
                walk(obj, f"{prefix}{name}/")
            elif "sha256" not in obj.attrs:
                fmt.set_attr_str(obj, "sha256", fmt.sha256_of(obj))

    walk(f, "")
