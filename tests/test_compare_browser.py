"""The comparison page in a real browser (Debian chromium, headless): offline, no console
errors, every chart draws, every help opens, the table sorts, the x-axis switch moves the
data and lives in the URL hash, links lead to the run reports, user strings stay text."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import check_previews, needs_chromium, open_report, open_run_list, settle, show

from epochscope.generator.compare import render_compare
from tests.compare_synthetic import (
    VariantSpec,
    sweep_specs,
    write_sweep,
    write_variant,
)
from tests.synthetic import ALL_ANALYSES

pytestmark = [pytest.mark.browser, needs_chromium]

SHAPE = dict(d_model=32, d_mlp=48, n_heads=2, epochs=1200, analysed=20)
EVIL = "</script><script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=1\">"
HEADINGS = ("What it shows.", "How to read it.", "How it is computed.", "Typical.", "Anomalous.")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    specs = sweep_specs(5, primes=(17, 19, 23), anomalous=2, shape=SHAPE)
    paths = write_sweep(tmp / "runs", specs)
    site = tmp / "site"
    links = {}
    for p in paths:  # stand-in run reports the table links to
        report = site / "runs" / f"{p.stem}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(f"<!DOCTYPE html><title>{p.stem}</title><h1>report of {p.stem}</h1>")
        links[str(p)] = f"../runs/{p.stem}.html"
    (site / "index.html").write_text("<!DOCTYPE html><title>index</title>")
    no_turn = write_variant(tmp / "runs" / "noturn.h5", VariantSpec(
        EVIL, 19, 5, 0.4, False, dict(SHAPE, analyses=tuple(a for a in ALL_ANALYSES if a != "turn"))))
    return {
        "sweep": render_compare(paths, site / "compare" / "sweep.html", nav=[("All runs", "../index.html")],
                                links=links, shared_assets=site / "assets"),
        "pair": render_compare([paths[0], no_turn], tmp / "pair.html"),
    }


def x_data(opened, chart: str, trace: int = 0) -> list[float]:
    return opened.evaluate("([n, i]) => Array.from(document.getElementById('p-' + n).data[i].x).slice(0, 5)",
                           [chart, trace])


def test_offline_every_chart_draws_and_every_help_opens(browser, pages):
    opened = open_report(browser, pages["sweep"], viewport=(1400, 12000))
    opened.page.wait_for_function(
        "Object.values(ES.app.charts).every(c => c.status !== 'ok' || c.card.dataset.drawn)", timeout=30000)
    settle(opened)
    charts = opened.evaluate("""() => Object.values(ES.app.charts).map(c => ({name: c.name, status: c.status,
        drawn: c.card.dataset.drawn, svg: !!c.card.querySelector('.main-svg'), traces: Number(c.card.dataset.traces)}))""")
    ok = [c for c in charts if c["status"] == "ok"]
    assert len(ok) >= 12, charts
    for c in ok:
        assert c["drawn"] not in (None, "error") and c["svg"] and c["traces"] > 0, c
    helps = opened.evaluate("""() => Array.from(document.querySelectorAll('.help-btn')).map(b => {
        const body = document.getElementById(b.getAttribute('aria-controls'));
        const closed = body.hidden; b.click(); const open = !body.hidden && body.offsetHeight > 0;
        const text = body.innerText; b.click();
        return {card: b.closest('[data-chart]').dataset.chart, closed, open, text, after: body.hidden}; })""")
    assert {h["card"] for h in helps} == {c["name"] for c in charts} | {"summary", "seed_variance"}
    for h in helps:
        assert h["closed"] and h["open"] and h["after"], h["card"]
        assert all(heading in h["text"] for heading in HEADINGS), h["card"]
    summary_help = next(h for h in helps if h["card"] == "summary")["text"]
    assert "1.4826" in summary_help and "3.5" in summary_help
    # the planted outlier stands out in the table
    flagged = opened.evaluate("""() => Array.from(document.querySelectorAll('#summary tbody tr')).map(tr =>
        [tr.dataset.v, tr.querySelectorAll('td.flag').length])""")
    assert max(flagged, key=lambda r: r[1])[0] == "2" and dict(flagged)["2"] >= 5
    assert opened.blocked == [] and opened.errors == []
    opened.page.close()


def test_sorting_the_table_and_hiding_variants(browser, pages):
    opened = open_report(browser, pages["sweep"])
    first = opened.evaluate("document.querySelector('.chart-card[data-status=ok]').dataset.chart")
    check_previews(opened, first)  # the first paint comes before plotly.js runs
    order = "() => Array.from(document.querySelectorAll('#summary tbody tr')).map(tr => Number(tr.dataset.v))"
    values = """(col) => { const i = Array.from(document.querySelectorAll('#summary thead th'))
        .findIndex(th => th.dataset.col === col);
        return Array.from(document.querySelectorAll('#summary tbody tr')).map(tr => tr.children[i].dataset.sort); }"""
    assert opened.evaluate(order) == [0, 1, 2, 3, 4]
    opened.page.click("th[data-col=grok_speed] .sort-btn")
    got = [float(v) for v in opened.evaluate(values, "grok_speed")]
    assert got == sorted(got)
    assert opened.page.get_attribute("th[data-col=grok_speed]", "aria-sort") == "ascending"
    opened.page.click("th[data-col=grok_speed] .sort-btn")
    got = [float(v) for v in opened.evaluate(values, "grok_speed")]
    assert got == sorted(got, reverse=True) and opened.evaluate(order)[0] == 2  # the slow grokker first
    assert "sort=grok_speed:desc" in opened.evaluate("location.hash")
    opened.page.click("th[data-col=variant] .sort-btn")
    names = opened.evaluate("() => Array.from(document.querySelectorAll('#summary tbody th')).map(th => th.dataset.sort)")
    assert names == sorted(names)
    # the run list hides a run on every chart: p17's group of two becomes the one run's line
    show(opened, "loss")
    assert opened.evaluate("document.getElementById('c-loss').dataset.bands") == "4"  # p17, p19 x train, test
    open_run_list(opened)
    opened.page.uncheck("#run-list input[data-v='1']")
    settle(opened)
    assert opened.evaluate("document.getElementById('c-loss').dataset.bands") == "2"
    assert opened.evaluate("ES.app.groups().map(g => g.members)") == [[0], [2, 3], [4]]
    assert "hide=1" in opened.evaluate("location.hash")
    assert "1 hidden" in opened.page.inner_text("#runs-summary")
    assert opened.errors == []
    opened.page.close()


def test_alignment_toggle_moves_the_x_data_and_lives_in_the_hash(browser, pages):
    opened = open_report(browser, pages["sweep"], hash="#g=p,model_seed")  # every run its own line
    show(opened, "loss")
    turn = opened.evaluate("ES.page.variants[document.getElementById('p-loss').data[0].esRun].turn")
    raw = x_data(opened, "loss")
    opened.page.click("button.seg-btn[data-align=turn]")
    settle(opened)
    shifted = x_data(opened, "loss")
    assert shifted == [x - turn for x in raw]
    assert "x=turn" in opened.evaluate("location.hash")
    assert opened.page.get_attribute("button.seg-btn[data-align=turn]", "aria-pressed") == "true"
    # log toggle and option choice go to the hash too
    opened.page.click("button.scale-btn[data-chart=loss]")
    settle(opened)
    assert opened.evaluate("document.getElementById('p-loss')._fullLayout.yaxis.type") == "linear"
    url = opened.evaluate("location.href")
    assert "x=turn" in url and "logy=" in url and "loss" not in url.split("logy=")[1].split("&")[0]
    opened.page.close()
    # a copied link reopens the same view
    again = open_report(browser, pages["sweep"], hash="#" + url.split("#", 1)[1])
    show(again, "loss")
    assert x_data(again, "loss") == shifted
    assert again.evaluate("document.getElementById('p-loss')._fullLayout.yaxis.type") == "linear"
    assert again.errors == []
    again.page.close()


def test_links_lead_to_the_run_reports_and_the_site(browser, pages):
    opened = open_report(browser, pages["sweep"])
    assert opened.page.get_attribute(".page-nav a", "href") == "../index.html"
    link = opened.page.locator("#summary tbody tr[data-v='3'] a.run-link")
    turn = opened.evaluate("ES.page.variants[3].turn")
    assert link.get_attribute("href") == f"../runs/p19-s999.html#epoch={turn}"  # the report opens at the turn
    link.click()
    opened.page.wait_for_load_state()
    assert opened.page.url.endswith(f"/site/runs/p19-s999.html#epoch={turn}")
    assert opened.page.inner_text("h1") == "report of p19-s999"
    assert opened.blocked == []
    opened.page.close()


def test_unalignable_variant_is_listed_and_user_strings_stay_text(browser, pages):
    opened = open_report(browser, pages["pair"], hash="#x=turn")
    show(opened, "loss")
    note = opened.evaluate("document.querySelector('#c-loss .align-note').innerText")
    assert "Not alignable (no turn)" in note and EVIL in note and "turn analysis was not run" in note
    assert opened.evaluate("document.getElementById('p-loss').data.length") == 2  # only the alignable run
    show(opened, "difference")
    assert "Not alignable (no turn)" in opened.evaluate("document.querySelector('#c-difference .align-note').innerText")
    assert EVIL in opened.evaluate("document.querySelector('#summary tbody').innerText")
    assert opened.evaluate("window.__pwned") is None and opened.dialogs == []
    assert opened.evaluate("document.querySelectorAll('img[src=x]').length") == 0
    assert "Not comparable" in opened.page.inner_text("#not-comparable")
    assert opened.errors == [] and opened.blocked == []
    opened.page.close()
