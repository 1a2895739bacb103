"""Crash-safe storage mechanics: the journal of segment files, atomic rename, the writer lock.

A bundle `run.h5` is only ever replaced whole (write `run.h5.<pid>.tmp`, fsync, rename).
New data goes into `run.h5.journal/seg-NNNNNNNN.h5`, each segment a small complete HDF5
file written under a temporary name and renamed into place, so a SIGKILL leaves either the
whole segment or none of it. Readers merge main file + segments; `consolidate` folds the
segments into a new main file. docs/bundle-format.md explains why (HDF5 is not crash-safe
when a writer dies mid-update; SWMR cannot add new objects while writing).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py

from epochscope.archives.format import LIBVER, write_deferred

_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.h5$")


def journal_dir(path: Path) -> Path:
    """Where the segments of bundle `path` live."""
    return path.with_name(path.name + ".journal")


def lock_path(path: Path) -> Path:
    """The lock file a writer holds (flock, released by the kernel even on SIGKILL)."""
    return path.with_name(path.name + ".lock")


def remove_stale_tmp(path: Path) -> None:
    """Delete temporary files a killed writer left in the journal (they were never committed)."""
    jdir = journal_dir(path)
    if jdir.is_dir():
        for entry in jdir.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)


def list_segments(path: Path) -> list[tuple[int, Path]]:
    """Committed segments of bundle `path` in order; temporary files are ignored."""
    jdir = journal_dir(path)
    if not jdir.is_dir():
        return []
    found = []
    for entry in jdir.iterdir():
        match = _SEGMENT_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(target: Path) -> Path:
    """The temporary name `target` is written under; readers ignore such files."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def commit(tmp: Path, target: Path, *, durable: bool = True) -> None:
    """fsync `tmp`, rename it to `target` (atomic), fsync the directory.

    Without `durable` the fsyncs are skipped: the rename still makes a killed process leave
    whole files only, but a power loss may lose (not corrupt) the newest segments.
    """
    if durable:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, target)
    if durable:
        fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_h5(target: Path, *, committer: Committer | None = None, durable: bool = True,
              deferred: list | None = None) -> Iterator[h5py.File]:
    """Write an HDF5 file that appears at `target` complete or not at all.

    With a `committer`, the fsync and rename happen on its background thread (in order),
    so the caller does not wait for the disk; `Committer.wait()` makes them durable.
    `deferred`: raw writes (see `format.write_tree`) made once HDF5 has closed the file,
    before it is committed.
    """
    tmp = tmp_name(target)
    try:
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            yield f
        if deferred:
            write_deferred(tmp, deferred)
        if committer is None:
            commit(tmp, target, durable=durable)
        else:
            committer.submit(tmp, target, durable=durable)
            tmp = None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


class Committer:
    """An ordered background queue of (fsync, rename) commits.

    fsync releases the GIL, so training goes on while the disk catches up. A failure is
    re-raised on the next `submit` or `wait`, never lost.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Path, Path, bool] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="epochscope-commit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    commit(item[0], item[1], durable=item[2])
                else:
                    item[0].unlink(missing_ok=True)
            except BaseException as exc:  # noqa: BLE001 - handed to the writer thread
                self._error = exc
                item[0].unlink(missing_ok=True)
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, tmp: Path, target: Path, *, durable: bool = True) -> None:
        self._raise()
        self._queue.put((tmp, target, durable))

    def wait(self) -> None:
        """Block until every submitted segment is durable at its final name."""
        self._queue.join()
        self._raise()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()


class WriterLock:
    """An exclusive, non-blocking flock on `<bundle>.lock`: one writer per bundle."""

    def __init__(self, path: Path):
        self._path = lock_path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # The previous holder unlinks the file on release: if we locked an inode that is
            # no longer at the path, another process may lock the new one, so retry.
            try:
                same = os.stat(self._path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            os.close(self._fd)
            self._fd = None


def writer_active(path: Path) -> bool:
    """True while another process holds the writer lock of bundle `path`."""
    lp = lock_path(path)
    if not lp.exists():
        return False
    try:
        fd = os.open(lp, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
