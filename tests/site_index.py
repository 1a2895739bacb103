"""The site index at scale, shared by tests/test_site_index_browser.py and
benchmarks/bench_site_index.py: many runs' catalog rows, the index page opened in headless
chromium (network blocked), and per-interaction timing in the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.browser_helpers import block_network

STATUSES = ("complete", "complete", "complete", "failed", "interrupted")
HEALTH = ("healthy", "late grokker", "no grokking", "degraded", None)


def catalog_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` rows shaped as `Catalog.runs()` returns them: sweeps of up to 100 runs, names from
    their grid values, missing figures (None) here and there, one name with markup in it."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sweep = f"sweep{i // 100:02d}" if i % 10 else ""
        p = int(rng.choice([53, 59, 61, 97, 101, 113]))
        seed_i = int(rng.integers(0, 1000))
        name = f"{sweep or 'loose'}/p{p}_model_seed{seed_i}_lr{rng.choice(['1e-3', '3e-3'])}"
        if i == 7:
            name = "<b>bold</b> & run"
        turned = rng.random() < 0.8
        epochs = int(rng.choice([3000, 5000, 10000]))
        rows.append({
            "path": f"{sweep or 'loose'}/run{i:04d}.h5", "name": name, "sweep": sweep,
            "status": STATUSES[i % len(STATUSES)], "p": p, "model_seed": seed_i, "data_seed": 598,
            "epochs": epochs, "checkpoints": int(rng.integers(0, 200)) if i % 3 else None,
            "turn_epoch": int(rng.integers(100, epochs)) if turned else None,
            "grok_epoch": int(rng.integers(100, epochs)) if turned else None,
            "health": HEALTH[i % len(HEALTH)],
            "final_train_loss": float(10 ** rng.uniform(-7, -1)),
            "final_test_loss": float(10 ** rng.uniform(-7, 1)) if i % 13 else None,
            "final_test_acc": float(rng.uniform(0, 1)) if i % 11 else None,
        })
    return rows


# t0 in the capture phase, before the page's own listener; after it (the event bubbles to
# window) the rows' layout is forced, so `layout` covers script, style and layout; `frame`
# is taken after the next frame (requestAnimationFrame, then a task): paint included.
TIMING = """
window.__timing = [];
["input", "click"].forEach((type) => {
  window.addEventListener(type, () => { window.__t0 = performance.now(); }, true);
  window.addEventListener(type, () => {
    const t0 = window.__t0;
    document.getElementById("rows").getBoundingClientRect();
    const layout = performance.now() - t0;
    requestAnimationFrame(() => setTimeout(() => {
      window.__timing.push({type, layout, frame: performance.now() - t0});
    }, 0));
  });
});
"""


@dataclass
class IndexPage:
    page: Any
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def matching(self) -> list[int]:
        """The data index of every run the filter lets through, in display order (the page
        keeps only the rows in view in the table)."""
        return self.page.evaluate("ES.index.shown()")

    def rendered(self) -> list[dict[str, str]]:
        """The rows in the table now, in order: data index, sweep and run name of each."""
        return self.page.eval_on_selector_all(
            "#rows tr:not([hidden])",
            "els => els.map(e => ({index: +e.dataset.index, sweep: e.cells[0].textContent,"
            " name: e.cells[1].textContent}))")

    def timed(self, action) -> dict[str, float]:
        """Run `action()` (one keystroke or click) and return the page's timing of it."""
        k = self.page.evaluate("window.__timing.length")
        action()
        self.page.wait_for_function(f"window.__timing.length > {k}", timeout=30000)
        return self.page.evaluate(f"window.__timing[{k}]")


def open_index(browser, index: Path, viewport=(1400, 900)) -> IndexPage:
    """`index` in a fresh page with the timing hooks, every non-file:// request blocked."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    opened = IndexPage(page)
    block_network(page, opened.blocked)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.add_init_script(TIMING)
    page.goto(index.resolve().as_uri())
    page.wait_for_selector("#rows tr")
    return opened
