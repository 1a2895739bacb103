"""`epochscope analyze`: run analyzers over a bundle's checkpoints and metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

_BUNDLES = click.Path(path_type=Path)


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=_BUNDLES)
@click.option("-a", "--analyzer", "analyzers", multiple=True,
              help="Run only this analyzer (repeatable; default: all). See --list.")
@click.option("--force", is_flag=True, help="Recompute and replace what is stored.")
@click.option("--epochs", help="Only these checkpoint epochs, e.g. '0,100,200' or '1000-5000'.")
@click.option("--list", "list_only", is_flag=True,
              help="Show the analyzers and which epochs each has (the analysis gaps); run nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --list: machine-readable output.")
@click.option("--probe", "probes", multiple=True, metavar="[NAME=]INPUTS",
              help="Trace chosen inputs through training (repeatable): '4+29,17+96', or a rule "
                   "'wrong[:N]' (final model's errors), 'test[:N]', 'train[:N]', 'random[:N]'; "
                   "stored as the artifact probe_NAME.")
@click.option("--scheduler", help="Address of an existing Dask scheduler to analyse the bundles on.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Analyse on a local Dask cluster of this many worker processes "
                   "(default: one after another in this process).")
@click.option("--quiet", is_flag=True,
              help="No progress display (several bundles: only failures and the summary).")
def analyze(bundles: tuple[Path, ...], analyzers: tuple[str, ...], force: bool, epochs: str | None,
            list_only: bool, as_json: bool, probes: tuple[str, ...], scheduler: str | None,
            workers: int | None, quiet: bool) -> None:
    """Compute analysis artifacts for each of BUNDLES (only the missing ones unless --force).

    A directory stands for every *.h5 bundle under it. With several bundles, one line each
    and a summary; a bundle that fails is reported and the others go on (exit 1 if any failed).
    """
    selected = _parse_epochs(epochs) if epochs else None
    single = len(bundles) == 1 and not bundles[0].is_dir() and not scheduler and not workers
    if list_only:
        if not single:
            raise click.UsageError("--list shows one bundle; give exactly one bundle file")
        _list(bundles[0], as_json)
        return
    if single:
        _analyze_one(bundles[0], analyzers, force, selected, probes, quiet)
        return
    from epochscope.collectors.analysis.batch import analyze_many

    def report(outcome) -> None:
        if not outcome.ok:  # failures are always said, --quiet or not
            click.echo(f"epochscope: error: {outcome.line()}", err=True)
        elif not quiet:
            click.echo(outcome.line())

    batch = analyze_many(bundles, analyzers=list(analyzers) or None, force=force, epochs=selected,
                         probes=list(probes), scheduler=scheduler, workers=workers,
                         on_outcome=report)
    click.echo(batch.summary())
    if batch.failed:
        raise SystemExit(1)


def _list(bundle: Path, as_json: bool) -> None:
    from epochscope.collectors.analysis import analysis_status

    status = analysis_status(bundle)
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
        return
    _print_status(status)


def _analyze_one(bundle: Path, analyzers: tuple[str, ...], force: bool, epochs: list[int] | None,
                 probes: tuple[str, ...], quiet: bool) -> None:
    from epochscope.archives.errors import DiskFullError
    from epochscope.collectors.analysis import analyze as run_analyze

    progress = None if quiet or not sys.stderr.isatty() else _progress()
    try:
        result = run_analyze(bundle, analyzers=list(analyzers) or None, force=force, epochs=epochs,
                             progress=progress, probes=list(probes))
    except DiskFullError as exc:
        raise DiskFullError(f"{exc}; once space is free, run `epochscope analyze {bundle}` again "
                            "(what was analysed is kept)") from None
    finally:
        if progress is not None:
            progress.close()
    click.echo(str(result))


def _parse_epochs(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


class _progress:
    """A tqdm bar fed by analyze's progress(done, total, message) callback."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="ckpt", desc="analyze", leave=False)
        self.bar.n = done
        self.bar.set_postfix_str(message, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_status(status: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="analyzers", title_justify="left")
    for col in ("analyzer", "consumes", "version", "epochs", "missing", "state"):
        table.add_column(col)
    for name, s in status.items():
        if not s.get("applicable", True):
            state = f"n/a: {s.get('reason')}"
        elif s.get("up_to_date"):
            state = "up to date"
        else:
            state = "stale" if s.get("version") else "not run"
        have = s.get("epochs") or []
        table.add_row(Text(name), str(s.get("kind")), str(s.get("version") or "-"),
                      str(len(have)), str(len(s.get("missing") or [])), Text(state))
    Console(highlight=False).print(table)


commands = [analyze]
