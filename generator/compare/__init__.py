"""Comparison pages: several bundles -> one self-contained HTML page (see `page`).

`data` reads what a comparison needs from each bundle, `stats` holds the simple statistics
of stored series a comparison table and its bands show (groups, alignment, spread,
correlation), `table` the summary table's columns, `charts` registers the comparison charts
on the one chart registry, and `page` assembles and renders the page.
"""

from epochscope.generator.compare.charts import ChartInput
from epochscope.generator.compare.page import (
    Comparison,
    build_comparison,
    name_list,
    render_compare,
)
from epochscope.generator.compare.table import Column

__all__ = ["ChartInput", "Column", "Comparison", "build_comparison", "name_list", "render_compare"]
