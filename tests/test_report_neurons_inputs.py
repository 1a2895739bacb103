"""The report sections of every neuron (atlas), neuron dynamics and per-input analysis: what the
builders embed (checked against the analysed bundle) and how the page behaves in chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_analysis_support import MODEL, P, train_bundle

from epochscope.archives import open_bundle
from epochscope.collectors.analysis import analyze
from epochscope.collectors.analysis.atlas import atlas_maps
from epochscope.generator import render_report
from tests.browser_helpers import needs_chromium, open_report, plot_point, settle, show
from tests.synthetic import ALL_ANALYSES, PER_INPUT_ANALYSES, SyntheticRun, write_synthetic_bundle
from tests.test_report import decode, page_data

NEW_CHARTS = ("neuron_atlas", "neuron_commitment", "neuron_commitment_curve", "specialised_counts",
              "neuron_switches", "input_maps", "input_graduation_map", "input_class_accuracy", "input_class_loss",
              "probe_traces")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """A tiny trained run, analysed with two probes (one by inputs, one by rule)."""
    raw = train_bundle(tmp_path_factory.mktemp("raw") / "run.h5", epochs=40, split=True)
    path = tmp_path_factory.mktemp("an") / "run.h5"
    shutil.copy(raw, path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        analyze(path, probes=["mine=1+2,12+12", "test:3"])
    finally:
        torch.set_num_threads(threads)
    return path


@pytest.fixture(scope="module")
def report(analysed, tmp_path_factory) -> tuple[str, dict]:
    out = render_report(analysed, tmp_path_factory.mktemp("out") / "report.html")
    html = out.read_text()
    return html, page_data(html)


def _array(html: str, data: dict, ref: dict) -> np.ndarray:
    return decode(html, data["arrays"][ref["$a"]], ref["$a"])


def test_sections_are_drawn_and_not_twice(analysed, report):
    html, data = report
    charts = data["charts"]
    with open_bundle(analysed) as b:
        switches = len(b.artifact("neuron_dynamics").summary("switch_epoch"))
    for name in NEW_CHARTS:
        if name == "neuron_switches" and not switches:  # then it is named in the "Not in this run" line
            assert name not in charts and "no neuron switched" in html
            continue
        assert charts[name]["status"] == "ok", name
    # the generic pack leaves every artifact these charts read alone
    shown = html.split('id="c-artifacts', 1)[1] if 'id="c-artifacts' in html else ""
    for artifact in ("neuron_atlas", "inputs", "input_graduation", "neuron_dynamics", "probe_mine"):
        assert f"{artifact}/" not in shown and f"'{artifact}'" not in shown
    assert not any(n.startswith("artifacts-") for n in charts)


def test_coefficient_codes_keep_the_atlas_maps(analysed, report):
    # imported here, not at the top: importing it first would change the registry order
    from epochscope.generator.charts.atlas import dequantize_coefficients

    html, data = report
    sp = data["charts"]["neuron_atlas"]["spec"]
    with open_bundle(analysed) as b:
        art = b.artifact("neuron_atlas")
        epochs = np.asarray(art.epochs)
        coef = np.stack([art.at("coef", int(e)) for e in epochs])
        mean = np.stack([art.at("mean", int(e)) for e in epochs])
        freqs = np.stack([art.at("freqs", int(e)) for e in epochs])
    assert np.array_equal(_array(html, data, sp["epochs"]), epochs)  # every analysed epoch embedded
    n, m, j = freqs.shape
    codes = _array(html, data, sp["codes"]).reshape(n, m, j, 8)
    scale = _array(html, data, sp["scale"]).reshape(n, m)
    assert np.array_equal(_array(html, data, sp["freqs"]).reshape(n, m, j), freqs)
    back = dequantize_coefficients(codes, scale)
    for e in (0, n - 1):
        full = atlas_maps(mean[e], freqs[e], coef[e], P)
        page = atlas_maps(_array(html, data, sp["mean"])[e], freqs[e], back[e], P)
        span = full.max(axis=(1, 2)) - full.min(axis=(1, 2))
        err = np.abs(page - full).max(axis=(1, 2))
        # 8-bit codes: each coefficient within 1/254 of the neuron's largest, 16 terms at most
        assert np.all(err <= 16 * np.abs(coef[e]).reshape(m, -1).max(1) / 254 + 1e-3 * (span + 1)), err.max()


def test_quantize_round_trip_bound():
    from epochscope.generator.charts.atlas import dequantize_coefficients, quantize_coefficients

    rng = np.random.default_rng(3)
    coef = rng.normal(0, 1, (4, 7, 2, 8)) * rng.uniform(0, 5, (4, 7, 1, 1))
    coef[0, 0] = 0.0  # a constant map: scale 0 must not divide by zero
    codes, scale = quantize_coefficients(coef)
    assert codes.min() >= 1 and codes.max() <= 255
    back = dequantize_coefficients(codes, scale)
    largest = np.abs(coef).reshape(4, 7, -1).max(-1)
    assert np.all(np.abs(back - coef) <= (largest / 254 + largest * 1e-3)[:, :, None, None])
    assert np.all(back[0, 0] == 0)


def test_input_maps_match_the_inputs_artifact(analysed, report):
    html, data = report
    sp = data["charts"]["input_maps"]["spec"]
    assert sp["p"] == P
    with open_bundle(analysed) as b:
        art = b.artifact("inputs")
        epochs = _array(html, data, sp["epochs"])
        correct = np.stack([art.at("correct", int(e)) for e in epochs])
        margin = np.stack([art.at("margin", int(e)) for e in epochs]).astype(np.float64)
        in_train = np.asarray(art.summary("in_train"), dtype=bool)
    bits = _array(html, data, sp["panels"][0]["bits"]).astype(np.uint8).reshape(len(epochs), -1)
    assert np.array_equal(np.unpackbits(bits, axis=1)[:, : P * P].astype(bool), correct)
    back = _array(html, data, sp["panels"][2]["z"])
    span = margin.max(1) - margin.min(1)
    assert np.all(np.abs(back - margin).max(1) <= span / 254 + 1e-6)
    split = np.unpackbits(_array(html, data, sp["inTrain"]).astype(np.uint8))[: P * P].astype(bool)
    assert np.array_equal(split, in_train)


def test_probe_traces_hold_every_probe_as_stored(analysed, report):
    html, data = report
    sp = data["charts"]["probe_traces"]["spec"]
    assert sorted(p["name"] for p in sp["probes"]) == ["mine", "test3"]
    mine = next(p for p in sp["probes"] if p["name"] == "mine")
    assert (mine["a"], mine["b"], mine["label"]) == ([1, 12], [2, 12], [3, 11])
    with open_bundle(analysed) as b:
        art = b.artifact("probe_mine")
        heads = np.stack([art.at("dla_heads", int(e)) for e in art.epochs])
        total = np.stack([art.at("logit_centred", int(e)) for e in art.epochs])
    assert np.allclose(_array(html, data, mine["dla_heads"]), heads, rtol=3e-3, atol=1e-3 * np.abs(heads).max())
    assert np.allclose(_array(html, data, mine["logit_centred"]), total, rtol=3e-3, atol=1e-3 * np.abs(total).max())
    assert len(mine["keyFreqs"]) == _array(html, data, mine["dla_mlp_freq"]).shape[2]


def test_commitment_rows_sorted_by_final_frequency(analysed, report):
    html, data = report
    sp = data["charts"]["neuron_commitment"]["spec"]
    with open_bundle(analysed) as b:
        final = np.asarray(b.artifact("neuron_dynamics").summary("final_freq"))
    rows = [int(label.split()[0][1:]) for label in sp["yLabels"]]
    assert sorted(rows) == list(range(MODEL["d_mlp"]))
    keys = [final[u] if final[u] > 0 else 10**6 for u in rows]
    assert keys == sorted(keys)


def test_nanda_sized_report_size(tmp_path):
    """A smaller stand-in of the nanda2023 benchmark (benchmarks/bench_report.py measures the
    real size): every atlas epoch is embedded and the page stays within the data budget."""
    run = SyntheticRun(name="mid", p=59, d_mlp=256, analysed=30, epochs=6000, key_freqs=(5, 11, 17, 23),
                       analyses=ALL_ANALYSES + PER_INPUT_ANALYSES)
    out = render_report(write_synthetic_bundle(tmp_path / "mid.h5", run), tmp_path / "mid.html")
    html = out.read_text()
    data = page_data(html)
    assert data["charts"]["neuron_atlas"]["spec"]["epochs"]["$a"] in data["arrays"]
    assert len(_array(html, data, data["charts"]["neuron_atlas"]["spec"]["epochs"])) == 30
    from epochscope.generator.render import plotly_js

    assert out.stat().st_size - len(plotly_js().encode()) < 6_000_000


# -- in chromium ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory) -> Path:
    run = SyntheticRun(name="paged", p=23, d_mlp=150, analysed=12, epochs=3000, key_freqs=(3, 5, 7),
                       analyses=ALL_ANALYSES + PER_INPUT_ANALYSES)
    folder = tmp_path_factory.mktemp("paged")
    return render_report(write_synthetic_bundle(folder / "run.h5", run), folder / "report.html")


def _panels(opened) -> list[str]:
    return opened.evaluate("Array.from(document.querySelectorAll('#c-neuron_atlas figure')).map(f => f.dataset.id)")


def _pixels(opened, selector: str) -> str:
    return opened.evaluate(f"document.querySelector({selector!r}).toDataURL()")


@needs_chromium
def test_sections_in_the_browser(browser, synthetic_report):
    opened = open_report(browser, synthetic_report)
    for name in NEW_CHARTS + ("transient_frequencies",):
        show(opened, name)
        assert opened.evaluate(f"document.getElementById('c-{name}').dataset.drawn") != "error", name
    # every neuron, paginated: 64 per page, the next page shows others
    show(opened, "neuron_atlas")
    first = _panels(opened)
    assert len(first) == 64
    assert "page 1 of 3" in opened.evaluate("document.querySelector('#c-neuron_atlas .atlas-pager').textContent")
    opened.page.click("#c-neuron_atlas button[aria-label='Next page of neurons']")
    second = _panels(opened)
    assert len(second) == 64 and not set(first) & set(second)
    # the panels follow the epoch: the same neuron's picture changes between two epochs
    snap = opened.evaluate("Array.from(ES.app.snap())")
    opened.evaluate("(e) => ES.app.setEpoch(e)", snap[0])
    settle(opened)
    early = _pixels(opened, "#c-neuron_atlas figure canvas")
    ids_early = _panels(opened)
    opened.evaluate("(e) => ES.app.setEpoch(e)", snap[-1])
    settle(opened)
    assert "epoch " + str(snap[-1]) in opened.evaluate("document.querySelector('#c-neuron_atlas .epoch-tag').textContent")
    assert _pixels(opened, "#c-neuron_atlas figure canvas") != early or _panels(opened) != ids_early
    # a filter by frequency keeps only neurons of that dominant frequency
    opened.page.select_option("#c-neuron_atlas select >> nth=0", index=1)
    settle(opened)
    badges = opened.evaluate("Array.from(document.querySelectorAll('#c-neuron_atlas .badge')).map(b => b.textContent)")
    assert badges and len(set(badges)) == 1
    # clicking a panel selects its neuron
    target = _panels(opened)[0]
    opened.page.click("#c-neuron_atlas figure canvas")
    assert str(opened.evaluate("ES.app.state.neuron")) == target
    # a neuron with no stored full-resolution map: the maps chart draws its atlas reconstruction
    show(opened, "neuron_maps")
    stored = opened.evaluate("ES.app.charts.neuron_maps.spec.stored")
    other = next(u for u in range(150) if u not in stored)
    opened.evaluate("(u) => ES.app.setNeuron(u)", other)
    settle(opened)
    opened.page.wait_for_function("(u) => { const f = document.querySelector('#c-neuron_maps figure'); "
                                  "return f && f.dataset.id === String(u) && f.classList.contains('rebuilt'); }",
                                  arg=other, timeout=5000)
    # clicking an input on a map selects it; the probe chart follows when it is probed
    show(opened, "probe_traces")
    spec = opened.evaluate("ES.app.charts.probe_traces.spec.probes[0]")
    a, b = spec["a"][2], spec["b"][2]
    show(opened, "input_maps")
    box = opened.evaluate("(() => { const r = document.querySelector('#c-input_maps canvas').getBoundingClientRect(); "
                          "return [r.left, r.top, r.width, r.height]; })()")
    opened.page.mouse.click(box[0] + (b + 0.5) * box[2] / 23, box[1] + (a + 0.5) * box[3] / 23)
    settle(opened)
    assert opened.evaluate("ES.app.state.input") == a * 23 + b
    assert f"{a} + {b}" in opened.evaluate("document.querySelector('#c-input_maps .readout').textContent")
    show(opened, "probe_traces")
    # the menu follows the selected input when the chart redraws (lazily, after it is shown)
    opened.page.wait_for_function("() => { const s = document.querySelector('#c-probe_traces select'); "
                                  "return s && s.value === '0:2'; }", timeout=10000)
    assert opened.evaluate("document.querySelector('#c-probe_traces select').value") == "0:2"
    opened.page.wait_for_function("(i) => location.hash.includes('input=' + i)", arg=a * 23 + b, timeout=5000)
    # clicking the probe chart selects an epoch (a point of the total's trace)
    epoch = snap[3]
    y = opened.evaluate("([e, i]) => { const pr = ES.app.charts.probe_traces.spec.probes[0]; "
                        "const t = Array.from(pr.epochs.data).indexOf(e); "
                        "return pr.logit_centred.data[t * pr.a.length + i]; }", [epoch, 2])
    x0, y0 = plot_point(opened, "probe_traces", epoch, y)
    opened.page.mouse.move(x0, y0)
    opened.page.mouse.click(x0, y0)
    settle(opened)
    assert opened.evaluate("ES.app.state.epoch") == epoch
    assert not opened.errors, opened.errors
    assert not opened.blocked, opened.blocked
    opened.page.close()
