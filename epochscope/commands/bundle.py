"""Commands that read or create bundles directly: info, verify, ingest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from epochscope.archives import open_bundle, verify_bundle
from epochscope.archives.format import dumps
from epochscope.collectors.ingest.registry import readers
from epochscope.commands._damage import allow_damaged_option, damage_hint

READERS = readers()

_BUNDLE = click.Path(dir_okay=False, path_type=Path)


def bundle_summary(path: Path, *, allow_damaged: bool = False) -> dict:
    """Everything `info` shows, as plain JSON-able data (checked: see `Bundle.check`)."""
    with open_bundle(path, allow_damaged=allow_damaged) as b:
        damage = b.check()
        series = {}
        for name, (epochs, values) in b.metrics().items():
            finite = values[~(values != values)]  # drop NaN
            series[name] = {
                "points": int(len(values)),
                "first_epoch": int(epochs.min()) if len(epochs) else None,
                "last_epoch": int(epochs.max()) if len(epochs) else None,
                "last_value": float(values[-1]) if len(values) else None,
                "min": float(finite.min()) if len(finite) else None,
                "max": float(finite.max()) if len(finite) else None,
            }
        artifacts = {}
        for name in b.artifact_names:
            art = b.artifact(name)
            artifacts[name] = {"version": art.version, "epochs": int(len(art.epochs)),
                               "arrays": art.names, "summary": art.summary_names,
                               "scalars": art.scalars}
        ckpts = b.checkpoint_epochs
        return {
            "name": b.name, "path": str(path), "status": b.status,
            "context": b.context, "sessions": b.sessions,
            "series": series,
            "checkpoints": {"count": len(ckpts), "epochs": ckpts},
            "artifacts": artifacts,
            "events": b.events(),
            "tables": {n: list(b.table(n)) for n in b.table_names},
            "journal_segments": len(b.segments),
            "damage": damage,
        }


@click.command()
@click.argument("bundle", type=_BUNDLE)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@allow_damaged_option
def info(bundle: Path, as_json: bool, allow_damaged: bool) -> None:
    """Summarise BUNDLE: context, series, checkpoints, artifacts, events."""
    with damage_hint():
        data = bundle_summary(bundle, allow_damaged=allow_damaged)
    if as_json:
        click.echo(json.dumps(json.loads(dumps(data)), indent=2))
        return
    from epochscope.commands._display import print_summary

    print_summary(data)


@click.command()
@click.argument("bundle", type=_BUNDLE)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--require-complete", is_flag=True,
              help="Also fail when the run was interrupted or is still being written.")
def verify(bundle: Path, as_json: bool, require_complete: bool) -> None:
    """Check BUNDLE's integrity (checksums, structure) and say exactly what it holds.

    Exit code 0: intact. 1: damaged or unreadable. 3: intact but incomplete (only with
    --require-complete).
    """
    report = verify_bundle(bundle)
    if as_json:
        click.echo(json.dumps(json.loads(dumps(report.__dict__)), indent=2))
    else:
        f = report.facts
        if f:
            click.echo(f"{f['name']}: status {f['status']}; {f['series']} series, {f['points']} points "
                       f"(last epoch {f['last_epoch']}); {f['checkpoints']} checkpoints "
                       f"(last {f['last_checkpoint']}); {f['events']} events; "
                       f"artifacts: {', '.join(f['artifacts']) or 'none'}; "
                       f"unconsolidated journal segments: {f['journal_segments']}")
        for w in report.warnings:
            click.echo(f"warning: {w}")
        for p in report.problems:
            click.echo(f"problem: {p}", err=True)
        click.echo("OK: intact" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    if not report.ok:
        sys.exit(1)
    if require_complete and report.status != "complete":
        sys.exit(3)


def _format_help() -> str:
    return "Source format (default: detected): " + "; ".join(
        f"{r.name}: {r.summary}" + (f' (pip install "epochscope[{r.extra}]")' if r.extra else "")
        for r in READERS.values()) + "."


@click.command()
@click.argument("source")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Bundle to write, or a directory for one bundle per run "
                   "(default: runs/<source stem or run name>.h5).")
@click.option("--format", "kind", type=click.Choice(list(READERS)), help=_format_help())
@click.option("--run", "run_id", metavar="ID", help="Only this run (id or name) of an MLflow or W&B source.")
@click.option("--name", help="Run name (default: the source's stem or the tracker's run name).")
@click.option("--epoch-column", help="Column holding the epoch/step (default: detected).")
@click.option("--allow-nonfinite", is_flag=True, help="Keep NaN/inf values instead of refusing them.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle.")
def ingest(source: str, output: Path | None, kind: str | None, run_id: str | None, name: str | None,
           epoch_column: str | None, allow_nonfinite: bool, overwrite: bool) -> None:
    """Turn existing logs into bundles: SOURCE is a CSV or JSON Lines file, a TensorBoard
    event directory, an MLflow tracking directory or URI, or a W&B offline run directory.

    A source with several runs (MLflow, W&B) writes one bundle per run into the output
    directory, or only the one named by --run.
    """
    from epochscope.collectors.ingest import ingest as ingest_one
    from epochscope.collectors.ingest import ingest_all

    options = dict(kind=kind, epoch_column=epoch_column, run=run_id, overwrite=overwrite,
                   allow_nonfinite=allow_nonfinite)
    if output is not None and output.suffix.lower() in (".h5", ".hdf5") and not output.is_dir():
        results = [ingest_one(source, output, name=name, **options)]
    else:
        results = ingest_all(source, output or Path("runs"), name=name, **options)
    for result in results:
        click.echo(f"wrote {result.path}: {len(result.series)} series, {result.points} points "
                   f"({result.kind}, index: {result.epoch_column or result.index})")
    for run, reason in results[0].skipped_runs.items():
        click.echo(f"skipped run {run}: {reason}", err=True)


commands = [info, verify, ingest]
