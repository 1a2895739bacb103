"""Helpers for the report's browser tests: one headless Debian chromium per module, every
request that is not file:// blocked and recorded, console errors collected."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")


@dataclass
class Opened:
    """A report open in a page, with what it asked the network for and what it complained about."""

    page: object
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def evaluate(self, script: str, arg=None):
        return self.page.evaluate(script, arg)


# Records every chart preview as it appears: which chart, whether plotly.js was running yet,
# how many lines it drew (see templates/chart_preview.js).
PREVIEW_WATCH = """
window.__previews = [];
new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => {
  if (!n.classList || !n.classList.contains("es-preview")) return;
  window.__previews.push({ chart: n.closest(".chart-card").dataset.chart, plotly: !!window.Plotly,
    lines: n.querySelectorAll("path").length, at: performance.now() });
}))).observe(document, { childList: true, subtree: true });
"""


def check_previews(opened: Opened, first_chart: str) -> None:
    """Charts in view were previewed before plotly.js ran, then replaced by Plotly charts."""
    previews = opened.evaluate("window.__previews")
    assert previews, "no chart preview appeared"
    assert all(not p["plotly"] and p["lines"] > 0 for p in previews), previews
    assert first_chart in {p["chart"] for p in previews}
    stats = opened.evaluate("({paint: ES.app.stats.firstPaint, interactive: ES.app.stats.firstInteractive})")
    assert 0 < stats["paint"] < stats["interactive"]
    settle(opened)
    assert opened.evaluate("document.querySelectorAll('.chart-card[data-drawn] .es-preview').length") == 0
    assert opened.evaluate("document.querySelectorAll('.chart-card[data-drawn][data-preview]').length") == 0
    assert opened.evaluate(f"!!document.querySelector('#c-{first_chart} .main-svg')")


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def block_network(page, blocked: list[str]) -> None:
    """Let the page load file:// URLs only: every other request is aborted and its URL
    appended to `blocked`."""
    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)


def open_report(browser, path: Path, *, hash: str = "", viewport=(1400, 900)) -> Opened:
    """Open `path` in a fresh page; wait until the page has started and painted a chart."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    opened = Opened(page)
    block_network(page, opened.blocked)
    page.on("request", lambda req: None if req.url.startswith(("file://", "data:", "blob:"))
            else opened.blocked.append(req.url))
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on("dialog", lambda d: (opened.dialogs.append(d.message), d.dismiss()))
    page.add_init_script(PREVIEW_WATCH)
    page.goto(path.resolve().as_uri() + hash)
    page.wait_for_function("window.ES && ES.app && ES.app.stats.firstInteractive !== null", timeout=20000)
    return opened


def settle(opened: Opened) -> None:
    """Wait until no chart draw is pending (draws are chained promises per chart)."""
    opened.page.evaluate("() => Promise.all(Object.values(ES.app.charts).map(c => c.busy))")


def draw_all(opened: Opened, timeout: float = 20.0) -> None:
    """Scroll every available chart into view in turn so each one draws."""
    for name in opened.evaluate("Object.keys(ES.app.charts).filter(n => ES.app.charts[n].status === 'ok')"):
        opened.evaluate("(n) => document.getElementById('c-' + n).scrollIntoView({block: 'center'})", name)
        deadline = time.monotonic() + timeout
        while not opened.evaluate("(n) => !!document.getElementById('c-' + n).dataset.drawn", name):
            if time.monotonic() > deadline:
                raise AssertionError(f"chart {name} did not draw")
            time.sleep(0.03)
    settle(opened)


def show(opened: Opened, name: str) -> None:
    """Scroll chart `name` into view and wait until it has drawn."""
    opened.evaluate("(n) => document.getElementById('c-' + n).scrollIntoView({block: 'center'})", name)
    # Drawn once is not enough: a chart that went dirty off-screen (the epoch changed) is redrawn
    # only when the IntersectionObserver reports it visible, which can come after scrollIntoView.
    opened.page.wait_for_function(
        "(n) => { const c = ES.app.charts[n]; return !!document.getElementById('c-' + n).dataset.drawn"
        " && (!c || c.status !== 'ok' || (c.visible && !c.dirty)); }", arg=name, timeout=10000)
    settle(opened)


def plot_point(opened: Opened, name: str, x: float, y: float | str) -> tuple[float, float]:
    """Page coordinates of data point (x, y) in Plotly chart `name` (first x/y axes)."""
    return tuple(opened.evaluate(
        """([n, x, y]) => {
             const gd = document.getElementById('p-' + n);
             const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
             const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
             const px = xa.l2p(xa.d2l(x)), py = ya.l2p(ya.d2l(y));
             return [box.left + px, box.top + py];
           }""", [name, x, y]))


def open_run_list(opened: Opened) -> None:
    """Open a comparison page's run list and wait until it is filled: it is drawn on the
    <details> element's toggle event, which the browser fires in a later task than the click."""
    opened.page.click("#runs-panel summary")
    opened.page.wait_for_function("document.querySelector('#run-list').children.length > 0", timeout=10000)
