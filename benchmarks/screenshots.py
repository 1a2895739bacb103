"""PNG screenshots of reports, for looking at the pages without a desktop browser.

    python benchmarks/screenshots.py                      # synthetic nanda-sized run
    python benchmarks/screenshots.py REPORT.html OUTDIR   # an existing report
    python benchmarks/screenshots.py --generic OUTDIR     # the three runs of the generic report:
        OUTDIR/a-modular/ (a modular-addition run), OUTDIR/b-recorder/ (a plain PyTorch loop
        recorded with Recorder), OUTDIR/c-tensorboard/ (an ingested 30-tag TensorBoard log)

Writes OUTDIR/top.png (header and first group), one PNG per group (scrolled into view, its
charts drawn), help.png (a help text opened), closed.png (sidebar collapsed) and full.png
(the whole page, every chart forced to draw). Uses the Debian chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def wait_drawn(page, selector: str, timeout: float = 20.0) -> None:
    """Wait until every available chart matching `selector` has drawn at least once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = page.evaluate(
            """(sel) => Array.from(document.querySelectorAll(sel))
                 .filter(c => c.dataset.status === 'ok' && !c.dataset.drawn).length""", selector)
        if not pending:
            return
        time.sleep(0.1)


def shoot(report: Path, outdir: Path, width: int = 1440, height: int = 1000) -> list[Path]:
    from playwright.sync_api import sync_playwright

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.resolve().as_uri())
        page.wait_for_function("window.ES && ES.app && ES.app.stats.firstInteractive !== null", timeout=20000)
        time.sleep(0.5)
        written.append(outdir / "top.png")
        page.screenshot(path=str(written[-1]))
        for gid in page.evaluate("Array.from(document.querySelectorAll('.group')).map(g => g.id)"):
            page.evaluate("(id) => document.getElementById(id).scrollIntoView({block: 'start'})", gid)
            time.sleep(0.3)
            wait_drawn(page, f"#{gid} .chart-card")
            time.sleep(0.4)
            written.append(outdir / f"{gid}.png")
            page.screenshot(path=str(written[-1]))
        page.evaluate("window.scrollTo(0, 0)")
        first_help = page.query_selector(".help-btn")
        if first_help:
            first_help.click()
            time.sleep(0.2)
            written.append(outdir / "help.png")
            page.screenshot(path=str(written[-1]))
            first_help.click()
        page.click("#sb-toggle")
        time.sleep(0.5)
        written.append(outdir / "closed.png")
        page.screenshot(path=str(written[-1]))
        page.click("#sb-toggle")
        time.sleep(0.3)
        written.append(outdir / "full.png")
        page.set_viewport_size({"width": width, "height": 12000})
        time.sleep(0.5)
        wait_drawn(page, ".chart-card")
        time.sleep(0.5)
        page.screenshot(path=str(written[-1]), full_page=True)
        browser.close()
    if errors:
        print("console errors:", *errors, sep="\n  ")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, help="report HTML (default: render a synthetic run)")
    parser.add_argument("outdir", nargs="?", type=Path, default=Path("screenshots"))
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--generic", type=Path, metavar="OUTDIR",
                        help="screenshot the generic report's three runs (tests/generic_runs.py) into OUTDIR")
    args = parser.parse_args()
    if args.generic:
        import _paths  # noqa: F401 - the repository root on sys.path

        from epochscope.generator import render_report
        from tests.generic_runs import modular_run, plain_loop_run, tensorboard_run

        tmp = Path(tempfile.mkdtemp(prefix="epochscope-generic-"))
        runs = {"a-modular": modular_run(tmp / "a.h5"), "b-recorder": plain_loop_run(tmp / "b.h5"),
                "c-tensorboard": tensorboard_run(tmp / "tb" / "c-run", tmp / "c.h5")}
        for name, bundle in runs.items():
            report = render_report(bundle, tmp / f"{name}.html")
            for path in shoot(report, args.generic / name, width=args.width):
                print(path)
        return
    report = args.report
    if report is None:
        import _paths  # noqa: F401 - the repository root on sys.path

        from epochscope.generator import render_report
        from tests.synthetic import SyntheticRun, write_synthetic_bundle

        tmp = Path(tempfile.mkdtemp(prefix="epochscope-shots-"))
        bundle = write_synthetic_bundle(tmp / "synthetic.h5", SyntheticRun(name="nanda2023-synthetic"))
        report = render_report(bundle, tmp / "report.html")
    for path in shoot(report, args.outdir, width=args.width):
        print(path)


if __name__ == "__main__":
    main()
