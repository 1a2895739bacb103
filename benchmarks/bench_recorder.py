"""Recorder overhead, measured against the named baselines in one run.

1. Logging 10 scalars per step for 100k steps, against the same loop doing nothing.
   Target: under 2 us per scalar.
2. Checkpointing a 1M-parameter model (+ AdamW state + RNG) 200 times, against torch.save
   of the same state to the same disk (one file per checkpoint, what users do today).
   Interleaved in blocks so machine noise hits both alike, with an untimed `sync` after
   every block so that neither side pays for the other's page-cache writeback (without it,
   back-to-back 12 MB saves are disk-bound and whoever runs second pays the first one's
   writes). The durable recorder (every segment fsynced in a background thread) is also
   compared with torch.save followed by fsync, the same guarantee. Targets: at least as fast
   as torch.save; bytes on disk no more than torch.save's.

Usage: python benchmarks/bench_recorder.py [--steps 100000] [--checkpoints 200] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from epochscope.collectors.recorder import Recorder


def bench_logging(workdir: Path, steps: int, repeats: int = 3) -> dict:
    values = [float(i) * 0.001 for i in range(10)]
    names = [f"metric_{i}" for i in range(10)]

    def baseline() -> float:
        t0 = time.perf_counter()
        sink = 0.0
        for step in range(steps):
            kw = dict(zip(names, values, strict=True))  # the caller builds the same kwargs either way
            sink += kw["metric_0"] + step
        return time.perf_counter() - t0

    def recorded(i: int) -> tuple[float, float]:
        path = workdir / f"log{i}.h5"
        rec = Recorder(path, config={"bench": "logging"})
        t0 = time.perf_counter()
        for step in range(steps):
            rec.log(step, **dict(zip(names, values, strict=True)))
        t_loop = time.perf_counter() - t0
        t1 = time.perf_counter()
        rec.close()
        return t_loop, time.perf_counter() - t1

    base, rec, close = [], [], []
    for i in range(repeats):  # interleaved
        base.append(baseline())
        loop, c = recorded(i)
        rec.append(loop)
        close.append(c)
    per_scalar = (min(rec) - min(base)) / (steps * 10)
    return {"steps": steps, "scalars": steps * 10, "baseline_s": min(base), "recorded_s": min(rec),
            "close_s": min(close), "per_scalar_us": per_scalar * 1e6,
            "ratio": min(rec) / min(base)}


def _model_and_opt() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1000, 500), torch.nn.ReLU(), torch.nn.Linear(500, 1000))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(8, 1000)).sum().backward()
    opt.step()
    return model, opt


def bench_checkpoints(workdir: Path, count: int, block: int = 10, durable: bool = True) -> dict:
    model, opt = _model_and_opt()
    n_params = sum(p.numel() for p in model.parameters())
    tdir = workdir / f"torch_save_{durable}"
    tdir.mkdir()
    path = workdir / f"ckpt_{durable}.h5"
    rec = Recorder(path, config={"bench": "checkpoints"}, consolidate_on_close=False, durable=durable)
    t_rec = t_torch = t_torch_fsync = 0.0
    per_rec: list[float] = []
    per_torch: list[float] = []

    def save(file: Path, fsync: bool) -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                         "python": random.getstate()}}
        if not fsync:
            torch.save(state, file)
            return
        with open(file, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())

    for start in range(0, count, block):
        epochs = range(start, min(count, start + block))
        for epoch in epochs:
            t0 = time.perf_counter()
            rec.checkpoint(epoch, model, opt)
            per_rec.append(time.perf_counter() - t0)
            t_rec += per_rec[-1]
        rec.flush()  # untimed: the background fsyncs finish before torch.save's turn
        os.sync()
        for epoch in epochs:
            t0 = time.perf_counter()
            save(tdir / f"ckpt_{epoch:06d}.pt", fsync=False)
            per_torch.append(time.perf_counter() - t0)
            t_torch += per_torch[-1]
        os.sync()
        if durable:
            for epoch in epochs:
                t0 = time.perf_counter()
                save(tdir / f"fsync_{epoch:06d}.pt", fsync=True)
                t_torch_fsync += time.perf_counter() - t0
            for epoch in epochs:
                (tdir / f"fsync_{epoch:06d}.pt").unlink()
            os.sync()
    t0 = time.perf_counter()
    rec.close()
    t_close = time.perf_counter() - t0
    journal_bytes = 0  # consolidated away by close (consolidate_on_close=False keeps the journal)
    jdir = path.with_name(path.name + ".journal")
    if jdir.exists():
        journal_bytes = sum(f.stat().st_size for f in jdir.iterdir())
    t0 = time.perf_counter()
    from epochscope.archives import consolidate

    consolidate(path)
    t_consolidate = time.perf_counter() - t0
    torch_bytes = sum(f.stat().st_size for f in tdir.iterdir())
    bundle_bytes = path.stat().st_size
    # Leave a clean disk for whatever runs next (2.4 GB of writeback would skew it).
    shutil.rmtree(tdir)
    path.unlink()
    os.sync()
    return {"params": n_params, "checkpoints": count,
            "recorder_s": t_rec, "torch_save_s": t_torch, "speed_ratio": t_torch / t_rec,
            "torch_save_fsync_s": t_torch_fsync, "fsync_ratio": t_torch_fsync / t_rec,
            "recorder_median_ms": 1e3 * float(np.median(per_rec)),
            "torch_median_ms": 1e3 * float(np.median(per_torch)),
            "median_ratio": float(np.median(per_torch) / np.median(per_rec)),
            "close_s": t_close, "consolidate_s": t_consolidate,
            "journal_bytes": journal_bytes, "bundle_bytes": bundle_bytes,
            "torch_bytes": torch_bytes, "bytes_ratio": bundle_bytes / torch_bytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--checkpoints", type=int, default=200)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="bench_recorder_", dir=args.dir))
    try:
        log = bench_logging(workdir, args.steps)
        print(f"logging: {log['scalars']:,} scalars ({log['steps']:,} steps x 10): "
              f"baseline {log['baseline_s']:.3f} s, recorded {log['recorded_s']:.3f} s "
              f"(x{log['ratio']:.2f}) -> {log['per_scalar_us']:.3f} us per scalar "
              f"[target < 2 us]; close+consolidate {log['close_s']:.3f} s")
        ck = bench_checkpoints(workdir, args.checkpoints)
        print(f"checkpoints: {ck['checkpoints']} x {ck['params']:,} params + AdamW + RNG: "
              f"recorder {ck['recorder_s']:.2f} s, torch.save {ck['torch_save_s']:.2f} s -> "
              f"recorder is x{ck['speed_ratio']:.2f} the speed of torch.save [target >= 1] "
              f"(durable: every segment fsynced; torch.save does not fsync)")
        print(f"  per checkpoint (median, robust to writeback stalls): recorder {ck['recorder_median_ms']:.1f} ms, "
              f"torch.save {ck['torch_median_ms']:.1f} ms -> x{ck['median_ratio']:.2f}")
        print(f"  same guarantee: torch.save + fsync {ck['torch_save_fsync_s']:.2f} s -> recorder is "
              f"x{ck['fsync_ratio']:.2f} the speed")
        nd = bench_checkpoints(workdir, args.checkpoints, durable=False)
        print(f"  durable=False (atomic rename, no fsync, like torch.save): recorder "
              f"{nd['recorder_s']:.2f} s, torch.save {nd['torch_save_s']:.2f} s -> x{nd['speed_ratio']:.2f}; "
              f"median per checkpoint {nd['recorder_median_ms']:.1f} ms vs {nd['torch_median_ms']:.1f} ms "
              f"-> x{nd['median_ratio']:.2f}")
        print(f"  journal {ck['journal_bytes'] / 1e6:.1f} MB; consolidation into one file "
              f"{ck['consolidate_s']:.2f} s (once, at close)")
        print(f"  bytes on disk: bundle {ck['bundle_bytes'] / 1e6:.1f} MB, torch.save "
              f"{ck['torch_bytes'] / 1e6:.1f} MB -> x{ck['bytes_ratio']:.3f} [target <= 1]")
        print(f"  disk: {workdir} ({os.statvfs(workdir).f_bsize}-byte blocks)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
