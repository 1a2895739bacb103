"""The morphogenesis report pack: its builders on a tiny bundle made by the real collector, on
a hostile bundle made by Recorder calls, and the report in a real browser."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from epochscope.archives import open_bundle
from epochscope.archives import telemetry as tm
from epochscope.generator.data import build_page
from epochscope.generator.packs import applicable_packs
from epochscope.generator.render import render_report
from tests.browser_helpers import draw_all, needs_chromium, open_report, settle, show

pytest.importorskip("sklearn")

# Seeds germinate right after a 2-epoch warm-up (the plateau test always passes) and move
# through one-epoch stages; the lenient G1/G2 let seeds fossilise (so two or three slots are
# active together) while the parameter limit fails G0 for the large blueprints, and a
# learning-rate spike at epoch 8 raises alerts inside an escalated dense trace. About 10 s.
TINY = {"epochs": 10, "warmup_epochs": 2, "plateau_window": 1, "plateau_delta": 100.0, "train_epochs": 1,
        "blend_epochs": 1, "embargo_epochs": 1, "cf_every": 1, "lr_spike_epoch": 8, "lr_spike_factor": 60.0,
        "g1_min_loss_gain": -100, "g2_min_contribution": -100, "max_seed_params": 30}

SECTIONS = ("morph_winning", "morph_why", "morph_fail", "morph_reproduce", "morph_without_seeds")
PROFILE_TABLES = {tm.EPISODE_TABLE, tm.SLOTS_TABLE, tm.COUNTERFACTUAL_TABLE, tm.ATTRIBUTION_TABLE,
                  tm.INTERACTIONS_TABLE, tm.DENSE_TABLE}


@pytest.fixture(scope="module")
def morph_run(tmp_path_factory):
    from epochscope.collectors.experiments.morphogenesis import config_from, run

    path = tmp_path_factory.mktemp("morph") / "run.h5"
    run(config_from(TINY), path, progress=False)
    return path


@pytest.fixture(scope="module")
def morph_page(morph_run):
    with open_bundle(morph_run) as b:
        yield b, build_page(b, None)


def _spec(page, name):
    return page.page["charts"][name]["spec"]


def _names(page) -> set[str]:
    return {c.name for g in page.groups for c in g.charts}


def test_pack_applies_and_answers_every_question(morph_page):
    bundle, page = morph_page
    assert [p.name for p in applicable_packs(bundle)] == ["morphogenesis", "generic"]
    ids = [g.id for g in page.groups]
    assert ids[:5] == list(SECTIONS), ids
    # the dense traces' step-indexed series count neither as epochs nor as snap positions
    assert page.run["epochs_logged"] == TINY["epochs"]
    assert page.page["snapLabel"] == "logged epochs" and page.page["defaults"]["epoch"] == TINY["epochs"]
    # Every chart of the pack was built from this run (the run has alerts, gates, traces).
    from epochscope.generator.packs.morphogenesis import SECTIONS as S

    wanted = {c for s in S for c in s.charts}
    missing = {w: r for w, r in page.unavailable if any(c in w for c in wanted)}
    assert wanted <= _names(page), (wanted - _names(page), page.unavailable, missing)


def test_headline_reads_the_final_row(morph_page):
    bundle, page = morph_page
    final = tm.read_telemetry(bundle).episode["final"]
    spec = _spec(page, "morph_headline")
    figures = spec["columns"][0]["data"]
    assert figures == ["accuracy_delta", "test_accuracy_delta", "param_ratio", "efficiency_ratio", "params_total"]
    shown = dict(zip(figures, spec["columns"][1]["data"], strict=True))
    assert shown["accuracy_delta"] == f"{100 * final['accuracy_delta']:+.2f} points"
    assert shown["params_total"] == str(final["params_total"])
    verdict = dict(zip(figures, spec["columns"][3]["data"], strict=True))
    assert verdict["efficiency_ratio"] == ("winning" if final["efficiency_ratio"] > 1 else "behind")


def test_counterfactual_matrix_and_attribution_match_the_tables(morph_page):
    bundle, page = morph_page
    tel = tm.read_telemetry(bundle)
    spec = _spec(page, "morph_cf_matrix")
    assert spec["rows"] == sum(len(cf["configs"]) for cf in tel.counterfactuals)
    assert spec["epochColumn"] == "epoch"
    names = [c["name"] for c in spec["columns"]]
    assert names[:2] == ["epoch", "config"] and "error" in names and "val_loss" in names
    last = tel.counterfactuals[-1]
    assert len(last["configs"]) == 2 ** len(last["slots"])  # the full factorial at the last epoch
    # the per-slot ON/off columns agree with the configuration codes
    cols = {c["name"]: c["data"] for c in spec["columns"] if c["type"] == "str"}
    for i, code in enumerate(cols["config"]):
        on = [s for s in ("early", "mid", "late") if cols[s][i] == "ON"]
        assert cols["slots on"][i] == (",".join(on) or "(none)")
        assert code.count("1") == len(on)
    # attribution bars: one row per matrix epoch, one column per slot, Shapley with error bars
    att = _spec(page, "morph_attribution")
    assert att["x"] == ["early", "mid", "late"][: len(att["x"])] and att["bar"]
    assert [t["name"].split()[0] for t in att["traces"]] == ["Shapley", "marginal", "removal"]
    assert "err" in att["traces"][0]
    # interactions: a symmetric slot x slot map per matrix epoch with two or more slots
    inter = _spec(page, "morph_interactions")
    assert inter["xLabels"] == inter["yLabels"] and len(inter["xLabels"]) >= 2


def test_stage_timeline_gates_and_bands(morph_page):
    bundle, page = morph_page
    tel = tm.read_telemetry(bundle)
    spec = _spec(page, "morph_stages")
    assert spec["lanes"] == ["early", "mid", "late"]
    slots = tel.slots
    # segments cover every (slot, epoch) snapshot exactly once, in the recorded stage
    covered = {}
    for g in spec["segments"]:
        for e in range(g["start"], g["end"] + 1):
            key = (spec["lanes"][g["lane"]], e)
            assert key not in covered
            covered[key] = spec["states"][g["state"]]["name"]
    recorded = {(str(s), int(e)): str(st) for s, e, st in zip(slots["slot"], slots["epoch"], slots["stage"],
                                                               strict=True)}
    assert covered == recorded
    gates = [e for e in tel.gates]
    assert sum(len(p["x"]) for p in spec["points"]) == len(gates) > 0
    # every time-series chart of the pack shades each dense-trace window
    n = len(tel.dense_traces)
    assert n > 0
    for name in ("morph_accuracy", "morph_delta", "morph_efficiency", "morph_params", "morph_attribution_time",
                 "morph_stages", "morph_cf_cost", "morph_without"):
        assert len(_spec(page, name)["bands"]) == n, name
    assert [w["trace"] for w in _spec(page, "morph_dense_batches")["windows"]] == [t["trace"] for t in tel.dense_traces]


def test_alerts_carry_their_trigger_values(morph_page):
    bundle, page = morph_page
    alerts = bundle.events(tm.ALERT_EVENT)
    assert alerts, "the learning-rate spike raised no alert"
    cols = {c["name"]: c for c in _spec(page, "morph_alerts")["columns"]}
    assert cols["reason"]["data"] == [a["payload"]["reason"] for a in alerts]
    assert _spec(page, "morph_alerts")["epochColumn"] == "epoch"


def test_grad_hist_rows_are_shares(morph_page):
    from epochscope.generator.context import BuildContext
    from epochscope.generator.encode import ArrayStore
    from epochscope.generator.packs.morphogenesis_charts import morph_grad_hist

    class Keep(ArrayStore):
        def add_float(self, values, **kw):
            self.last = np.asarray(values)
            return super().add_float(values, **kw)

    bundle, page = morph_page
    store = Keep()
    spec = morph_grad_hist(BuildContext(bundle, store))
    assert spec["yLabels"] == ["host", "early", "mid", "late"]
    assert len(spec["xLabels"]) == 24 and spec["xLabels"][0] == -9.75 and spec["xLabels"][-1] == 1.75
    z = store.last
    assert z.shape == (len(spec["windows"]), 4, 24)
    sums = np.nansum(z, axis=2)
    detailed = np.isfinite(z).any(axis=2)
    assert detailed[:, 0].any()  # the host's row of at least one trace
    assert np.allclose(sums[detailed], 1.0)


def test_nothing_is_drawn_twice(morph_page):
    bundle, page = morph_page
    cards = _names(page)
    # the generic pack shows no table, series, artifact or event kind the pack drew
    generic_tables = {c.title for g in page.groups for c in g.charts if c.name.startswith("tables-")}
    assert not generic_tables & PROFILE_TABLES, generic_tables
    shown = set(page.page["seriesShown"])
    assert {"val_acc", "host_only.val_acc", "counterfactual.empty", "slot.mid.shapley"} <= shown
    assert {n for n in bundle.series_names if n.startswith("dense.")} <= shown
    generic_series = [c.title for g in page.groups for c in g.charts if c.name.startswith("metrics-")]
    assert generic_series and not any(t.startswith("dense.") for t in generic_series), generic_series
    assert not any(c.startswith("artifacts-") and "dense." in c for c in cards)
    events = _spec(page, "events")
    assert {tm.ALERT_EVENT, tm.GATE_EVENT} <= set(events["exclude"])
    assert events["rows"] == sum(1 for e in bundle.events() if e["kind"] not in events["exclude"])


EVIL = "<img src=x onerror=alert(1)>"


def _evil_bundle(path):
    """A telemetry bundle made by Recorder calls whose every user string is markup."""
    import epochscope

    evil = EVIL
    slots = [f"{evil}a", "b&c"]
    with epochscope.Recorder(path, config={"note": evil}) as rec:
        rec.episode(host_params=100, note=evil, final={"accuracy_delta": 0.01, "test_accuracy_delta": -0.01,
                                                       "param_ratio": 1.1, "efficiency_ratio": 0.95,
                                                       "params_total": 110})
        for epoch in range(1, 5):
            rec.log(epoch, val_acc=0.5 + 0.05 * epoch, **{"host_only.val_acc": 0.5 + 0.04 * epoch})
            rec.slots(epoch, [{"slot": s, "stage": "training", "seed_id": evil, "blueprint": evil, "alpha": 0.5}
                              for s in slots])
            rec.event(epoch, tm.GATE_EVENT, evil, payload={"slot": slots[0], "gate": evil, "passed": epoch % 2 == 0,
                                                           "reason": evil})
            rec.counterfactual(epoch, lambda a: {"val_acc": 0.5 + 0.1 * a[slots[0]] + 0.05 * a["b&c"]}, slots,
                               metric="val_acc")
        rec.event(3, tm.ALERT_EVENT, evil, payload={"reason": evil, "value": 3.0, "threshold": 2.0})
        rec.dense(2, evil, batches={"loss": [1.0, 0.9, 0.8]}, steps=[10, 11, 12], end_epoch=3, message=evil)
    return path


def test_hostile_names_are_escaped(tmp_path):
    """Slot names, seeds, blueprints, gate reasons and episode values are user strings."""
    path = _evil_bundle(tmp_path / "evil.h5")
    out = render_report(path, tmp_path / "evil.html")
    html = out.read_text()
    assert "<img" not in html
    with open_bundle(path) as b:
        page = build_page(b, None)
        assert {"morph_cf_matrix", "morph_stages", "morph_alerts", "morph_attribution"} <= _names(page)
        # Shapley values add up to full minus empty at every matrix epoch
        for cf in tm.read_telemetry(b).counterfactuals:
            total = sum(a["shapley"] for a in cf["attribution"].values())
            assert math.isclose(total, cf["full"] - cf["empty"], abs_tol=1e-9)


@pytest.mark.browser
@needs_chromium
def test_report_in_browser(morph_run, tmp_path, browser):
    out = render_report(morph_run, tmp_path / "morph.html")
    opened = open_report(browser, out)
    draw_all(opened)
    assert not opened.errors, opened.errors
    assert not opened.blocked, opened.blocked
    drawn = opened.evaluate("""(ids) => ids.map((id) => {
        const g = document.getElementById('g-' + id);
        if (!g) return [id, -1];
        const cards = Array.from(g.querySelectorAll('.chart-card[data-status="ok"]'));
        return [id, cards.filter((c) => c.dataset.drawn && c.dataset.drawn !== 'error'
                                  && (c.querySelector('.main-svg') || c.querySelector('table tbody tr'))).length,
                cards.length];
    })""", list(SECTIONS))
    for section, n, *total in drawn:
        assert n > 0 and n == total[0], (section, n, total)
    # the counterfactual table follows the selected epoch
    with open_bundle(morph_run) as b:
        epochs = sorted({int(e) for e in b.table(tm.COUNTERFACTUAL_TABLE)["epoch"]})
        sizes = {e: int(np.sum(np.asarray(b.table(tm.COUNTERFACTUAL_TABLE)["epoch"]) == e)) for e in epochs}
    show(opened, "morph_cf_matrix")

    def table_epochs():
        return opened.evaluate("""() => Array.from(document.querySelectorAll('#c-morph_cf_matrix tbody tr'))
            .map((tr) => Number(tr.children[0].textContent))""")

    assert set(table_epochs()) == {epochs[-1]} and len(table_epochs()) == sizes[epochs[-1]]
    target = epochs[len(epochs) // 2]
    opened.evaluate("(e) => ES.app.setEpoch(e)", target)
    settle(opened)
    show(opened, "morph_cf_matrix")
    shown = opened.evaluate("ES.app.state.epoch")
    nearest = min(epochs, key=lambda e: abs(e - shown))
    assert set(table_epochs()) == {nearest} and len(table_epochs()) == sizes[nearest]
    count = opened.evaluate("document.querySelector('#c-morph_cf_matrix .tbl-count').textContent")
    assert re.search(rf"rows at epoch {nearest}\b", count), count
    # the per-batch charts follow into the dense trace of the selected epoch
    with open_bundle(morph_run) as b:
        trace = tm.read_telemetry(b).dense_traces[-1]
    opened.evaluate("(e) => ES.app.setEpoch(e)", int(trace["epoch_start"]))
    show(opened, "morph_dense_batches")
    title = opened.evaluate("document.querySelector('#c-morph_dense_batches .xtitle').textContent")
    assert f"trace {trace['trace']}" in title, title
    assert not opened.errors, opened.errors
    opened.page.close()


@pytest.mark.browser
@needs_chromium
def test_hostile_names_stay_text_in_browser(tmp_path, browser):
    out = render_report(_evil_bundle(tmp_path / "evil.h5"), tmp_path / "evil.html")
    opened = open_report(browser, out)
    draw_all(opened)
    for name in ("morph_stages", "morph_cf_matrix", "morph_interactions", "morph_dense_batches"):
        show(opened, name)
    opened.evaluate("ES.app.setEpoch(2)")
    settle(opened)
    assert opened.evaluate("document.querySelectorAll('img').length") == 0
    assert not opened.dialogs and not opened.errors, (opened.dialogs, opened.errors)
    # the markup shows as text where it is drawn
    assert EVIL in opened.evaluate("document.querySelector('#c-morph_alerts tbody').textContent")
    opened.page.close()
