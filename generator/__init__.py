"""Reports: one run bundle -> one self-contained, offline HTML page.

    from epochscope.generator import render_report
    render_report("runs/nanda.h5", "site/nanda.html")

Layout: `generator/layout.py` (groups and charts as TOML data); charts: `charts*.py`; their
help texts: `help.py`; the page itself: templates/report.html.j2 and the files it includes.
"""

from epochscope.generator.charts import known_charts
from epochscope.generator.layout import load_layout
from epochscope.generator.render import Report, render_report

__all__ = ["Report", "known_charts", "load_layout", "render_report"]
