"""Comparison pages: several bundles -> one self-contained HTML page (see `page`).

`data` reads what a comparison needs from each bundle, `stats` holds the simple statistics
of stored series a comparison table and its bands show (groups, alignment, spread,
correlation), `charts` registers the comparison charts on the one chart registry, and `page`
assembles and renders the page.
"""

from epochscope.generator.compare.charts import ChartInput
from epochscope.generator.compare.page import (
    COLUMNS,
    Column,
    Comparison,
    build_comparison,
    render_compare,
)

__all__ = ["COLUMNS", "ChartInput", "Column", "Comparison", "build_comparison", "render_compare"]
