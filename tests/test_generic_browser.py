"""The "Done when" of the generic report, in headless chromium with the network blocked:
(a) a modular-addition run, (b) a plain PyTorch loop recorded with Recorder, (c) an ingested
TensorBoard log with 30 tags. Every series has a drawn chart, every table and event kind is
shown, no "Unavailable" box and no empty chart area."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from epochscope.archives import open_bundle
from epochscope.generator import render_report
from epochscope.generator.packs import load_packs
from tests.browser_helpers import draw_all, needs_chromium, open_report, settle, show
from tests.generic_runs import TB_TAGS, modular_run, plain_loop_run, tensorboard_run

pytestmark = [needs_chromium, pytest.mark.browser]

MODULAR_CHARTS = [c for p in load_packs() if p.name == "modular_addition" for s in p.sections for c in s.charts]

# Every drawn card has something on it: Plotly traces with points, table rows, or map canvases.
CONTENT = """() => Array.from(document.querySelectorAll('.chart-card')).map(card => {
  const n = card.dataset.chart;
  const plot = card.querySelector('.plot');
  const lines = Array.from(plot.querySelectorAll('.scatterlayer path.js-line'))
    .filter(p => (p.getAttribute('d') || '').length > 10).length;
  const points = plot.querySelectorAll('.scatterlayer path.point').length;
  const images = plot.querySelectorAll('.heatmaplayer image, .hm image, image').length;
  const bars = plot.querySelectorAll('.barlayer path').length;
  const rows = plot.querySelectorAll('tbody tr').length;
  const canvases = plot.querySelectorAll('canvas').length;
  return {name: n, drawn: card.dataset.drawn || '', content: lines + points + images + bars + rows + canvases,
          height: plot.getBoundingClientRect().height};
})"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generic")
    a = modular_run(tmp / "a.h5")
    b = plain_loop_run(tmp / "b.h5")
    c = tensorboard_run(tmp / "tb" / "c-run", tmp / "c.h5")
    return {k: (bundle, render_report(bundle, tmp / f"{k}.html")) for k, bundle in
            (("a", a), ("b", b), ("c", c))}


def _page(html: Path) -> dict:
    import json

    text = html.read_text()
    return json.loads(re.search(r'<script type="application/json" id="es-data">(.*?)</script>', text, re.S).group(1))


def _everything_visible(browser, bundle: Path, html: Path):
    with open_bundle(bundle) as b:
        series, tables, events = set(b.series_names), {n: len(next(iter(b.table(n).values()))) for n in b.table_names}, b.events()
    data = _page(html)
    assert set(data["seriesShown"]) == series, series - set(data["seriesShown"])  # every series drawn
    opened = open_report(browser, html)
    draw_all(opened)
    cards = opened.evaluate(CONTENT)
    assert cards, "no charts"
    empty = [c["name"] for c in cards if c["drawn"] in ("", "error") or c["content"] == 0 or c["height"] < 40]
    assert not empty, f"empty chart areas: {empty}"
    assert opened.evaluate("document.querySelectorAll('.unavailable').length") == 0
    assert "Unavailable." not in opened.evaluate("document.body.innerText")
    # Every table, with all its rows counted, and every event kind.
    text = opened.evaluate("document.body.innerText")
    for name, n in tables.items():
        card = opened.evaluate("(t) => Array.from(document.querySelectorAll('.chart-card')).find("
                               "c => c.querySelector('h3').textContent === t).dataset.chart", name)
        assert opened.evaluate("(n) => document.querySelector('#c-' + n + ' .tbl-count').textContent", card) \
            == f"{n} rows"
    if events:
        assert opened.evaluate("document.querySelector('#c-events .tbl-count').textContent") == f"{len(events)} rows"
        for kind in {e["kind"] for e in events}:
            assert kind in text
    assert not opened.blocked and not opened.errors, (opened.blocked, opened.errors)
    return opened, data


def test_a_modular_addition_run_loses_nothing(browser, reports):
    bundle, html = reports["a"]
    opened, data = _everything_visible(browser, bundle, html)
    # Every chart of the modular-addition pack is there (today's report), and the rest too.
    assert set(MODULAR_CHARTS) <= set(data["charts"]), set(MODULAR_CHARTS) - set(data["charts"])
    assert opened.evaluate("document.querySelector('#run-card .turn dd').textContent").startswith("epoch ")
    # Clicking a neuron still selects it; the epoch still moves every at-epoch chart.
    opened.evaluate("ES.app.setNeuron(5)")
    settle(opened)
    assert opened.evaluate("ES.app.state.neuron") == 5
    opened.page.close()


def test_b_a_plain_recorder_loop_shows_what_it_recorded(browser, reports):
    bundle, html = reports["b"]
    opened, data = _everything_visible(browser, bundle, html)
    titles = opened.evaluate("Array.from(document.querySelectorAll('.chart-card h3')).map(h => h.textContent)")
    # train/val overlaid in one chart titled "loss"; the grad_norm parts in one chart.
    assert "loss" in titles and "grad_norm" in titles and "hierarchy" in titles and "candidates" in titles
    loss = next(n for n, c in data["charts"].items() if c["spec"].get("yTitle", "").startswith("loss"))
    assert [t["name"] for t in data["charts"][loss]["spec"]["traces"]] == ["train", "val"]
    # No modular-addition box anywhere; what is absent is one collapsed line.
    assert not set(MODULAR_CHARTS) & set(data["charts"])
    assert opened.evaluate("document.querySelectorAll('details.absent').length") <= 1
    # The header: the loss family first, the declared unit, "peaked, then degraded" on hierarchy.
    facts = opened.evaluate("Array.from(document.querySelectorAll('#run-card .fact dt')).map(d => d.textContent)")
    assert facts[:2] == ["train_loss", "val_loss"]
    header = opened.evaluate("document.querySelector('#run-card').innerText")
    assert "nats" in header and "peaked, then degraded" in header
    # A click on an event row selects its epoch.
    show(opened, "events")
    opened.page.click("#c-events tbody tr[data-row='1']")
    settle(opened)
    assert opened.evaluate("ES.app.state.epoch") == 30
    # Smoothing keeps the raw curve: each smoothed line gets a faint raw one beneath.
    show(opened, loss)
    before = opened.evaluate("(n) => document.getElementById('p-' + n).data.length", loss)
    opened.evaluate("ES.app.setSmooth(0.8)")
    settle(opened)
    after = opened.evaluate("(n) => document.getElementById('p-' + n).data", loss)
    assert len(after) == before + 2 and sum(1 for t in after if t.get("opacity") == 0.28) == 2
    # Sorting and filtering the table.
    show(opened, "tables-t0")
    opened.page.fill("#c-tables-t0 .tbl-filter", "silu")
    opened.page.wait_for_function("document.querySelector('#c-tables-t0 .tbl-count').textContent === '2 of 4 rows'")
    opened.page.fill("#c-tables-t0 .tbl-filter", "")
    opened.page.click("#c-tables-t0 th:nth-child(4) button")  # best_loss, ascending
    first = opened.evaluate("document.querySelector('#c-tables-t0 tbody tr td').textContent")
    opened.page.wait_for_function("document.querySelector('#c-tables-t0 tbody tr td').textContent === 'gen1_silu_3'")
    assert first in ("gen1_silu_3", "gen0_silu_1")
    assert not opened.errors
    opened.page.close()


def test_c_an_ingested_tensorboard_log_with_30_tags(browser, reports):
    bundle, html = reports["c"]
    with open_bundle(bundle) as b:
        assert len(b.series_names) == TB_TAGS
    opened, data = _everything_visible(browser, bundle, html)
    small = opened.evaluate("document.querySelectorAll('.chart-card.small').length")
    assert small >= 8  # many series: small multiples, not 30 full-width charts
    widths = opened.evaluate("Array.from(document.querySelectorAll('.chart-card.small')).map(c => "
                             "c.getBoundingClientRect().width / document.querySelector('main').clientWidth)")
    assert max(widths) < 0.5
    titles = opened.evaluate("Array.from(document.querySelectorAll('.chart-card h3')).map(h => h.textContent)")
    assert {"loss", "accuracy", "grad_norm", "activation_mean"} <= set(titles)
    opened.page.close()
