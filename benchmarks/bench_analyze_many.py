"""`epochscope analyze DIR` on 100 metrics-only bundles against the shell loop it replaces
(`for f in DIR/*.h5; do epochscope analyze $f; done`: one process, and its imports, per
bundle), measured in the same run on copies of the same bundles. Target (issue 12): the 100
in at most 30 s (the loop took 4 min 48 s when the issue was filed).

Bundles: tests/generic_runs.metrics_only_run, recorded with Recorder: train/test loss and
accuracy x 5,000 epochs, grokking-shaped, no checkpoints (as ingested from a tracker).
Also prints the start-up (import) time of `epochscope analyze` on one bundle.

Usage: python benchmarks/bench_analyze_many.py [--bundles 100] [--epochs 5000] [--workers N]
       [--skip-loop] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401, I001 - the repository root on sys.path

from tests.generic_runs import metrics_only_run

CLI = [sys.executable, "-m", "epochscope"]


def _run(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def shell_loop(files: list[Path]) -> float:
    """One `epochscope analyze FILE` process per bundle, as a shell loop runs them."""
    t0 = time.perf_counter()
    for f in files:
        _, proc = _run([*CLI, "analyze", "--quiet", str(f)])
        if proc.returncode:
            raise SystemExit(f"shell-loop analyze of {f} failed: {proc.stderr.strip()}")
    return time.perf_counter() - t0


def one_command(directory: Path, workers: int | None, force: bool = False) -> tuple[float, str]:
    args = [*CLI, "analyze", "--quiet", str(directory)] + (["--force"] if force else [])
    if workers:
        args += ["--workers", str(workers)]
    seconds, proc = _run(args)
    if proc.returncode:
        raise SystemExit(f"analyze {directory} failed: {proc.stderr.strip()}")
    return seconds, proc.stdout.strip().splitlines()[-1]


def import_seconds(bundle: Path) -> tuple[float, list[tuple[str, float]]]:
    """Total import time of `epochscope analyze BUNDLE` (python -X importtime) and its
    heaviest top-level imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "epochscope", "analyze",
                           "--quiet", "--force", str(bundle)], capture_output=True, text=True)
    top: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if m and not m.group(2):  # a top-level import (no indentation)
            top.append((m.group(3), int(m.group(1)) / 1e6))
    return sum(s for _, s in top), sorted(top, key=lambda t: -t[1])[:6]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=None,
                    help="also time `analyze DIR --workers N` (a local Dask cluster)")
    ap.add_argument("--skip-loop", action="store_true", help="do not time the shell loop")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_analyze_many_", dir=args.dir))
    try:
        src = work / "src"
        t0 = time.perf_counter()
        for i in range(args.bundles):
            metrics_only_run(src / f"group{i % 4}" / f"run{i:03d}.h5", seed=i, epochs=args.epochs)
        print(f"{args.bundles} metrics-only bundles (4 series x {args.epochs} epochs, no checkpoints) "
              f"written in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f}, "
              f"{os.cpu_count()} cores")
        loop_dir, one_dir, dask_dir = work / "loop", work / "one", work / "dask"
        for d in (loop_dir, one_dir) + ((dask_dir,) if args.workers else ()):
            shutil.copytree(src, d)
        t_imp, heavy = import_seconds(next(src.rglob("*.h5")))
        print(f"start-up of `epochscope analyze BUNDLE`: imports {t_imp:.2f} s; heaviest: "
              + ", ".join(f"{n} {s:.2f} s" for n, s in heavy))
        t_one, summary = one_command(one_dir, None)
        print(f"analyze DIR (one process):   {t_one:7.1f} s  ({1000 * t_one / args.bundles:.0f} ms per bundle) "
              f"[target <= 30 s for 100]  -- {summary}")
        if args.workers:
            t_dask, summary = one_command(dask_dir, args.workers)
            print(f"analyze DIR --workers {args.workers}:     {t_dask:7.1f} s  -- {summary}")
        if not args.skip_loop:
            t_loop = shell_loop(sorted(loop_dir.rglob("*.h5")))
            print(f"shell loop ({args.bundles} processes): {t_loop:7.1f} s  ({t_loop / args.bundles:.2f} s per bundle)")
            # again after the loop (--force: the same work), the load may have changed meanwhile
            t_again, _ = one_command(one_dir, None, force=True)
            print(f"analyze DIR --force (again): {t_again:7.1f} s")
            print(f"ratio shell loop / analyze DIR: x{t_loop / t_one:.1f} (before the loop), "
                  f"x{t_loop / t_again:.1f} (after)"
                  + (f"; / --workers {args.workers}: x{t_loop / t_dask:.1f}" if args.workers else ""))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
