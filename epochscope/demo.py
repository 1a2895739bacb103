"""`epochscope demo`: the whole pipeline on a small sweep, from nothing to a static site."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from epochscope.errors import EpochscopeError

__all__ = ["DEMO_SWEEP", "run_demo"]

# Seeds and primes whose grokking delay was verified in benchmarks/DEMO_TUNING.md.
DEMO_SWEEP = {
    "name": "demo",
    "preset": "demo",
    "variants": [
        {"p": 59, "data_seed": 0, "model_seed": 0},
        {"p": 59, "data_seed": 1, "model_seed": 1},
        {"p": 61, "data_seed": 0, "model_seed": 0},
    ],
}


def run_demo(output: str | Path = "site", runs_dir: str | Path = "runs", *, workers: int | None = None,
             echo: Callable[[str], None] = print) -> Path:
    """Train and analyse the demo sweep on Dask, build the site; return site/index.html."""
    from epochscope.collectors.sweep import load_spec, run_sweep
    from epochscope.generator.site import build_site

    t0 = time.perf_counter()
    spec = load_spec(DEMO_SWEEP)
    n = len(spec.variants())
    echo(f"[1/2] training and analysing {n} variants of the demo preset on a local Dask cluster "
         f"(about a minute each; bundles in {Path(runs_dir) / spec.name})")

    def update(entry: dict) -> None:
        secs = entry.get("seconds")
        echo(f"      {entry['name']}: {entry['status']}" + (f" in {secs:.0f} s" if secs else "")
             + (f" ({entry['error']})" if entry.get("error") else ""))

    result = run_sweep(spec, runs_dir, workers=workers, analyze=True, on_update=update)
    for entry in result.variants:
        if entry.get("skipped"):
            echo(f"      {entry['name']}: already done, reused")
    if result.failed:
        names = ", ".join(v["name"] for v in result.failed)
        raise EpochscopeError(f"demo: variant(s) failed: {names}; see {result.manifest}")
    from epochscope.collectors.analysis.shared_basis import store_site_bases

    store_site_bases(runs_dir, note=lambda line: echo(f"warning: {line}"))
    echo(f"[2/2] building the site in {output}")
    site = build_site(runs_dir, output)
    echo(f"done in {time.perf_counter() - t0:.0f} s: {len(site.rendered)} page(s) written")
    return site.index
