"""Notebooks: a report's charts as plotly Figures (`Bundle.chart`), built by the report's own
registry with the bundle's exact data, and a rendered report shown inline (`Report`)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import needs_chromium

from epochscope import open_bundle
from epochscope.errors import EpochscopeError
from epochscope.generator import Report, render_report
from tests.synthetic import SyntheticRun, write_synthetic_bundle

go = pytest.importorskip("plotly.graph_objects")
SMALL = dict(p=23, d_model=32, d_mlp=48, n_heads=2, epochs=1500, analysed=24, key_freqs=(3, 7, 9))
EVIL = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nb") / "run.h5"
    return write_synthetic_bundle(path, SyntheticRun(name="nb-" + EVIL.replace("/", "|"), **SMALL))


def test_line_chart_holds_the_series_exactly(bundle):
    with open_bundle(bundle) as b:
        fig = b.chart("loss")
        assert isinstance(fig, go.Figure)
        for series, label in (("train_loss", "train"), ("test_loss", "test")):
            epochs, values = b.series(series)
            trace = next(t for t in fig.data if t.name == label)
            assert trace.type == "scatter"
            np.testing.assert_array_equal(trace.x, epochs)
            np.testing.assert_array_equal(trace.y, values)  # float64, not the page's float16/thinned
        assert fig.layout.yaxis.type == "log"  # the page's default for this chart
        assert fig.layout.title.text == "Loss"


def test_heatmap_profile_and_trajectory_hold_the_artifacts(bundle):
    with open_bundle(bundle) as b:
        epochs, norms = b.artifact("fourier_weights").per_epoch("embed_basis_norms")
        hm = b.chart("fourier_embed").data[0]
        assert hm.type == "heatmap"
        np.testing.assert_array_equal(hm.x, epochs)
        np.testing.assert_allclose(np.asarray(hm.z), np.asarray(norms, dtype=np.float64).T)

        e_sv, sv = b.artifact("effective_dim").per_epoch("singular_values")
        at = int(e_sv[len(e_sv) // 2])
        prof = b.chart("singular_values", epoch=at)
        row = np.asarray(sv[len(e_sv) // 2], dtype=np.float64).reshape(-1, np.shape(sv)[-1])[0]
        first = np.asarray(prof.data[0].y)
        np.testing.assert_allclose(first, row[: len(first)])
        assert f"epoch {at}" in prof.layout.annotations[-1].text

        e_pca, pcs = b.artifact("trajectory").per_epoch("pca")
        traj = b.chart("pca_12")
        np.testing.assert_allclose(np.asarray(traj.data[1].x), np.asarray(pcs, dtype=np.float64)[:, 0])
        np.testing.assert_array_equal(traj.data[1].customdata, e_pca)


def test_figures_follow_the_page(bundle):
    """Every chart of the page drawn with plotly traces comes as a Figure with traces; the
    others (canvas maps, tables) say so and name the charts that do."""
    with open_bundle(bundle) as b:
        names = b.chart_names()
        assert names[:2] == ["loss", "accuracy"]
        for name in names:
            try:
                fig = b.chart(name)
            except EpochscopeError as exc:
                assert "which only the report page draws" in str(exc) and "loss" in str(exc)
                continue
            assert isinstance(fig, go.Figure) and fig.data, name
        with pytest.raises(EpochscopeError, match="only the report page draws"):
            b.chart("neuron_maps")


def test_unknown_chart_lists_the_names(bundle):
    with open_bundle(bundle) as b, pytest.raises(EpochscopeError) as info:
        b.chart("lossy")
    message = str(info.value)
    assert "no chart 'lossy'" in message and "loss, accuracy" in message and "\n" not in message


def test_user_strings_stay_text_in_figures(tmp_path):
    from epochscope.archives import BundleWriter, Segment

    path = tmp_path / "evil.h5"
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {"name": "evil"}, "seeds": {}},
                        metrics={"train_loss": (np.arange(1, 6), np.linspace(2, 1, 5)),
                                 EVIL.replace("/", "|"): (np.arange(1, 6), np.arange(5.0))},
                        events=[{"epoch": 2, "kind": EVIL, "message": EVIL, "payload": {}}]))
        w.consolidate()
    with open_bundle(path) as b:
        texts = []
        for name in b.chart_names():
            try:
                fig = b.chart(name)
            except EpochscopeError:
                continue
            texts += [str(t.name) for t in fig.data] + [str(t.text) for t in fig.data] + [str(t.hovertemplate)
                                                                                         for t in fig.data]
        assert any("&lt;img" in t for t in texts)
        assert not any("<img" in t or "<script" in t for t in texts)


def test_archives_do_not_import_the_generator():
    code = ("import sys, epochscope; from epochscope.archives import open_bundle; "
            "print(any(m.startswith('epochscope.generator') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------ a rendered report

def test_render_report_returns_a_path_shown_inline(bundle, tmp_path):
    report = render_report(bundle, tmp_path / "r.html")
    assert isinstance(report, Report) and isinstance(report, Path) and report.exists()
    shown = report._repr_html_()
    m = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" style="[^"]*" title="r\.html"></iframe>', shown)
    assert m, shown[:200]
    assert "<" not in m.group(1)  # the page is all escaped inside the attribute
    assert html.unescape(m.group(1)) == report.read_text(encoding="utf-8")


@pytest.mark.browser
@needs_chromium
def test_inline_report_draws_in_its_iframe(browser, bundle, tmp_path):
    report = render_report(bundle, tmp_path / "r.html")
    host = tmp_path / "notebook.html"
    host.write_text("<!DOCTYPE html><html><body><h1>notebook</h1>" + report._repr_html_() + "</body></html>",
                    encoding="utf-8")
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(host.as_uri())
    frame = page.frames[1]
    frame.wait_for_function("window.ES && ES.app && ES.app.stats.firstInteractive !== null", timeout=30000)
    assert frame.evaluate("!!document.querySelector('#c-loss .main-svg')")
    assert page.evaluate("typeof window.ES") == "undefined"  # the page runs in its own document
    assert not errors, errors
    assert requests == [host.as_uri()]
    page.close()
