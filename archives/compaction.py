"""Packs: older journal segments merged into one file, so a long journal stays quick to read.

A running writer makes one segment per timed flush and per checkpoint; a reader opened every
one of them (7-25 ms each: 10 s at 409 segments). The writer therefore merges segments in the
background into **packs**, `pack-<first>-<last>.h5`: a segment file like any other (same
layout, written under a temporary name, fsynced and renamed into place), holding what
segments first..last held, merged as a reader would merge them. Only after the pack is
durable are the segments it covers deleted; a reader that finds both uses the pack and skips
what it covers, so a crash at any moment leaves a journal that reads the same.

Tiering, like carrying in a base-16 counter: 16 consecutive entries of one size (1, 16, 256,
... segments) become one pack of the next size. At most 15 entries of each size remain, so
10,000 segments read as at most 4 x 15 files, and every byte is rewritten once per size it
climbs: log16(segments) times, 3.3 at 10,000 segments (benchmarks/bench_journal.py measures
it). Only segments written by the current writer are packed, and never one holding analysis
results or an `--overwrite` reset (they end a run of packable segments).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path
from typing import Any

from epochscope.archives import format as fmt
from epochscope.archives.journal import (
    atomic_h5,
    journal_dir,
    list_journal,
    live_entries,
    require_space,
)

__all__ = ["FANOUT", "Compactor", "drop_redundant", "write_pack"]

FANOUT = 16
_COMMIT_WAIT_S = 120.0


def entry_path(path: Path, first: int, last: int) -> Path:
    """The file of journal entry first..last of bundle `path`."""
    name = f"seg-{first:08d}.h5" if first == last else f"pack-{first:08d}-{last:08d}.h5"
    return journal_dir(path) / name


def write_pack(path: Path, spans: list[tuple[int, int]], *, durable: bool = True) -> Path:
    """Merge the consecutive journal entries `spans` of bundle `path` into one pack, commit
    it atomically, then delete the entries it replaces. Returns the pack's path."""
    from epochscope.archives.reader import Bundle

    files = [entry_path(path, a, b) for a, b in spans]
    first, last = spans[0][0], spans[-1][1]
    target = entry_path(path, first, last)
    require_space(target, sum(p.stat().st_size for p in files) + (1 << 20))
    with Bundle._merged_view(path, files) as view:  # strict: damage is never packed
        merged = view.as_segment()
        merged.applied = None
        cuts = [int(f.attrs["truncate-after"]) for f in view.segments if "truncate-after" in f.attrs]
        journals: dict[str, int] = {}
        for f in view.segments:
            for jid, seq in _journals(f).items():
                journals[jid] = max(journals.get(jid, 0), seq)
        with atomic_h5(target, durable=durable) as out:
            fmt.set_attr_str(out, "encoding-type", fmt.SEGMENT_NAME)
            fmt.set_attr_str(out, "encoding-version", fmt.FORMAT_VERSION)
            out.attrs["first-sequence"] = first
            out.attrs["sequence"] = last
            out.attrs["written"] = time.time()
            fmt.set_attr_json(out, "journals", journals)
            if cuts:
                # Truncations compose: what came before the pack keeps epochs <= the smallest.
                merged.truncate_after = min(cuts)
            from epochscope.archives.writer import write_content

            write_content(out, merged)
    for p in files:
        p.unlink(missing_ok=True)
    return target


def _journals(f: Any) -> dict[str, int]:
    from epochscope.archives.reader import _journals_of

    return _journals_of(f)


def drop_redundant(path: Path) -> None:
    """Delete journal files a killed writer left redundant: entries inside a pack that was
    committed, and entries a consolidation already folded into the main file (it died
    between the swap and deleting the journal). Call only while holding the writer lock."""
    entries = list_journal(path)
    live = live_entries(entries)
    for entry in set(entries) - set(live):
        entry.path.unlink(missing_ok=True)
    if not path.exists() or not live:
        return
    import h5py

    with contextlib.suppress(OSError), h5py.File(path, "r", locking=False) as main:
        applied = fmt.attr_json(main, "applied-segments", {}) or {}
    if not applied:
        return
    for entry in live:  # a consolidation folds a prefix of the journal: stop at the first new one
        try:
            with h5py.File(entry.path, "r", locking=False) as f:
                done = all(jid in applied and seq <= applied[jid] for jid, seq in _journals(f).items())
        except OSError:
            return
        if not done:
            return
        entry.path.unlink(missing_ok=True)


class Compactor:
    """Packs the current writer's segments on a background thread as they accumulate.

    The writer reports every segment it writes (`added`); merges run in order on one
    thread. A failed merge stops compaction for the session (the segments stay as they are,
    readable as before); `error` says why.
    """

    def __init__(self, path: Path, *, durable: bool = True, committer: Any = None):
        self.path = path
        self.durable = durable
        self.error: BaseException | None = None
        self._tail: list[tuple[int, int]] = []  # this session's packable entries, oldest first
        self._queue: queue.Queue[list[tuple[int, int]] | None] = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="epochscope-compact", daemon=True)
        self._thread.start()

    def added(self, seq: int, packable: bool, committer: Any = None) -> None:
        """Segment `seq` was written (or handed to the background committer)."""
        if not packable or self.error is not None:
            self._tail = []  # it ends the run: packs never reach across it
            return
        self._tail.append((seq, seq))
        while len(self._tail) >= FANOUT:
            group = self._tail[-FANOUT:]
            if len({b - a for a, b in group}) != 1:
                break
            self._tail[-FANOUT:] = [(group[0][0], group[-1][1])]
            self._queue.put(group)

    def _run(self) -> None:
        while True:
            group = self._queue.get()
            try:
                if group is None or self._cancel.is_set():
                    return
                if self.error is None:
                    self._await_commit(group)
                    write_pack(self.path, group, durable=self.durable)
            except BaseException as exc:  # noqa: BLE001 - compaction is an optimisation only
                self.error = exc
                self._tail = []
            finally:
                self._queue.task_done()

    def wait(self) -> None:
        """Block until every merge queued so far is done (benchmarks, tests)."""
        self._queue.join()

    def _await_commit(self, group: list[tuple[int, int]]) -> None:
        """Checkpoint segments are renamed into place by the background committer."""
        deadline = time.monotonic() + _COMMIT_WAIT_S
        for a, b in group:
            target = entry_path(self.path, a, b)
            while not target.exists():
                if self._cancel.is_set() or time.monotonic() > deadline:
                    raise TimeoutError(f"{target.name} was not committed")
                time.sleep(0.002)

    def stop(self) -> None:
        """Drop merges not yet started, wait for the running one."""
        self._cancel.set()
        self._queue.put(None)
        self._thread.join()
