"""`render_report`: one bundle -> one self-contained HTML file.

The page needs nothing but itself: plotly.js (from the installed plotly package), the CSS,
the page's JavaScript and every number are inlined, so it opens from disk offline, years
later. A Content-Security-Policy with script hashes forbids any network access and any
script the report did not ship. With `shared_assets=DIR`, plotly.js is written once into
DIR and referenced by a relative <script src>, for sites with many reports.
"""

from __future__ import annotations

import os
from pathlib import Path

from markupsafe import Markup

from epochscope import __version__
from epochscope.archives import Bundle, open_bundle
from epochscope.generator.data import DEFAULT_DATA_BUDGET, absent_summary, build_page
from epochscope.generator.encode import script_json
from epochscope.generator.html import (
    CSP_SLOT,
    PACKED_PLOTLY,
    csp,
    environment,
    make_parent,
    plotly_js,
    plotly_packed,
    safe_href,
    write_atomic,
    write_shared_plotly,
)
from epochscope.generator.layout import load_layout

__all__ = ["Report", "nav_links", "plotly_js", "render_report", "report_filename"]

# The helpers moved to generator/html.py; the old private names stay for existing callers.
_CSP_SLOT = CSP_SLOT
_csp = csp
_environment = environment
_make_parent = make_parent
_write_atomic = write_atomic
_write_shared_plotly = write_shared_plotly


class Report(type(Path())):  # the concrete Path class of this platform
    """A rendered report: its path (a `Path`, as `render_report` always returned), shown
    inline in Jupyter as the page itself."""

    def _repr_html_(self) -> str:
        from epochscope.generator.notebook import report_iframe

        return report_iframe(self)


def render_report(bundle: Bundle | str | os.PathLike, output: str | os.PathLike, *,
                  layout: str | os.PathLike | None = None, shared_assets: str | os.PathLike | None = None,
                  data_budget: int = DEFAULT_DATA_BUDGET, nav: list[tuple[str, str]] | None = None,
                  plotly: str = "partial", allow_damaged: bool = False) -> Report:
    """Render `bundle` (an open Bundle or a path) as one HTML file at `output`; return its path
    (a `Report`: a Path that Jupyter shows inline as the page).

    `output` may be an existing directory (the file is then named after the run); missing
    parent directories are created. `layout`: a layout TOML file replacing the default (see
    generator/layout.py). `shared_assets`: a directory that receives plotly.js once, loaded
    by a relative path instead of being inlined. `data_budget`: bytes of embedded data the
    report aims for (detail charts embed fewer epochs/neurons to stay within it; they share at
    least 1.2 MB, or the budget if smaller, even when the other charts alone exceed it). `nav`:
    links shown at the top of the page, (label, href) pairs, e.g. ("All runs",
    "../../index.html"); labels are escaped, hrefs other than relative/http(s)/file dropped.
    `plotly`: "partial" (the vendored bundle with the trace types the charts use, fast to
    open) or "full" (the plotly package's whole plotly.js, for custom charts needing more).
    The same bundle always gives the same bytes (no build time in the page).
    A damaged bundle raises DamagedBundleError; with `allow_damaged` the page is built from
    what is intact and says so in a banner listing the damage.
    Raises EpochscopeError for a bad layout or an output that cannot be written.
    """
    spec = load_layout(layout)  # fail fast on a bad layout, before reading any data
    plotly_js(plotly)  # and on an unknown plotly bundle
    if isinstance(bundle, Bundle):
        return _render(bundle, Path(output), spec, shared_assets, data_budget, nav, plotly)
    with open_bundle(bundle, allow_damaged=allow_damaged) as opened:
        return _render(opened, Path(output), spec, shared_assets, data_budget, nav, plotly)


def _render(bundle: Bundle, output: Path, layout, shared_assets, data_budget: int,
            nav: list[tuple[str, str]] | None, plotly: str = "partial") -> Report:
    bundle.check()  # refuses damage now (or, with allow_damaged, lists it for the banner)
    data = build_page(bundle, layout, data_budget=data_budget)
    if output.is_dir():
        output = output / f"{data.page['csvName'].removesuffix('-metrics.csv')}.html"  # = report_filename
    make_parent(output)
    plotly_src = None
    if shared_assets is not None:
        plotly_src = write_shared_plotly(Path(shared_assets), output.parent, plotly)
    html = environment().get_template("report.html.j2").render(
        run=data.run,
        groups=data.groups,
        unavailable=data.unavailable,
        absent_summary=absent_summary(data.unavailable),
        page_json=Markup(script_json(data.page)),
        arrays=list(data.store.arrays.values()),
        plotly_js=None if plotly_src else Markup(plotly_packed(plotly)),
        plotly_enc=PACKED_PLOTLY,
        plotly_src=plotly_src,
        version=__version__,
        layout_source=layout.source if layout.source != "default" else "default (from the packs)",
        page_thinned=data.page.get("thinned") or 0,
        nav=nav_links(nav),
        damage=list(bundle.damage),
    )
    html = html.replace(CSP_SLOT, csp(html, external_scripts=plotly_src is not None), 1)
    write_atomic(output, html)
    return Report(output)


def report_filename(name: str) -> str:
    """The file name `render_report` gives a run's report in a directory: the slug of its name."""
    from epochscope.generator.data import _slug

    return f"{_slug(name)}.html"


def nav_links(nav: list[tuple[str, str]] | None) -> list[dict[str, str | None]]:
    """`nav` pairs as the templates show them: {"label", "href"} (href None: not linkable)."""
    return [{"label": str(label), "href": safe_href(href)} for label, href in (nav or [])]
