"""Commands over many bundles: runs (the SQLite catalog), compare, build, demo."""

from __future__ import annotations

import json
from pathlib import Path

import click

from epochscope.commands._damage import allow_damaged_option, damage_hint
from epochscope.commands._options import plotly_option

_DIR = click.Path(file_okay=False, path_type=Path)
_DEFAULT_COLUMNS = ("path", "status", "p", "model_seed", "epochs", "turn_epoch", "grok_epoch",
                    "final_test_acc", "final_test_loss")


@click.command()
@click.argument("directory", type=_DIR, default=Path("runs"))
@click.option("--where", help='SQL condition on the catalog, e.g. "turn_epoch < 10000 and p = 113".')
@click.option("--order-by", default="sweep, name", show_default=True, help="SQL ORDER BY clause.")
@click.option("--columns", help="Comma-separated columns to show (default: a headline set).")
@click.option("--json", "as_json", is_flag=True, help="Print all columns as JSON.")
def runs(directory: Path, where: str | None, order_by: str, columns: str | None, as_json: bool) -> None:
    """List the runs under DIRECTORY from its SQLite catalog (refreshed from disk first)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from epochscope.generator.catalog import Catalog

    with Catalog(directory) as catalog:
        changes = catalog.scan()
        rows = catalog.runs(where=where, order_by=order_by)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    console = Console(highlight=False)
    for rel in changes["broken"]:
        console.print(Text(f"warning: {rel} is unreadable and was skipped"), style="yellow")
    cols = [c.strip() for c in columns.split(",")] if columns else list(_DEFAULT_COLUMNS)
    table = Table(title=f"{len(rows)} run(s) in {directory}", title_justify="left")
    for col in cols:
        table.add_column(col)
    for row in rows:
        cells = []
        for col in cols:
            value = row.get(col)
            cells.append(Text("-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)))
        table.add_row(*cells)
    console.print(table)


@click.command()
@click.argument("bundles_dir", type=_DIR)
@click.option("-o", "--output", type=_DIR, default=Path("site"), show_default=True,
              help="Directory of the static site.")
@click.option("--layout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A layout TOML for the run reports.")
@click.option("--force", is_flag=True, help="Render every page again, changed or not.")
@click.option("--no-shared-basis", is_flag=True,
              help="Do not fit and store the shared PCA bases the comparisons draw trajectories in.")
@plotly_option
@allow_damaged_option
def build(bundles_dir: Path, output: Path, layout: Path | None, force: bool, no_shared_basis: bool,
          plotly: str, allow_damaged: bool) -> None:
    """Build the static site for every bundle under BUNDLES_DIR: reports, comparisons, index.

    Incremental: pages whose bundles did not change are not rendered again. First fits the
    shared PCA bases of each sweep (and of all runs) and stores them in the bundles.
    """
    from epochscope.generator.site import build_site

    if not no_shared_basis and bundles_dir.is_dir():
        _store_bases(bundles_dir, site=True)

    result = build_site(bundles_dir, output, layout=layout, force=force, plotly=plotly,
                        allow_damaged=allow_damaged,
                        on_page=lambda page, what: click.echo(f"  {what} {page}", err=True))
    for path, error in result.broken.items():
        hint = "; --allow-damaged builds its pages from what is intact" if "damaged" in error else ""
        click.echo(f"warning: skipped {path}: {error}{hint}", err=True)
    click.echo(f"{result.index}: {len(result.rendered)} page(s) rendered, {len(result.skipped)} unchanged, "
               f"{len(result.removed)} removed in {result.seconds:.1f} s")


@click.command()
@click.option("-o", "--output", type=_DIR, default=Path("site"), show_default=True,
              help="Directory of the static site.")
@click.option("--runs", "runs_dir", type=_DIR, default=Path("runs"), show_default=True,
              help="Directory the demo's bundles go to (its sweep folder is runs/demo).")
@click.option("--workers", type=int, help="Dask worker processes (default: cores).")
def demo(output: Path, runs_dir: Path, workers: int | None) -> None:
    """Train a small sweep of the `demo` preset, analyse it, build the site, print its path.

    Three variants (two seeds of p=59, one of p=61), a few minutes on 2 CPU cores. Running
    it again reuses what is already trained and analysed.
    """
    from epochscope.demo import run_demo

    index = run_demo(output=output, runs_dir=runs_dir, workers=workers,
                     echo=lambda line: click.echo(line, err=True))
    click.echo(str(index.resolve()))


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("site/compare.html"),
              show_default=True, help="HTML file to write (or a directory).")
@click.option("--shared-assets", type=click.Path(file_okay=False, path_type=Path),
              help="Write plotly.js once into this directory and link it instead of inlining.")
@click.option("--no-shared-basis", is_flag=True,
              help="Do not fit and store a shared PCA basis of the bundles (it is written into them).")
@click.option("--seed-key", "seed_keys", multiple=True, metavar="KEY",
              help="A config key that is a seed (pooled into each group's band) although its name lacks "
                   "'seed'; repeatable.")
@click.option("--reports", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the runs' reports (`epochscope report` names them <run>.html) for the "
                   "page's links  [default: the page's directory]")
@plotly_option
@allow_damaged_option
def compare(bundles: tuple[Path, ...], output: Path, shared_assets: Path | None, no_shared_basis: bool,
            seed_keys: tuple[str, ...], reports: Path | None, plotly: str, allow_damaged: bool) -> None:
    """Compare two or more BUNDLES on one self-contained page: runs grouped by the config keys
    that differ (seeds pooled into a band), a summary table per run or group (outliers
    highlighted), seed variance, overlays aligned on each run's turn, a shared PCA basis.

    The shared PCA basis is fitted here (analysis side) and stored in the bundles, where the
    page reads it."""
    from epochscope.generator.compare import render_compare

    if not no_shared_basis and len(bundles) >= 2 and all(b.is_file() for b in bundles):
        _store_bases(list(bundles), site=False)

    if output.suffix.lower() not in (".html", ".htm"):
        output.mkdir(parents=True, exist_ok=True)
    with damage_hint():
        page_dir = output if output.suffix.lower() not in (".html", ".htm") else output.parent
        path = render_compare(list(bundles), output, shared_assets=shared_assets, plotly=plotly,
                              allow_damaged=allow_damaged, seed_keys=seed_keys,
                              reports=reports if reports is not None else page_dir)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _store_bases(target, *, site: bool) -> None:
    """Fit and store shared PCA bases (collectors/analysis/shared_basis.py) of a site's bundle
    directory or of a list of bundles; a problem is a warning, never the end of the build."""
    def note(line: str) -> None:
        click.echo(f"warning: {line}", err=True)

    try:
        from epochscope.collectors.analysis.shared_basis import store_shared_bases, store_site_bases

        if site:
            store_site_bases(target, note=note)
        else:
            store_shared_bases(target, note=note)
    except ImportError as exc:
        note(f"no shared PCA basis: the analysis extras are missing ({exc})")


commands = [runs, compare, build, demo]
