"""Comparison benchmark: 12 variants shaped like the `demo` preset (p = 53/59/61, d_model 32,
d_mlp 128, 4 heads, 3000 epochs, 70 analysed checkpoints with model weights, one planted
anomalous variant) rendered as one comparison page.

    python benchmarks/bench_compare.py [--variants 12] [--repeat 5] [--keep DIR]

The bundles are synthetic (tests/compare_synthetic.py: the analyzers' artifact shapes,
checkpoints whose weights move along shared directions so each p gets a shared PCA basis).
Measures, against the targets of the comparison issue:

- generation time (render_compare, plotly.js inlined)            <= 15 s
- first chart painted in headless chromium after navigation      <= 2 s (median of --repeat)

The first chart on screen is a static preview of its figure, drawn before plotly.js starts;
the benchmark also prints when the first interactive chart is painted and the floor under that
(a page with nothing but the same inlined plotly.js: parsing it takes most of the time). It
also prints where the generation time goes (reading the variants, the shared PCA bases,
writing the page), the page size, when the summary table is first painted, and the same
page with plotly.js shared (as `epochscope build` writes it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_report import FIRST_CHART, load_times  # same launch-and-measure as the run report

MB = 1_000_000
DEMO = dict(d_model=32, d_mlp=128, n_heads=4, epochs=3000, analysed=70)


def write_variants(directory: Path, n: int) -> list[Path]:
    """`n` demo-shaped variants over p = 59, 61, 53 and seeds 0-3; variant 5 is anomalous."""
    import _paths  # noqa: F401 - the repository root on sys.path

    from tests.compare_synthetic import sweep_specs, write_sweep

    specs = sweep_specs(n, primes=(59, 61, 53), seeds=(0, 1, 2, 3), anomalous=5, shape=DEMO)
    return write_sweep(directory, specs, weights=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="directory to keep the bundles and pages in")
    args = parser.parse_args()

    from epochscope.generator.compare import build_comparison, render_compare

    work = args.keep or Path(tempfile.mkdtemp(prefix="epochscope-bench-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = write_variants(work / "runs", args.variants)
    print(f"wrote {len(paths)} synthetic bundles in {time.perf_counter() - t0:.1f} s "
          f"({sum(p.stat().st_size for p in paths) / MB:.1f} MB) under {work / 'runs'}")

    # The shared PCA bases are fitted on the analysis side and stored in the bundles (what
    # `epochscope compare` does before it renders); the page only reads them.
    from epochscope.collectors.analysis.shared_basis import store_shared_bases

    t0 = time.perf_counter()
    store_shared_bases(paths)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = render_compare(paths, work / "compare.html")
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    render_compare(paths, work / "compare-2.html")
    gen_warm = time.perf_counter() - t0
    same = page.read_bytes() == (work / "compare-2.html").read_bytes()

    import epochscope.generator.compare.page as compare_mod

    t0 = time.perf_counter()
    cmp = build_comparison(paths)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    bases = compare_mod._shared_bases(cmp.variants, cmp.labels, [])[0]
    shared = time.perf_counter() - t0
    shared_page = render_compare(paths, work / "site" / "compare" / "all.html", shared_assets=work / "site" / "assets")

    both = load_times(page, args.repeat, FIRST_CHART)
    first, interactive = [b[0] for b in both], [b[1] for b in both]
    table = load_times(page, args.repeat, "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
    first_shared = [b[0] for b in load_times(shared_page, args.repeat, FIRST_CHART)]
    # The floor: a page holding nothing but the same inlined plotly.js (parse + run + paint).
    from epochscope.generator.html import plotly_js

    floor_page = work / "plotly-only.html"
    floor_page.write_text("<!DOCTYPE html><html><body><script>" + plotly_js() + "</script><script>"
                          "requestAnimationFrame(() => requestAnimationFrame(() => { window.__t = performance.now(); }))"
                          "</script></body></html>", encoding="utf-8")
    floor = load_times(floor_page, args.repeat, "window.__t")

    size = page.stat().st_size
    flagged = max(cmp.rows, key=lambda r: r.flags)
    print()
    print(f"{'':40s}{'value':>12s}{'target':>12s}")
    print(f"{'generation (first, incl. imports)':40s}{gen:>10.2f} s{'<= 15 s':>12s}")
    print(f"{'generation (again)':40s}{gen_warm:>10.2f} s")
    print(f"{'  of which reading + charts + bases':40s}{build:>10.2f} s")
    print(f"{'shared PCA bases fitted and stored':40s}{fit:>10.2f} s   (analysis side, before rendering)")
    print(f"{'  shared PCA bases read (timed alone)':40s}{shared:>10.2f} s   ({len(bases)} bases)")
    print(f"{'page size (plotly.js inlined)':40s}{size / MB:>9.2f} MB")
    print(f"{'page size (plotly.js shared)':40s}{shared_page.stat().st_size / MB:>9.2f} MB")
    print(f"{'first chart painted (median)':40s}{statistics.median(first):>10.2f} s{'<= 2 s':>12s}"
          f"   runs: {', '.join(f'{x:.2f}' for x in first)}")
    print(f"{'  (a preview, before plotly.js runs)':40s}")
    print(f"{'first interactive chart (median)':40s}{statistics.median(interactive):>10.2f} s"
          f"   runs: {', '.join(f'{x:.2f}' for x in interactive)}")
    print(f"{'  plotly.js alone (floor, median)':40s}{statistics.median(floor):>10.2f} s"
          f"   runs: {', '.join(f'{x:.2f}' for x in floor)}")
    print(f"{'summary table painted (FCP, median)':40s}{statistics.median(table):>10.2f} s")
    print(f"{'first chart, plotly.js shared (median)':40s}{statistics.median(first_shared):>10.2f} s")
    print(f"{'byte-identical on re-render':40s}{str(same):>12s}")
    print(f"{'variant flagged most':40s}{flagged.label:>12s}   ({flagged.flags} highlighted values)")
    print(f"\npages: {page}  {shared_page}")


if __name__ == "__main__":
    main()
