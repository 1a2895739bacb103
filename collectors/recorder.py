"""The Recorder: turns any PyTorch training loop into a run bundle in three lines.

    with epochscope.Recorder("runs/my-run.h5", config=cfg) as rec:
        rec.log(epoch, train_loss=..., test_loss=...)
        rec.checkpoint(epoch, model, optimizer)

Scalars are buffered in memory (a dict lookup and two list appends per value) and written
as one journal segment every `flush_interval` seconds, at each checkpoint and on close, so
a killed run keeps everything up to its last flush.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from epochscope import __version__
from epochscope.archives import BundleWriter, Segment
from epochscope.archives.errors import DiskFullError
from epochscope.archives.format import check_name
from epochscope.errors import EpochscopeError

__all__ = ["Recorder"]

_MAX_BUFFERED_POINTS = 1_000_000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Recorder:
    """Buffered, crash-safe writer of one run bundle.

    `resume=True` reopens an existing bundle: `resume_epoch` is its last checkpoint, and
    metrics and events after that epoch are dropped (the replay from it logs them again).
    """

    def __init__(self, path: str | os.PathLike, config: dict[str, Any] | None = None, *,
                 seeds: dict[str, int] | None = None, overwrite: bool = False, resume: bool = False,
                 flush_interval: float = 2.0, device: str | None = None,
                 consolidate_on_close: bool = True, durable: bool = True):
        self.path = Path(path)
        self.config = dict(config or {})
        self.flush_interval = float(flush_interval)
        self._consolidate_on_close = consolidate_on_close
        self._closed = False
        self._session = {"id": uuid.uuid4().hex, "started": _now(), "argv": list(sys.argv),
                         "host": socket.gethostname(), "pid": os.getpid(), "status": "running",
                         "epochscope": __version__}
        self._buffer: dict[str, tuple[list[int], list[float]]] = {}
        self._events: list[dict[str, Any]] = []
        self._points = 0
        self._last_flush = time.monotonic()
        self.resume_epoch: int | None = None
        if not resume:
            # Like every logger: "runs/my-run.h5" works without creating runs/ first.
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # durable=False skips fsync: a killed process still leaves only whole segments, but a
        # power loss may drop the newest ones (never corrupt older data).
        self._writer = BundleWriter(self.path, create=not resume, overwrite=overwrite, durable=durable)
        try:
            if resume:
                self._open_for_resume()
            else:
                env = environment(device)
                self._writer.write(Segment(
                    context={"config": self.config, "seeds": seeds or _seeds_from(self.config),
                             "environment": env},
                    session=self._session))
        except BaseException:
            self._writer.close()
            raise

    def _open_for_resume(self) -> None:
        from epochscope.collectors.checkpoints import config_differences

        with self._writer.open_reader() as b:
            stored = b.config
            if self.config:
                diffs = config_differences(stored, self.config)
                if diffs:
                    raise EpochscopeError(
                        f"cannot resume {self.path}: config differs from the stored one: {'; '.join(diffs)}")
            self.config = stored
            epochs = b.checkpoint_epochs
            self.resume_epoch = epochs[-1] if epochs else None
            # We hold the lock: a session still marked running was killed. Say so.
            killed = [{"id": s["id"], "status": "interrupted"} for s in b.sessions
                      if s.get("status") in (None, "running") and "id" in s]
        self._writer.write(Segment(session=self._session, sessions=killed or None,
                                   truncate_after=-1 if self.resume_epoch is None else self.resume_epoch))

    # -- recording ---------------------------------------------------------------------------
    def log(self, epoch: int, **scalars: float) -> None:
        """Buffer named scalars at `epoch` (any index your loop counts: epoch or step)."""
        buf = self._buffer
        for name, value in scalars.items():
            entry = buf.get(name)
            if entry is None:
                check_name(name)
                entry = buf[name] = ([], [])
            entry[0].append(epoch)
            entry[1].append(float(value))
        self._points += len(scalars)
        if self._points >= _MAX_BUFFERED_POINTS or time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def event(self, epoch: int, kind: str, message: str = "", payload: dict[str, Any] | None = None) -> None:
        """Record something that happened at `epoch` (a switch, a pruning step, an alarm...)."""
        self._events.append({"epoch": int(epoch), "kind": str(kind), "message": str(message),
                             "payload": payload or {}})

    def checkpoint(self, epoch: int, model: Any, optimizer: Any = None, *, rng: bool = True) -> None:
        """Store weights, optimizer and RNG state at `epoch`, plus the model's class and config.

        Pending metrics and events are written in the same atomic segment. It is durable
        once the next `flush` (or the next timed flush, or `close`) returns.
        """
        from epochscope.collectors.checkpoints import capture_checkpoint

        meta, tree = capture_checkpoint(model, optimizer, rng=rng)
        # The fsync happens in the background: training goes on while the disk catches up.
        self._write(checkpoints={int(epoch): (meta, tree)}, wait=False)

    def table(self, name: str, columns: dict[str, Any]) -> None:
        """Store (or replace) a small named table, e.g. the candidates of a search."""
        self._write(tables={name: {k: np.asarray(v) for k, v in columns.items()}})

    def flush(self) -> None:
        """Write buffered scalars and events now; when it returns, all so far is durable
        (checkpoints whose commit was still running in the background included)."""
        self._write()
        self._writer.sync()

    def _write(self, wait: bool = True, **extra: Any) -> None:
        if self._closed:
            raise EpochscopeError(f"recorder for {self.path} is closed")
        metrics = {name: (np.asarray(e, dtype=np.int64), np.asarray(v, dtype=np.float64))
                   for name, (e, v) in self._buffer.items() if e}
        self._writer.write(Segment(metrics=metrics, events=self._events, **extra), wait=wait)
        self._buffer = {}
        self._events = []
        self._points = 0
        self._last_flush = time.monotonic()

    def close(self, status: str = "complete") -> None:
        """Flush, mark the session ended with `status`, and consolidate into one file."""
        if self._closed:
            return
        try:
            session = dict(self._session, status=status, ended=_now())
            self._write(session=session)
            self._closed = True
            if self._consolidate_on_close:
                self._writer.consolidate()
        finally:
            self._closed = True
            self._writer.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close("complete")
            return
        status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        if issubclass(exc_type, DiskFullError):
            # Consolidating needs more room than there is: keep the journal (readable, and
            # `resume` continues it) and let the original error through. Writing the session's
            # end may fail too: then it reads as interrupted, which it is.
            self._consolidate_on_close = False
            with contextlib.suppress(EpochscopeError, OSError):
                self.close("interrupted")
            return
        if not self._closed:
            self.event(self._last_epoch(), "error", f"{exc_type.__name__}: {exc}")
        self.close(status)

    def _last_epoch(self) -> int:
        last = [e[-1] for e, _ in self._buffer.values() if e]
        return int(max(last)) if last else (self.resume_epoch or 0)


def _seeds_from(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if "seed" in str(k).lower()}


def environment(device: str | None = None) -> dict[str, Any]:
    """Everything about the machine and software a reproduction needs to know."""
    import h5py

    env: dict[str, Any] = {
        "python": sys.version.split()[0], "numpy": np.__version__, "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version, "epochscope": __version__,
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "host": socket.gethostname(), "user": _user(), "cwd": os.getcwd(), "argv": list(sys.argv),
        "started": _now(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
    env["device"] = device or "cpu"
    env["git"] = _git_state(Path.cwd())
    return env


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _git_state(cwd: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the caller's working directory, when it is a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
