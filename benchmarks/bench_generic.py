"""Generic-report benchmark: a bundle no pack knows, as large as the "reports for any
training run" issue names it: 50 series of 100,000 points, 10 tables of 1,000 rows and
10,000 events (with 40 series groups, parts and splits among them).

    python benchmarks/bench_generic.py [--repeat 5] [--keep DIR]

Measures, against the issue's targets:

- generation time (render_report)                             <= 10 s
- file size                                                    <= plotly.js + 15 MB
- first chart painted in headless chromium after navigation    <= 1.5 s (median of --repeat);
  also the first interactive (Plotly) chart and plotly.js alone on an empty page, measured in
  the same run (the machine is shared: compare the ratio, not only the figure)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_report import FIRST_CHART, MB, load_times

SERIES, POINTS, TABLES, ROWS, EVENTS = 50, 100_000, 10, 1_000, 10_000


def write_bundle(path: Path) -> Path:
    from epochscope.archives import BundleWriter, Segment

    rng = np.random.default_rng(0)
    steps = np.arange(POINTS, dtype=np.int64)
    t = steps / POINTS
    metrics = {}
    names = ["train_loss", "val_loss", "train_acc", "val_acc"]
    names += [f"grad_norm.layer{i}" for i in range(16)] + [f"act_mean.layer{i}" for i in range(10)]
    names += [f"signal_{i:02d}" for i in range(SERIES - len(names))]
    for k, name in enumerate(names):
        if "loss" in name:
            v = 3 * np.exp(-5 * t) + 0.02 + 0.01 * rng.standard_normal(POINTS)
        elif "acc" in name:
            v = 1 - 0.9 * np.exp(-6 * t) + 0.005 * rng.standard_normal(POINTS)
        else:
            v = 1 + k + np.sin(40 * t + k) + 0.1 * rng.standard_normal(POINTS)
        metrics[name] = (steps, v)
    kinds = ["activation_switch", "pruning", "lr_drop", "checkpoint_note", "loss_spike"]
    events = [{"epoch": int(e), "kind": kinds[i % len(kinds)], "message": f"event {i}",
               "payload": {"i": i, "size": float(rng.random())}}
              for i, e in enumerate(np.sort(rng.integers(0, POINTS, EVENTS)))]
    tables = {f"table_{j}": {"id": np.array([f"item_{j}_{i}" for i in range(ROWS)], dtype=object),
                             "generation": np.arange(ROWS) % 7, "score": rng.random(ROWS),
                             "alive": rng.random(ROWS) > 0.5} for j in range(TABLES)}
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": {"name": "generic-bench", "lr": 1e-3}},
                        session={"id": "bench", "status": "complete"},
                        metrics=metrics, events=events, tables=tables))
        w.consolidate()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="directory to keep the bundle and pages in")
    args = parser.parse_args()

    from epochscope.generator import render_report
    from epochscope.generator.html import plotly_js

    work = args.keep or Path(tempfile.mkdtemp(prefix="epochscope-bench-generic-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bundle = write_bundle(work / "generic.h5")
    print(f"bundle: {SERIES} series x {POINTS:,} points, {TABLES} tables x {ROWS:,} rows, {EVENTS:,} events; "
          f"written in {time.perf_counter() - t0:.1f} s ({bundle.stat().st_size / MB:.0f} MB)\n")

    t0 = time.perf_counter()
    report = render_report(bundle, work / "report.html")
    gen = time.perf_counter() - t0
    size = report.stat().st_size
    plotly = len(plotly_js().encode("utf-8"))
    empty = work / "plotly-only.html"
    empty.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><script>" + plotly_js()
                     + "</script><script>window.__t = performance.now();</script></body></html>")

    both = load_times(report, args.repeat, FIRST_CHART)
    first, interactive = [b[0] for b in both], [b[1] for b in both]
    alone = load_times(empty, args.repeat, "window.__t")

    print(f"{'':40s}{'value':>12s}{'target':>16s}")
    print(f"{'generation':40s}{gen:>10.2f} s{'<= 10 s':>16s}")
    print(f"{'file size':40s}{size / MB:>9.2f} MB{'<= ' + format((plotly + 15 * MB) / MB, '.2f') + ' MB':>16s}")
    print(f"{'  of which plotly.js':40s}{plotly / MB:>9.2f} MB")
    print(f"{'  data and page':40s}{(size - plotly) / MB:>9.2f} MB{'<= 15 MB':>16s}")
    print(f"{'first chart painted (median)':40s}{statistics.median(first):>10.2f} s{'<= 1.5 s':>16s}   "
          f"all: {', '.join(f'{x:.2f}' for x in first)}")
    print(f"{'first interactive chart (median)':40s}{statistics.median(interactive):>10.2f} s{'':16s}   "
          f"all: {', '.join(f'{x:.2f}' for x in interactive)}")
    print(f"{'  plotly.js alone (same machine)':40s}{statistics.median(alone):>10.2f} s{'':16s}   "
          f"the report's own share: {statistics.median(interactive) - statistics.median(alone):.2f} s")
    print(f"\npages in {work}")


if __name__ == "__main__":
    main()
