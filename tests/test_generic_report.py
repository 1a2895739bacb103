"""The generic report without a browser: series grouping, metric directions and headlines,
metric metadata in the bundle, bad input (NaN/inf, one point, disordered epochs, odd tables,
hostile names), packs and the one registry."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment, open_bundle
from epochscope.errors import EpochscopeError
from epochscope.generator import render_report
from epochscope.generator.charts import CHARTS, known_charts
from epochscope.generator.facts import direction_of, metric_facts, run_facts
from epochscope.generator.packs import PACKS, load_packs
from epochscope.generator.series_groups import group_series

EVIL = "<img src=x onerror=alert(1)>"


def page_data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="es-data">(.*?)</script>', html, re.S).group(1))


def write(path: Path, **segment) -> Path:
    with BundleWriter(path, create=True) as w:
        w.write(Segment(**segment))
        w.consolidate()
    return path


# ------------------------------------------------------------------------------ grouping

@pytest.mark.parametrize("names, title, labels", [
    (["train_loss", "val_loss", "test_loss"], "loss", ["train", "val", "test"]),
    (["loss.train", "loss.valid"], "loss", ["train", "val"]),
    (["train.acc", "validation.acc"], "acc", ["train", "val"]),
    (["acc_train", "acc_test"], "acc", ["train", "test"]),
    (["grad_norm", "grad_norm.W_E", "grad_norm.W_U"], "grad_norm", ["all", "W_E", "W_U"]),
    (["x.layer10", "x.layer2"], "x", ["layer2", "layer10"]),
])
def test_series_group_by_the_usual_conventions(names, title, labels):
    (group,) = group_series(names)
    assert group.title == title and [lab for _, lab in group.members] == labels


def test_other_series_are_charts_of_their_own():
    groups = group_series(["hierarchy", "richness", "train_loss", "coverage"])
    assert [g.title for g in groups] == ["coverage", "hierarchy", "richness", "train_loss"]
    assert all(g.how == "single" for g in groups)


# ------------------------------------------------------------------------------ headline facts

def test_direction_from_the_name_or_declared():
    assert direction_of("val_loss") == ("min", "name") and direction_of("top1_acc") == ("max", "name")
    assert direction_of("perplexity.val")[0] == "min" and direction_of("f1_macro")[0] == "max"
    assert direction_of("activation_mean.layer2") == (None, "") and direction_of("lr") == (None, "")
    assert direction_of("hierarchy") == (None, "") and direction_of("hierarchy", "min") == ("min", "declared")


def test_peaked_then_degraded_as_in_the_vae_sweep():
    epochs = np.arange(60)
    # Hierarchy (lower is better) peaks at -0.758 around epoch 15, ends at -0.598 (VAE sweep, balanced).
    values = -0.6 - 0.158 * np.exp(-((epochs - 15) / 8.0) ** 2) + 0.002 * np.sin(epochs)
    values[-1] = -0.598
    m = metric_facts("hierarchy", epochs, values, {"direction": "min"})
    assert m.degraded and m.best_epoch in range(12, 19) and m.best == pytest.approx(values.min())
    assert "peaked at epoch" in m.degraded_text
    steady = metric_facts("val_loss", epochs, np.exp(-epochs / 10.0))
    assert not steady.degraded and steady.best_epoch == 59
    unknown = metric_facts("richness", epochs, values)
    assert unknown.best is None and not unknown.degraded and unknown.final == pytest.approx(-0.598)


def test_declared_metadata_round_trips_and_reaches_the_report(tmp_path):
    from epochscope import Recorder

    path = tmp_path / "r.h5"
    with Recorder(path, config={"name": "declared"}) as rec:
        rec.describe("hierarchy", direction="min", unit="nats", description="how hierarchical the tree is")
        for e in range(20):
            rec.log(e, hierarchy=-0.5 - 0.3 * np.exp(-((e - 5) / 3) ** 2))
        with pytest.raises(EpochscopeError, match="direction must be 'min' or 'max'"):
            rec.describe("hierarchy", direction="down")
    with open_bundle(path) as b:
        assert b.metric_info == {"hierarchy": {"direction": "min", "unit": "nats",
                                               "description": "how hierarchical the tree is"}}
        facts = run_facts(b)
    assert facts.metrics["hierarchy"].direction_source == "declared" and facts.metrics["hierarchy"].degraded
    html = unescape(render_report(path, tmp_path / "r.html").read_text())
    assert "how hierarchical the tree is" in html and "lower is better (declared by the recording code)" in html
    assert "nats" in html and "peaked, then degraded" in html


def test_health_of_the_turn_analysis_is_in_the_header(tmp_path):
    bundle = write(tmp_path / "h.h5", context={"config": {"name": "h"}},
                   metrics={"test_loss": (np.arange(10), np.linspace(4, 0.1, 10))},
                   artifacts={"turn": ArtifactUpdate("1", scalars={"epoch": 4, "method": "m", "health": "late grokker",
                                                                   "health_reason": "the turn came late"})})
    html = render_report(bundle, tmp_path / "h.html").read_text()
    assert 'class="health health-late-grokker"' in html and "the turn came late" in html
    assert page_data(html)["summary"]["health"] == "late grokker"


# ------------------------------------------------------------------------------ bad input

def test_bad_series_render_sensibly(tmp_path):
    e = np.arange(50)
    gappy = np.linspace(1, 2, 50)
    gappy[[5, 6, 30]] = [np.nan, np.inf, -np.inf]
    bundle = write(tmp_path / "bad.h5", context={"config": {"name": "bad"}}, metrics={
        "gappy": (e, gappy),
        "single": (np.array([7]), np.array([0.5])),
        "disordered": (np.array([3, 1, 2, 2, 0]), np.array([3.0, 1.0, 9.0, 2.0, 0.0])),
        "all_nan": (e, np.full(50, np.nan)),
        "loss": (e, np.linspace(2, 1, 50)),  # named like a chart of the modular pack
        "metrics": (e, np.linspace(2, 1, 50)),  # named like the generic chart
    })
    html = render_report(bundle, tmp_path / "bad.html").read_text()
    data = page_data(html)
    cards = {c["spec"]["traces"][0]["name"]: c for n, c in data["charts"].items() if n.startswith("metrics-")}
    assert {"gappy", "single", "disordered", "loss", "metrics"} <= set(cards)
    assert cards["single"]["spec"]["traces"][0]["mode"] == "lines+markers"
    # NaN/inf are gaps in the embedded values; disordered epochs sorted, the last logged value wins.
    from tests.test_report import decode

    y = cards["gappy"]["spec"]["traces"][0]["y"]["$a"]
    values = decode(html, data["arrays"][y], y)
    assert np.isnan(values[[5, 6, 30]]).all() and np.isfinite(np.delete(values, [5, 6, 30])).all()
    ref = cards["disordered"]["spec"]["traces"][0]
    assert decode(html, data["arrays"][ref["x"]["$a"]], ref["x"]["$a"]).tolist() == [0, 1, 2, 3]
    assert decode(html, data["arrays"][ref["y"]["$a"]], ref["y"]["$a"]).tolist() == [0, 1, 2, 3]
    assert {"what": "Metric series: all_nan", "reason": "no data: 'all_nan' holds only NaN/inf"} in data["absent"]


def test_odd_tables(tmp_path):
    big = 100_000
    bundle = write(tmp_path / "t.h5", context={"config": {"name": "tables"}},
                   metrics={"loss": (np.arange(3), np.ones(3))},
                   tables={"mixed": {"what": np.array([1, "two", 3.5, None], dtype=object),
                                     "n": np.array([1, 2, 3, 4])},
                           "big": {"i": np.arange(big), "x": np.random.default_rng(0).random(big)},
                           EVIL: {"col " + EVIL: np.array([EVIL, "ok"], dtype=object)}})
    html = render_report(bundle, tmp_path / "t.html").read_text()
    data = page_data(html)
    tables = {c["spec"]["rows"]: c for n, c in data["charts"].items() if n.startswith("tables-")}
    assert set(tables) == {4, big, 2}
    mixed = tables[4]["spec"]["columns"]
    assert mixed[0]["type"] == "str" and mixed[0]["data"] == ["1", "two", "3.5", "None"] and mixed[1]["type"] == "int"
    assert len(html) < 8_000_000  # 100,000 rows embedded as typed arrays, paginated on the page
    assert "<img src=x" not in html and EVIL in json.dumps(data)


def test_hostile_names_stay_text(tmp_path):
    long = "n" * 10_000
    bundle = write(tmp_path / "e.h5", context={"config": {"name": "../../" + EVIL}},
                   metrics={EVIL: (np.arange(5), np.ones(5)), long: (np.arange(5), np.arange(5.0))},
                   events=[{"epoch": 1, "kind": EVIL, "message": EVIL, "payload": {EVIL: EVIL}}],
                   artifacts={EVIL: ArtifactUpdate("1", np.arange(3), {EVIL: np.ones((3, 4))})})
    out = render_report(bundle, tmp_path)  # an output directory: the file is named after the run, safely
    assert out.parent == tmp_path and "/" not in out.name and ".." not in out.name
    html = out.read_text()
    assert "<img src=x" not in html and html.count("</script>") == html.count("<script")
    data = page_data(html)
    assert set(data["seriesShown"]) == {EVIL, long}
    titles = [c["spec"].get("yTitle", "") for c in data["charts"].values()]
    assert any(EVIL in t for t in titles)  # escaped by the page before Plotly sees it (esc())


def test_a_bad_name_is_one_clear_error():
    from epochscope.archives.format import check_name

    for bad in ("../x", "a/b", "", ".."):
        with pytest.raises(ValueError, match="invalid element name") as info:
            check_name(bad)
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ packs, registry

def test_one_registry_serves_both_pages_and_packs_arrange_it():
    packs = load_packs()
    assert [p.name for p in packs] == PACKS and PACKS[-1] == "generic"
    run, compare = set(known_charts()), set(known_charts("compare"))
    for pack in packs:
        for s in pack.sections:
            assert set(s.charts) <= run, (pack.name, s.id)
        for s in pack.compare_sections:
            assert set(s.charts) <= compare, (pack.name, s.id)
    # Every run chart has a section, once per pack; packs that never apply together (the
    # evolution and apoptosis experiments) may share one (their per-step monitors).
    placed = [c for p in packs for s in p.sections for c in s.charts]
    assert set(placed) == run
    for pack in packs:
        mine = [c for s in pack.sections for c in s.charts]
        assert len(mine) == len(set(mine)), pack.name
    shared = {c for c in placed if placed.count(c) > 1}
    assert shared <= {c for c in known_charts() if CHARTS[c].build.__module__.endswith(".step_charts")}
    assert {c.page for c in CHARTS.values()} == {"run", "compare"}


def test_a_plain_run_gets_no_modular_addition_boxes(tmp_path):
    bundle = write(tmp_path / "p.h5", context={"config": {"name": "plain"}},
                   metrics={"train_loss": (np.arange(9), np.linspace(2, 1, 9)),
                            "val_loss": (np.arange(9), np.linspace(2.1, 1.3, 9))},
                   events=[{"epoch": 3, "kind": "activation_switch", "message": "gelu -> silu"}],
                   artifacts={"my_probe": ArtifactUpdate("2", np.arange(4), {"score": np.arange(4.0),
                                                                           "profile": np.ones((4, 20)),
                                                                           "map": np.ones((4, 5, 6))})})
    html = render_report(bundle, tmp_path / "p.html").read_text()
    data = page_data(html)
    assert not {"loss", "turn_fit", "velocity", "neuron_clusters"} & set(data["charts"])
    kinds = {n: c["kind"] for n, c in data["charts"].items()}
    assert sorted(k for n, k in kinds.items() if n.startswith("artifacts-")) == ["heatmap_time", "lines", "map2d",
                                                                              "profile"]
    assert kinds["events"] == "events" and "Unavailable" not in html
    assert html.count('class="unavailable-list absent"') == 1  # the absent sections: one collapsed line
