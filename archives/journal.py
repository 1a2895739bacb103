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
import errno
import fcntl
import gc
import os
import queue
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from epochscope.archives.format import LIBVER, write_deferred

_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.h5$")
# A pack: segments first..last merged into one file by the writer (see `compact`).
_PACK_RE = re.compile(r"^pack-(\d{8})-(\d{8})\.h5$")


@dataclass(frozen=True)
class JournalEntry:
    """One committed journal file: a segment (first == last) or a pack of first..last."""

    first: int
    last: int
    path: Path

    @property
    def is_pack(self) -> bool:
        return self.path.name.startswith("pack-")


def journal_dir(path: Path) -> Path:
    """Where the segments of bundle `path` live."""
    return path.with_name(path.name + ".journal")


def lock_path(path: Path) -> Path:
    """The lock file a writer holds (flock, released by the kernel even on SIGKILL)."""
    return path.with_name(path.name + ".lock")


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of bundle `path`: a consolidation's `.run.h5.<pid>.tmp` beside it and
    segments or packs in its journal that were never committed. Left behind only by a writer
    that died (or is still writing: ask `writer_active` first)."""
    found = []
    own = re.compile(rf"^\.{re.escape(path.name)}\.\d+\.tmp$")
    with contextlib.suppress(OSError):
        found += [e for e in path.parent.iterdir() if own.match(e.name)]
    jdir = journal_dir(path)
    with contextlib.suppress(OSError):
        found += [e for e in jdir.iterdir() if e.name.startswith(".") and e.name.endswith(".tmp")]
    return sorted(found)


def remove_stale_tmp(path: Path) -> list[Path]:
    """Delete the temporaries a killed writer left (call only while holding the writer lock:
    then no other writer of this bundle is alive to own them). Returns what was removed."""
    removed = stale_temporaries(path)
    for entry in removed:
        entry.unlink(missing_ok=True)
    return removed


def list_journal(path: Path) -> list[JournalEntry]:
    """Every committed journal file of bundle `path` in sequence order, packs and the
    segments they already cover included (a writer deletes those right after the pack)."""
    jdir = journal_dir(path)
    found = []
    try:
        names = os.listdir(jdir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in names:
        if match := _SEGMENT_RE.match(name):
            seq = int(match.group(1))
            found.append(JournalEntry(seq, seq, jdir / name))
        elif match := _PACK_RE.match(name):
            found.append(JournalEntry(int(match.group(1)), int(match.group(2)), jdir / name))
    return sorted(found, key=lambda e: (e.first, -e.last))


def live_entries(entries: list[JournalEntry]) -> list[JournalEntry]:
    """The entries a reader applies: those not inside a pack that covers them."""
    out: list[JournalEntry] = []
    for entry in entries:  # sorted by first, widest first
        if out and entry.first <= out[-1].last:
            continue  # inside the previous (wider) pack: already merged there
        out.append(entry)
    return out


def list_segments(path: Path) -> list[tuple[int, Path]]:
    """Committed journal files a reader applies, as (last sequence, path), in order;
    temporary files and segments already merged into a pack are left out."""
    return [(e.last, e.path) for e in live_entries(list_journal(path))]


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
        with _quiet_hdf5_close() as close_errors:
            try:
                with h5py.File(tmp, "w", libver=LIBVER) as f:
                    yield f
                    # Flush inside: a write error (a full disk) raises here, where it can be
                    # handled, instead of being printed and dropped when HDF5 closes the file.
                    f.flush()
            except OSError as exc:
                gc.collect()  # free the failed write's h5py objects while the hook is in place
                raise disk_error(exc, target) from None
        if close_errors:
            raise disk_error(close_errors[0], target)
        if deferred:
            try:
                write_deferred(tmp, deferred)
            except OSError as exc:
                raise disk_error(exc, target) from None
        if committer is None:
            try:
                commit(tmp, target, durable=durable)
            except OSError as exc:
                raise disk_error(exc, target) from None
        else:
            committer.submit(tmp, target, durable=durable)
            tmp = None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


_collecting = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


@contextlib.contextmanager
def _quiet_hdf5_close() -> Iterator[list[BaseException]]:
    """Collect the errors h5py can only print while it frees objects (`Exception ignored
    in ObjectID.__dealloc__`, e.g. a full disk while HDF5 writes its cached metadata).

    One process-wide hook, installed once, hands them to the thread collecting them
    (a writer and its background packer may both be writing)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            previous = sys.unraisablehook

            def hook(unraisable: Any) -> None:
                caught = getattr(_collecting, "errors", None)
                if caught is not None and isinstance(unraisable.exc_value, OSError):
                    caught.append(unraisable.exc_value)
                else:
                    previous(unraisable)

            sys.unraisablehook = hook
            _hook_installed = True
    outer = getattr(_collecting, "errors", None)
    _collecting.errors = caught = []
    try:
        yield caught
    finally:
        _collecting.errors = outer


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also as HDF5 words it ("errno = 28")."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "errno = 28" in text or "No space left" in text or "Disk quota exceeded" in text


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path`."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def disk_error(exc: BaseException, target: Path, needed: int | None = None) -> BaseException:
    """A DiskFullError (one line: the disk, what was needed, what is free) for a full disk;
    any other error unchanged."""
    if not is_disk_full(exc) and needed is None:
        return exc
    from epochscope.archives.errors import DiskFullError

    free = shutil.disk_usage(mount_point(target)).free
    need = f"about {_mb(needed)} needed, " if needed else ""
    return DiskFullError(
        f"no space left on {mount_point(target)} writing {target.name}: {need}{_mb(free)} free; "
        "nothing already committed was lost and no temporary file was left")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def require_space(target: Path, needed: int) -> None:
    """Refuse (DiskFullError) before writing `needed` bytes beside `target` without room."""
    try:
        free = shutil.disk_usage(mount_point(target)).free
    except OSError:
        return
    if free < needed:
        raise disk_error(OSError(errno.ENOSPC, "No space left on device"), target, needed)


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
