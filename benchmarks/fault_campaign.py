"""The durability fault campaign of issue 18, re-runnable: kills, full disks, flipped bytes.

    python benchmarks/fault_campaign.py --kills 30 --disk-full 5 --flips 100

kill trials     a Recorder writer (checkpoint + flush every 5 epochs, close at the end) is
                SIGKILLed at a random moment (a third of them during `close`); the bundle must
                verify, hold everything flushed, and resume to the exact series.
disk-full       the same writer on a real tmpfs (`mount -t tmpfs`, needs root) that fills up:
                one error line, non-zero exit, no crash, no temporaries, a bundle that verifies,
                and a resume that completes once the tmpfs is made larger.
byte flips      a consolidated bundle with every kind of element gets a flipped bit in data,
                a flipped bit in metadata, a zeroed 4 KB page or a truncation. Counted: damage
                verify detects; damage a reader shows silently (`info` exit 0, no DAMAGED line,
                what info reads differs); damage a consolidation launders (verify passes afterwards,
                content differs). The last two must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np

from epochscope.archives import (
    ArtifactUpdate,
    BundleWriter,
    Segment,
    consolidate,
    open_bundle,
    verify_bundle,
)
from epochscope.archives.errors import BundleError
from epochscope.archives.journal import stale_temporaries

WRITER = textwrap.dedent("""
    import sys, torch
    from epochscope.collectors.recorder import Recorder
    path, epochs, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    torch.manual_seed(0)
    model = torch.nn.Linear(128, 128)
    rec = Recorder(path, config={"name": "campaign", "seed": 0}, resume=resume, flush_interval=3600)
    start = 0 if rec.resume_epoch is None else rec.resume_epoch + 1
    for e in range(start, epochs):
        rec.log(e, loss=float(e), acc=float(e) / epochs)
        if e % 5 == 0:
            rec.checkpoint(e, model)
            rec.flush()
            print("flushed", e, flush=True)
    print("closing", flush=True)
    rec.close()
    print("closed", flush=True)
""")


def _spawn(path: Path, epochs: int, resume: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(epochs), "1" if resume else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _series_ok(path: Path, upto: int | None = None) -> bool:
    with open_bundle(path) as b:
        e, v = b.series("loss")
    exact = np.array_equal(e, np.arange(len(e))) and np.array_equal(v, e.astype(float))
    return exact and (upto is None or len(e) == upto)


def kill_trials(root: Path, n: int, rng: random.Random) -> dict:
    out = {"trials": n, "verify_ok": 0, "flushed_lost": 0, "resumed_exact": 0, "stale_tmp_after_resume": 0,
           "killed_in_close": 0}
    for i in range(n):
        path = root / f"kill-{i}.h5"
        epochs = 400
        proc = _spawn(path, epochs)
        in_close = i % 3 == 0
        flushed = -1
        for line in proc.stdout:
            if line.startswith("flushed"):
                flushed = int(line.split()[1])
                if not in_close and flushed >= rng.randint(0, epochs - 10):
                    break
            if line.startswith("closing"):
                time.sleep(rng.random() * 0.05)
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out["killed_in_close"] += in_close
        report = verify_bundle(path)
        out["verify_ok"] += report.ok
        with open_bundle(path) as b:
            lost = flushed not in b.checkpoint_epochs or b.series("loss")[0][-1] < flushed
        out["flushed_lost"] += bool(lost) and flushed >= 0
        res = _spawn(path, epochs, resume=True)
        res.communicate(timeout=300)
        out["resumed_exact"] += res.returncode == 0 and _series_ok(path, epochs)
        out["stale_tmp_after_resume"] += len(stale_temporaries(path))
    return out


def disk_full_trials(root: Path, n: int, rng: random.Random) -> dict:
    out = {"trials": n, "one_line_error": 0, "nonzero_exit": 0, "crashed": 0, "debris": 0,
           "verify_ok": 0, "resumed": 0, "skipped": None}
    for i in range(n):
        mnt = root / f"fs-{i}"
        mnt.mkdir()
        size = rng.choice([3, 5, 8, 12, 20])
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}m", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            out["skipped"] = f"cannot mount tmpfs: {r.stderr.strip()}"
            return out
        try:
            path = mnt / "run.h5"
            proc = _spawn(path, 100_000)
            _, err = proc.communicate(timeout=600)
            lines = [ln for ln in err.splitlines() if ln.strip()]
            out["nonzero_exit"] += proc.returncode not in (0,)
            out["crashed"] += proc.returncode < 0 or proc.returncode >= 128
            noise = "Exception ignored" in err
            out["one_line_error"] += (not noise and bool(lines) and lines[-1].startswith(
                "epochscope.archives.errors.DiskFullError: no space left on") and "needed" in lines[-1])
            out["debris"] += len(list(mnt.rglob("*.tmp")))
            out["verify_ok"] += verify_bundle(path).ok
            subprocess.run(["mount", "-o", "remount,size=400m", str(mnt)], check=True)
            with open_bundle(path) as b:
                last = b.checkpoint_epochs[-1] if b.checkpoint_epochs else 0
            res = _spawn(path, last + 20, resume=True)
            res.communicate(timeout=300)
            out["resumed"] += res.returncode == 0 and _series_ok(path, last + 20)
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    return out


def _golden(path: Path) -> None:
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": {"name": "flip", "p": 7, "lr": 1e-3}},
                        session={"id": "s", "status": "running"}))
        for k in range(4):
            w.write(Segment(
                metrics={"test_loss": (np.arange(k * 50, (k + 1) * 50), np.linspace(3, 0, 50)),
                         "test_acc": (np.arange(k * 50, (k + 1) * 50), np.linspace(0, 1, 50))},
                events=[{"epoch": k * 50, "kind": "turn", "message": f"m{k}", "payload": {"metric": "test_acc"}}],
                checkpoints={k * 50: ({"model_config": {"d": 4}},
                                      {"model": {"W": np.random.default_rng(k).random((64, 64), np.float32)},
                                       "rng": {"s": np.arange(32, dtype=np.uint8)}})},
                artifacts={"norms": ArtifactUpdate(version="1", epochs=np.array([k * 50]),
                                                   per_epoch={"w": np.random.default_rng(k).random((1, 32, 32))},
                                                   summary={"sel": np.arange(8)}, scalars={"k": k})},
                tables={"cands": {"id": np.array([f"cand{k}-{j}" for j in range(20)]),
                                  "fit": np.linspace(0, 1, 20)}}))
        w.write(Segment(session={"id": "s", "status": "complete"}))
        w.consolidate()


def _content(path: Path, tensors: bool = True) -> str:
    """Everything a reader can return, as text (for 'did the damage change what is read');
    without `tensors`, what `info` reads (all but checkpoint tensors)."""
    with open_bundle(path, allow_damaged=True) as b:
        parts = [json.dumps(b.context, sort_keys=True), json.dumps(b.events(), sort_keys=True)]
        parts += [f"{n}:{b.series(n)[0].tolist()}:{b.series(n)[1].tolist()}" for n in b.series_names]
        for e in b.checkpoint_epochs if tensors else []:
            try:
                parts.append(f"{e}:{b.checkpoint(e).state['model']['W'].tobytes().hex()}")
            except BundleError:
                parts.append(f"{e}:refused")
        for n in b.table_names:
            try:
                parts.append(str({k: v.tolist() for k, v in b.table(n).items()}))
            except BundleError:
                parts.append("table refused")
        for n in b.artifact_names:
            a = b.artifact(n)
            parts += [str(a.per_epoch(x)[1].tolist()) for x in a.names if True]
        return "\n".join(parts)


def _data_spans(path: Path) -> list[tuple[int, int]]:
    spans = []

    def visit(_name, obj):
        if isinstance(obj, h5py.Dataset) and obj.shape != (0,):
            try:
                if obj.chunks is None:
                    off = obj.id.get_offset()
                    if off is not None:
                        spans.append((off, obj.id.get_storage_size()))
                else:
                    for i in range(obj.id.get_num_chunks()):
                        c = obj.id.get_chunk_info(i)
                        spans.append((c.byte_offset, c.size))
            except Exception:  # noqa: BLE001, S110 - strings have no contiguous offset
                pass

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return [s for s in spans if s[1] > 0]


def _damage(path: Path, kind: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    spans = _data_spans(path)
    if kind == "data bit":
        off, size = rng.choice(spans)
        data[off + rng.randrange(size)] ^= 1 << rng.randrange(8)
    elif kind == "metadata bit":
        inside = set()
        for off, size in spans:
            inside.update(range(off, off + size))
        while True:
            at = rng.randrange(len(data))
            if at not in inside:
                break
        data[at] ^= 1 << rng.randrange(8)
    elif kind == "zeroed 4 KB page":
        page = rng.randrange(len(data) // 4096)
        data[page * 4096:(page + 1) * 4096] = bytes(4096)
    else:  # truncation
        del data[rng.randrange(len(data) // 2, len(data) - 1):]
    path.write_bytes(bytes(data))


def flip_trials(root: Path, n: int, rng: random.Random) -> dict:
    from click.testing import CliRunner

    from epochscope.cli import main

    kinds = ["data bit", "metadata bit", "zeroed 4 KB page", "truncation"]
    golden = root / "golden.h5"
    _golden(golden)
    original, original_info = _content(golden), _content(golden, tensors=False)
    out = {k: {"trials": 0, "detected": 0, "harmless": 0, "shown_silently": 0, "laundered": 0,
               "info_refused": 0} for k in kinds}
    for i in range(n):
        kind = kinds[i % len(kinds)] if i % 10 else "data bit"
        path = root / f"flip-{i}.h5"
        shutil.copy(golden, path)
        _damage(path, kind, rng)
        row = out[kind]
        row["trials"] += 1
        detected = not verify_bundle(path).ok
        row["detected"] += detected
        try:
            same = _content(path) == original
        except Exception:  # noqa: BLE001 - unreadable as a whole: nothing can be shown from it
            same = False
        if not detected:
            row["harmless"] += same  # e.g. a flip in free space or padding: reads are unchanged
        try:
            info_same = _content(path, tensors=False) == original_info
        except Exception:  # noqa: BLE001
            info_same = False
        info = CliRunner().invoke(main, ["info", str(path)])
        row["info_refused"] += info.exit_code != 0
        if info.exit_code == 0 and not info_same and "DAMAGED" not in info.output:
            row["shown_silently"] += 1
        # New data arrives and the bundle is consolidated (as analyze/resume do).
        try:
            with BundleWriter(path, create=False) as w:
                w.write(Segment(metrics={"extra": (np.array([0]), np.array([1.0]))}))
            consolidate(path)
        except (BundleError, OSError):
            pass
        if detected and verify_bundle(path).ok:
            row["laundered"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--disk-full", type=int, default=5)
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="fault-campaign-"))
    try:
        results = {}
        for name, fn, n in (("byte flips", flip_trials, args.flips), ("kills", kill_trials, args.kills),
                            ("disk full (tmpfs)", disk_full_trials, args.disk_full)):
            if n:
                t = time.perf_counter()
                results[name] = fn(root, n, rng)
                print(f"{name} ({time.perf_counter() - t:.0f} s): {json.dumps(results[name])}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if os.environ.get("CAMPAIGN_JSON"):
        Path(os.environ["CAMPAIGN_JSON"]).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
