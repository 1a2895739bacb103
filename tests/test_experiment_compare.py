"""Comparison across apoptosis strategies: a real (tiny) Taguchi sweep over strategies and
rates gives the experiment log's strategy table and the sweep's main effects on the
comparison page; both checked against the bundles and collectors/design.py, and drawn in a
real browser without console errors."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from browser_helpers import needs_chromium, open_report, show

from epochscope.archives import open_bundle
from epochscope.archives.sweep import read_sweep, sweep_of
from epochscope.collectors.design import main_effects
from epochscope.collectors.sweep import load_spec, run_sweep
from epochscope.generator.compare import build_comparison, render_compare

TINY = dict(steps=24, interval=6, checkpoint_every=12, metrics_interval=4, d_model=16, n_ctx=16,
            batch_size=4, sample_chars=6, preservation_steps=3, spike_window=3, n_layers=1)
GRID = {"strategy": ["none", "standard", "hybrid"], "prune_rate": [0.1, 0.25], "mutation_strength": [0.1, 0.5]}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apo-sweep")
    spec = load_spec({"name": "apo", "experiment": "apoptosis", "design": "taguchi", "base": TINY, "grid": GRID})
    result = run_sweep(spec, tmp, workers=2)
    assert not result.failed, result.failed
    paths = sorted(result.directory.glob("*.h5"))
    page = render_compare(paths, tmp / "compare.html")
    return {"dir": result.directory, "paths": paths, "page": page, "manifest": read_sweep(result.directory),
            "cmp": build_comparison(paths)}


def _page_data(html: Path) -> dict:
    text = html.read_text()
    return json.loads(re.search(r'<script type="application/json" id="es-data">(.*?)</script>', text, re.S).group(1))


def _bundle_facts(path: Path) -> tuple[dict, dict]:
    with open_bundle(path) as b:
        return dict(b.config), dict(b.events("finished")[-1]["payload"])


def test_strategy_table_holds_each_runs_figures(sweep):
    data = _page_data(sweep["page"])
    chart = data["charts"]["apo_strategies"]
    assert chart["status"] == "ok" and chart["kind"] == "table"
    spec = chart["spec"]
    keys = [c["key"] for c in spec["columns"]]
    assert keys == ["strategy", "rate", "final_val_loss", "loss_gap", "variance", "events", "distinct_ages", "status"]
    labels = sweep["cmp"].labels
    by_label = {}
    for i, p in enumerate(sweep["cmp"].variants):
        by_label[labels[i]] = _bundle_facts(p.path)
    rows = {labels[r["v"]]: {k: c for k, c in zip(keys, r["cells"], strict=True)} for r in spec["rows"]}
    assert set(rows) == set(by_label) and len(rows) == len(sweep["paths"])
    none_final = {cfg["strategy"]: fin for cfg, fin in by_label.values()}["none"]["final_val_loss"]
    for label, (cfg, fin) in by_label.items():
        row = rows[label]
        strategy = cfg["strategy"]
        rate = None if strategy == "none" else cfg["turnover_rate" if strategy == "hybrid" else "prune_rate"]
        assert row["rate"]["value"] == rate
        assert row["strategy"]["text"] == ("none (baseline)" if rate is None else f"{strategy} {100 * rate:g}%")
        assert row["final_val_loss"]["value"] == fin["final_val_loss"]
        assert row["variance"]["value"] == fin["variance"]
        assert row["events"]["value"] == fin["events"] == (0 if strategy == "none" else TINY["steps"] // TINY["interval"] - 1)
        assert row["distinct_ages"]["value"] == fin["distinct_ages"]
        assert row["status"]["value"] == sum(fin["success"].values())
        # The gap to the baseline trained alongside equals the gap to the sweep's own `none` variant
        # (same seed, init and batches), computed here from the bundles.
        if strategy == "none":
            assert row["loss_gap"]["value"] == 0.0 and row["loss_gap"]["text"] == "0 (is the baseline)"
        else:
            assert row["loss_gap"]["value"] == fin["loss_gap"]
            assert fin["loss_gap"] == pytest.approx(fin["final_val_loss"] - none_final, abs=1e-12)
            assert row["loss_gap"]["text"] == f"{fin['loss_gap']:+.4f}"
    finals = [r["cells"][2]["value"] for r in spec["rows"]]
    assert finals == sorted(finals)  # best final loss first, as the log's table
    assert "best loss" in spec["rows"][0]["cells"][-1]["text"]
    lowest_var = min(by_label.items(), key=lambda kv: kv[1][1]["variance"])[0]
    assert "most stable" in rows[lowest_var]["status"]["text"]


def test_main_effects_chart_shows_the_sweeps_numbers(sweep):
    manifest = sweep["manifest"]
    points, responses = [], []
    for entry in manifest.variants:
        cfg, fin = _bundle_facts(manifest.bundle_path(entry))
        points.append({k: cfg[k] for k in GRID})
        responses.append(fin["final_val_loss"])
    want = main_effects(points, responses, "min")  # recomputed here from the bundles
    assert manifest.main_effects["factors"] == json.loads(json.dumps(want["factors"]))
    data = _page_data(sweep["page"])
    spec = data["charts"]["sweep_main_effects"]["spec"]
    assert data["charts"]["sweep_main_effects"]["status"] == "ok" and spec["response"] == "final_val_loss"
    assert [f["rank"] for f in spec["factors"]] == sorted(f["rank"] for f in want["factors"].values())
    for f in spec["factors"]:
        w = want["factors"][f["name"]]
        assert f["effect"] == pytest.approx(w["effect"]) and f["best"] == str(w["best_level"])
        assert [lv["label"] for lv in f["levels"]] == [str(lv["level"]) for lv in w["levels"]]
        for got, exp in zip(f["levels"], w["levels"], strict=True):
            assert got["mean"] == pytest.approx(exp["mean"]) and got["n"] == exp["n"]
    assert spec["overall"] == pytest.approx(want["overall_mean"])
    assert "L9(3^3)" in spec["legend"] and "taguchi" in spec["legend"]
    table = data["charts"]["sweep_effects_table"]["spec"]
    n_levels = sum(len(f["levels"]) for f in want["factors"].values())
    assert len(table["rows"]) == n_levels
    best_rows = [r for r in table["rows"] if r["cells"][-1]["value"] == 1]
    assert sorted((r["cells"][0]["text"], r["cells"][3]["text"]) for r in best_rows) == sorted(
        (k, str(f["best_level"])) for k, f in want["factors"].items())


def test_outside_one_sweep_no_main_effects_but_the_strategy_table(sweep, tmp_path):
    copies = []
    for p in sweep["paths"][:3]:
        copies.append(tmp_path / p.name)
        shutil.copy(p, copies[-1])
    assert sweep_of(copies) is None and sweep_of(sweep["paths"]) is not None
    assert sweep_of(sweep["paths"][:2]) is not None  # a subset of one sweep is still of that sweep
    data = _page_data(render_compare(copies, tmp_path / "c.html"))
    assert "sweep_main_effects" not in data["charts"] and "sweep_effects_table" not in data["charts"]
    assert data["charts"]["apo_strategies"]["status"] == "ok"
    assert len(data["charts"]["apo_strategies"]["spec"]["rows"]) == 3
    # The section stays when the manifest lists the runs but holds no main effects yet (why: on the card).
    manifest = json.loads((sweep["dir"] / "sweep.json").read_text())
    del manifest["main_effects"]
    folder = tmp_path / "unfinished"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps(manifest))
    for p in copies:
        shutil.copy(p, folder / p.name)
    html = render_compare(sorted(folder.glob("*.h5")), tmp_path / "u.html").read_text()
    assert _page_data(tmp_path / "u.html")["charts"]["sweep_main_effects"]["status"] == "unavailable"
    assert "stored no main effects" in html


@pytest.mark.browser
@needs_chromium
def test_compare_cards_draw_in_a_browser(sweep, browser, tmp_path):
    opened = open_report(browser, sweep["page"], viewport=(1400, 1000))
    for name in ("apo_strategies", "sweep_main_effects", "sweep_effects_table"):
        show(opened, name)
        assert opened.evaluate("(n) => document.getElementById('c-' + n).dataset.drawn", name) not in (None, "error")
    data = _page_data(sweep["page"])
    cells = opened.evaluate("""() => Array.from(document.querySelectorAll('#c-apo_strategies tbody tr'))
        .map(tr => Array.from(tr.children).map(td => td.textContent))""")
    spec = data["charts"]["apo_strategies"]["spec"]
    labels = sweep["cmp"].labels
    assert cells == [[labels[r["v"]]] + [c["text"] for c in r["cells"]] for r in spec["rows"]]
    traces = opened.evaluate("document.getElementById('p-sweep_main_effects').data.length")
    assert traces == 2 * len(GRID)  # a line per factor and its best-level star
    assert opened.evaluate("document.querySelectorAll('#c-sweep_effects_table tbody tr').length") == sum(
        len(f["levels"]) for f in data["charts"]["sweep_main_effects"]["spec"]["factors"])
    # a header click sorts the strategy table by variance
    opened.evaluate("document.querySelector('#c-apo_strategies th[data-col=variance] button').click()")
    variances = opened.evaluate("""() => Array.from(document.querySelectorAll('#c-apo_strategies tbody tr'))
        .map(tr => Number(tr.children[5].dataset.sort))""")
    assert variances == sorted(variances) and all(math.isfinite(v) for v in variances)
    assert opened.errors == [] and opened.blocked == []


def test_cli_compare_of_a_sweep_folder_shows_its_main_effects(sweep, tmp_path):
    from click.testing import CliRunner

    from epochscope.cli import main

    folder = tmp_path / "apo"
    shutil.copytree(sweep["dir"], folder)
    out = tmp_path / "page.html"
    result = CliRunner().invoke(main, ["compare", *map(str, sorted(folder.glob("*.h5"))), "-o", str(out),
                                       "--no-shared-basis"])
    assert result.exit_code == 0, result.output
    charts = _page_data(out)["charts"]
    assert charts["sweep_main_effects"]["status"] == "ok" and charts["apo_strategies"]["status"] == "ok"
    assert charts["sweep_main_effects"]["spec"]["factors"] == _page_data(sweep["page"])["charts"][
        "sweep_main_effects"]["spec"]["factors"]
