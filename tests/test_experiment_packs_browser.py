"""The evolution and apoptosis reports in headless chromium with the network blocked: every
section of the pack has drawn charts with something on them, no console error, and the
hostile strings of a Recorder-made bundle stay text (no element, no dialog)."""

from __future__ import annotations

import pytest

from epochscope.generator import render_report
from epochscope.generator.packs import load_packs
from tests.browser_helpers import draw_all, needs_chromium, open_report, show
from tests.test_experiment_packs import HOSTILE, apoptosis_bundle, evolution_bundle, hostile_bundle

pytestmark = [needs_chromium, pytest.mark.browser]

# What each drawn card holds: Plotly lines, points, heatmap images, bars, table rows.
CONTENT = """() => Array.from(document.querySelectorAll('.chart-card')).map(card => {
  const plot = card.querySelector('.plot');
  const lines = Array.from(plot.querySelectorAll('.scatterlayer path.js-line'))
    .filter(p => (p.getAttribute('d') || '').length > 10).length;
  const points = plot.querySelectorAll('.scatterlayer path.point').length;
  const images = plot.querySelectorAll('.heatmaplayer image, image').length;
  const bars = plot.querySelectorAll('.barlayer path').length;
  const rows = plot.querySelectorAll('tbody tr').length;
  return {name: card.dataset.chart, group: card.closest('section') ? card.closest('section').id : '',
          drawn: card.dataset.drawn || '', content: lines + points + images + bars + rows, lines: lines,
          points: points, images: images, bars: bars, rows: rows};
})"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("packs")
    return {"evolution": render_report(evolution_bundle(tmp / "evo.h5"), tmp / "evo.html"),
            "apoptosis": render_report(apoptosis_bundle(tmp / "apo.h5", "standard"), tmp / "apo.html"),
            "hostile": render_report(hostile_bundle(tmp / "h.h5"), tmp / "h.html")}


def _drawn(browser, html):
    opened = open_report(browser, html)
    draw_all(opened)
    cards = {c["name"]: c for c in opened.evaluate(CONTENT)}
    assert not opened.blocked and not opened.errors and not opened.dialogs, (opened.blocked, opened.errors)
    return opened, cards


@pytest.mark.parametrize("pack", ["evolution", "apoptosis"])
def test_every_pack_section_draws(browser, reports, pack):
    opened, cards = _drawn(browser, reports[pack])
    sections = next(p for p in load_packs() if p.name == pack).sections
    for section in sections:
        for name in section.charts:
            assert name in cards, f"{section.title}: {name} has no card"
            assert cards[name]["drawn"] not in ("", "error") and cards[name]["content"] > 0, cards[name]
    assert opened.evaluate("document.querySelectorAll('.unavailable').length") == 0
    if pack == "evolution":
        assert cards["evo_architecture"]["bars"] >= 3  # stacked bars, one per activation present
        assert cards["evo_loss"]["points"] >= 1  # the switch diamonds
        # Hover text of a switch names from -> to (Plotly got it as data, lines joined with <br>).
        text = opened.evaluate("document.getElementById('p-evo_loss').data.find(t => t.name.startsWith("
                               "'activation switches')).text[0]")
        assert "→" in text and "<br>" in text and "fitness" in text
    else:
        assert cards["apo_age_histogram"]["images"] >= 1 and cards["apo_lineage"]["images"] >= 1
        # The maps follow the selected checkpoint.
        opened.evaluate("ES.app.setEpoch(12)")
        show(opened, "apo_fitness")
        assert opened.evaluate("ES.app.charts['apo_fitness'].shownEpoch") == 12
    opened.page.close()


def test_hostile_strings_stay_text(browser, reports):
    opened, cards = _drawn(browser, reports["hostile"])
    assert opened.evaluate("document.querySelectorAll('img[src=x], .plot script').length") == 0
    table = opened.evaluate("document.querySelector('#c-evo_candidates tbody').innerText")
    assert HOSTILE in table  # shown, as text
    legend = opened.evaluate("Array.from(document.querySelectorAll('#c-evo_architecture .legendtext'))"
                             ".map(n => n.textContent)")
    assert HOSTILE in legend
    assert cards["samples_by_checkpoint"]["rows"] == 1
    opened.page.close()
