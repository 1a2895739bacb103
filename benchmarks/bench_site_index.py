"""The site index of 1,000 runs in headless chromium (network blocked): time from each
keystroke's input event in the filter box to the rows updated and laid out, and from a click
on a column header to the rows re-sorted. Target (issue 12): within 100 ms per keystroke.

The runs are real (tiny) bundles, indexed by the catalog and rendered by the site builder's
index renderer, as `epochscope build` writes index.html (the runs' reports are not built:
only the index is measured). Timing is taken in the page (tests/site_index.py): `layout`
is input event -> handler done -> rows' layout forced; `frame` adds the wait for the next
frame (requestAnimationFrame + a task), so it includes paint and up to one vsync interval.

Usage: python benchmarks/bench_site_index.py [--runs 1000] [--rounds 2] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401, I001 - the repository root on sys.path
import numpy as np

from epochscope.archives import BundleWriter, Segment
from epochscope.generator.catalog import Catalog
from epochscope.generator.site import _render_index
from tests.browser_helpers import launch
from tests.site_index import catalog_rows, open_index

QUERIES = ("p97_model_seed1", "failed", "sweep03/p5")
SORTS = ("name", "turn_epoch", "final_test_loss", "p", "status", "sweep")


def write_bundles(root: Path, n: int) -> None:
    """`n` small bundles: the config, loss/accuracy curves of 60 epochs, a final status."""
    for row in catalog_rows(n):
        e = np.arange(60)
        rng = np.random.default_rng(len(row["path"]) + row["model_seed"])
        metrics = {"train_loss": (e, 4 * np.exp(-e / 8) + rng.random(60) * 1e-3),
                   "test_loss": (e, 4 * np.exp(-np.maximum(e - 30, 0) / 6) + rng.random(60) * 1e-3),
                   "test_acc": (e, np.clip((e - 30) / 20, 0, 1))}
        config = {"name": row["name"], "p": row["p"], "model_seed": row["model_seed"], "data_seed": 598}
        (root / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        with BundleWriter(root / row["path"], create=True, overwrite=True) as w:
            w.write(Segment(context={"config": config}, metrics=metrics,
                            session={"id": "s", "status": row["status"]}))
            w.consolidate()


def matching(opened) -> int:
    """Runs the filter lets through (an index.js without ES.index: the rows not hidden)."""
    return opened.page.evaluate("window.ES && ES.index ? ES.index.shown().length :"
                                " document.querySelectorAll('#rows tr:not([hidden])').length")


def _stats(values: list[float]) -> str:
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return (f"median {statistics.median(values):6.1f} ms, p90 {p90:6.1f} ms, max {max(values):6.1f} ms "
            f"(n={len(values)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2, help="times every query and sort is repeated")
    ap.add_argument("--synthetic-rows", action="store_true",
                    help="skip the bundles: render catalog-shaped rows (tests/site_index.py), quicker")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_site_index_", dir=args.dir))
    try:
        t0 = time.perf_counter()
        if args.synthetic_rows:
            rows = catalog_rows(args.runs)
        else:
            write_bundles(work / "runs", args.runs)
            with Catalog(work / "runs") as catalog:
                catalog.scan()
                rows = catalog.runs(order_by="sweep, path")
        t_scan = time.perf_counter() - t0
        t0 = time.perf_counter()
        html = _render_index(rows, {}, {}, work / "site")
        t_render = time.perf_counter() - t0
        index = work / "site" / "index.html"
        index.parent.mkdir(parents=True)
        index.write_text(html, encoding="utf-8")
        made = "synthetic catalog rows" if args.synthetic_rows else "bundles written and catalogued"
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{len(rows)} runs: {made} in {t_scan:.1f} s; index rendered in "
              f"{1000 * t_render:.0f} ms, {len(html) / 1e6:.2f} MB")
        from playwright.sync_api import sync_playwright

        keys: dict[str, list[float]] = {"layout": [], "frame": []}
        slowest: list[tuple[float, str]] = []
        sorts: dict[str, list[float]] = {"layout": [], "frame": []}
        with sync_playwright() as pw:
            browser = launch(pw)
            t0 = time.perf_counter()
            opened = open_index(browser, index)
            print(f"page open (to rows present): {time.perf_counter() - t0:.2f} s")
            box = opened.page.locator("#filter")
            for _ in range(args.rounds):
                for query in QUERIES:
                    box.click()
                    for ch in query:  # narrowing, one keystroke at a time
                        t = opened.timed(lambda ch=ch: opened.page.keyboard.type(ch))
                        slowest.append((t["layout"], repr(opened.page.input_value("#filter"))))
                        keys["layout"].append(t["layout"])
                        keys["frame"].append(t["frame"])
                    shown = matching(opened)
                    for _ch in query:  # widening again
                        t = opened.timed(lambda: opened.page.keyboard.press("Backspace"))
                        slowest.append((t["layout"], repr(opened.page.input_value("#filter")) + " (backspace)"))
                        keys["layout"].append(t["layout"])
                        keys["frame"].append(t["frame"])
                    print(f"  query {query!r}: {shown} of {len(rows)} rows shown")
                for key in SORTS:
                    for _click in range(2):  # ascending, then descending
                        t = opened.timed(lambda key=key: opened.page.click(f"th[data-key={key}]"))
                        sorts["layout"].append(t["layout"])
                        sorts["frame"].append(t["frame"])
            assert matching(opened) == len(rows)
            browser.close()
        assert not opened.blocked and not opened.errors, (opened.blocked, opened.errors)
        print(f"per keystroke, input -> rows laid out: {_stats(keys['layout'])} [target <= 100 ms]")
        print(f"per keystroke, to the next frame:      {_stats(keys['frame'])}")
        print("  slowest keystrokes: " + ", ".join(f"{q} {ms:.0f} ms" for ms, q in sorted(slowest, reverse=True)[:4]))
        print(f"per sort click, click -> rows laid out: {_stats(sorts['layout'])}")
        print(f"per sort click, to the next frame:      {_stats(sorts['frame'])}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
