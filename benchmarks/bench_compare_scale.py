"""How a comparison page scales: 10, 100 and 1,000 runs of 3 series x 5,000 points each.

    python benchmarks/bench_compare_scale.py [--runs 10 100 1000] [--repeat 3] [--keep DIR]

The runs are generic training runs (tests/compare_generic.py: lr x width configurations,
seeds, train/val loss and val accuracy; every tenth run logs every second epoch and stops
early). For each size this prints, against the targets of the issue (1,000 runs: <= 30 s,
<= 1.5 GB, page <= plotly.js + 25 MB, first chart painted <= 2 s):

- generation time of `render_compare` in a fresh Python process (imports included) and the
  time inside it without imports;
- the CPU seconds it used, and its reader processes together (on a busy machine the wall
  time is mostly waiting: CPU time is what an idle one would need, divided among cores);
- that process' peak resident memory (ru_maxrss), and its largest reader process' (from 64
  bundles on, a pool reads them; 0 when none ran);
- the page's size, and what it adds to plotly.js;
- first chart painted in headless chromium after navigation (median of --repeat; the first
  paint is a static preview of the chart's figure, drawn before plotly.js runs) and when the
  first interactive (Plotly) chart is up.

Bundles are written once per size into the work directory and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401 - the repository root on sys.path
from bench_report import FIRST_CHART, load_times

MB = 1_000_000
POINTS = 5000

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
c0 = time.process_time()
from epochscope.generator.compare import render_compare
t1 = time.perf_counter()
bundles = json.loads(sys.argv[2])
out = render_compare(bundles, sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"total": t2 - t0, "render": t2 - t1,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "cpu": time.process_time() - c0,
                  "worker_cpu": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime}))
"""


def bundles_for(work: Path, n: int) -> list[Path]:
    from tests.compare_generic import generic_specs, write_generic

    d = work / f"runs-{n}"
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    t0 = time.perf_counter()
    wrote = 0
    for spec in generic_specs(n, epochs=POINTS):
        p = d / f"{spec.name}.h5"
        if not p.exists():
            write_generic(p, spec)
            wrote += 1
        paths.append(p)
    if wrote:
        print(f"  wrote {wrote} bundles in {time.perf_counter() - t0:.1f} s under {d}", flush=True)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work directory (bundles are reused from it)")
    args = parser.parse_args()

    from epochscope.generator.html import plotly_packed

    plotly_mb = len(plotly_packed().encode()) / MB  # as the page inlines it
    work = args.keep or Path(tempfile.mkdtemp(prefix="epochscope-bench-compare-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.runs:
        print(f"{n} runs ...", flush=True)
        paths = bundles_for(work, n)
        page = work / f"compare-{n}.html"
        got = subprocess.run([sys.executable, "-c", CHILD, str(page), json.dumps([str(p) for p in paths])],
                             check=True, capture_output=True, text=True)
        gen = json.loads(got.stdout.strip().splitlines()[-1])
        times = load_times(page, args.repeat, FIRST_CHART)
        first = statistics.median(t[0] for t in times)
        inter = statistics.median(t[1] for t in times)
        size = page.stat().st_size / MB
        rows.append((n, gen["total"], gen["cpu"], gen["worker_cpu"], gen["maxrss_mb"], gen["worker_mb"], size,
                     size - plotly_mb, first, inter))
        print(f"  {gen['total']:.1f} s (CPU {gen['cpu']:.1f} s + readers {gen['worker_cpu']:.1f} s), "
              f"{gen['maxrss_mb']:.0f} MB peak (reader {gen['worker_mb']:.0f} MB), "
              f"{size:.1f} MB page, first chart "
              f"{first:.2f} s (runs: {', '.join(f'{t[0]:.2f}' for t in times)})", flush=True)
    print()
    print(f"plotly.js (inlined in every page, deflated): {plotly_mb:.2f} MB; {POINTS} points x 3 series per run")
    head = ("runs", "generation", "CPU main", "CPU readers", "peak RSS", "reader RSS", "page", "page - plotly",
            "first chart", "interactive")
    print("".join(f"{h:>13s}" for h in head))
    for n, total, cpu, wcpu, rss, worker, size, extra, first, inter in rows:
        print(f"{n:>13d}{total:>11.1f} s{cpu:>11.1f} s{wcpu:>11.1f} s{rss:>10.0f} MB{worker:>10.0f} MB{size:>10.1f} MB"
              f"{extra:>10.1f} MB{first:>11.2f} s{inter:>11.2f} s")
    print("targets at 1,000 runs: generation <= 30 s, peak <= 1.5 GB, page - plotly <= 25 MB, first chart <= 2 s")
    print(f"machine load while measuring (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    print(f"pages: {work}")


if __name__ == "__main__":
    main()
