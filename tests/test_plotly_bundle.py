"""The vendored partial plotly.js: what it is, where it goes, and that every chart of a
report with every analysis still draws with it (real chromium, no console errors)."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest
from browser_helpers import draw_all, needs_chromium, open_report

from epochscope.errors import EpochscopeError
from epochscope.generator import render_report
from epochscope.generator.html import (
    PARTIAL_PLOTLY_VERSION,
    plotly_js,
    plotly_packed,
    write_shared_plotly,
)
from tests.synthetic import SyntheticRun, write_synthetic_bundle

VENDORED_SHA256 = "e0aff79a9023b4dd23b71170f8722eb23a4278d9c9d628e1e9d0537c600d7a30"
SMALL = dict(p=23, d_model=32, d_mlp=48, n_heads=2, epochs=1500, analysed=24, key_freqs=(3, 7, 9))


def test_vendored_bundle_is_the_published_file_with_its_licence():
    vendor = resources.files("epochscope.templates").joinpath("vendor")
    data = vendor.joinpath(f"plotly-partial-{PARTIAL_PLOTLY_VERSION}.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == VENDORED_SHA256  # see templates/vendor/README.md
    assert data.startswith(f"/**\n* plotly.js (epochscope partial: scatter, bar, heatmap - minified) "
                           f"v{PARTIAL_PLOTLY_VERSION}".encode())
    assert "MIT License" in vendor.joinpath("plotly-LICENSE.txt").read_text()
    assert PARTIAL_PLOTLY_VERSION in vendor.joinpath("README.md").read_text()
    # a third of the full bundle
    assert len(plotly_js("partial")) < 0.4 * len(plotly_js("full"))


def test_partial_by_default_full_on_request(tmp_path):
    bundle = write_synthetic_bundle(tmp_path / "run.h5", SyntheticRun(name="r", analyses=(), **SMALL))
    partial = render_report(bundle, tmp_path / "partial.html").read_text()
    full = render_report(bundle, tmp_path / "full.html", plotly="full").read_text()
    # inlined deflated (the page inflates it); the shared file stays plain
    assert plotly_packed("partial") in partial and plotly_packed("full") not in partial
    assert plotly_packed("full") in full
    with pytest.raises(EpochscopeError, match="unknown plotly bundle 'gl3d'"):
        render_report(bundle, tmp_path / "x.html", plotly="gl3d")
    assert not (tmp_path / "x.html").exists()


def test_shared_assets_keep_one_file_per_bundle(tmp_path):
    a = write_shared_plotly(tmp_path / "assets", tmp_path / "runs", "partial")
    b = write_shared_plotly(tmp_path / "assets", tmp_path / "runs", "full")
    assert a == f"../assets/plotly-partial-{PARTIAL_PLOTLY_VERSION}.min.js" and a != b
    assert (tmp_path / "assets" / a.split("/")[-1]).read_text() == plotly_js("partial")


def test_cli_and_site_take_the_option(tmp_path):
    from click.testing import CliRunner

    from epochscope.cli import main

    def cli(*args):
        return CliRunner().invoke(main, list(args))

    (tmp_path / "runs").mkdir()
    bundle = write_synthetic_bundle(tmp_path / "runs" / "r.h5", SyntheticRun(name="r", analyses=(), **SMALL))
    res = cli("report", str(bundle), "-o", str(tmp_path / "r.html"), "--plotly", "full")
    assert res.exit_code == 0, res.output
    assert plotly_packed("full") in (tmp_path / "r.html").read_text()
    res = cli("build", str(tmp_path / "runs"), "-o", str(tmp_path / "site"), "--plotly", "full")
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "site" / "assets").iterdir() if "partial" in p.name] == []
    res = cli("build", str(tmp_path / "runs"), "-o", str(tmp_path / "site"))
    assert "rendered" in res.output and res.exit_code == 0  # switching bundles re-renders the pages
    html = (tmp_path / "site" / "runs" / "r.html").read_text()
    assert "plotly-partial-" in html


@pytest.mark.browser
@needs_chromium
def test_every_chart_draws_with_the_partial_bundle(browser, tmp_path):
    """Every chart of a report with every analysis, drawn by the partial bundle: each trace's
    type is registered (plotly would drop an unknown one), same traces as with the full one."""
    bundle = write_synthetic_bundle(tmp_path / "full.h5", SyntheticRun(name="all-charts", **SMALL))
    seen = {}
    for kind in ("partial", "full"):
        page = render_report(bundle, tmp_path / f"{kind}.html", plotly=kind)
        opened = open_report(browser, page, viewport=(1400, 900))
        draw_all(opened)
        charts = opened.evaluate("""() => Object.values(ES.app.charts).filter(c => c.status === 'ok').map(c => {
            const gds = Array.from(c.card.querySelectorAll('.js-plotly-plot'));
            return {name: c.name, kind: c.kind, plots: gds.length, rows: c.card.querySelectorAll('tbody tr').length,
                    asked: gds.flatMap(g => g.data.map(t => t.type || 'scatter')),
                    drawn: gds.flatMap(g => g._fullData.filter(t => t.visible !== false).map(t => t.type)),
                    canvases: c.card.querySelectorAll('canvas').length};
        })""")
        modules = opened.evaluate("Object.keys(Plotly.PlotSchema.get().traces)")
        assert not opened.errors, opened.errors
        assert not opened.blocked
        opened.page.close()
        assert charts
        for c in charts:
            if c["kind"] in ("table", "events"):  # HTML tables, no plotly.js
                assert c["rows"] > 0, c
                continue
            assert c["plots"] > 0 or c["canvases"] > 0, c
            assert c["asked"] == c["drawn"], c  # no trace fell back or vanished
            assert set(c["asked"]) <= set(modules), c
        seen[kind] = {c["name"]: c["drawn"] for c in charts}
        if kind == "partial":
            assert "heatmap" in modules and "scatter3d" not in modules
    assert seen["partial"] == seen["full"]
    assert {t for ts in seen["partial"].values() for t in ts} >= {"scatter", "heatmap"}
