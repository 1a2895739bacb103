"""The site index with 1,000 runs in a real browser (network blocked): filtering and sorting
give the right rows in the right order, the table holds the rows in view as the page
scrolls, the URL hash restores the view. Correctness only; benchmarks/bench_site_index.py
times it."""

from __future__ import annotations

import pytest

from epochscope.generator.site import _render_index
from tests.browser_helpers import needs_chromium
from tests.site_index import catalog_rows, open_index

pytestmark = [pytest.mark.browser, needs_chromium]

N = 1000


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    rows = catalog_rows(N)
    out = tmp_path_factory.mktemp("site")
    (out / "index.html").write_text(_render_index(rows, {}, {}, out), encoding="utf-8")
    return rows, out / "index.html"


@pytest.fixture(scope="module")
def page(browser, index):
    opened = open_index(browser, index[1])
    yield opened
    assert opened.blocked == [] and opened.errors == []
    opened.page.close()


def _by_sweep(rows, key=None, reverse=False):
    """Expected order: by sweep, then by `key` (missing values last either way), then index."""
    def k(i):
        v = rows[i][key] if key else None
        missing = v is None
        return (rows[i]["sweep"], missing, (-v if reverse else v) if not missing and key else 0, i)
    return sorted(range(len(rows)), key=k)


def _type(page, text):
    page.page.fill("#filter", "")
    page.page.click("#filter")
    for ch in text:
        page.timed(lambda ch=ch: page.page.keyboard.type(ch))


def _window_is_consistent(page):
    """The rows in the table are a contiguous run of the matching ones, and the first or last
    of them is in view; at most a window's worth (not all 1,000) is in the table."""
    shown, rendered = page.matching(), [r["index"] for r in page.rendered()]
    assert rendered, "no rows in the table"
    start = shown.index(rendered[0])
    assert shown[start:start + len(rendered)] == rendered
    assert len(rendered) <= 120
    return shown, rendered


def test_loads_all_runs_in_sweep_order_with_a_window_of_rows(page, index):
    rows, _ = index
    assert page.page.text_content("#count") == str(N)
    shown, rendered = _window_is_consistent(page)
    assert shown == _by_sweep(rows)
    assert rendered == shown[:len(rendered)]
    # user strings are text, never markup
    assert page.page.eval_on_selector_all("#rows b", "els => els.length") == 0


def test_filter_is_case_insensitive_and_matches_every_cell(page, index):
    rows, _ = index
    _type(page, "p97_model_seed1")
    want = [i for i in _by_sweep(rows) if "p97_model_seed1" in rows[i]["name"]]
    assert 5 < len(want) < 100
    assert page.matching() == want
    assert page.page.text_content("#count") == f"{len(want)} of {N}"
    _type(page, "FaIlEd")
    want = [i for i in _by_sweep(rows) if rows[i]["status"] == "failed"]
    assert page.matching() == want and len(want) == N // 5
    _window_is_consistent(page)
    _type(page, "<b>bold")
    assert [rows[i]["name"] for i in page.matching()] == ["<b>bold</b> & run"]
    _type(page, "no such run anywhere")
    assert page.matching() == [] and page.page.is_visible("#empty")
    page.page.fill("#filter", "")
    assert len(page.matching()) == N and not page.page.is_visible("#empty")


def test_sort_numbers_missing_last_and_text_by_collation(page, index):
    rows, _ = index
    page.timed(lambda: page.page.click("th[data-key=final_test_loss]"))
    assert page.matching() == _by_sweep(rows, "final_test_loss")
    page.timed(lambda: page.page.click("th[data-key=final_test_loss]"))
    assert page.matching() == _by_sweep(rows, "final_test_loss", reverse=True)
    assert page.page.get_attribute("th[data-key=final_test_loss]", "aria-sort") == "descending"
    page.timed(lambda: page.page.click("th[data-key=name]"))
    shown = page.matching()
    # names in order within each sweep, by the browser's own numeric collation
    pairs = [(rows[a]["name"], rows[b]["name"]) for a, b in zip(shown, shown[1:], strict=False)
             if rows[a]["sweep"] == rows[b]["sweep"]]
    bad = page.page.evaluate("ps => ps.filter(p => p[0].localeCompare(p[1], undefined, {numeric: true}) > 0)", pairs)
    assert bad == []
    assert [rows[i]["sweep"] for i in shown] == sorted(rows[i]["sweep"] for i in shown)
    _type(page, "sweep03/")
    within = page.matching()
    assert within == [i for i in shown if rows[i]["sweep"] == "sweep03"]  # filter keeps the sort


def test_scrolling_brings_the_rows_into_the_table(page, index):
    page.page.fill("#filter", "")
    page.timed(lambda: page.page.click("th[data-key=p]"))
    page.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.page.wait_for_function(
        "() => { const r = document.querySelectorAll('#rows tr'); return r.length && "
        "+r[r.length - 1].dataset.index === ES.index.shown()[ES.index.shown().length - 1]; }", timeout=10000)
    shown, rendered = _window_is_consistent(page)
    assert rendered == shown[-len(rendered):]
    box = page.page.evaluate("(() => { const r = document.querySelectorAll('#rows tr');"
                             " return r[r.length - 1].getBoundingClientRect().bottom; })()")
    assert 0 < box <= page.page.evaluate("window.innerHeight")
    page.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
    page.page.wait_for_timeout(300)
    _window_is_consistent(page)  # the middle: a window of rows, in view
    middle = page.page.evaluate("(() => { const r = Array.from(document.querySelectorAll('#rows tr'));"
                                " return r.some(e => { const b = e.getBoundingClientRect();"
                                " return b.top >= 0 && b.bottom <= innerHeight; }); })()")
    assert middle
    page.page.evaluate("window.scrollTo(0, 0)")


def test_url_hash_restores_sort_and_filter(browser, index):
    rows, path = index
    opened = open_index(browser, path)
    opened.timed(lambda: opened.page.click("th[data-key=turn_epoch]"))
    opened.timed(lambda: opened.page.click("th[data-key=turn_epoch]"))
    opened.page.fill("#filter", "complete")
    want = opened.matching()
    assert want == [i for i in _by_sweep(rows, "turn_epoch", reverse=True) if rows[i]["status"] == "complete"]
    url = opened.page.url
    assert "sort=turn_epoch" in url and "dir=-1" in url and "q=complete" in url
    again = open_index(browser, path)
    again.page.goto(url)
    again.page.reload()
    again.page.wait_for_selector("#rows tr")
    assert again.matching() == want
    assert again.page.input_value("#filter") == "complete"
    assert opened.errors == [] and again.errors == [] and not opened.blocked and not again.blocked
