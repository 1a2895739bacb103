"""`epochscope report`: one bundle -> one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from epochscope.commands._damage import allow_damaged_option, damage_hint
from epochscope.commands._options import plotly_option


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("site"), show_default=True,
              help="HTML file to write, or a directory (the file is named after the run).")
@click.option("--layout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A layout TOML replacing the default (which groups and charts, in which order).")
@click.option("--shared-assets", type=click.Path(file_okay=False, path_type=Path),
              help="Write plotly.js once into this directory and link it instead of inlining.")
@plotly_option
@allow_damaged_option
def report(bundle: Path, output: Path, layout: Path | None, shared_assets: Path | None, plotly: str,
           allow_damaged: bool) -> None:
    """Render BUNDLE as a single HTML file that opens offline from disk."""
    from epochscope.generator.render import render_report

    if output.suffix.lower() not in (".html", ".htm"):
        output.mkdir(parents=True, exist_ok=True)  # a directory: the file is named after the run
    with damage_hint():
        path = render_report(bundle, output, layout=layout, shared_assets=shared_assets, plotly=plotly,
                             allow_damaged=allow_damaged)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


commands = [report]
