"""`epochscope build`: the static site, incremental rebuilds, bad input, and a real browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from epochscope.errors import EpochscopeError
from epochscope.generator.site import build_site
from tests.browser_helpers import ARGS, CHROMIUM, needs_chromium
from tests.synthetic import SyntheticRun, write_synthetic_bundle

SMALL = {"p": 13, "d_model": 16, "d_mlp": 64, "n_heads": 4, "epochs": 2000, "analysed": 12,
         "key_freqs": (2, 5), "map_neurons": 4}


def _bundles(root: Path) -> Path:
    (root / "sweepA").mkdir(parents=True)
    write_synthetic_bundle(root / "sweepA" / "p13_s1.h5", SyntheticRun(name="sweepA/p13_s1", seed=1, **SMALL))
    write_synthetic_bundle(root / "sweepA" / "p13_s2.h5", SyntheticRun(name="sweepA/p13_s2", seed=2, **SMALL))
    # Same display name as another run, and no turn analysis: both must still build.
    no_turn = SyntheticRun(name="sweepA/p13_s1", seed=3, analyses=("weight_norms",), **SMALL)
    write_synthetic_bundle(root / "sweepA" / "p13_s3.h5", no_turn)
    (root / "sweepA" / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # truncated
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = _bundles(tmp_path_factory.mktemp("bundles"))
    site = tmp_path_factory.mktemp("site") / "site"
    result = build_site(root, site)
    return root, site, result


def test_build_writes_reports_comparison_index_and_assets(built):
    root, site, result = built
    assert (site / "index.html").exists()
    for name in ("p13_s1", "p13_s2", "p13_s3"):
        assert (site / "runs" / "sweepA" / f"{name}.html").exists()
    assert (site / "compare" / "sweepA.html").exists()
    assert len(list((site / "assets").glob("plotly-*.min.js"))) == 1
    assert "sweepA/broken.h5" in result.broken
    index = (site / "index.html").read_text()
    assert "broken.h5" in index and "could not be read" in index
    assert "no turn" in index
    # plotly.js is not inlined in site pages: one shared copy.
    report = (site / "runs" / "sweepA" / "p13_s1.html").read_text()
    assert 'src="../../assets/plotly-' in report
    assert "../../index.html" in report  # the way back


def test_no_change_rebuild_renders_nothing_and_clean_build_gives_same_bytes(built, tmp_path):
    root, site, _ = built
    again = build_site(root, site)
    assert again.rendered == []
    clean = tmp_path / "clean"
    build_site(root, clean)
    for page in sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file()):
        assert (clean / page).read_bytes() == (site / page).read_bytes(), page


def test_changed_added_and_removed_bundles_rebuild_only_what_changed(tmp_path):
    root = tmp_path / "bundles"
    (root / "sw").mkdir(parents=True)
    write_synthetic_bundle(root / "sw" / "a.h5", SyntheticRun(name="a", seed=1, **SMALL))
    write_synthetic_bundle(root / "sw" / "b.h5", SyntheticRun(name="b", seed=2, **SMALL))
    site = tmp_path / "site"
    build_site(root, site)
    write_synthetic_bundle(root / "sw" / "b.h5", SyntheticRun(name="b", seed=5, **SMALL))
    write_synthetic_bundle(root / "sw" / "c.h5", SyntheticRun(name="c", seed=6, **SMALL))
    result = build_site(root, site)
    assert sorted(result.rendered) == ["compare/sw.html", "index.html", "runs/sw/b.html", "runs/sw/c.html"]
    assert "runs/sw/a.html" in result.skipped
    # each report links back to the comparison page it appears on
    html = (site / "runs" / "sw" / "a.html").read_text()
    # ... naming this run there by its report's link on that page (the page marks its row)
    assert 'href="../../compare/sw.html#run=..%2Fruns%2Fsw%2Fa.html">Compared: sweep sw</a>' in html
    assert 'href="../runs/sw/a.html' in (site / "compare" / "sw.html").read_text()
    (root / "sw" / "c.h5").unlink()
    result = build_site(root, site)
    assert result.removed == ["runs/sw/c.html"]
    assert not (site / "runs" / "sw" / "c.html").exists()


def test_bad_input(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EpochscopeError, match="no bundles"):
        build_site(tmp_path / "empty", tmp_path / "site")
    proc = cli("build", tmp_path / "empty", "-o", tmp_path / "site")
    assert proc.returncode == 1 and "no bundles" in proc.stderr
    (tmp_path / "one").mkdir()
    write_synthetic_bundle(tmp_path / "one" / "only.h5", SyntheticRun(name="only", **SMALL))
    proc = cli("compare", tmp_path / "one" / "only.h5", "-o", tmp_path / "c.html")
    assert proc.returncode == 1 and "use `epochscope report`" in proc.stderr
    with pytest.raises(EpochscopeError, match="own directory"):
        build_site(tmp_path / "one", tmp_path / "one")


def test_build_cli_warns_about_skipped_bundles(tmp_path, cli):
    root = _bundles(tmp_path / "b")
    proc = cli("build", root, "-o", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    assert "warning: skipped sweepA/broken.h5" in proc.stderr
    assert "page(s) rendered" in proc.stdout


@pytest.mark.browser
@needs_chromium
def test_site_in_a_real_browser_after_moving_the_folder(built, tmp_path):
    from playwright.sync_api import sync_playwright

    _, site, _ = built
    moved = tmp_path / "elsewhere" / "copied-site"
    shutil.copytree(site, moved)
    blocked, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://")
                   else (blocked.append(r.request.url), r.abort()))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((moved / "index.html").as_uri())

        def names():
            return page.eval_on_selector_all("#rows tr:not([hidden]) td:nth-child(2)", "els => els.map(e => e.innerText)")

        assert len(names()) == 3
        page.click("th[data-key=model_seed]")  # sort ascending by seed: s1, s2, s3 (seeds 598 all; stable)
        page.click("th[data-key=name]")
        assert names() == sorted(names())
        page.click("th[data-key=name]")
        assert names() == sorted(names(), reverse=True)
        assert "sort=name" in page.url and "dir=-1" in page.url
        page.fill("#filter", "p13_s2")
        assert page.eval_on_selector_all("#rows tr:not([hidden])", "els => els.length") == 1
        page.fill("#filter", "")

        # index -> report -> back to the index, all by relative links
        page.click("a[href='runs/sweepA/p13_s2.html']")
        page.wait_for_function("window.ES && ES.app && ES.app.stats.firstInteractive !== null", timeout=20000)
        assert page.url.endswith("copied-site/runs/sweepA/p13_s2.html")
        page.click("text=All runs")
        page.wait_for_selector("#runs")
        assert page.url.split("#")[0].endswith("copied-site/index.html")

        # index -> comparison page, whose alignment toggle works
        page.click("a[href='compare/sweepA.html']")
        page.wait_for_function("window.ES && ES.app && ES.app.stats.firstInteractive !== null", timeout=20000)
        page.click("button.seg-btn[data-align=turn]")
        page.wait_for_function("location.hash.includes('x=turn')", timeout=5000)
        assert page.get_attribute("button.seg-btn[data-align=turn]", "aria-pressed") == "true"
        browser.close()
    assert blocked == []
    assert errors == []
