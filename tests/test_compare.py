"""The comparison page without a browser: table values, robust-z flagging of a planted outlier,
alignment on the turn, the shared PCA basis, "not comparable" notes, errors, escaping, help
on every chart, byte-determinism (of the comparison and of the run report)."""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from epochscope.archives import open_bundle
from epochscope.errors import EpochscopeError
from epochscope.generator import render_report
from epochscope.generator.charts import known_charts
from epochscope.generator.compare import build_comparison, render_compare
from epochscope.generator.compare.data import decimate, robust_z
from epochscope.generator.help import COMPARE_HELP
from tests.compare_synthetic import (
    VariantSpec,
    sweep_specs,
    write_sweep,
    write_variant,
)
from tests.synthetic import ALL_ANALYSES

SHAPE = dict(d_model=32, d_mlp=48, n_heads=2, epochs=1200, analysed=20)
PRIMES = (17, 19, 23, 29, 31)
OUTLIER = 3
EVIL = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> list[Path]:
    """Six variants of primes and seeds; variant 3 is the planted outlier."""
    specs = sweep_specs(6, primes=PRIMES, anomalous=OUTLIER, shape=SHAPE)
    return write_sweep(tmp_path_factory.mktemp("sweep"), specs)


@pytest.fixture(scope="module")
def cmp(sweep):
    return build_comparison(sweep)


@pytest.fixture(scope="module")
def weighted(tmp_path_factory) -> list[Path]:
    """Three variants of one shape with model weights in their checkpoints, one of another p."""
    specs = sweep_specs(3, same_p=23, shape=SHAPE)
    specs.append(VariantSpec("other-p", 29, 7, 0.35, False, dict(SHAPE)))
    return write_sweep(tmp_path_factory.mktemp("weighted"), specs, weights=True)


def page_data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="es-data">(.*?)</script>', html, re.S).group(1))


def decode(html: str, meta: dict, ref: dict) -> np.ndarray:
    """What the page's decoder computes, in numpy."""
    aid = ref["$a"]
    meta = meta[aid]
    if meta["enc"] == "range":
        return meta["start"] + meta["step"] * np.arange(meta["n"])
    raw = base64.b64decode(re.search(rf'id="{aid}">([^<]*)</script>', html).group(1))
    if meta.get("z"):
        raw = zlib.decompress(raw, -15)
    kind = {"f32": "<f4", "f16": "<f2", "u8": "u1", "u16": "<u2", "i32": "<i4"}[meta["enc"]]
    return np.frombuffer(raw, dtype=kind).astype(np.float64).reshape(meta["shape"])


# ----------------------------------------------------------------------------- errors

def test_one_bundle_is_an_error(sweep, tmp_path):
    with pytest.raises(EpochscopeError, match="comparing one bundle: use `epochscope report`"):
        render_compare(sweep[:1], tmp_path / "c.html")
    with pytest.raises(EpochscopeError, match="comparing one bundle"):
        render_compare([sweep[0], sweep[0]], tmp_path / "c.html")  # the same bundle twice
    with pytest.raises(EpochscopeError, match="two or more"):
        render_compare([], tmp_path / "c.html")
    with pytest.raises(EpochscopeError, match="no such bundle"):
        render_compare([sweep[0], tmp_path / "missing.h5"], tmp_path / "c.html")
    assert not (tmp_path / "c.html").exists()


def test_unreadable_bundle_is_noted_not_fatal(sweep, tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5 at all")
    c = build_comparison([sweep[0], bad, sweep[1]])
    assert c.labels == ["p17-s485", "p17-s999"]
    assert any(str(bad) in what and "could not be read" in why for what, why in c.notes)
    with pytest.raises(EpochscopeError, match="fewer than two readable"):
        build_comparison([sweep[0], bad])


# ----------------------------------------------------------------------------- table values

def test_table_values_match_the_bundles(cmp, sweep):
    specs = sweep_specs(6, primes=PRIMES, anomalous=OUTLIER, shape=SHAPE)
    assert cmp.labels == [s.name for s in specs]
    assert cmp.config_keys[:2] == ["p", "model_seed"]
    turns = cmp.column("turn")
    for spec, cell in zip(specs, turns, strict=True):
        assert cell.sort == int(spec.turn_frac * SHAPE["epochs"])
    for path, loss, acc, keys, alarms in zip(sweep, cmp.column("final:test_loss"), cmp.column("final:test_acc"),
                                             cmp.column("key_freqs"), cmp.column("alarms"), strict=True):
        with open_bundle(path) as b:
            epochs, values = b.series("test_loss")
            assert loss.sort == pytest.approx(values[np.argmax(epochs)])
            epochs, values = b.series("test_acc")
            assert acc.sort == pytest.approx(values[np.argmax(epochs)])
            assert acc.text == f"{100 * values[np.argmax(epochs)]:.2f}%"
            want = [int(k) for k in b.artifact("restricted_loss").summary("key_freqs")]
            assert keys.text == ", ".join(map(str, want))
            assert alarms.sort == len(b.events("cusum_alarm"))
    # grokking speed = first epoch test_acc >= 95% minus the turn
    with open_bundle(sweep[0]) as b:
        epochs, acc = b.series("test_acc")
        first = int(epochs[np.argmax(acc >= 0.95)])
    assert cmp.column("grok_speed")[0].sort == first - cmp.column("turn")[0].sort
    # the planted outlier: open PC2/PC3 path, 6 : 1 cos/sin, 4 more alarms
    crossing = cmp.column("self_intersects")
    assert crossing[OUTLIER].text == "no" and crossing[OUTLIER].sort == 0
    assert all(c.text.startswith("yes") for i, c in enumerate(crossing) if i != OUTLIER)
    assert cmp.column("imbalance")[OUTLIER].sort == pytest.approx(6.0, rel=0.01)
    assert cmp.column("alarms")[OUTLIER].sort == 7
    assert "k = " in cmp.column("imbalance")[OUTLIER].tip


def test_robust_z_flags_the_planted_outlier(cmp):
    flags = [r.flags for r in cmp.rows]
    assert flags[OUTLIER] == max(flags) and flags[OUTLIER] >= 6, flags
    assert all(f <= 1 for i, f in enumerate(flags) if i != OUTLIER), flags
    flagged = {c.key for c, cell in zip(cmp.columns, cmp.rows[OUTLIER].cells, strict=True) if cell.flag}
    assert {"grok_speed", "final:test_loss", "self_intersects", "imbalance", "clustered", "alarms"} <= flagged
    cell = cmp.column("grok_speed")[OUTLIER]
    assert cell.z is not None and cell.z > 3.5 and "robust z" in cell.tip
    assert cmp.page["variants"][OUTLIER]["emph"] is True
    assert not any(v["emph"] for i, v in enumerate(cmp.page["variants"]) if i != OUTLIER)


def test_robust_z_rule():
    base = [10.0, 11.0, 9.0, 10.5, 9.5]
    z = robust_z(base + [30.0])
    assert z[-1] > 3.5 and all(abs(x) < 3.5 for x in z[:-1])
    # |x - median| / (1.4826 MAD)
    med, mad = np.median(base + [30.0]), np.median(np.abs(np.array(base + [30.0]) - np.median(base + [30.0])))
    assert z[-1] == pytest.approx((30 - med) / (1.4826 * mad))
    # MAD 0 (most values equal): mean absolute deviation fallback still singles out the odd one
    z = robust_z([3, 3, 3, 3, 3, 7])
    assert z[-1] > 3.5 and z[:-1] == [0.0] * 5
    # all equal: nobody deviates; too few values: no scores; missing stays missing
    assert robust_z([2, 2, 2, 2]) == [0.0] * 4
    assert robust_z([1, 2, 100]) == [None] * 3
    assert robust_z([1.0, None, 1.1, 0.9, 1.05, float("nan"), 5.0])[1] is None
    # log scale: a loss 4 decades above the others
    assert robust_z([1e-6, 2e-6, 1.5e-6, 1.2e-6, 3e-2], log=True)[-1] > 3.5
    # the resolution floor keeps noise from being a deviation
    assert abs(robust_z([1.0, 1.0, 1.0, 1.0, 0.999], floor=0.01)[-1]) < 3.5


def test_decimate_keeps_ends_and_spikes():
    x = np.arange(10_000)
    y = np.ones(10_000)
    y[4321] = 50.0
    dx, dy = decimate(x, y, 200)
    assert len(dx) <= 202 and dx[0] == 0 and dx[-1] == 9999 and 4321 in dx and dy.max() == 50.0


# ----------------------------------------------------------------------------- charts and alignment

def test_every_compare_chart_has_complete_help():
    names = ["summary", "seed_variance"] + known_charts("compare")
    assert len(names) == len(set(names))
    for name in names:
        sections = COMPARE_HELP[name].sections()
        assert [h for h, _ in sections] == ["What it shows", "How to read it", "How it is computed", "Typical",
                                            "Anomalous"]
        assert all(len(text) > 40 for _, text in sections), name
    assert "1.4826" in COMPARE_HELP["summary"].computed and "3.5" in COMPARE_HELP["summary"].computed
    assert set(COMPARE_HELP) == set(names)


def test_overlays_embed_each_variants_series_and_turns(sweep, tmp_path):
    out = render_compare(sweep[:3], tmp_path / "c.html")
    html = out.read_text()
    page = page_data(html)
    assert [v["turn"] for v in page["variants"]] == [int(s.turn_frac * SHAPE["epochs"]) for s in
                                                    sweep_specs(6, primes=PRIMES, shape=SHAPE)[:3]]
    loss = page["charts"]["loss"]
    assert loss["alignable"] and loss["logy"] and loss["status"] == "ok"
    traces = loss["spec"]["options"][0]["traces"]
    assert sorted({t["v"] for t in traces}) == [0, 1, 2]
    test = next(t for t in traces if t["v"] == 1 and t["role"] == "test")
    x, y = decode(html, page["arrays"], test["x"]), decode(html, page["arrays"], test["y"])
    with open_bundle(sweep[1]) as b:
        epochs, values = b.series("test_loss")
    assert x[0] == epochs[0] and x[-1] == epochs[-1] and len(x) <= 602
    assert np.allclose(y, values[np.searchsorted(epochs, x)], rtol=3e-3)
    # every chart of a fully analysed sweep draws; the difference view only for two variants
    assert all(c["status"] == "ok" for n, c in page["charts"].items() if n != "pca_shared"), \
        {n: c["status"] for n, c in page["charts"].items()}
    assert "difference" not in page["charts"]


def test_difference_of_two_variants_aligned_on_their_turns(sweep, tmp_path):
    a, b = sweep[0], sweep[3]
    html = render_compare([a, b], tmp_path / "d.html").read_text()
    page = page_data(html)
    diff = page["charts"]["difference"]
    opt = next(o for o in diff["spec"]["options"] if o["label"] == "test_acc")
    with open_bundle(a) as ba, open_bundle(b) as bb:
        ea, va = ba.series("test_acc")
        eb, vb = bb.series("test_acc")
    ta, tb = page["variants"][0]["turn"], page["variants"][1]["turn"]
    assert ta != tb
    x = decode(html, page["arrays"], opt["rel"]["x"])
    y = decode(html, page["arrays"], opt["rel"]["y"])
    for off, d in list(zip(x, y, strict=True))[::97]:
        want = vb[np.searchsorted(eb, off + tb)] - va[np.searchsorted(ea, off + ta)]
        assert d == pytest.approx(want, abs=2e-3)
    raw_y = decode(html, page["arrays"], opt["raw"]["y"])
    assert raw_y.shape != y.shape or not np.allclose(raw_y, y)
    assert "Difference: p19-s999 − p17-s485" in html.replace("&#8722;", "−")


def test_variants_without_a_turn_are_not_alignable_and_said_so(sweep, tmp_path):
    no_turn = write_variant(tmp_path / "noturn.h5", VariantSpec(
        "no-turn", 19, 5, 0.4, False, dict(SHAPE, analyses=tuple(a for a in ALL_ANALYSES if a != "turn"))))
    c = build_comparison([sweep[0], no_turn, sweep[1]])
    assert c.page["variants"][1]["turn"] is None
    assert "turn analysis was not run" in c.page["variants"][1]["turnReason"]
    assert c.column("turn")[1].text == "–" and "turn analysis was not run" in c.column("turn")[1].tip
    assert any(what.startswith("Relative to the turn: no-turn") for what, _ in c.notes)
    assert any("Analysis 'turn': no-turn" in what for what, _ in c.notes)


def test_metrics_only_and_different_p_are_compared_on_what_they_share(sweep, tmp_path):
    bare = write_variant(tmp_path / "bare.h5", VariantSpec("bare", 37, 3, 0.36, False, dict(SHAPE, analyses=())))
    c = build_comparison([sweep[0], sweep[2], bare])
    notes = dict(c.notes)
    assert any(w.startswith("Analyses 'attention', ") and "'fourier_weights'" in w and w.endswith(": bare")
               for w in notes), notes
    assert "Fourier spectra and key frequencies" in notes and "p = 37: bare" in notes[
        "Fourier spectra and key frequencies"]
    assert c.column("imbalance")[2].text == "–" and "not run" in c.column("imbalance")[2].tip
    charts = c.page["charts"]
    loss_vs = {t["v"] for t in charts["loss"]["spec"]["options"][0]["traces"]}
    assert loss_vs == {0, 1, 2}  # metrics compare across all
    pr = charts["effective_dim"]["spec"]["options"][0]
    assert {t["v"] for t in pr["traces"]} == {0, 1} and pr["missing"] == "bare"
    card = next(cd for g in c.groups for cd in g.cards if cd.name == "fourier_spectra")
    assert "Not drawn (no data): bare" in card.note


def test_shared_pca_basis_for_identical_shapes_only(weighted):
    """The analysis side fits the basis and stores it in the bundles; the page only reads it."""
    from epochscope.collectors.analysis.shared_basis import shared_basis, store_shared_bases
    from epochscope.collectors.analysis.trajectory import self_intersections, shared_pca_basis

    before = build_comparison(weighted)
    assert before.page["charts"]["pca_shared"]["status"] == "unavailable"
    assert any("no shared basis stored" in why for _, why in before.notes)
    stored = store_shared_bases(weighted)
    assert len(stored) == 1 and stored[0]["stored"] and len(stored[0]["members"]) == 3
    assert store_shared_bases(weighted)[0]["stored"] is False  # the same basis is not fitted twice
    c = build_comparison(weighted)
    spec = c.page["charts"]["pca_shared"]["spec"]
    assert c.page["charts"]["pca_shared"]["status"] == "ok"
    assert len(spec["groups"]) == 1 and [r["v"] for r in spec["groups"][0]["runs"]] == [0, 1, 2]
    notes = dict(c.notes)
    what = "Shared PCA basis: other-p"
    assert what in notes and "W_E 30×32 vs 24×32" in notes[what] and "identical parameter shapes" in notes[what]
    direct = shared_pca_basis(weighted[:3])
    fitted, evr = shared_basis(weighted[:3], c.variants[0].layout)  # the fast path: same numbers
    assert np.allclose(evr, direct.explained_variance_ratio[:3], rtol=1e-5)
    for i, name in enumerate(direct.runs):
        epochs, coords = direct.runs[name]
        assert np.array_equal(fitted[i][0], epochs)
        assert np.allclose(fitted[i][1], coords, rtol=1e-4, atol=1e-4 * np.abs(coords).max())
        assert c.column("shared_crossings")[i].sort == len(self_intersections(coords[:, 1:3]))
    assert c.column("shared_crossings")[3].text == "–"
    assert "no other variant has its parameter shapes" in c.column("shared_crossings")[3].tip


def test_bundles_analysed_by_earlier_versions_say_what_is_missing(weighted, tmp_path):
    """Crossings and loop measures are read, never computed: a trajectory (v1) or a shared
    basis (v1) stored without them leaves the cells empty with the reason, until the
    analysis side stores them again."""
    import shutil

    from epochscope.archives import ArtifactUpdate, BundleWriter, Segment
    from epochscope.collectors.analysis.shared_basis import store_shared_bases

    paths = [Path(shutil.copy(p, tmp_path / p.name)) for p in weighted[:3]]
    store_shared_bases(paths)  # stored already when an earlier test stored it in the originals
    with open_bundle(paths[0]) as b:
        art = next(n for n in b.artifact_names if n.startswith("shared_pca."))
        old = b.artifact(art)
        epochs, coords = old.per_epoch("coords")
        scalars = {k: v for k, v in old.scalars.items() if k != "n_crossings"}
        tr = b.artifact("trajectory")
        te, pca = tr.per_epoch("pca")
        tr_scalars = {k: v for k, v in tr.scalars.items() if k not in ("loop_area", "excursion", "path_length")}
    with BundleWriter(paths[0], create=False) as w:  # as versions 1 wrote them
        w.write(Segment(artifacts={
            art: ArtifactUpdate("1", epochs, {"coords": coords}, scalars=scalars, replace=True),
            "trajectory": ArtifactUpdate("1", te, {"pca": pca}, scalars=tr_scalars, replace=True)}))
        w.consolidate()
    c = build_comparison(paths)
    cell = c.column("shared_crossings")[0]
    assert cell.text == "–" and "stored by an earlier version" in cell.tip
    assert c.column("shared_crossings")[1].sort is not None
    for key in ("loop_area", "excursion"):
        assert c.column(key)[0].text == "–" and "version 1, which predates the loop measures" in c.column(key)[0].tip
        assert c.column(key)[1].sort is not None
    assert c.column("self_intersects")[0].sort == tr_scalars["n_intersections"]  # v1 stored the count
    # `epochscope compare` (store_shared_bases) fits the outdated basis again
    again = store_shared_bases(paths)
    assert again[0]["stored"] is True
    assert build_comparison(paths).column("shared_crossings")[0].sort is not None


def test_no_weights_means_no_shared_basis_and_a_note(cmp):
    assert cmp.page["charts"]["pca_shared"]["status"] == "unavailable"
    assert any(what.startswith("Shared PCA basis:") and "no model weights" in why for what, why in cmp.notes)
    assert "shared_crossings" not in [c.key for c in cmp.columns]


# ----------------------------------------------------------------------------- the file

def test_page_is_self_contained_deterministic_and_escaped(sweep, tmp_path):
    evil = write_variant(tmp_path / "evil.h5", VariantSpec(EVIL, 23, 11, 0.36, False, dict(SHAPE)))
    links = {str(sweep[0]): "../runs/p17-s485.html", str(evil): "javascript:alert(1)"}
    nav = [("All runs", "../index.html"), (EVIL, "javascript:alert(2)")]
    a = render_compare([sweep[0], evil, sweep[1]], tmp_path / "a.html", nav=nav, links=links).read_bytes()
    b = render_compare([sweep[0], evil, sweep[1]], tmp_path / "b.html", nav=nav, links=links).read_bytes()
    assert a == b
    html = a.decode()
    assert EVIL not in html and "onerror=alert(1)>" not in html.replace("&gt;", "")
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert re.search(r'href="\.\./runs/p17-s485\.html#epoch=\d+"', html) and "javascript:alert" not in html
    assert 'href="../index.html"' in html
    assert not re.search(r'<script[^>]+src="(https?:)?//', html) and "<link rel=\"stylesheet\"" not in html
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "sha256-" in csp
    page = page_data(html)
    assert page["variants"][1]["label"] == EVIL


def test_shared_assets_and_output_directory(sweep, tmp_path):
    site = tmp_path / "site"
    (site / "compare").mkdir(parents=True)
    out = render_compare(sweep[:2], site / "compare", shared_assets=site / "assets")
    assert out == site / "compare" / "compare.html"
    html = out.read_text()
    assert re.search(r'<script type="text/plain" id="es-plotly" data-src="\.\./assets/plotly-(partial-)?[\d.]+\.min\.js">'
                     r'</script>', html)
    assert len(html) < 2_000_000
    assert list((site / "assets").glob("plotly-*.min.js"))


def test_run_report_is_byte_deterministic_and_shows_nav(sweep, tmp_path):
    nav = [("All runs", "../../index.html"), (EVIL, "javascript:alert(1)")]
    a = render_report(sweep[0], tmp_path / "a.html", nav=nav).read_bytes()
    b = render_report(sweep[0], tmp_path / "b.html", nav=nav).read_bytes()
    assert a == b
    html = a.decode()
    assert '<nav class="page-nav" aria-label="Site">' in html and 'href="../../index.html">All runs</a>' in html
    assert EVIL not in html and "javascript:alert" not in html
    assert "generated" not in re.search(r"<footer>(.*?)</footer>", html, re.S).group(1)


def test_render_helpers_moved_but_old_names_remain():
    from epochscope.generator import html as shared
    from epochscope.generator import render

    assert render._environment is shared.environment and render._csp is shared.csp
    assert render._CSP_SLOT == shared.CSP_SLOT and render._write_atomic is shared.write_atomic
    assert render._make_parent is shared.make_parent and render._write_shared_plotly is shared.write_shared_plotly
    assert render.plotly_js is shared.plotly_js
    assert shared.safe_href("javascript:alert(1)") is None and shared.safe_href(" data:x") is None
    assert shared.safe_href("../runs/a b.html") == "../runs/a b.html" and shared.safe_href("https://x.org/")


def test_duplicate_run_names_get_unique_labels(tmp_path):
    paths = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        paths.append(write_variant(tmp_path / d / "run.h5", VariantSpec("same", 17, 1, 0.35, False,
                                                                        dict(SHAPE, analyses=()))))
    paths.append(write_variant(tmp_path / "other.h5", VariantSpec("same", 17, 2, 0.35, False, dict(SHAPE, analyses=()))))
    c = build_comparison(paths, links={str(paths[1].resolve()): "b.html"})
    assert c.labels == ["same (run.h5)", "same (run.h5) #2", "same (other.h5)"]
    # links match resolved paths too; without a turn the report opens at the best epoch of the
    # run's first headline metric
    best = c.variants[1].run.metrics[c.metrics[0]].best_epoch
    assert c.variants[1].turn is None and c.page["variants"][1]["focus"] == best
    assert [r.href for r in c.rows] == [None, f"b.html#epoch={best}", None]
