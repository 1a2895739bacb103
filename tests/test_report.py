"""Report generation without a browser: encodings, layouts, help texts, bad input, the file
written (self-contained, compact, escaped)."""

from __future__ import annotations

import base64
import json
import os
import re
import zlib
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import needs_chromium

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment, open_bundle
from epochscope.errors import EpochscopeError
from epochscope.generator import known_charts, load_layout, render_report
from epochscope.generator.encode import ArrayStore, script_json
from epochscope.generator.help import HELP
from epochscope.generator.html import plotly_packed
from epochscope.generator.render import plotly_js
from tests.synthetic import SyntheticRun, write_synthetic_bundle

SMALL = dict(p=23, d_model=32, d_mlp=48, n_heads=2, epochs=1500, analysed=24, key_freqs=(3, 7, 9))


@pytest.fixture(scope="module")
def full_bundle(tmp_path_factory) -> Path:
    return write_synthetic_bundle(tmp_path_factory.mktemp("full") / "run.h5", SyntheticRun(name="small", **SMALL))


@pytest.fixture(scope="module")
def full_report(full_bundle, tmp_path_factory) -> Path:
    return render_report(full_bundle, tmp_path_factory.mktemp("out") / "report.html")


def page_data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="es-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(block)


def decode(html: str, meta: dict, aid: str) -> np.ndarray:
    """What the page's decoder computes, in numpy (checks the encodings end to end)."""
    if meta["enc"] == "range":
        return meta["start"] + meta["step"] * np.arange(meta["n"])
    raw = base64.b64decode(re.search(rf'id="{aid}">([^<]*)</script>', html).group(1))
    if meta.get("z"):
        raw = zlib.decompress(raw, -15)
    kind = {"f32": "<f4", "f16": "<f2", "u8": "u1", "u16": "<u2", "i32": "<i4", "u8q": "u1"}[meta["enc"]]
    arr = np.frombuffer(raw, dtype=kind).astype(np.float64)
    if meta.get("d"):  # codes stored as the change from the previous row (epoch), modulo 256
        rows = np.frombuffer(raw, dtype="u1").reshape(meta["shape"][0], -1)
        arr = (np.cumsum(rows, axis=0, dtype=np.int64) % 256).ravel().astype(np.float64)
    if meta["enc"] == "u8q":
        lo, hi = np.repeat(meta["lo"], arr.size // len(meta["lo"])), np.repeat(meta["hi"], arr.size // len(meta["hi"]))
        arr = np.where(arr == 255, np.nan, lo + arr * (hi - lo) / 254)
    return arr.reshape(meta["shape"])


# ------------------------------------------------------------------------------- encodings

def test_script_json_cannot_close_the_block():
    text = script_json({"name": "</script><img src=x onerror=alert(1)>", "sep": "a\u2028b\u2029c", "amp": "&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text)["name"] == "</script><img src=x onerror=alert(1)>"


def test_float16_only_where_precise_enough():
    store = ArrayStore()
    smooth = store.add_float(np.linspace(1, 2, 1000))
    assert store.arrays[smooth["$a"]].meta["enc"] == "f16"
    tiny = store.add_float(np.geomspace(1e-9, 1, 1000), floor=0.0)  # would underflow float16
    assert store.arrays[tiny["$a"]].meta["enc"] == "f32"
    big = store.add_float(np.array([1e6, 2e6]))
    assert store.arrays[big["$a"]].meta["enc"] == "f32"
    exact = store.add_float(np.linspace(1, 2, 1000), rtol=0.0)
    assert store.arrays[exact["$a"]].meta["enc"] == "f32"


def test_identical_arrays_are_stored_once_and_ranges_take_no_payload():
    store = ArrayStore()
    a = store.add_int(np.arange(0, 5000, 5))
    b = store.add_int(np.arange(0, 5000, 5))
    assert a == b and len(store.arrays) == 1
    assert store.arrays[a["$a"]].meta == {"enc": "range", "start": 0, "step": 5, "n": 1000}


def test_quantised_maps_round_trip_within_one_level():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 4, 10, 10)) * np.array([1, 10, 100])[:, None, None, None]
    maps[0, 0, 0, 0] = np.nan
    store = ArrayStore()
    ref = store.add_quantized(maps, lead=2)
    enc = store.arrays[ref["$a"]]
    html = f'<script id="{enc.id}">{enc.payload}</script>'
    back = decode(html, enc.meta, enc.id)
    assert np.isnan(back[0, 0, 0, 0])
    span = maps.reshape(12, -1)
    span = (np.nanmax(span, 1) - np.nanmin(span, 1)).reshape(3, 4, 1, 1)
    assert np.nanmax(np.abs(back - maps) / span) <= 0.5 / 254 + 1e-6


def _slow_maps() -> np.ndarray:
    """Maps that change a little from one epoch to the next (as trained neurons' do)."""
    grid = np.linspace(0, 2 * np.pi, 24)
    base = np.cos(3 * grid[:, None] + 5 * grid[None, :])
    return np.stack([[base * (1 + 0.01 * e) + 0.02 * np.sin(e + m) for m in range(3)] for e in range(30)])


def test_slowly_changing_maps_travel_as_changes_and_round_trip():
    maps = _slow_maps()
    store = ArrayStore()
    enc = store.arrays[store.add_quantized(maps, lead=2)["$a"]]
    assert enc.meta.get("d") == 1  # each epoch as its change from the previous one: smaller
    plain = ArrayStore()
    plain.row_deltas = False
    assert enc.size < 0.8 * plain.arrays[plain.add_quantized(maps, lead=2)["$a"]].size
    back = decode(f'<script id="{enc.id}">{enc.payload}</script>', enc.meta, enc.id)
    span = maps.reshape(90, -1)
    span = (span.max(1) - span.min(1)).reshape(30, 3, 1, 1)
    assert np.max(np.abs(back - maps) / span) <= 0.5 / 254 + 1e-6
    noise = np.random.default_rng(1).normal(size=(30, 3, 24, 24))  # no gain: stored as they are
    assert "d" not in store.arrays[store.add_quantized(noise, lead=2)["$a"]].meta


@pytest.mark.browser
@needs_chromium
def test_page_decoder_undoes_the_changes(browser, tmp_path):
    """templates/report_decode.js decodes a change-coded array to what numpy decodes."""
    from importlib import resources

    maps = _slow_maps()
    store = ArrayStore()
    enc = store.arrays[store.add_quantized(maps, lead=2)["$a"]]
    assert enc.meta.get("d") == 1
    js = resources.files("epochscope.templates").joinpath("report_decode.js").read_text()
    page = tmp_path / "decode.html"
    page.write_text(f'<!DOCTYPE html><html><body><script type="application/octet-stream" id="{enc.id}">'
                    f"{enc.payload}</script><script>{js}</script></body></html>", encoding="utf-8")
    tab = browser.new_page()
    tab.goto(page.as_uri())
    got = tab.evaluate("(m) => new ES.ArrayStore(m).load(Object.keys(m)[0]).then((a) => Array.from(a.data))",
                       {enc.id: enc.meta})
    tab.close()
    html = f'<script id="{enc.id}">{enc.payload}</script>'
    np.testing.assert_allclose(np.asarray(got), decode(html, enc.meta, enc.id).ravel(), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------- layouts and help

def test_every_chart_has_complete_help():
    """One data file per chart beside the templates, with all five parts, each substantial."""
    from importlib import resources

    folder = resources.files("epochscope.templates").joinpath("help")
    for name in known_charts():
        assert folder.joinpath(f"{name}.toml").is_file(), f"chart {name} has no help file"
        assert name in HELP, f"chart {name}: help file incomplete"
        sections = HELP[name].sections()
        assert [h for h, _ in sections] == ["What it shows", "How to read it", "How it is computed", "Typical",
                                            "Anomalous"]
        for heading, text in sections:
            assert len(text) > 40, f"help of {name}: '{heading}' is too short"


def test_an_incomplete_help_file_is_refused(tmp_path, monkeypatch):
    from epochscope.generator import help as help_mod

    (tmp_path / "help").mkdir()
    (tmp_path / "help" / "mine.toml").write_text('what = "x"\nread = "y"\n')
    monkeypatch.setattr(help_mod.resources, "files", lambda _pkg: tmp_path)
    help_mod._load.cache_clear()
    try:
        with pytest.raises(KeyError, match="lacks computed, typical, anomalous"):
            help_mod.HELP["mine"]
        assert "mine" not in help_mod.HELP and "nothing" not in help_mod.HELP
    finally:
        help_mod._load.cache_clear()


def test_default_layout_places_every_chart_once():
    layout = load_layout()
    assert sorted(layout.charts) == sorted(known_charts())


def test_unknown_chart_in_layout_lists_known_ones(tmp_path):
    bad = tmp_path / "layout.toml"
    bad.write_text('[[group]]\ntitle = "Mine"\ncharts = ["loss", "lossy"]\n')
    with pytest.raises(EpochscopeError, match="unknown chart 'lossy'.*known charts: loss, accuracy"):
        load_layout(bad)


@pytest.mark.parametrize("text, message", [
    ('[[group]]\ntitle = "A"\ncharts = ["loss"]\n[[group]]\ntitle = "B"\ncharts = ["loss"]\n', "appears twice"),
    ("[[group]\n", "not valid TOML"),
    ('title = "x"\n', "unknown top-level key"),
    ('[[group]]\ncharts = ["loss"]\n', "needs a title"),
    ('[[group]]\ntitle = "A"\ncharts = ["loss"]\ncolour = "red"\n', "unknown key"),
])
def test_bad_layouts_are_one_line_errors(tmp_path, text, message):
    bad = tmp_path / "layout.toml"
    bad.write_text(text)
    with pytest.raises(EpochscopeError, match=message) as info:
        load_layout(bad)
    assert "\n" not in str(info.value)


def test_custom_layout_shapes_the_page(full_bundle, tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[[group]]\ntitle = "Just the loss"\ncharts = ["loss", "neuron_clusters"]\n')
    html = render_report(full_bundle, tmp_path / "r.html", layout=mine).read_text()
    assert set(page_data(html)["charts"]) == {"loss", "neuron_clusters"}
    assert "Just the loss" in html and 'id="c-accuracy"' not in html


def test_missing_layout_file(full_bundle, tmp_path):
    with pytest.raises(EpochscopeError, match="cannot read layout"):
        render_report(full_bundle, tmp_path / "r.html", layout=tmp_path / "nope.toml")


# ------------------------------------------------------------------------------- the file

def test_report_is_self_contained(full_report):
    html = full_report.read_text()
    assert html.count(plotly_packed()) == 1  # plotly.js inlined exactly once (deflated, the page inflates it)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(?!data:)", html, re.I)
    assert "default-src 'none'" in html and "connect-src 'none'" in html
    assert not re.search(r"https?://(?!www\.w3\.org)", html.replace(plotly_packed(), ""))


def test_report_embeds_data_compactly(full_report, full_bundle):
    html = full_report.read_text()
    data = page_data(html)
    # no number lists of any length in the JSON: arrays travel as typed arrays
    assert not re.search(r"\[(-?[\d.e+-]+,){200,}", json.dumps(data["charts"]))
    with open_bundle(full_bundle) as b:
        epochs, values = b.series("test_loss")
    ref = next(s for s in data["series"] if s["name"] == "test_loss")
    back = decode(html, data["arrays"][ref["y"]["$a"]], ref["y"]["$a"])
    assert np.allclose(back, values, rtol=1e-6)  # losses keep float32
    assert np.array_equal(decode(html, data["arrays"][ref["x"]["$a"]], ref["x"]["$a"]), epochs)


def test_every_chart_of_a_full_bundle_is_available(full_report):
    data = page_data(full_report.read_text())
    missing = {n: c for n, c in data["charts"].items() if c["status"] != "ok"}
    assert not missing
    assert data["limits"] == {"neuron": SMALL["d_mlp"], "head": SMALL["n_heads"]}


def test_metrics_only_bundle_names_what_is_missing(tmp_path):
    bundle = write_synthetic_bundle(tmp_path / "m.h5", SyntheticRun(name="metrics-only", analyses=(), **SMALL))
    html = render_report(bundle, tmp_path / "m.html").read_text()
    data = page_data(html)
    ok = {n for n, c in data["charts"].items() if c["status"] == "ok"}
    assert {"loss", "accuracy", "optimizer", "velocity", "weight_norms"} <= ok
    assert "analysis 'neuron_freq' was not run" in unescape(html)
    # What is absent is one collapsed line, never a box per chart.
    assert html.count('class="unavailable-list absent"') == 1 and "Not in this run: " in html
    assert not {"neuron_clusters", "fourier_embed", "attention"} & set(data["charts"])
    absent = {a["what"] for a in data["absent"]}
    assert {"Neurons", "Attention heads", "Fourier structure of the embeddings"} <= absent
    assert data["snapLabel"] == "checkpoints"


def test_nan_series_say_no_data(tmp_path):
    run = SyntheticRun(name="nan", analyses=(), nan_series=("train_acc", "test_acc"), **SMALL)
    html = render_report(write_synthetic_bundle(tmp_path / "n.h5", run), tmp_path / "n.html").read_text()
    data = page_data(html)
    assert "accuracy" not in data["charts"]
    assert {"what": "Training curves: Accuracy", "reason": "no data: 'train_acc', 'test_acc' hold only NaN/inf"} \
        in data["absent"]
    assert "no data: 'train_acc', 'test_acc' hold only NaN/inf" in unescape(html)
    assert data["charts"]["loss"]["status"] == "ok"


def _write(path: Path, **segment) -> Path:
    with BundleWriter(path, create=True) as w:
        w.write(Segment(**segment))
        w.consolidate()
    return path


def test_artifacts_on_different_epochs(tmp_path):
    rng = np.random.default_rng(1)
    e1, e2 = np.array([0, 10, 20, 30]), np.array([5, 25])
    frac = rng.dirichlet(np.ones(5), size=(4, 6)).astype(np.float32)
    bundle = _write(
        tmp_path / "e.h5",
        context={"config": {"name": "mismatch"}},
        metrics={"test_loss": (np.arange(40), np.linspace(4, 0.1, 40))},
        artifacts={"neuron_freq": ArtifactUpdate("1", e1, {"frac_explained": frac}),
                   "neuron_maps": ArtifactUpdate("1", e2, {"heatmaps": rng.random((2, 3, 11, 11))},
                                                 summary={"neurons": np.array([0, 2, 5])})},
    )
    html = render_report(bundle, tmp_path / "e.html").read_text()
    data = page_data(html)
    assert data["charts"]["neuron_clusters"]["status"] == "ok"
    assert data["charts"]["neuron_maps"]["status"] == "ok"
    assert decode(html, data["arrays"][data["snap"]["$a"]], data["snap"]["$a"]).tolist() == [0, 5, 10, 20, 25, 30]


def test_malformed_artifact_is_unavailable_not_a_crash(tmp_path):
    bundle = _write(
        tmp_path / "bad.h5",
        metrics={"train_loss": (np.arange(5), np.ones(5))},
        artifacts={"neuron_freq": ArtifactUpdate("1", np.array([0, 1]), {"frac_explained": np.ones((2, 3))}),
                   "trajectory": ArtifactUpdate("1", np.array([0, 1]), {"pca": np.full((2, 3), np.nan)})},
    )
    data = page_data(render_report(bundle, tmp_path / "bad.html").read_text())
    assert "neuron_clusters" not in data["charts"] and "pca_12" not in data["charts"]
    absent = " ".join(a["what"] + ": " + a["reason"] for a in data["absent"])
    assert "Neurons" in absent and "Parameter trajectory" in absent
    assert data["charts"]["loss"]["status"] == "ok"


def test_empty_bundle_still_renders(tmp_path):
    bundle = _write(tmp_path / "empty.h5", context={"config": {"name": "empty"}})
    html = render_report(bundle, tmp_path / "empty.html").read_text()
    data = page_data(html)
    assert not data["charts"] and {a["what"] for a in data["absent"]} >= {"Metric series", "Tables", "Events"}


def test_output_directory_is_created(full_bundle, tmp_path):
    out = render_report(full_bundle, tmp_path / "a" / "b" / "report.html")
    assert out.is_file() and out.parent.name == "b"


def test_output_into_an_existing_directory_is_named_after_the_run(full_bundle, tmp_path):
    assert render_report(full_bundle, tmp_path) == tmp_path / "small.html"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_output_is_a_clear_error(full_bundle, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(EpochscopeError, match="cannot write the report to") as info:
            render_report(full_bundle, locked / "r.html")
        assert "\n" not in str(info.value)
    finally:
        locked.chmod(0o700)


def test_unwritable_output_under_a_file_is_a_clear_error(full_bundle, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EpochscopeError, match="cannot create the directory") as info:
        render_report(full_bundle, blocker / "sub" / "r.html")
    assert "\n" not in str(info.value)


def test_shared_assets_write_plotly_once(full_bundle, tmp_path):
    assets = tmp_path / "site" / "assets"
    one = render_report(full_bundle, tmp_path / "site" / "runs" / "one.html", shared_assets=assets)
    two = render_report(full_bundle, tmp_path / "site" / "runs" / "two.html", shared_assets=assets)
    scripts = list(assets.glob("plotly-*.min.js"))
    assert len(scripts) == 1
    for page in (one, two):
        html = page.read_text()
        assert f'<script type="text/plain" id="es-plotly" data-src="../assets/{scripts[0].name}"></script>' in html
        assert plotly_js()[:200] not in html and plotly_packed()[:200] not in html
        assert len(html) < len(plotly_js())


def test_user_strings_are_escaped_in_html(tmp_path):
    evil = "</script><img src=x onerror=alert(1)>"
    bundle = _write(
        tmp_path / "evil.h5",
        context={"config": {"name": evil, "note": evil}},
        metrics={"train_loss": (np.arange(5), np.ones(5))},
        events=[{"epoch": 2, "kind": evil, "message": evil, "payload": {"k": evil}}],
    )
    html = render_report(bundle, tmp_path / "evil.html").read_text()
    assert "<img src=x" not in html
    assert html.count("</script>") == html.count("<script")  # nothing closes a block early
    assert page_data(html)["events"][0]["message"] == evil


def test_included_assets_are_safe_inside_script_and_style_blocks():
    """The CSS/JS files are included verbatim: no Jinja syntax, nothing that ends or confuses
    a <script>/<style> block."""
    from importlib import resources

    root = resources.files("epochscope.templates")
    for name in ("report.css", "report_decode.js", "report_charts.js", "report_app.js"):
        text = root.joinpath(name).read_text("utf-8")
        for bad in ("{{", "{%", "{#", "<script", "</script", "</style", "<!--"):
            assert bad not in text.lower(), f"{name} contains {bad!r}"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_output_on_a_filesystem_that_refuses_files(full_bundle):
    with pytest.raises(EpochscopeError, match="cannot write the report to /proc/r.html") as info:
        render_report(full_bundle, "/proc/r.html")
    assert "\n" not in str(info.value)


def test_crowded_event_kinds_start_hidden(tmp_path):
    events = [{"epoch": i, "kind": "cusum_alarm", "message": "alarm"} for i in range(40)]
    events += [{"epoch": 3, "kind": "turn", "message": "the turn"}]
    bundle = _write(tmp_path / "ev.h5", metrics={"train_loss": (np.arange(50), np.ones(50))}, events=events)
    kinds = {k["kind"]: k for k in page_data(render_report(bundle, tmp_path / "ev.html").read_text())["eventKinds"]}
    assert kinds["cusum_alarm"] == {"kind": "cusum_alarm", "count": 40, "hidden": True}
    assert kinds["turn"]["hidden"] is False


def test_a_chart_that_fails_unexpectedly_is_reported_not_fatal(full_bundle, tmp_path, monkeypatch):
    from dataclasses import replace

    from epochscope.generator.charts import CHARTS

    def boom(ctx):
        raise ValueError("odd shape")

    monkeypatch.setitem(CHARTS, "gini", replace(CHARTS["gini"], build=boom))
    with pytest.warns(RuntimeWarning, match="odd shape"):
        html = render_report(full_bundle, tmp_path / "odd.html").read_text()
    data = page_data(html)
    assert "gini" not in data["charts"]
    assert "could not be built from this bundle's data (ValueError: odd shape)" in unescape(html)
    assert data["charts"]["loss"]["status"] == "ok"
