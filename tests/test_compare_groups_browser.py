"""Comparisons of 2, 12 and 200 runs in a real browser (Debian chromium, network blocked):
groups drawn as a mean line with a band that matches stats.band on the page's own data, the
band switch, regrouping by any subset of keys (kept in the URL hash), member runs on demand,
group rows and seed variance against numpy, the run list, row and curve links into the run
reports, no console errors."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from browser_helpers import needs_chromium, open_report, open_run_list, settle, show

from epochscope.generator.compare import render_compare, stats
from tests.compare_generic import GenericSpec, generic_specs, write_generic, write_generic_sweep

pytestmark = [pytest.mark.browser, needs_chromium]


def _site(tmp: Path, name: str, paths: list[Path]) -> Path:
    """A comparison page under site/compare/ whose runs have stand-in reports in site/runs/."""
    site = tmp / "site"
    links = {}
    for p in paths:
        report = site / "runs" / f"{p.stem}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(f"<!DOCTYPE html><title>{p.stem}</title><h1>report of {p.stem}</h1>")
        links[str(p)] = f"../runs/{p.stem}.html"
    return render_compare(paths, site / "compare" / f"{name}.html", links=links, shared_assets=site / "assets")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("groups")
    g12 = write_generic_sweep(tmp / "g12", generic_specs(12, epochs=1000))
    g200 = write_generic_sweep(tmp / "g200", generic_specs(200, epochs=400))
    (tmp / "two").mkdir()
    seeds = [write_generic(tmp / "two" / f"s{i}.h5", GenericSpec(f"seed-{i}", 1e-3, 64, i, epochs=600))
             for i in range(2)]
    lrs = [write_generic(tmp / "two" / f"l{i}.h5", GenericSpec(f"lr-{i}", lr, 64, 0, epochs=600))
           for i, lr in enumerate((1e-3, 1e-4))]
    evil = [write_generic(tmp / "two" / f"e{i}.h5", GenericSpec(f"opt-{i}", 1e-3, 64, i, epochs=300,
                                                                extra={"opt": EVIL if i else "adam"}))
            for i in range(2)]
    return {"g12": _site(tmp, "g12", g12), "g200": _site(tmp, "g200", g200), "seeds": _site(tmp, "seeds", seeds),
            "lrs": _site(tmp, "lrs", lrs), "evil": _site(tmp, "evil", evil)}


EVIL = "</script><img src=x onerror=\"window.__pwned=1\">"


def traces(opened, chart: str) -> list[dict]:
    """What Plotly drew: per trace its kind (band edge, group mean, run line), name and data."""
    return opened.evaluate("""(n) => document.getElementById('p-' + n).data.map(t => ({
        band: t.esBand || null, group: t.esGroup === undefined ? null : t.esGroup,
        run: t.esRun === undefined ? null : t.esRun, name: t.name || '', showlegend: t.showlegend,
        x: Array.from(t.x), y: Array.from(t.y, v => (v === null || Number.isNaN(v)) ? null : v),
        n: t.customdata ? Array.from(t.customdata) : null }))""", chart)


def members(opened, chart: str, group: int, role: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The decoded series of a group's runs for one role, as the page holds them."""
    got = opened.evaluate("""([n, g, role]) => { const ch = ES.app.charts[n]; const G = ES.app.groups()[g];
        const opt = ch.spec.options[0];
        return opt.traces.filter(t => G.members.includes(t.v) && (t.role || '') === role)
          .map(t => [Array.from(t.x.data), Array.from(t.y.data)]); }""", [chart, group, role])
    return [(np.array(x, dtype=float), np.array(y, dtype=float)) for x, y in got]


def means(tr: list[dict]) -> list[dict]:
    return [t for t in tr if t["group"] is not None]


def test_twelve_runs_groups_bands_match_stats(browser, pages):
    opened = open_report(browser, pages["g12"])
    show(opened, "loss")
    tr = traces(opened, "loss")
    mean = means(tr)
    assert len(mean) == 12  # 6 groups x (train, val)
    assert sorted({t["name"] for t in mean if t["showlegend"]}) == sorted(
        f"lr={lr}, width={w} (N=2)" for lr in ("0.001", "0.0003", "0.0001") for w in (64, 256))
    assert opened.evaluate("document.getElementById('c-loss').dataset.bands") == "12"
    # group 2 holds run 9 (every second epoch, shorter): the grid is the union, N drops at its end
    gi = opened.evaluate("ES.app.groups().findIndex(g => g.members.includes(9))")
    want = stats.band(members(opened, "loss", gi, "val"))
    i = [j for j, t in enumerate(tr) if t["group"] == gi][1]  # roles in order: train, then val
    got = tr[i]
    assert np.allclose(got["x"], want["grid"]) and got["n"] == want["n"].tolist()
    assert 1 in got["n"] and 2 in got["n"]  # the short run ends before the other
    assert np.allclose(np.array(got["y"], dtype=float), want["mean"], rtol=1e-9, atol=1e-12)
    low, high = tr[i - 2], tr[i - 1]
    two = want["n"] == 2
    assert np.allclose(np.array(high["y"], dtype=float)[two], (want["mean"] + want["std"])[two])
    assert low["band"] == "low" and high["band"] == "high"
    assert np.allclose(np.array(low["y"], dtype=float)[two], (want["mean"] - want["std"])[two])
    # the band switch: min-max, then the standard error (narrower than the std)
    opened.page.click("button.band-btn[data-band=minmax]")
    settle(opened)
    tr = traces(opened, "loss")
    assert np.allclose(np.array(tr[i - 1]["y"], dtype=float), want["hi"])
    assert np.allclose(np.array(tr[i - 2]["y"], dtype=float), want["lo"])
    assert "band=minmax" in opened.evaluate("location.hash")
    opened.page.click("button.band-btn[data-band=sem]")
    settle(opened)
    tr = traces(opened, "loss")
    assert np.allclose(np.array(tr[i - 1]["y"], dtype=float)[two], (want["mean"] + want["sem"])[two])
    assert opened.errors == [] and opened.blocked == []
    opened.page.close()


def test_regrouping_lives_in_the_hash_and_members_on_demand(browser, pages):
    opened = open_report(browser, pages["g12"])
    show(opened, "loss")
    opened.page.click("#groupby-panel summary")
    opened.page.uncheck(".gb-key input[data-key=width]")
    settle(opened)
    assert "g=lr" in opened.evaluate("location.hash") and "g=lr%2Cwidth" not in opened.evaluate("location.hash")
    mean = means(traces(opened, "loss"))
    assert sorted({t["name"] for t in mean if t["showlegend"]}) == ["lr=0.0001 (N=4)", "lr=0.0003 (N=4)",
                                                                    "lr=0.001 (N=4)"]
    assert opened.page.inner_text("#groupby-summary") == "lr"
    opened.page.uncheck(".gb-key input[data-key=lr]")
    settle(opened)
    assert [t["name"] for t in means(traces(opened, "loss")) if t["showlegend"]] == ["all runs (N=12)"]
    opened.page.check(".gb-key input[data-key=seed]")
    settle(opened)
    assert sorted(t["name"] for t in means(traces(opened, "loss")) if t["showlegend"]) == [
        "seed=0 (N=6)", "seed=1 (N=6)"]
    url = opened.evaluate("location.href")
    before = len(traces(opened, "loss"))
    opened.page.click("#members-btn")
    settle(opened)
    runs = [t for t in traces(opened, "loss") if t["run"] is not None]
    assert len(runs) == 24 and len(traces(opened, "loss")) == before + 24 and "members=1" in opened.evaluate(
        "location.hash")
    assert opened.errors == []
    opened.page.close()
    again = open_report(browser, pages["g12"], hash="#" + url.split("#", 1)[1])
    show(again, "loss")
    assert sorted(t["name"] for t in means(traces(again, "loss")) if t["showlegend"]) == [
        "seed=0 (N=6)", "seed=1 (N=6)"]
    assert again.evaluate("ES.app.state.groupBy") == ["seed"]
    assert again.errors == []
    again.page.close()


def test_group_rows_seed_variance_and_best_configuration(browser, pages):
    opened = open_report(browser, pages["g12"])
    page = opened.evaluate("ES.page")
    opened.page.click("button.rows-btn[data-rows=groups]")
    assert opened.page.is_visible("#groups-table") and not opened.page.is_visible("#runs-table")
    assert "rows=groups" in opened.evaluate("location.hash")
    rows = opened.evaluate("""() => Array.from(document.querySelectorAll('#summary-groups tbody tr')).map(tr =>
        ({label: tr.querySelector('th').innerText, n: tr.children[1].innerText,
          cells: Array.from(tr.querySelectorAll('td[data-n]')).map(td => [td.dataset.n, td.dataset.mean, td.dataset.std])}))""")
    groups = opened.evaluate("ES.app.groups().map(g => g.members)")
    assert len(rows) == 6 and all(r["n"] == "2" for r in rows)
    cols = [c for c in page["table"]["cols"] if c["agg"]]
    for row, idx in zip(rows, groups, strict=True):
        for (n, mean, std), col in zip(row["cells"], cols, strict=True):
            vals = np.array([page["table"]["values"][col["key"]][i] for i in idx], dtype=float)
            assert int(n) == 2 and float(mean) == pytest.approx(vals.mean())
            assert float(std) == pytest.approx(vals.std(ddof=1))
    # seed variance of val_loss's best values, per group
    opened.page.select_option("#variance-metric", "1")
    var = opened.evaluate("""() => Array.from(document.querySelectorAll('#variance tbody tr')).map(tr =>
        Array.from(tr.querySelectorAll('td[data-v]')).map(td => td.dataset.v))""")
    m = page["metrics"][1]
    assert m["name"] == "val_loss"
    for got, idx in zip(var, groups, strict=True):
        best = np.array([m["best"][i] for i in idx])
        assert [float(x) for x in got[:4]] == pytest.approx([best.mean(), best.std(ddof=1), best.min(), best.max()])
    # the best configuration per metric names the group with the best mean
    best = opened.evaluate("""() => Array.from(document.querySelectorAll('#best-config li')).map(li =>
        [li.dataset.metric, Number(li.dataset.g)])""")
    assert [b[0] for b in best] == ["train_loss", "val_loss", "val_acc"]
    for name, g in best:
        mm = next(x for x in page["metrics"] if x["name"] == name)
        score = [np.mean([mm["best"][i] for i in idx]) for idx in groups]
        assert g == (int(np.argmin(score)) if mm["direction"] == "min" else int(np.argmax(score)))
    # the group rows sort by a value column's group mean, both ways, and keep that order on regrouping
    col = 2 + len(page["table"]["cfg"])  # the first value column (after Group, N and the config keys)
    means = f"""() => Array.from(document.querySelectorAll('#summary-groups tbody tr'))
        .map(tr => Number(tr.children[{col}].dataset.mean))"""
    header = f"#summary-groups thead th:nth-child({col + 1}) .sort-btn"
    before = opened.evaluate(means)
    opened.page.click(header)
    assert opened.evaluate(means) == sorted(before)
    opened.page.click(header)
    assert opened.evaluate(means) == sorted(before, reverse=True)
    assert opened.evaluate(f"document.querySelector('#summary-groups thead th:nth-child({col + 1})')"
                           ".getAttribute('aria-sort')") == "descending"
    # regroup by one key: the fewer, new group rows come sorted the same way
    keys = opened.evaluate("Array.from(document.querySelectorAll('.gb-key input')).map(x => x.dataset.key)")
    assert len(keys) >= 2, keys
    opened.evaluate("(k) => ES.app.setGroupBy([k])", keys[0])
    regrouped = opened.evaluate(means)
    assert regrouped == sorted(regrouped, reverse=True) and len(regrouped) < len(before)
    assert opened.errors == []
    opened.page.close()


def test_row_and_curve_links_open_the_report_at_the_epoch(browser, pages):
    opened = open_report(browser, pages["g12"])
    focus = opened.evaluate("ES.page.variants[3].focus")
    link = opened.page.locator("#summary tbody tr[data-v='3'] a.run-link")
    assert link.get_attribute("href") == f"../runs/run-0003.html#epoch={focus}"
    link.click()
    opened.page.wait_for_load_state()
    assert opened.page.url.endswith(f"/site/runs/run-0003.html#epoch={focus}")
    opened.page.close()
    # every run its own group: clicking a run's line opens that run's report at the clicked epoch
    opened = open_report(browser, pages["g12"], hash="#g=lr,width,seed")
    show(opened, "accuracy")
    tr = traces(opened, "accuracy")
    assert len(tr) == 12 and all(t["run"] is not None for t in tr)
    k = 11
    x, y = tr[k]["x"][150], tr[k]["y"][150]
    px, py = opened.evaluate("""([x, y]) => { const gd = document.getElementById('p-accuracy');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [box.left + xa.l2p(x), box.top + ya.l2p(y)]; }""", [x, y])
    opened.page.mouse.move(px, py)
    hovered = opened.evaluate("""() => { const h = document.getElementById('p-accuracy')._hoverdata || [];
        return h.length ? [h[0].data.esRun, h[0].x] : null; }""")
    assert hovered is not None
    run, epoch = hovered
    opened.page.mouse.click(px, py)
    opened.page.wait_for_url(re.compile(r".*/site/runs/run-\d{4}\.html#epoch=\d+$"), timeout=10000)
    assert opened.page.url.endswith(f"/site/runs/run-{run:04d}.html#epoch={round(epoch)}")
    assert opened.blocked == []
    opened.page.close()


def test_a_report_link_marks_its_run_on_the_comparison(browser, pages):
    """A report's "Compared: ..." link carries #run=<its report's href on that page>: the row is
    marked and scrolled to, its group row too, and its lines are drawn widest."""
    run = quote("../runs/run-0005.html", safe="")
    opened = open_report(browser, pages["g12"], hash=f"#g=lr,width,seed&run={run}")
    marked = opened.evaluate("""() => Array.from(document.querySelectorAll('#summary tbody tr.is-focus'))
        .map(tr => [tr.dataset.v, tr.getAttribute('aria-current')])""")
    assert marked == [["5", "true"]]
    assert opened.evaluate("ES.app.state.focus") == 5
    show(opened, "accuracy")
    widths = opened.evaluate("""() => document.getElementById('p-accuracy').data
        .filter(t => t.esRun !== undefined).map(t => [t.esRun, t.line.width])""")
    assert {w for r, w in widths if r == 5} == {3.4} and all(w < 3.4 for r, w in widths if r != 5), widths
    # the group rows mark the group it is in; the hash keeps the run when the state changes
    opened.evaluate("ES.app.setRows('groups')")
    settle(opened)
    groups = opened.evaluate("Array.from(document.querySelectorAll('#summary-groups tbody tr.is-focus')).length")
    assert groups == 1
    assert f"run={run}" in opened.page.url
    # another report's link, same page: the mark moves
    opened.page.evaluate("(h) => { location.hash = h; }", f"#g=lr,width,seed&run={quote('../runs/run-0002.html', safe='')}")
    opened.page.wait_for_function("ES.app.state.focus === 2")
    marked = opened.evaluate("Array.from(document.querySelectorAll('#summary tbody tr.is-focus')).map(tr => tr.dataset.v)")
    assert marked == ["2"]
    # a link to a run that is not on the page marks nothing and breaks nothing
    opened.page.close()
    opened = open_report(browser, pages["g12"], hash="#run=..%2Fruns%2Fnot-here.html")
    assert opened.evaluate("ES.app.state.focus") is None
    assert opened.evaluate("document.querySelectorAll('tr.is-focus').length") == 0
    assert opened.errors == [] and opened.blocked == []
    opened.page.close()


def test_initial_against_best_scatter_and_run_list(browser, pages):
    opened = open_report(browser, pages["g12"])
    show(opened, "init_best")
    tr = traces(opened, "init_best")
    assert len(tr) == 6 and sum(len(t["x"]) for t in tr) == 12
    text = opened.evaluate("document.getElementById('c-init_best').dataset.stats")
    assert "Spearman" in text and "Pearson" in text and "N = 12" in text
    # the run list: searchable, hides runs from every group
    open_run_list(opened)
    assert opened.evaluate("document.querySelectorAll('#run-list .run-item').length") == 12
    opened.page.fill("#run-filter", "run-0001")
    assert opened.evaluate("document.querySelectorAll('#run-list .run-item').length") == 1
    opened.page.click("[data-runs=hide]")
    settle(opened)
    assert "hide=1" in opened.evaluate("location.hash")
    assert opened.page.inner_text("#runs-summary") == "12 (1 hidden)"
    sizes = opened.evaluate("ES.app.groups().map(g => g.members.length)")
    assert sorted(sizes) == [1, 2, 2, 2, 2, 2]
    opened.page.fill("#run-filter", "width=256")
    assert opened.evaluate("document.querySelectorAll('#run-list .run-item').length") == 6
    assert opened.errors == []
    opened.page.close()


def test_two_hundred_runs_stay_fast_and_collapsed(browser, pages):
    opened = open_report(browser, pages["g200"])
    assert opened.evaluate("document.getElementById('toolbar').offsetHeight") < 130  # no wall of chips
    assert opened.evaluate("document.querySelectorAll('.chip').length") == 0
    show(opened, "loss")
    mean = means(traces(opened, "loss"))
    assert len(mean) == 12 and {t["name"].split(" (N=")[1] for t in mean if t["showlegend"]} <= {"33)", "34)"}
    assert opened.evaluate("ES.app.stats.firstPaint") < 10000
    # every run its own group: 400 lines, no legend, said under the chart
    opened.evaluate("ES.app.setGroupBy(['lr', 'width', 'seed'])")
    settle(opened)
    tr = traces(opened, "loss")
    assert len(tr) == 400 and not any(t["showlegend"] for t in tr)
    assert "200 groups" in opened.evaluate("document.querySelector('#c-loss .align-note').innerText")
    notes = opened.page.inner_text("#not-comparable")
    assert notes.count("run-0") <= 12
    assert opened.errors == [] and opened.blocked == []
    opened.page.close()


def test_two_runs_one_group_of_two_and_two_groups_of_one(browser, pages):
    opened = open_report(browser, pages["seeds"])
    show(opened, "loss")
    mean = means(traces(opened, "loss"))
    assert [t["name"] for t in mean if t["showlegend"]] == ["all runs (N=2)"]
    assert opened.evaluate("document.getElementById('c-loss').dataset.bands") == "2"
    assert "Only 2 runs: too few" in opened.page.inner_text("#cmp-card")
    assert opened.errors == []
    opened.page.close()
    opened = open_report(browser, pages["lrs"])
    show(opened, "loss")
    tr = traces(opened, "loss")
    assert opened.evaluate("document.getElementById('c-loss').dataset.bands") == "0"
    assert {t["name"] for t in tr if t["showlegend"]} == {"lr=0.001 (N=1)", "lr=0.0001 (N=1)"}
    assert "every run is a group of its own" in opened.page.inner_text("#not-comparable")
    show(opened, "difference")
    assert opened.errors == []
    opened.page.close()


def test_config_values_in_group_labels_stay_text(browser, pages):
    opened = open_report(browser, pages["evil"], hash="#rows=groups")
    show(opened, "loss")
    names = {t["name"] for t in traces(opened, "loss") if t["showlegend"]}
    assert any("&lt;/script&gt;&lt;img" in n for n in names), names  # escaped before Plotly renders it
    assert EVIL in opened.page.inner_text("#summary-groups") and EVIL in opened.page.inner_text("#variance")
    open_run_list(opened)
    assert EVIL in opened.page.inner_text("#run-list")
    assert opened.evaluate("window.__pwned") is None and opened.dialogs == []
    assert opened.evaluate("document.querySelectorAll('img[src=x]').length") == 0
    assert opened.errors == [] and opened.blocked == []
    opened.page.close()
