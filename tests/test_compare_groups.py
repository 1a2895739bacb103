"""Comparing many runs without a browser: seed keys, groups, alignment of differing epoch
grids, bands, min/max decimation, the table's statistics against numpy and scipy, the
summary table's metric columns, data embedded once, summarised notes and bad input through
the CLI (one error line, non-zero exit)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from epochscope.archives import BundleWriter, Segment, open_bundle
from epochscope.generator.compare import build_comparison, name_list, render_compare, stats
from tests.compare_generic import GenericSpec, generic_specs, write_generic, write_generic_sweep
from tests.compare_synthetic import VariantSpec, write_variant

SHAPE = dict(d_model=32, d_mlp=48, n_heads=2, epochs=1200, analysed=20)


@pytest.fixture(scope="module")
def sweep12(tmp_path_factory) -> list[Path]:
    """12 runs: 6 configurations (lr x width) x 2 seeds; run 9 logs every second epoch, shorter."""
    return write_generic_sweep(tmp_path_factory.mktemp("g12"), generic_specs(12, epochs=1000))


@pytest.fixture(scope="module")
def cmp12(sweep12):
    return build_comparison(sweep12)


# ----------------------------------------------------------------------------- keys and groups

def test_seed_keys_and_differing_keys():
    assert stats.is_seed_key("seed") and stats.is_seed_key("model_seed") and stats.is_seed_key("DataSeed")
    assert not stats.is_seed_key("lr") and stats.is_seed_key("init", declared=["init"])
    configs = [{"name": "a", "lr": 1e-3, "seed": 0, "same": 1}, {"name": "b", "lr": 1e-4, "seed": 1, "same": 1},
               {"name": "c", "lr": 1e-3, "same": 1}]
    assert stats.differing_keys(configs) == ["lr", "seed"]  # "name" is not a config difference


def test_group_runs_by_any_subset_and_missing_keys():
    configs = [{"lr": 1, "w": 8, "seed": 0}, {"lr": 1, "w": 8, "seed": 1}, {"lr": 2, "w": 8, "seed": 0},
               {"lr": 1, "w": 16, "seed": 0}, {"w": 8, "seed": 3}]
    gs = stats.group_runs(configs, ["lr", "w"])
    assert [(g.label, g.members) for g in gs] == [("lr=1, w=8", [0, 1]), ("lr=2, w=8", [2]), ("lr=1, w=16", [3]),
                                                   (f"lr={stats.MISSING}, w=8", [4])]
    assert [g.members for g in stats.group_runs(configs, ["w"])] == [[0, 1, 2, 4], [3]]
    one = stats.group_runs(configs, [])
    assert len(one) == 1 and one[0].label == "all runs" and one[0].members == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- alignment and bands

def test_align_interpolates_only_inside_each_runs_range():
    e = np.array([10.0, 20.0, 30.0, 40.0])
    v = np.array([1.0, np.nan, 3.0, 4.0])
    grid = np.array([0.0, 10.0, 15.0, 20.0, 35.0, 40.0, 50.0])
    got = stats.align(e, v, grid)
    ok = np.isfinite(v)
    want = np.interp(grid, e[ok], v[ok])
    assert np.isnan(got[0]) and np.isnan(got[-1])  # outside the run: never extrapolated
    assert np.allclose(got[1:-1], want[1:-1])
    assert stats.align(e, np.full(4, np.nan), grid).tolist() == [None] * 7 or np.isnan(
        stats.align(e, np.full(4, np.nan), grid)).all()


def test_common_grid_is_the_union_when_small_else_even_steps():
    a, b = np.arange(0, 100, 2), np.arange(0, 80, 5)
    assert np.array_equal(stats.common_grid([a, b]), np.union1d(a, b))
    big = stats.common_grid([np.arange(5000), np.arange(0, 4000, 2)], limit=400)
    assert big.size == 400 and big[0] == 0 and big[-1] == 4999 and np.allclose(np.diff(big), 4999 / 399)


def test_band_matches_numpy_on_differing_grids():
    rng = np.random.default_rng(3)
    series = [(np.arange(0, 1000, 1), rng.normal(size=1000)), (np.arange(0, 800, 2), rng.normal(size=400)),
              (np.arange(100, 1000, 3), rng.normal(size=300))]
    b = stats.band(series)
    grid = b["grid"]
    assert grid.size == stats.GRID_POINTS  # the union is larger than the limit: even steps
    stack = np.vstack([np.where((grid >= e[0]) & (grid <= e[-1]), np.interp(grid, e, v), np.nan) for e, v in series])
    n = np.isfinite(stack).sum(0)
    assert np.array_equal(b["n"], n) and n.min() == 1 and n.max() == 3  # shorter runs drop out at their ends
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        std = np.nanstd(stack, axis=0, ddof=1)
    assert np.allclose(b["mean"], np.nanmean(stack, axis=0))
    assert np.allclose(b["std"][n > 1], std[n > 1]) and np.isnan(b["std"][n == 1]).all()
    assert np.allclose(b["sem"][n > 1], std[n > 1] / np.sqrt(n[n > 1]))
    assert np.allclose(b["lo"], np.nanmin(stack, 0)) and np.allclose(b["hi"], np.nanmax(stack, 0))


def test_decimate_keeps_each_buckets_min_and_max():
    rng = np.random.default_rng(0)
    x = np.arange(5000)
    y = rng.normal(size=5000)
    y[1234], y[4321] = 40.0, -40.0
    dx, dy = stats.decimate(x, y, 600)
    assert len(dx) <= 602 and dx[0] == 0 and dx[-1] == 4999
    assert dy.max() == 40.0 and dy.min() == -40.0
    size = -(-5000 // 300)
    kept = set(dx.tolist())
    for start in range(0, 5000, size):
        chunk = y[start:start + size]
        assert start + int(np.argmin(chunk)) in kept and start + int(np.argmax(chunk)) in kept
    assert np.array_equal(dy, y[dx])  # kept points are the raw values, not averages


# ----------------------------------------------------------------------------- statistics vs numpy / scipy

def test_spread_matches_numpy():
    xs = [-0.783, -0.762, -0.735, None, float("nan")]
    s = stats.spread(xs)
    arr = np.array([-0.783, -0.762, -0.735])
    assert s.n == 3 and s.mean == pytest.approx(arr.mean()) and s.std == pytest.approx(arr.std(ddof=1))
    assert s.sem == pytest.approx(arr.std(ddof=1) / math.sqrt(3)) and (s.lo, s.hi) == (-0.783, -0.735)
    one = stats.spread([2.0])
    assert one.n == 1 and one.std is None and one.sem is None
    assert stats.spread([]).n == 0


def test_correlation_matches_scipy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=25)
    y = 0.9 * x + 0.3 * rng.normal(size=25)
    c = stats.correlation(list(x) + [None], list(y) + [1.0])
    assert c.n == 25
    assert c.pearson == pytest.approx(sps.pearsonr(x, y).statistic)
    assert c.pearson_p == pytest.approx(sps.pearsonr(x, y).pvalue)
    assert c.spearman == pytest.approx(sps.spearmanr(x, y).statistic)
    assert c.spearman_p == pytest.approx(sps.spearmanr(x, y).pvalue)
    lo, hi = sps.pearsonr(x, y).confidence_interval()
    assert c.pearson_ci == pytest.approx((lo, hi), abs=1e-9)
    assert c.spearman_ci[0] < c.spearman < c.spearman_ci[1]
    assert "N = 25" in c.text() and "Spearman" in c.text()
    assert stats.correlation([1, 2], [3, 4]) is None and stats.correlation([1, 1, 1], [1, 2, 3]) is None


def test_name_list_never_lists_a_hundred():
    names = [f"run-{i}" for i in range(100)]
    assert name_list(names) == "run-0, run-1, run-2, run-3, run-4 and 95 more"
    assert name_list(names[:3]) == "run-0, run-1, run-2"


# ----------------------------------------------------------------------------- the comparison

def test_groups_seeds_and_metric_columns(cmp12, sweep12):
    assert cmp12.keys == ["seed", "lr", "width"] and cmp12.seed_keys == ["seed"]
    assert cmp12.group_by == ["lr", "width"] and len(cmp12.run_groups) == 6
    assert all(len(g.members) == 2 for g in cmp12.run_groups)
    assert cmp12.metrics == ["train_loss", "val_loss", "val_acc"]
    keys = [c.key for c in cmp12.columns]
    assert keys[:3] == ["final:train_loss", "best:train_loss", "best_epoch:train_loss"]
    assert "turn" not in keys and "key_freqs" not in keys  # no pack column without data
    for path, final, best, epoch in zip(sweep12, cmp12.column("final:val_loss"), cmp12.column("best:val_loss"),
                                        cmp12.column("best_epoch:val_loss"), strict=True):
        with open_bundle(path) as b:
            e, v = b.series("val_loss")
        assert final.sort == pytest.approx(float(v[-1])) and best.sort == pytest.approx(float(v.min()))
        assert epoch.sort == e[np.argmin(v)]
    page = cmp12.page
    assert page["groupBy"] == ["lr", "width"] and page["seedKeys"] == ["seed"]
    assert [v["cfg"] for v in page["variants"]][:2] == [["0", "0.001", "64"], ["0", "0.0003", "64"]]
    m = page["metrics"][1]
    assert m["name"] == "val_loss" and m["direction"] == "min"
    assert m["best"] == [c.sort for c in cmp12.column("best:val_loss")]
    assert page["table"]["values"]["final:val_acc"] == [c.sort for c in cmp12.column("final:val_acc")]


def test_seed_variance_of_the_default_groups_matches_numpy(cmp12):
    """What the page's seed-variance table shows for the default grouping (its JS applies
    stats.spread to page["metrics"]; the browser test holds the two together)."""
    m = cmp12.page["metrics"][1]
    for g in cmp12.run_groups:
        best = np.array([m["best"][i] for i in g.members])
        s = stats.spread(best)
        assert s.mean == pytest.approx(best.mean()) and s.std == pytest.approx(best.std(ddof=1))


def test_each_series_is_embedded_once(cmp12):
    charts = cmp12.page["charts"]
    refs = [(t["v"], t["role"], t["y"]["$a"]) for t in charts["loss"]["spec"]["options"][0]["traces"]]
    assert len(refs) == 24 and len({r[2] for r in refs}) == 24  # 12 runs x train, val
    acc = charts["accuracy"]["spec"]["options"][0]["traces"]
    assert {t["y"]["$a"] for t in acc}.isdisjoint({r[2] for r in refs})
    assert charts["init_best"]["status"] == "ok"
    opt = charts["init_best"]["spec"]["options"][0]
    assert opt["label"] == "train_loss" and opt["n"] == 12
    x = np.array(opt["x"])
    y = np.array(opt["y"])
    assert opt["spearman"] == pytest.approx(sps.spearmanr(x, y).statistic)


def test_declared_seed_key_and_runs_lacking_the_grouping_key(tmp_path):
    specs = [GenericSpec(f"r{i}", 1e-3 if i < 3 else 1e-4, 64, 0, epochs=300, extra={"init": i})
             for i in range(6)]
    specs.append(GenericSpec("no-width", 1e-3, 64, 0, epochs=300, extra={"init": 9}))
    paths = [write_generic(tmp_path / f"{s.name}.h5", s) for s in specs]
    _drop_key(paths[-1], "width", tmp_path)
    plain = build_comparison(paths)
    assert "init" in plain.group_by  # a key named "init" is not a seed unless declared
    c = build_comparison(paths, seed_keys=["init", "absent_key"])
    assert c.seed_keys == ["init"] and c.group_by == ["lr", "width"]
    assert [len(g.members) for g in c.run_groups] == [3, 3, 1]
    notes = dict(c.notes)
    assert any(w.startswith("Config key 'width': no-width") for w in notes)
    assert "Declared seed keys 'absent_key'" in notes
    assert any("Groups of one run" in w for w in notes)


def _drop_key(path: Path, key: str, tmp: Path) -> None:
    """Rewrite the bundle at `path` with `key` removed from its config."""
    with open_bundle(path) as b:
        config = {k: v for k, v in b.config.items() if k != key}
        metrics = {n: b.series(n) for n in b.series_names}
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": config}, metrics=metrics, session={"id": "x", "status": "complete"}))
        w.consolidate()


def test_notes_name_groups_not_a_hundred_runs(tmp_path):
    specs = generic_specs(60, epochs=200)
    paths = write_generic_sweep(tmp_path, specs)
    c = build_comparison(paths)
    for what, why in c.notes:
        assert (what + why).count("run-0") <= 10 and len(what + why) < 600, (what, why)
    html = render_compare(paths, tmp_path / "c.html").read_text()
    assert html.count('class="chip"') == 0  # no wall of chips: a searchable run list instead
    assert 'id="run-filter"' in html and 'id="groupby-panel"' in html


def test_runs_sharing_no_series_still_get_a_table(tmp_path):
    a = write_generic(tmp_path / "a.h5", GenericSpec("a", 1e-3, 64, 0, epochs=200, series=("train_loss",)))
    b = write_generic(tmp_path / "b.h5", GenericSpec("b", 1e-4, 64, 1, epochs=200, series=("val_acc",)))
    c = build_comparison([a, b])
    notes = dict(c.notes)
    assert "these runs share no series" in notes["Series"]
    assert all(ch["status"] != "ok" for n, ch in c.page["charts"].items())
    assert len(c.rows) == 2
    html = render_compare([a, b], tmp_path / "c.html").read_text()
    assert "these runs share no series" in html and 'id="summary"' in html


def test_runs_of_different_experiments_compare_what_they_share(tmp_path):
    mod = write_variant(tmp_path / "mod.h5", VariantSpec("mod", 17, 1, 0.35, False, dict(SHAPE)))
    gen = write_generic(tmp_path / "gen.h5", GenericSpec("gen", 1e-3, 64, 0, epochs=1200))
    c = build_comparison([mod, gen])
    notes = dict(c.notes)
    assert "Different experiments" in notes and "Modular addition" in notes["Different experiments"]
    loss = c.page["charts"]["loss"]["spec"]["options"][0]
    assert {(t["v"], t["role"]) for t in loss["traces"]} >= {(0, "train"), (1, "train")}
    assert "train_loss" in c.metrics


def test_bad_input_through_the_cli(cli, sweep12, tmp_path):
    one = cli("compare", sweep12[0], "-o", tmp_path / "c.html", cwd=tmp_path)
    assert one.returncode != 0 and "Traceback" not in one.stderr
    lines = [ln for ln in one.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "use `epochscope report`" in lines[0], one.stderr
    missing = cli("compare", sweep12[0], tmp_path / "nope.h5", "-o", tmp_path / "c.html", cwd=tmp_path)
    assert missing.returncode != 0 and len([ln for ln in missing.stderr.splitlines() if ln.strip()]) == 1
    assert "no such bundle" in missing.stderr and not (tmp_path / "c.html").exists()
    ok = cli("compare", *sweep12[:4], "--seed-key", "width", "-o", tmp_path / "ok.html", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    html = (tmp_path / "ok.html").read_text().replace(" ", "")
    assert '"seedKeys":["width"]' in html and '"groupBy":["lr"]' in html  # runs 0-3 share seed 0


def test_cli_links_reports_it_finds_next_to_the_page(cli, sweep12, tmp_path):
    site = tmp_path / "site"
    assert cli("report", sweep12[0], "-o", site, cwd=tmp_path).returncode == 0
    out = cli("compare", *sweep12[:3], "-o", site / "compare.html", "--no-shared-basis", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    c = build_comparison(sweep12[:3], reports=(site, site))
    assert c.rows[0].href.startswith("run-0000.html#epoch=") and c.rows[1].href is None
    html = (site / "compare.html").read_text()
    assert 'href="run-0000.html#epoch=' in html


def test_many_series_are_thinned_to_stay_within_the_budget():
    from epochscope.generator.compare import page

    class V:
        def __init__(self, n):
            self.series = dict.fromkeys(range(n))

    assert page._points([V(3)] * 10) == 600
    assert page._points([V(3)] * 100) == 600
    assert page.MIN_POINTS <= page._points([V(3)] * 1000) < 600
    assert page._points([V(3)] * 1000) * 3000 * 6 <= page.SERIES_BUDGET
    assert page._points([V(3)] * 100_000) == page.MIN_POINTS


def test_any_series_in_the_reports_families(tmp_path):
    """Series of any name compare in the report's groups: hierarchy_train / hierarchy_val are
    one option with a dash per split, grad_norm.X parts one option."""
    paths = []
    for i, lr in enumerate((1e-3, 1e-3, 1e-4)):
        e = np.arange(50)
        rng = np.random.default_rng(i)
        metrics = {"hierarchy_train": (e, -0.7 + 0.01 * rng.normal(size=50)),
                   "hierarchy_val": (e, -0.6 + 0.01 * rng.normal(size=50)),
                   "grad_norm.W_E": (e, rng.random(50)), "grad_norm.W_U": (e, rng.random(50)),
                   "coverage": (e, np.linspace(0.2, 0.3, 50))}
        path = tmp_path / f"r{i}.h5"
        with BundleWriter(path, create=True) as w:
            w.write(Segment(context={"config": {"name": f"r{i}", "lr": lr, "seed": i}}, metrics=metrics,
                            session={"id": f"r{i}", "status": "complete"}))
            w.consolidate()
        paths.append(path)
    c = build_comparison(paths)
    spec = c.page["charts"]["metric_series"]["spec"]
    by = {o["label"]: o for o in spec["options"]}
    assert set(by) == {"coverage", "grad_norm", "hierarchy"}
    assert [(t["role"], t["dash"]) for t in by["hierarchy"]["traces"] if t["v"] == 0] == [("train", "dash"),
                                                                                          ("val", "dot")]
    assert {t["role"] for t in by["grad_norm"]["traces"]} == {"W_E", "W_U"}
    assert [len(g.members) for g in c.run_groups] == [2, 1]


def test_a_pool_of_readers_gives_the_same_page(tmp_path, monkeypatch):
    """From PARALLEL_FROM bundles on a process pool reads them: the page is byte-identical to
    the one read bundle by bundle."""
    from epochscope.generator.compare import data

    paths = write_generic_sweep(tmp_path / "runs", generic_specs(20, epochs=300))
    one = data.read_variants(paths, workers=1)
    two = data.read_variants(paths, workers=2)
    assert [v.name for v, _, _ in two] == [v.name for v, _, _ in one]
    for (a, _, _), (b, _, _) in zip(one, two, strict=True):
        assert a.facts == b.facts and set(a.display) == set(b.display)
        for key in a.display:
            assert np.array_equal(a.display[key].values, b.display[key].values)
    monkeypatch.setattr(data, "PARALLEL_FROM", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # a pool of two even on a one-CPU machine
    pooled = render_compare(paths, tmp_path / "pooled.html").read_bytes()
    monkeypatch.setattr(data, "PARALLEL_FROM", 10**9)
    serial = render_compare(paths, tmp_path / "serial.html").read_bytes()
    assert pooled == serial
