"""Site build of 12 demo-shaped variants: full build, no-change rebuild, one-bundle-changed
rebuild, measured in one run. Target: the no-change rebuild at least 20x faster than the
full build. Bundles are synthetic (tests/compare_synthetic.py): demo preset shape
(p 53/59/61, d_model 32, 3000 epochs, 70 analysed checkpoints).

Usage: python benchmarks/bench_site.py [--variants 12] [--dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401, I001 - the repository root on sys.path

from epochscope.generator.site import build_site
from tests.compare_synthetic import sweep_specs, write_sweep, write_variant

DEMO_SHAPE = {"d_model": 32, "d_mlp": 128, "n_heads": 4, "epochs": 3000, "analysed": 70, "map_neurons": 8}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=int, default=12)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_site_", dir=args.dir))
    try:
        runs = work / "runs" / "demo"
        specs = sweep_specs(args.variants, primes=(59, 61, 53), seeds=(0, 1, 2, 3), anomalous=5,
                            shape=DEMO_SHAPE)
        paths = write_sweep(runs, specs, weights=True)
        site = work / "site"
        t0 = time.perf_counter()
        full = build_site(work / "runs", site)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = build_site(work / "runs", site)
        t_again = time.perf_counter() - t0
        changed = dataclasses.replace(specs[0], turn_frac=specs[0].turn_frac + 0.05)
        write_variant(paths[0], changed, weights=True)
        t0 = time.perf_counter()
        one = build_site(work / "runs", site)
        t_one = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
        print(f"site of {args.variants} variants: {len(full.rendered)} pages, {size / 1e6:.1f} MB "
              f"(plotly.js once in assets/)")
        print(f"full build {t_full:.2f} s; no-change rebuild {t_again:.3f} s ({len(again.rendered)} pages "
              f"rendered) -> x{t_full / t_again:.0f} faster [target >= 20x]")
        print(f"one bundle changed: {t_one:.2f} s, re-rendered {sorted(one.rendered)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
