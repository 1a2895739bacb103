"""Reading a running or interrupted bundle with a long journal: segments vs packs.

Writes the same run twice in one process, as a live Recorder would leave it (one segment per
timed flush, a checkpoint every `--every` segments, never consolidated): once with the 1.1
behaviour (`compaction=False`: every segment stays a file) and once with background packing
(the default). Then times what `info`, `report` and `verify` start with on both, and on the
same data consolidated (the baseline the issue names), and states the write amplification
packing costs (bytes written to packs / bytes of the segments).

    python benchmarks/bench_journal.py --segments 10000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from epochscope.archives import (
    BundleWriter,
    Segment,
    compaction,
    consolidate,
    open_bundle,
    verify_bundle,
)
from epochscope.archives.journal import list_journal


def write_run(path: Path, segments: int, every: int, ckpt_floats: int, *, packs: bool) -> dict:
    written = {"packs": 0}
    original = compaction.write_pack

    def counting(*args, **kwargs):
        target = original(*args, **kwargs)
        written["packs"] += target.stat().st_size
        return target

    compaction.write_pack = counting
    seg_bytes = 0
    t0 = time.perf_counter()
    try:
        with BundleWriter(path, create=True, overwrite=True, durable=False, compaction=packs) as w:
            w.write(Segment(context={"config": {"name": "long-run", "p": 113}},
                            session={"id": "s1", "status": "running"}))
            for i in range(segments):
                metrics = {name: (np.array([i]), np.array([float(i) * k]))
                           for k, name in enumerate(("train_loss", "test_loss"))}
                ck = {}
                if i % every == 0:
                    ck = {i: ({"model_config": {"d": 1}}, {"model": {"W": np.full(ckpt_floats, i, np.float32)}})}
                w.write(Segment(metrics=metrics, checkpoints=ck), wait=not ck)
                try:  # (a checkpoint segment may still be committing in the background)
                    seg_bytes += (path.with_name(path.name + ".journal") / f"seg-{w._seq:08d}.h5").stat().st_size
                except FileNotFoundError:
                    seg_bytes += 4 * ckpt_floats + 8192
            w.sync()
            write_s = time.perf_counter() - t0
            if w._compactor is not None:
                w._compactor.wait()  # the packs a live writer has made by now (it writes slower)
                assert w._compactor.error is None, w._compactor.error
                w._stop_compactor()
            # then the writer is killed: nothing consolidated
    finally:
        compaction.write_pack = original
    return {"write_s": write_s, "packs_bytes": written["packs"], "segments_bytes": seg_bytes}


def journal_bytes(path: Path) -> int:
    return sum(e.path.stat().st_size for e in list_journal(path))


def time_reads(path: Path, repeat: int = 3) -> dict:
    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def info() -> None:  # what `epochscope info` reads
        with open_bundle(path) as b:
            b.check()
            for name in b.series_names:
                b.series(name)
            b.checkpoint_epochs  # noqa: B018

    def last_checkpoint() -> None:
        with open_bundle(path) as b:
            b.checkpoint(b.checkpoint_epochs[-1])

    out = {"open+info": best(info), "open+last checkpoint": best(last_checkpoint)}
    t = time.perf_counter()
    assert verify_bundle(path).ok
    out["verify"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--segments", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=10, help="a checkpoint every N segments")
    ap.add_argument("--ckpt-floats", type=int, default=16_384, help="float32 values per checkpoint")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--packed-only", action="store_true",
                    help="only the packed journal (and its consolidated twin): the 1 s target at scale")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-journal-", dir=args.dir))
    try:
        plain, packed = root / "plain.h5", root / "packed.h5"
        w_packed = write_run(packed, args.segments, args.every, args.ckpt_floats, packs=True)
        if args.packed_only:
            seg_total = w_packed["segments_bytes"]
            r_packed = time_reads(packed)
            print(f"{args.segments} segments as {len(list_journal(packed))} journal files (packs): "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in r_packed.items()))
            print(f"write amplification: {w_packed['packs_bytes'] / seg_total:.2f}x extra")
            return
        w_plain = write_run(plain, args.segments, args.every, args.ckpt_floats, packs=False)
        with open_bundle(plain) as a, open_bundle(packed) as b:
            assert np.array_equal(a.series("test_loss")[1], b.series("test_loss")[1])
            assert a.checkpoint_epochs == b.checkpoint_epochs
        files_plain, files_packed = len(list_journal(plain)), len(list_journal(packed))
        seg_total = journal_bytes(plain)
        r_plain = time_reads(plain)
        r_packed = time_reads(packed)
        ref = root / "consolidated.h5"
        shutil.copytree(plain.with_name("plain.h5.journal"), ref.with_name("consolidated.h5.journal"))
        consolidate(ref)
        r_ref = time_reads(ref)
        print(f"{args.segments} segments, a checkpoint of {args.ckpt_floats * 4 / 1e3:.0f} kB every "
              f"{args.every}; journal {seg_total / 1e6:.1f} MB")
        print(f"journal files read: {files_plain} (1.1: every segment) vs {files_packed} (packs)")
        print(f"{'read':24s} {'segments':>10s} {'packs':>10s} {'consolidated':>13s} {'segments/packs':>15s}")
        for key in r_plain:
            print(f"{key:24s} {r_plain[key]:9.3f}s {r_packed[key]:9.3f}s {r_ref[key]:12.3f}s "
                  f"{r_plain[key] / r_packed[key]:14.1f}x")
        amp = w_packed["packs_bytes"] / seg_total
        print(f"writer: {w_plain['write_s']:.1f} s without packs, {w_packed['write_s']:.1f} s with "
              f"(same segments, durable=False; packing runs on a background thread)")
        print(f"write amplification: {w_packed['packs_bytes'] / 1e6:.1f} MB written to packs for "
              f"{seg_total / 1e6:.1f} MB of segments = {amp:.2f}x extra (1 + {amp:.2f} bytes written "
              f"per byte recorded; consolidation adds 1 more, as before)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
