"""The report in a real browser (Debian chromium, headless): offline, no errors, every chart
draws, help opens, navigation works, the URL hash restores a view, user strings stay text."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import (
    check_previews,
    draw_all,
    needs_chromium,
    open_report,
    plot_point,
    settle,
    show,
)

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment
from epochscope.generator import render_report
from tests.synthetic import SyntheticRun, write_synthetic_bundle

pytestmark = [pytest.mark.browser, needs_chromium]

SMALL = dict(p=23, d_model=32, d_mlp=48, n_heads=2, epochs=1500, analysed=24, key_freqs=(3, 7, 9))
EVIL = "</script><img src=x onerror=alert(1)>"  # the run's name
EVIL2 = "</script><script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=1\">"


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("reports")
    full = write_synthetic_bundle(tmp / "full.h5", SyntheticRun(name="browser-full", **SMALL))
    metrics = write_synthetic_bundle(tmp / "metrics.h5", SyntheticRun(name="metrics-only", analyses=(), **SMALL))
    with BundleWriter(tmp / "evil.h5", create=True) as w:
        w.write(Segment(
            context={"config": {"name": EVIL, "lr": EVIL2}, "seeds": {EVIL2: 1}},
            metrics={"train_loss": (np.arange(1, 50), np.geomspace(4, 0.01, 49)),
                     "test_loss": (np.arange(1, 50), np.geomspace(5, 0.1, 49))},
            events=[{"epoch": 20, "kind": EVIL2, "message": EVIL2, "payload": {EVIL2: EVIL2}}],
            artifacts={"weight_norms": ArtifactUpdate("1", np.array([0, 25, 49]), {"norms": np.ones((3, 2))},
                                                      summary={"tensors": np.array([EVIL2, "W_U"], dtype=object)})},
        ))
        w.consolidate()
    return {
        "full": render_report(full, tmp / "out" / "full.html"),
        "metrics": render_report(metrics, tmp / "out" / "metrics.html"),
        "evil": render_report(tmp / "evil.h5", tmp / "out" / "evil.html"),
        "shared": render_report(full, tmp / "site" / "runs" / "shared.html", shared_assets=tmp / "site" / "assets"),
    }


def state(opened) -> dict:
    return opened.evaluate("""({...ES.app.state, logy: [...ES.app.state.logy], logx: [...ES.app.state.logx],
                                hiddenKinds: [...ES.app.state.hiddenKinds]})""")


def test_full_report_offline_every_chart_draws_and_explains_itself(browser, reports):
    # A page tall enough to show every chart at once: all of them draw.
    opened = open_report(browser, reports["full"], viewport=(1400, 16000))
    opened.page.wait_for_function("""Object.values(ES.app.charts).every(c => c.status !== 'ok' || c.card.dataset.drawn)""",
                                  timeout=30000)
    settle(opened)
    kinds = opened.evaluate("""() => Object.values(ES.app.charts).map(c => ({name: c.name, kind: c.kind,
        status: c.status, drawn: c.card.dataset.drawn, svg: !!c.card.querySelector('.main-svg'),
        canvases: c.card.querySelectorAll('canvas').length, rows: c.card.querySelectorAll('tbody tr').length}))""")
    assert all(c["status"] == "ok" for c in kinds), kinds
    for c in kinds:
        assert c["drawn"] not in (None, "error"), c
        if c["kind"] in ("table", "events"):
            assert c["rows"] > 0, c
        else:
            assert (c["canvases"] > 0) if c["kind"] == "maps" else c["svg"], c
    # every help icon opens its text: the first with a real mouse click, all by DOM clicks
    first = opened.page.locator(".help-btn").first
    first.click()
    assert opened.page.locator("#" + first.get_attribute("aria-controls")).is_visible()
    first.click()
    helps = opened.evaluate("""() => Array.from(document.querySelectorAll('.help-btn')).map(b => {
        const body = document.getElementById(b.getAttribute('aria-controls'));
        const closed = body.hidden; b.click(); const open = !body.hidden && body.offsetHeight > 0;
        const text = body.innerText; b.click();
        return {chart: b.closest('.chart-card').dataset.chart, closed, open, text, after: body.hidden}; })""")
    assert len(helps) == len(kinds)
    for h in helps:
        assert h["closed"] and h["open"] and h["after"], h["chart"]
        for heading in ("What it shows.", "How to read it.", "How it is computed.", "Typical.", "Anomalous."):
            assert heading in h["text"], (h["chart"], heading)
    assert opened.blocked == []
    assert opened.errors == []
    opened.page.close()


def test_lazy_rendering_and_the_epoch_controls(browser, reports):
    opened = open_report(browser, reports["full"])
    check_previews(opened, "loss")  # the first paint comes before plotly.js runs
    # only charts in (or about to come into) view are drawn; off-screen ones wait, dirty
    drawn = opened.evaluate("Object.values(ES.app.charts).filter(c => c.card.dataset.drawn).map(c => c.name)")
    assert "loss" in drawn and "attention" not in drawn and "neuron_clusters" not in drawn
    snap = opened.evaluate("Array.from(ES.app.snap())")
    opened.evaluate(f"ES.app.setEpoch({snap[1]})")
    assert opened.evaluate("ES.app.charts.attention.card.dataset.drawn") is None
    assert opened.evaluate("ES.app.charts.attention.dirty") is True
    show(opened, "attention")
    assert opened.evaluate("ES.app.charts.attention.shownEpoch") == snap[1]
    count = opened.evaluate("Number(ES.app.charts.attention.card.dataset.drawn)")
    opened.evaluate("window.scrollTo(0, 0)")
    time.sleep(0.3)
    opened.evaluate(f"ES.app.setEpoch({snap[-1]})")
    assert opened.evaluate("Number(ES.app.charts.attention.card.dataset.drawn)") == count
    assert opened.evaluate("ES.app.charts.attention.dirty") is True
    # the slider moves the detail charts
    show(opened, "neuron_clusters")
    # it may have been drawn earlier, as a neighbour of "attention": coming into view, dirty,
    # it is redrawn at the new epoch
    opened.page.wait_for_function(f"ES.app.charts.neuron_clusters.shownEpoch === {snap[-1]}", timeout=10000)
    settle(opened)
    z_before = opened.evaluate("JSON.stringify(Array.from(document.getElementById('p-neuron_clusters').data[0].z[0]))")
    opened.page.locator("#epoch-slider").fill("2")
    opened.page.wait_for_function(f"ES.app.state.epoch === {snap[2]}")
    settle(opened)
    assert opened.evaluate("ES.app.charts.neuron_clusters.shownEpoch") == snap[2]
    assert opened.page.locator("#c-neuron_clusters .epoch-tag").inner_text().startswith(f"epoch {snap[2]}")
    z_after = opened.evaluate("JSON.stringify(Array.from(document.getElementById('p-neuron_clusters').data[0].z[0]))")
    assert z_after != z_before
    assert opened.page.locator("#epoch-input").input_value() == str(snap[2])
    # typing an epoch snaps it to the nearest analysed checkpoint
    opened.page.locator("#epoch-input").fill(str(snap[5] + 1))
    opened.page.locator("#epoch-input").press("Enter")
    opened.page.wait_for_function(f"ES.app.state.epoch === {snap[5]}")
    # arrow keys step through the analysed checkpoints
    opened.page.locator("h1").click()
    opened.page.keyboard.press("ArrowRight")
    opened.page.wait_for_function(f"ES.app.state.epoch === {snap[6]}")
    assert opened.errors == []
    opened.page.close()


def test_click_to_navigate(browser, reports):
    opened = open_report(browser, reports["full"])
    show(opened, "loss")
    x, y = opened.evaluate("""() => { const d = document.getElementById('p-loss').data[1];
        const i = Math.floor(d.x.length * 0.3); return [d.x[i], d.y[i]]; }""")
    px, py = plot_point(opened, "loss", x, y)
    opened.page.mouse.click(px, py)
    snap = opened.evaluate("Array.from(ES.app.snap())")
    expected = min(snap, key=lambda e: abs(e - x))
    opened.page.wait_for_function(f"ES.app.state.epoch === {expected}", timeout=5000)
    # the trajectory: clicking a checkpoint's point selects its epoch
    show(opened, "pca_23")
    ex, xx, yy = opened.evaluate("""() => { const d = document.getElementById('p-pca_23').data[1];
        return [d.customdata[4], d.x[4], d.y[4]]; }""")
    opened.page.mouse.click(*plot_point(opened, "pca_23", xx, yy))
    opened.page.wait_for_function(f"ES.app.state.epoch === {ex}", timeout=5000)
    # the cluster map: clicking a neuron selects it and shows its map first
    show(opened, "neuron_maps")
    stored = opened.evaluate("ES.app.charts.neuron_maps.spec.ids")
    show(opened, "neuron_clusters")
    label = f"n{stored[1]}"
    freq = opened.evaluate("document.getElementById('p-neuron_clusters').data[0].x[1]")
    opened.page.mouse.click(*plot_point(opened, "neuron_clusters", freq, label))
    opened.page.wait_for_function(f"ES.app.state.neuron === {stored[1]}", timeout=5000)
    settle(opened)
    assert opened.evaluate("document.querySelector('#c-neuron_maps .map-panel').dataset.id") == str(stored[1])
    assert opened.page.locator("#neuron-input").input_value() == str(stored[1])
    # clicking another panel selects that neuron
    show(opened, "neuron_maps")
    second = opened.page.locator("#c-neuron_maps .map-panel").nth(1)
    target = int(second.get_attribute("data-id"))
    second.locator("canvas").click()
    opened.page.wait_for_function(f"ES.app.state.neuron === {target}", timeout=5000)
    # heads: clicking a panel selects the head
    show(opened, "attention")
    opened.page.locator("#c-attention .map-panel").nth(1).locator("canvas").click()
    opened.page.wait_for_function("ES.app.state.head === 1", timeout=5000)
    assert opened.errors == []
    opened.page.close()


def test_url_hash_restores_the_view(browser, reports):
    opened = open_report(browser, reports["full"])
    snap = opened.evaluate("Array.from(ES.app.snap())")
    opened.evaluate(f"ES.app.setEpoch({snap[3]})")
    opened.evaluate("ES.app.setNeuron(7)")
    opened.evaluate("ES.app.setHead(1)")
    opened.evaluate("ES.app.toggleScale('accuracy', 'y')")
    # switching an event kind off removes its lines from the epoch charts
    lines = "document.getElementById('p-loss').data.filter(t => t.mode === 'lines' && t.yaxis === 'y9').length"
    before = opened.evaluate(lines)
    opened.page.locator("#event-kinds input[data-kind=turn]").uncheck()
    settle(opened)
    assert opened.evaluate(lines) == before - 1
    opened.evaluate("document.getElementById('c-coarseness').scrollIntoView({block: 'start'})")
    # the hash follows changes and scrolling after a short debounce
    hash_ = opened.page.wait_for_function("location.hash.includes('view=') && location.hash").json_value()
    assert f"epoch={snap[3]}" in hash_ and "neuron=7" in hash_ and "head=1" in hash_ and "hide=turn" in hash_
    opened.page.close()

    again = open_report(browser, reports["full"], hash=hash_)
    restored = state(again)
    assert restored["epoch"] == snap[3] and restored["neuron"] == 7 and restored["head"] == 1
    assert "accuracy" in restored["logy"] and "loss" in restored["logy"]
    assert restored["view"] in ("coarseness", "neuron_freq_counts")  # same row of the grid
    assert not again.page.locator("#event-kinds input[data-kind=turn]").is_checked()
    assert again.page.locator("#event-kinds input[data-kind=cusum_alarm]").is_checked()
    top = again.evaluate("document.getElementById('c-coarseness').getBoundingClientRect().top")
    assert abs(top) < 60
    show(again, "neuron_maps")
    assert again.evaluate("document.querySelector('#c-neuron_maps .map-panel').dataset.id") == "7"
    assert again.evaluate("ES.app.charts.neuron_maps.shownEpoch") == snap[3]
    show(again, "accuracy")
    assert again.evaluate("document.getElementById('p-accuracy')._fullLayout.yaxis.type") == "log"
    assert again.errors == []
    again.page.close()


def test_user_strings_never_execute_or_become_markup(browser, reports):
    opened = open_report(browser, reports["evil"])
    draw_all(opened)
    opened.page.locator("details.repro summary").click()
    assert opened.dialogs == []
    assert opened.evaluate("window.__pwned") is None
    assert opened.evaluate("document.querySelectorAll('img').length") == 0
    assert opened.evaluate("document.querySelector('h1').textContent") == EVIL
    assert EVIL in opened.evaluate("document.title")
    legend = opened.evaluate("Array.from(document.querySelectorAll('#p-weight_norms .legendtext')).map(e => e.textContent)")
    assert EVIL2 in legend
    assert opened.evaluate("document.querySelector('#event-kinds label').textContent") == EVIL2 + " (1)"
    # no script element beyond the report's own: data, arrays, the inert plotly.js block and the
    # script started from it, the page's code
    assert opened.evaluate("document.querySelectorAll('script').length === 4 + Object.keys(ES.page.arrays).length")
    assert opened.evaluate("document.querySelectorAll('head script').length") == 1
    assert opened.evaluate("document.querySelectorAll('.js-plotly-plot svg img, .js-plotly-plot svg a').length") == 0
    assert opened.blocked == [] and opened.errors == []
    opened.page.close()


def test_metrics_only_report(browser, reports):
    opened = open_report(browser, reports["metrics"])
    draw_all(opened)
    status = opened.evaluate("Object.fromEntries(Object.values(ES.app.charts).map(c => [c.name, c.status]))")
    assert status["loss"] == "ok" and "neuron_clusters" not in status
    # What the run lacks is one collapsed line, not a box per chart.
    assert opened.page.locator(".unavailable").count() == 0
    absent = opened.page.locator("details.absent")
    assert absent.count() == 1 and "Neurons" in absent.locator("summary").inner_text()
    absent.locator("summary").click()
    assert "was not run" in absent.inner_text()
    assert not opened.page.locator("#ctl-neuron").is_visible()
    assert not opened.page.locator("#ctl-head").is_visible()
    # the sidebar stays in view while scrolling, and collapses
    opened.evaluate("window.scrollTo(0, 3000)")
    box = opened.page.locator("#sidebar").bounding_box()
    assert box["y"] == 0 and box["width"] > 150
    opened.page.locator("#sb-toggle").click()
    opened.page.wait_for_function("document.getElementById('sidebar').offsetWidth < 60")
    assert not opened.page.locator("#epoch-slider").is_visible()
    assert "sidebar=0" in opened.page.wait_for_function("location.hash.includes('sidebar=0') && location.hash").json_value()
    opened.page.locator("#sb-toggle").click()
    assert opened.page.locator("#epoch-slider").is_visible()
    assert opened.blocked == [] and opened.errors == []
    opened.page.close()


def test_shared_assets_csv_download_and_copy_as_json(browser, reports):
    opened = open_report(browser, reports["shared"])  # plotly.js from ../assets/, not inlined
    assert opened.evaluate("typeof Plotly") == "object"
    check_previews(opened, "loss")
    show(opened, "loss")
    with opened.page.expect_download() as info:
        opened.page.locator("#download-csv").click()
    csv = Path(info.value.path()).read_text().splitlines()
    header = csv[0].split(",")
    assert header[0] == "epoch" and "train_loss" in header and "test_acc" in header
    assert len(csv) == 1 + SMALL["epochs"]
    row = dict(zip(header, csv[100].split(","), strict=True))
    assert int(row["epoch"]) == 100 and float(row["train_loss"]) > 0
    opened.page.locator("#copy-json").click()
    summary = json.loads(opened.page.wait_for_function("ES.lastCopied").json_value())
    assert summary["run"] == "browser-full" and "test_loss" in summary["final"]
    assert summary["turn"]["epoch"] == SyntheticRun(**SMALL).turn
    assert "neuron_freq" in summary["analyses"]
    assert opened.blocked == [] and opened.errors == []
    opened.page.close()
