"""Report benchmark: a nanda2023-sized run (p=113, d_model=128, d_mlp=512, 100 analysed
checkpoints, 25 000 epochs of metrics) rendered as a report, against the naive alternative.

    python benchmarks/bench_report.py [BUNDLE] [--repeat 5] [--keep DIR] [--per-input]
    python benchmarks/bench_report.py BUNDLE --plotly-bundles [--repeat 9]
    python benchmarks/bench_report.py BUNDLE --pages --baseline-python /path/to/main/.venv/bin/python [--repeat 9]

Without BUNDLE a synthetic bundle with the analyzers' artifact shapes is written first
(tests/synthetic.py); `--per-input` adds the every-neuron atlas, per-input, graduation, neuron
dynamics and one probe artifact (their report sections, within the same size target). Measures, against the targets of the "Generator" issue:

- generation time (render_report)                         <= 10 s
- file size                                                <= plotly.js + 6 MB
- first chart painted in headless chromium after navigation <= 1.5 s (median of --repeat);
  also the first interactive (Plotly) chart, and plotly.js alone on an empty page
- epoch change: visible charts updated and painted          <= 100 ms (median per group)

and prints the same size and load time for the naive alternative: one Plotly figure per
chart written with plotly's own to_html, an animation frame per analysed epoch for every
chart that changes with the epoch (plotly.js inlined once on the page).

`--plotly-bundles` measures only the page-opening cost of the plotly.js a report ships: the
same bundle rendered with the full plotly.js (the plotly package's, the page before the
partial bundle) and with the vendored partial bundle, loaded alternately in the same
browser, against the targets first chart <= 0.5 s, interactive <= 1.0 s, file <= 3 MB.

`--pages` measures today's page (rendered by another checkout's interpreter, or given as a
file) against the page the current code renders by default, paired the same way, against
the same targets; it also counts the new page's network requests and console errors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
MB = 1_000_000


def synthetic(path: Path, per_input: bool = False) -> Path:
    import _paths  # noqa: F401 - the repository root on sys.path

    from tests.synthetic import (
        ALL_ANALYSES,
        PER_INPUT_ANALYSES,
        SyntheticRun,
        write_synthetic_bundle,
    )

    analyses = ALL_ANALYSES + PER_INPUT_ANALYSES if per_input else ALL_ANALYSES
    return write_synthetic_bundle(path, SyntheticRun(name="nanda2023-synthetic", analyses=analyses))


# ------------------------------------------------------------------------------- the naive page

def naive_page(bundle_path: Path, out: Path) -> Path:
    """One plotly figure per chart, each detail chart with one animation frame per epoch."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from epochscope.archives import open_bundle

    figs: list[go.Figure] = []
    with open_bundle(bundle_path) as b:
        def series_fig(names):
            fig = go.Figure()
            for n in names:
                if n in b.series_names:
                    e, v = b.series(n)
                    fig.add_scatter(x=e, y=v.astype(np.float32), name=n)
            return fig

        figs.append(series_fig(["train_loss", "test_loss"]).update_yaxes(type="log"))
        figs.append(series_fig(["train_acc", "test_acc"]))
        figs.append(series_fig(["grad_norm", "lr"]))
        figs.append(series_fig(["param_velocity"]))
        figs.append(series_fig([n for n in b.series_names if n.startswith("weight_norm")]))

        def per_epoch_lines(art, name):
            e, v = b.artifact(art).per_epoch(name)
            v = np.asarray(v, dtype=np.float32).reshape(len(e), -1)
            fig = go.Figure()
            for j in range(v.shape[1]):
                fig.add_scatter(x=e, y=v[:, j], mode="lines+markers")
            return fig

        have = set(b.artifact_names)
        for art, name in [("effective_dim", "participation_ratio"), ("effective_dim", "spectral_gap"),
                          ("trajectory", "velocity"), ("fourier_weights", "embed_gini"),
                          ("restricted_loss", "restricted_loss"), ("restricted_loss", "excluded_loss"),
                          ("attention", "dominant_freq"), ("turn", "log10_loss")]:
            if art in have:
                figs.append(per_epoch_lines(art, name))
        if "cusum" in have:
            cus = b.artifact("cusum")
            fig = go.Figure()
            for n in cus.names:
                e, v = cus.per_epoch(n)
                fig.add_scatter(x=e, y=v.astype(np.float32), name=n)
            figs.append(fig)
        if "coarseness" in have:
            e, v = b.artifact("coarseness").per_epoch("neuron_fft_low")
            figs.append(go.Figure(go.Scatter(x=e, y=np.median(v, 1).astype(np.float32))))
        if "trajectory" in have:
            e, pcs = b.artifact("trajectory").per_epoch("pca")
            for i, j in ((0, 1), (1, 2)):
                figs.append(go.Figure(go.Scatter(x=pcs[:, i], y=pcs[:, j], mode="lines+markers",
                                                 marker={"color": e, "colorscale": "Viridis"})))
        if "fourier_weights" in have:
            fw = b.artifact("fourier_weights")
            for n in ("embed_basis_norms", "unembed_basis_norms"):
                e, v = fw.per_epoch(n)
                figs.append(go.Figure(go.Heatmap(x=e, z=np.asarray(v, np.float32).T)))

        def animated(make_traces, epochs):
            """A figure whose data changes per epoch: one frame per epoch, plus a slider."""
            frames = [go.Frame(data=make_traces(i), name=str(int(ep))) for i, ep in enumerate(epochs)]
            fig = go.Figure(data=frames[-1].data, frames=frames)
            steps = [{"args": [[f.name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
                      "label": f.name, "method": "animate"} for f in frames]
            fig.update_layout(sliders=[{"steps": steps, "active": len(steps) - 1}])
            return fig

        if "effective_dim" in have:
            e, sv = b.artifact("effective_dim").per_epoch("singular_values")
            sv = np.asarray(sv, np.float32)
            figs.append(animated(lambda i: [go.Scatter(y=sv[i, m]) for m in range(sv.shape[1])], e))
        if "fourier_weights" in have:
            fw = b.artifact("fourier_weights")
            e, a = fw.per_epoch("embed_freq_norms")
            _, u = fw.per_epoch("unembed_freq_norms")
            figs.append(animated(lambda i: [go.Bar(y=np.asarray(a[i], np.float32)),
                                            go.Bar(y=np.asarray(u[i], np.float32))], e))
        if "neuron_freq" in have:
            e, frac = b.artifact("neuron_freq").per_epoch("frac_explained")
            figs.append(animated(lambda i: [go.Heatmap(z=np.asarray(frac[i], np.float32))], e))
        if "neuron_maps" in have:
            e, maps = b.artifact("neuron_maps").per_epoch("heatmaps")
            figs.append(animated(lambda i: [go.Heatmap(z=np.asarray(maps[i, m], np.float32), xaxis=f"x{m + 1}",
                                                       yaxis=f"y{m + 1}") for m in range(maps.shape[1])], e)
                        .set_subplots(2, (maps.shape[1] + 1) // 2))
        if "attention" in have:
            e, att = b.artifact("attention").per_epoch("to_a")
            figs.append(animated(lambda i: [go.Heatmap(z=np.asarray(att[i, h], np.float32), xaxis=f"x{h + 1}",
                                                       yaxis=f"y{h + 1}") for h in range(att.shape[1])], e)
                        .set_subplots(1, att.shape[1]))
    parts = [pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, auto_play=False)
             for i, fig in enumerate(figs)]
    out.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + "".join(parts)
                   + "</body></html>", encoding="utf-8")
    return out


# ------------------------------------------------------------------------------- measuring

# What the report and comparison pages record: the first chart on screen (a static preview of
# its figure, drawn before plotly.js starts) and the first interactive Plotly chart on screen.
FIRST_CHART = "ES.app && ES.app.stats.firstInteractive && [ES.app.stats.firstPaint, ES.app.stats.firstInteractive]"


def load_times(page_path: Path, repeat: int, ready: str) -> list:
    """Seconds from navigation start until `ready` (a JS expression giving ms, or a list of
    ms) holds, `repeat` times."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
            page.goto(page_path.resolve().as_uri(), timeout=300_000)
            page.wait_for_function(ready, timeout=300_000, polling=10)
            value = page.evaluate(f"({ready})")
            out.append([v / 1000.0 for v in value] if isinstance(value, list) else value / 1000.0)
            page.close()
        browser.close()
    return out


def epoch_changes(report: Path, groups: list[str], steps: int = 12) -> dict[str, list[float]]:
    """Per group (scrolled into view): ms from setEpoch until the visible charts are redrawn and
    painted, for `steps` different epochs."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(report.resolve().as_uri())
        page.wait_for_function("window.ES && ES.app && ES.app.stats.firstInteractive !== null")
        snap = page.evaluate("Array.from(ES.app.snap())")
        picks = [snap[int(i)] for i in np.linspace(0, len(snap) - 1, steps)]
        for gid in groups:
            # Draw every chart of the group once (a group may be taller than the screen), then
            # measure with the group's top in view.
            for card in page.evaluate("(id) => Array.from(document.querySelectorAll('#' + id + ' .chart-card'))"
                                      ".map(c => c.id)", gid):
                page.evaluate("(c) => document.getElementById(c).scrollIntoView({block: 'center'})", card)
                page.wait_for_function("(c) => { const e = document.getElementById(c); "
                                       "return e.dataset.status !== 'ok' || !!e.dataset.drawn; }", arg=card,
                                       timeout=30000)
            page.evaluate("(id) => document.getElementById(id).scrollIntoView({block: 'start'})", gid)
            page.wait_for_timeout(400)
            page.evaluate("() => Promise.all(Object.values(ES.app.charts).map(c => c.busy))")
            page.wait_for_function("""(id) => Array.from(document.querySelectorAll('#' + id + ' .chart-card'))
                .every(c => c.dataset.status !== 'ok' || c.dataset.drawn)""", arg=gid, timeout=30000)
            # warm up: decode this group's arrays once
            page.evaluate(f"ES.app.setEpoch({picks[1]})")
            page.evaluate(f"ES.app.setEpoch({picks[0]})")
            times = []
            for e in picks[1:]:
                times.append(page.evaluate("""(e) => new Promise(done => {
                    const t0 = performance.now();
                    ES.app.setEpoch(e).then(() => requestAnimationFrame(() => requestAnimationFrame(
                        () => done(performance.now() - t0))));
                })""", e))
            out[gid] = times
        browser.close()
    return out


def plotly_bundles(bundle: Path, work: Path, repeat: int, data_budget: int | None = None) -> None:
    """Full vs partial plotly.js for one bundle's report: size, first chart, interactive;
    and each plotly.js alone on an empty page (the floor)."""
    from epochscope.generator import render_report
    from epochscope.generator.html import plotly_js

    extra = {} if data_budget is None else {"data_budget": data_budget}
    pages = {kind: render_report(bundle, work / f"report-{kind}.html", plotly=kind, **extra)
             for kind in ("full", "partial")}
    floors = {}
    for kind in pages:
        floors[kind] = work / f"plotly-only-{kind}.html"
        floors[kind].write_text("<!DOCTYPE html><html><body><script>" + plotly_js(kind) + "</script><script>"
                                "requestAnimationFrame(() => requestAnimationFrame(() => { window.__t = performance.now(); }))"
                                "</script></body></html>", encoding="utf-8")
    times: dict[str, list] = {kind: [] for kind in pages}
    floor: dict[str, list] = {kind: [] for kind in pages}
    for _ in range(repeat):  # alternate, so both see the same machine load
        for kind, page in pages.items():
            times[kind] += load_times(page, 1, FIRST_CHART)
            floor[kind] += load_times(floors[kind], 1, "window.__t")
    print(f"{'plotly.js':10s}{'file':>10s}{'first chart (median)':>24s}{'interactive (median)':>24s}")
    for kind, page in pages.items():
        first = statistics.median(t[0] for t in times[kind])
        inter = statistics.median(t[1] for t in times[kind])
        print(f"{kind:10s}{page.stat().st_size / MB:>7.2f} MB{first:>22.3f} s{inter:>22.3f} s"
              f"   interactive all: {', '.join(f'{t[1]:.2f}' for t in times[kind])}")
        print(f"{'':10s}{'':10s}{'plotly.js alone:':>24s}{statistics.median(floor[kind]):>22.3f} s")
    f_full = statistics.median(t[1] for t in times["full"])
    f_part = statistics.median(t[1] for t in times["partial"])
    p_full = statistics.median(t[0] for t in times["full"])
    p_part = statistics.median(t[0] for t in times["partial"])
    print(f"partial / full: interactive {f_part / f_full:.2f}x, first chart {p_part / p_full:.2f}x, "
          f"file {pages['partial'].stat().st_size / pages['full'].stat().st_size:.2f}x")
    print(f"targets: first chart <= 0.5 s ({'met' if p_part <= 0.5 else 'MISSED'}), interactive <= 1.0 s "
          f"({'met' if f_part <= 1.0 else 'MISSED'}), file <= 3 MB "
          f"({'met' if pages['partial'].stat().st_size <= 3 * MB else 'MISSED'})")


def render_with(python: str, bundle: Path, out: Path, **options) -> Path:
    """Render `bundle`'s report with another interpreter's epochscope (e.g. a checkout of
    main, for today's page); `options` go to its render_report."""
    import subprocess

    code = ("import sys, json; from epochscope.generator import render_report; "
            "render_report(sys.argv[1], sys.argv[2], **json.loads(sys.argv[3]))")
    # Run from / so the current directory (maybe this checkout) does not shadow its epochscope.
    subprocess.run([python, "-c", code, str(bundle.resolve()), str(out.resolve()), json.dumps(options)],
                   check=True, cwd="/")
    return out


# Measured from outside the page, the same way for any version of it: the first chart drawn
# (a preview or a Plotly chart) and the first Plotly chart, each when the frame holding it has
# been painted (the first task after that frame).
PAINT_WATCH = """
window.__seen = {paint: null, interactive: null};
const __mark = (key) => { if (window.__seen[key] !== null || window['__w' + key]) return; window['__w' + key] = 1;
  requestAnimationFrame(() => setTimeout(() => { window.__seen[key] = performance.now(); }, 0)); };
new MutationObserver(() => {
  if (document.querySelector('.chart-card .es-preview, .chart-card .main-svg, .chart-card canvas')) __mark('paint');
  if (document.querySelector('.chart-card .main-svg')) __mark('interactive');
}).observe(document, {childList: true, subtree: true});
"""
SEEN = "window.__seen && window.__seen.interactive !== null && [window.__seen.paint, window.__seen.interactive]"


def pages(bundle: Path, work: Path, repeat: int, baseline: Path, data_budget: int | None = None) -> None:
    """Today's page (`baseline`) against the page the current code renders by default: file
    size, first chart painted and first interactive chart (measured from outside, PAINT_WATCH),
    loaded alternately in the same browser (paired), medians; plotly.js alone on an empty page
    (the floor, same loop); and whether the new page made any request or console error."""
    from playwright.sync_api import sync_playwright

    from epochscope.generator import render_report

    extra = {} if data_budget is None else {"data_budget": data_budget}
    t = time.perf_counter()
    new = render_report(bundle, work / "report-new.html", **extra)
    gen = time.perf_counter() - t
    named = {"today": baseline, "new": new}
    from epochscope.generator.html import plotly_js

    floor_page = work / "plotly-only-partial.html"
    floor_page.write_text("<!DOCTYPE html><html><body><script>" + plotly_js() + "</script><script>"
                          "requestAnimationFrame(() => setTimeout(() => { window.__t = performance.now(); }, 0))"
                          "</script></body></html>", encoding="utf-8")
    floor: list[float] = []
    times: dict[str, list] = {k: [] for k in named}
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for i in range(repeat):
            # Alternate which page loads first, so neither gains from going first or second.
            for key, page_path in (list(named.items()) if i % 2 == 0 else list(named.items())[::-1]):
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                if key == "new":
                    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    page.on("pageerror", lambda e: errors.append(str(e)))
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
                page.add_init_script(PAINT_WATCH)
                page.goto(page_path.resolve().as_uri(), timeout=300_000)
                page.wait_for_function(SEEN, timeout=300_000, polling=10)
                times[key].append([v / 1000.0 for v in page.evaluate(f"({SEEN})")])
                page.close()
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(floor_page.resolve().as_uri(), timeout=300_000)
            page.wait_for_function("window.__t", timeout=300_000, polling=10)
            floor.append(page.evaluate("window.__t") / 1000.0)
            page.close()
        browser.close()
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
    size = {k: v.stat().st_size for k, v in named.items()}
    print(f"new page rendered in {gen:.2f} s; {repeat} paired loads each (alternating), medians")
    print(f"{'page':8s}{'file':>10s}{'first chart':>14s}{'interactive':>14s}   interactive, every load")
    for k in named:
        print(f"{k:8s}{size[k] / MB:>7.2f} MB{med[k][0]:>12.3f} s{med[k][1]:>12.3f} s   "
              + ", ".join(f"{t[1]:.2f}" for t in times[k]))
    print(f"{'':8s}{'':10s}{'':14s}{statistics.median(floor):>12.3f} s   the new page's plotly.js alone on an "
          "empty page (the floor)")
    print(f"new / today: file {size['new'] / size['today']:.2f}x, first chart {med['new'][0] / med['today'][0]:.2f}x, "
          f"interactive {med['new'][1] / med['today'][1]:.2f}x")
    print(f"targets (new): first chart <= 0.5 s ({'met' if med['new'][0] <= 0.5 else 'MISSED'}), interactive <= 1.0 s "
          f"({'met' if med['new'][1] <= 1.0 else 'MISSED'}), file <= 3 MB ({'met' if size['new'] <= 3 * MB else 'MISSED'})")
    print(f"new page: {len(requests)} network request(s), {len(errors)} console error(s)"
          + (f": {requests[:3]} {errors[:3]}" if requests or errors else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="directory to keep the pages in")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive alternative")
    parser.add_argument("--data-budget", type=int, help="with --plotly-bundles or --pages: the new page's data_budget")
    parser.add_argument("--plotly-bundles", action="store_true",
                        help="only compare the full and the partial plotly.js on BUNDLE's report")
    parser.add_argument("--per-input", action="store_true",
                        help="synthetic bundle with the every-neuron and per-input analyses too")
    parser.add_argument("--pages", action="store_true",
                        help="today's page (--baseline-python or --baseline) against the current default page")
    parser.add_argument("--baseline-python", help="with --pages: an interpreter whose epochscope renders today's page "
                        "(e.g. a checkout of main's .venv/bin/python)")
    parser.add_argument("--baseline", type=Path, help="with --pages: today's page, already rendered")
    args = parser.parse_args()
    if args.pages:
        if args.bundle is None or not (args.baseline_python or args.baseline):
            parser.error("--pages needs a BUNDLE and --baseline-python or --baseline")
        work = args.keep or Path(tempfile.mkdtemp(prefix="epochscope-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        baseline = args.baseline or render_with(args.baseline_python, args.bundle, work / "report-today.html")
        pages(args.bundle, work, args.repeat, baseline, args.data_budget)
        print(f"\npages in {work}")
        return
    if args.plotly_bundles:
        if args.bundle is None:
            parser.error("--plotly-bundles needs a BUNDLE (e.g. a demo run)")
        work = args.keep or Path(tempfile.mkdtemp(prefix="epochscope-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        plotly_bundles(args.bundle, work, args.repeat, args.data_budget)
        print(f"\npages in {work}")
        return

    from epochscope.generator import render_report
    from epochscope.generator.render import plotly_js

    work = args.keep or Path(tempfile.mkdtemp(prefix="epochscope-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle = args.bundle
    if bundle is None:
        t = time.perf_counter()
        bundle = synthetic(work / "nanda2023-synthetic.h5", args.per_input)
        print(f"synthetic bundle written in {time.perf_counter() - t:.1f} s ({bundle.stat().st_size / MB:.0f} MB)")

    t = time.perf_counter()
    report = render_report(bundle, work / "report.html")
    gen = time.perf_counter() - t
    plotly_size = len(plotly_js().encode())
    size = report.stat().st_size
    both = load_times(report, args.repeat, FIRST_CHART)
    first, interactive = [b[0] for b in both], [b[1] for b in both]
    # The floor: a page holding nothing but the same inlined plotly.js (parse + run).
    floor_page = work / "plotly-only.html"
    floor_page.write_text("<!DOCTYPE html><html><body><script>" + plotly_js() + "</script><script>"
                          "requestAnimationFrame(() => requestAnimationFrame(() => { window.__t = performance.now(); }))"
                          "</script></body></html>", encoding="utf-8")
    floor = load_times(floor_page, args.repeat, "window.__t")
    groups = ["g-training", "g-weights", "g-fourier", "g-neurons", "g-attention"]
    if args.per_input:
        groups += ["g-atlas", "g-dynamics", "g-inputs"]
    changes = epoch_changes(report, groups)

    print()
    print(f"{'':34s}{'value':>14s}{'target':>16s}")
    print(f"{'generation':34s}{gen:>12.2f} s{'<= 10 s':>16s}")
    print(f"{'file size':34s}{size / MB:>11.2f} MB{f'<= {(plotly_size + 6 * MB) / MB:.2f} MB':>16s}")
    print(f"{'  of which plotly.js':34s}{plotly_size / MB:>11.2f} MB")
    print(f"{'  data and page':34s}{(size - plotly_size) / MB:>11.2f} MB{'<= 6 MB':>16s}")
    print(f"{'first chart painted (median)':34s}{statistics.median(first):>12.2f} s{'<= 1.5 s':>16s}"
          f"   all: {', '.join(f'{x:.2f}' for x in first)}")
    print(f"{'  (a preview, before plotly.js runs)':34s}")
    print(f"{'first interactive chart (median)':34s}{statistics.median(interactive):>12.2f} s{'':16s}"
          f"   all: {', '.join(f'{x:.2f}' for x in interactive)}")
    print(f"{'  plotly.js alone (same machine)':34s}{statistics.median(floor):>12.2f} s"
          f"{'':16s}   the report's own share: {statistics.median(interactive) - statistics.median(floor):.2f} s")
    for gid, times in changes.items():
        print(f"{'epoch change, ' + gid.removeprefix('g-'):34s}{statistics.median(times):>11.1f} ms{'<= 100 ms':>16s}"
              f"   max {max(times):.1f} ms")

    if not args.no_naive:
        t = time.perf_counter()
        naive = naive_page(bundle, work / "naive.html")
        naive_gen = time.perf_counter() - t
        n_size = naive.stat().st_size
        n_first = load_times(naive, min(args.repeat, 3),
                             "document.querySelector('.js-plotly-plot .main-svg') && performance.now()")
        n_all = load_times(naive, 1, """(() => { const d = document.querySelectorAll('.plotly-graph-div');
            return d.length && Array.from(d).every(g => g.querySelector('.main-svg')) && performance.now(); })()""")
        print()
        print(f"{'':34s}{'epochscope':>14s}{'naive':>14s}{'ratio':>10s}")
        print(f"{'generation':34s}{gen:>12.2f} s{naive_gen:>12.2f} s{naive_gen / gen:>9.1f}x")
        print(f"{'file size':34s}{size / MB:>11.2f} MB{n_size / MB:>11.2f} MB{n_size / size:>9.1f}x")
        print(f"{'  without plotly.js':34s}{(size - plotly_size) / MB:>11.2f} MB{(n_size - plotly_size) / MB:>11.2f} MB"
              f"{(n_size - plotly_size) / (size - plotly_size):>9.1f}x")
        nf = statistics.median(n_first)
        print(f"{'first chart painted (median)':34s}{statistics.median(first):>12.2f} s{nf:>12.2f} s"
              f"{nf / statistics.median(first):>9.1f}x")
        print(f"{'every chart drawn':34s}{'(lazy)':>14s}{n_all[0]:>12.2f} s")
    print(f"\npages in {work}")


if __name__ == "__main__":
    main()
