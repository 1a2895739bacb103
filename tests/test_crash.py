"""Crash safety with real SIGKILLs: a writer killed at random points leaves a readable,
verifiable bundle holding every record it flushed, and `resume` continues it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from epochscope.archives import open_bundle, verify_bundle
from epochscope.archives.journal import journal_dir

# The child logs many points, flushing every few steps and printing what it flushed;
# every 25 steps it checkpoints; at the end it closes (consolidates) the bundle.
CHILD = textwrap.dedent("""
    import sys, torch
    from epochscope.collectors.recorder import Recorder
    path, steps, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 64)
    rec = Recorder(path, config={"name": "crash", "seed": 0}, resume=resume, flush_interval=3600)
    start = 0 if rec.resume_epoch is None or not resume else rec.resume_epoch + 1
    print("start", start, flush=True)
    for i in range(start, steps):
        rec.log(i, a=float(i), b=float(i) * 0.5, c=float(-i))
        if i % 25 == 0:
            rec.checkpoint(i, model)
            print("ckpt", i, flush=True)
        elif i % 5 == 4:
            rec.flush()
            print("flushed", i, flush=True)
    print("closing", flush=True)
    rec.close()
    print("closed", flush=True)
""")


def _spawn(path, steps, resume=False):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(steps), "1" if resume else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_after(proc, lines: int) -> int:
    """Read `lines` progress lines, SIGKILL, return the last epoch known to be committed."""
    committed = -1
    for _ in range(lines):
        line = proc.stdout.readline()
        if not line:
            break
        kind, *rest = line.split()
        if kind == "flushed":  # a checkpoint is durable only once the next flush returns
            committed = int(rest[0])
    # Let the child run on a random sliver of time so the kill lands mid-write sometimes.
    time.sleep(random.random() * 0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return committed


def _assert_prefix_intact(path, committed: int) -> np.ndarray:
    report = verify_bundle(path)
    assert report.ok, report.problems
    with open_bundle(path) as b:
        epochs, a = b.series("a")
        _, c = b.series("c")
    assert epochs[-1] >= committed
    # Every record up to what was flushed is there, once, in order, with its exact value.
    np.testing.assert_array_equal(epochs, np.arange(len(epochs)))
    np.testing.assert_array_equal(a, epochs.astype(float))
    np.testing.assert_array_equal(c, -epochs.astype(float))
    return epochs


@pytest.mark.parametrize("trial", range(6))
def test_sigkill_at_random_points_keeps_flushed_records(tmp_path, trial):
    random.seed(trial)
    path = tmp_path / "run.h5"
    proc = _spawn(path, steps=100_000)
    committed = _kill_after(proc, lines=random.randint(3, 60))
    assert committed >= 0
    _assert_prefix_intact(path, committed)
    with open_bundle(path) as b:
        assert b.status == "interrupted"
    # No stray file h5py cannot open: every .h5 present opens.
    for f in list(tmp_path.rglob("*.h5")):
        import h5py

        h5py.File(f, "r").close()


def test_kill_during_consolidation_never_loses_or_duplicates(tmp_path):
    path = tmp_path / "run.h5"
    for trial in range(4):
        proc = _spawn(path, steps=400)
        for line in proc.stdout:
            if line.startswith("closing"):
                break
        time.sleep(trial * 0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        epochs = _assert_prefix_intact(path, 399 if trial else -1)
        assert len(epochs) == 400
        os.remove(path) if path.exists() else None
        import shutil

        shutil.rmtree(journal_dir(path), ignore_errors=True)


def test_resume_after_sigkill_continues_without_gaps(tmp_path):
    path = tmp_path / "run.h5"
    proc = _spawn(path, steps=100_000)
    committed = _kill_after(proc, lines=30)
    with open_bundle(path) as b:
        last_ckpt = b.checkpoint_epochs[-1]
    assert last_ckpt <= committed
    proc = _spawn(path, steps=last_ckpt + 60, resume=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"start {last_ckpt + 1}" in out
    epochs = _assert_prefix_intact(path, last_ckpt + 59)
    assert len(epochs) == last_ckpt + 60
    with open_bundle(path) as b:
        assert b.status == "complete"
        # The killed session is marked interrupted once the resume takes over.
        assert [s["status"] for s in b.sessions] == ["interrupted", "complete"]
        assert not b.segments  # consolidated into one file
    assert not journal_dir(path).exists()


# Checkpoint, then flush, every 5 epochs; "flushed E" is printed once flush() has returned.
FLUSH_CHILD = textwrap.dedent("""
    import sys, torch
    from epochscope.collectors.recorder import Recorder
    torch.manual_seed(0)
    model = torch.nn.Linear(256, 256)
    opt = torch.optim.AdamW(model.parameters())
    rec = Recorder(sys.argv[1], config={"name": "flush", "seed": 0}, flush_interval=3600)
    for e in range(100_000):
        rec.log(e, loss=float(e))
        if e % 5 == 0:
            rec.checkpoint(e, model, opt)
            rec.flush()
            print("flushed", e, flush=True)
""")


@pytest.mark.parametrize("trial", range(4))
def test_flush_after_checkpoint_is_durable_under_sigkill(tmp_path, trial):
    """Issue 18.1: a flush() right after checkpoint() returned before the checkpoint's
    background commit; a SIGKILL then lost the flushed checkpoint and its metrics."""
    path = tmp_path / "run.h5"
    proc = subprocess.Popen([sys.executable, "-c", FLUSH_CHILD, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    flushed = -1
    for _ in range(2 + trial * 3):
        flushed = int(proc.stdout.readline().split()[1])
    proc.send_signal(signal.SIGKILL)  # right after flush() returned: no grace time
    proc.wait()
    with open_bundle(path) as b:
        assert flushed in b.checkpoint_epochs, (flushed, b.checkpoint_epochs)
        epochs, values = b.series("loss")
    assert epochs[-1] >= flushed
    np.testing.assert_array_equal(epochs, np.arange(len(epochs)))
