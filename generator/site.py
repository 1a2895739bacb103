"""`build_site`: every bundle under a directory -> a static site (reports, comparisons, index).

    site/index.html                 sortable, filterable table of all runs, grouped by sweep
    site/runs/<sweep>/<run>.html    one report per bundle (same relative path as the bundle)
    site/compare/<sweep>.html       one comparison per sweep, plus compare/all.html
    site/assets/plotly-*.min.js     plotly.js once for every page (partial bundle by default)

All links are relative, so the folder can be moved, zipped or served by any static host.
Builds are incremental: each page records a key (content hashes of its bundles + generator
version + layout), and a page whose key is unchanged is not rendered again. Pages depend
only on their inputs (no build timestamps), so a clean and an incremental build give the
same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from epochscope import __version__
from epochscope.errors import EpochscopeError
from epochscope.generator.catalog import Catalog
from epochscope.generator.encode import script_json
from epochscope.generator.palette import run_color

__all__ = ["SiteResult", "build_site"]

STATE_FILE = ".epochscope-build.json"
ASSETS = "assets"


@dataclass
class SiteResult:
    """What a build did: pages rendered and skipped, bundles that could not be read."""

    index: Path
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _page_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _layout_hash(layout: str | os.PathLike | None) -> str | None:
    if layout is None:
        return None
    try:
        return hashlib.sha256(Path(layout).read_bytes()).hexdigest()
    except OSError as exc:
        raise EpochscopeError(f"cannot read layout {layout}: {exc.strerror}") from None


def build_site(bundles_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
               layout: str | os.PathLike | None = None, force: bool = False,
               on_page: Callable[[str, str], None] | None = None, plotly: str = "partial",
               allow_damaged: bool = False) -> SiteResult:
    """Build (or incrementally rebuild) the static site for every bundle in `bundles_dir`.

    `plotly`: the plotly.js every page loads from assets/, "partial" or "full" (see render_report).
    A damaged bundle is skipped (listed in `broken`) unless `allow_damaged`: then its pages
    are built from what is intact, with a banner listing the damage.
    """
    from epochscope.generator.html import make_parent, plotly_js, write_atomic
    from epochscope.generator.render import render_report

    t0 = time.perf_counter()
    plotly_js(plotly)  # an unknown plotly bundle fails before anything is written
    root = Path(bundles_dir)
    out = Path(out_dir)
    if out.resolve() == root.resolve():
        raise EpochscopeError("the site must go to its own directory, not the bundles' directory")
    make_parent(out / "x")
    with Catalog(root, allow_damaged=allow_damaged) as catalog:
        catalog.scan()  # heal the index from disk first
        rows = catalog.runs(order_by="sweep, path")
    if not rows:
        raise EpochscopeError(f"no bundles (*.h5) found under {root}")
    good = [r for r in rows if not r.get("error")]
    result = SiteResult(index=out / "index.html")
    result.broken = {r["path"]: r["error"] for r in rows if r.get("error")}
    state_path = out / STATE_FILE
    old_state: dict[str, str] = {}
    if state_path.exists() and not force:
        try:
            old_state = json.loads(state_path.read_text()).get("pages", {})
        except (OSError, json.JSONDecodeError):
            old_state = {}
    layout_key = _layout_hash(layout)
    assets = out / ASSETS
    state: dict[str, str] = {}

    def render(page: str, key: str, make: Callable[[Path], None]) -> None:
        target = out / page
        state[page] = key
        if not force and old_state.get(page) == key and target.exists():
            result.skipped.append(page)
            return
        make(target)
        result.rendered.append(page)
        if on_page:
            on_page(page, "rendered")

    comparisons = _comparisons(good)
    compare_fn = _compare_renderer()
    # Each report links back to the comparison pages it appears on.
    compared_in: dict[str, list[str]] = {}
    for cpage, members in (comparisons.items() if compare_fn else ()):
        for m in members:
            compared_in.setdefault(m["path"], []).append(cpage)
    for row in good:
        page = report_page(row["path"])
        # "#run=" names this run on the comparison page by its report link there (marked, widest line).
        nav = _nav(out / page, out) + [
            (_compare_title(cpage, comparisons[cpage]),
             f"{_rel(out / cpage, out / page)}#run={quote(_rel(out / page, out / cpage), safe='')}")
            for cpage in compared_in.get(row["path"], [])]
        key = _page_key("report", __version__, layout_key, row["content_hash"], plotly, nav)
        render(page, key, lambda target, row=row, nav=nav: (
            make_parent(target),
            render_report(root / row["path"], target, layout=layout, shared_assets=assets,
                          nav=nav, plotly=plotly, allow_damaged=allow_damaged),
        ))

    for page, members in comparisons.items():
        if compare_fn is None:
            break
        key = _page_key("compare", __version__, [(m["path"], m["content_hash"]) for m in members], plotly)
        render(page, key, lambda target, members=members: (
            make_parent(target),
            compare_fn([root / m["path"] for m in members], target, shared_assets=assets, plotly=plotly,
                       nav=_nav(target, out), links={str(root / m["path"]): _rel(out / report_page(m["path"]), target)
                                                     for m in members}, allow_damaged=allow_damaged),
        ))

    # The index is cheap and depends on every row: always rendered, byte-stable.
    html = _render_index(good, result.broken, comparisons if compare_fn else {}, out)
    old = result.index.read_text(encoding="utf-8") if result.index.exists() else None
    if old != html:
        write_atomic(result.index, html)
        result.rendered.append("index.html")
    else:
        result.skipped.append("index.html")

    # Pages of bundles that disappeared.
    for page in sorted(set(old_state) - set(state)):
        (out / page).unlink(missing_ok=True)
        result.removed.append(page)
    write_atomic(state_path, json.dumps({"generator": __version__, "pages": state}, indent=1, sort_keys=True))
    result.seconds = time.perf_counter() - t0
    return result


def report_page(rel_bundle: str) -> str:
    """Site path of a bundle's report: runs/<same relative path>.html."""
    return "runs/" + rel_bundle.removesuffix(".hdf5").removesuffix(".h5") + ".html"


def _rel(target: Path, from_page: Path) -> str:
    return Path(os.path.relpath(target, from_page.parent)).as_posix()


def _nav(page: Path, out: Path) -> list[tuple[str, str]]:
    return [("All runs", _rel(out / "index.html", page))]


def _comparisons(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One comparison per sweep with two or more runs, and one over everything."""
    by_sweep: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_sweep.setdefault(row.get("sweep") or "", []).append(row)
    pages = {}
    for sweep, members in sorted(by_sweep.items()):
        if sweep and len(members) >= 2:
            pages[f"compare/{_safe(sweep)}.html"] = members
    if len(rows) >= 2 and (len(pages) != 1 or len(rows) != len(next(iter(pages.values())))):
        pages["compare/all.html"] = rows
    return pages


def _compare_title(page: str, members: list[dict[str, Any]]) -> str:
    """A comparison page's link text in a report's navigation (no run count: adding a run to
    a sweep must not re-render the reports of the others)."""
    what = "all runs" if page == "compare/all.html" else f"sweep {members[0].get('sweep')}"
    return f"Compared: {what}"


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-.") or "sweep"


def _compare_renderer():
    try:
        from epochscope.generator.compare import render_compare
    except ImportError:
        return None
    return render_compare


def _render_index(rows: list[dict[str, Any]], broken: dict[str, str],
                  comparisons: dict[str, list[dict[str, Any]]], out: Path) -> str:
    from epochscope.generator.html import CSP_SLOT, csp, environment

    runs = []
    for row in rows:
        runs.append({
            "name": row.get("name"), "color": run_color(str(row.get("name"))), "sweep": row.get("sweep") or "",
            "status": row.get("status"),
            "href": report_page(row["path"]),
            "p": row.get("p"), "model_seed": row.get("model_seed"), "data_seed": row.get("data_seed"),
            "epochs": row.get("epochs"), "turn_epoch": row.get("turn_epoch"),
            "grok_epoch": row.get("grok_epoch"), "health": row.get("health"),
            "final_train_loss": row.get("final_train_loss"),
            "final_test_loss": row.get("final_test_loss"), "final_test_acc": row.get("final_test_acc"),
            "checkpoints": row.get("checkpoints"),
        })
    compare_links = [{"href": page, "title": "all runs" if page == "compare/all.html" else
                      f"sweep {members[0].get('sweep')}", "count": len(members)}
                     for page, members in comparisons.items()]
    html = environment().get_template("index.html.j2").render(
        runs=runs, broken=sorted(broken.items()), comparisons=compare_links,
        runs_json=Markup(script_json(runs)), version=__version__,
    )
    return html.replace(CSP_SLOT, csp(html, external_scripts=False), 1)


def clean_site(out_dir: str | os.PathLike) -> None:
    """Remove a previously built site (only what a build writes)."""
    out = Path(out_dir)
    for name in ("runs", "compare", ASSETS):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("index.html", STATE_FILE):
        (out / name).unlink(missing_ok=True)
