"""Options several commands share."""

from __future__ import annotations

import click

# The same names as generator.html.PLOTLY_BUNDLES (kept literal: importing the generator here
# would slow every command's start).
plotly_option = click.option(
    "--plotly", type=click.Choice(["partial", "full"]), default="partial", show_default=True,
    help="plotly.js to ship: the partial bundle (the trace types the charts use; opens fast) "
         "or the plotly package's full bundle (for custom charts needing other trace types).")
