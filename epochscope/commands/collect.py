"""Commands that train: collect, densify, sweep (torch is imported only when they run)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import click

from epochscope.errors import EpochscopeError

_BUNDLE = click.Path(dir_okay=False, path_type=Path)


def file_stem(name: str) -> str:
    """A safe file name from a run name (which may contain anything, '../' and HTML included)."""
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-.")
    return stem[:120] or "run"




def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)


_EXPERIMENTS = ("modular-addition", "evolution", "apoptosis", "morphogenesis")  # experiments.EXPERIMENT_NAMES


@click.command()
@click.option("--experiment", type=click.Choice(_EXPERIMENTS), default="modular-addition", show_default=True,
              help="What to train: the modular-addition reference run, an evolutionary activation "
                   "search, neuron apoptosis, or morphogenetic growth.")
@click.option("--data", "data_file", type=click.Path(dir_okay=False, path_type=Path),
              help="evolution/apoptosis: a UTF-8 text corpus (default: Python's pydoc_data topics).")
@click.option("--preset", default=None, help="Start from a named preset (nanda2023, demo).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A TOML or JSON config file (it may name a preset to start from).")
@click.option("-o", "--output", type=_BUNDLE, help="Bundle to write (default: runs/<name>.h5).")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle.")
@click.option("--resume", "resume", type=_BUNDLE,
              help="Continue this bundle from its last checkpoint (uses its stored config).")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.argument("overrides", nargs=-1)
def collect(experiment: str, data_file: Path | None, preset: str | None, config_file: Path | None,
            output: Path | None, overwrite: bool, resume: Path | None, quiet: bool,
            overrides: tuple[str, ...]) -> None:
    """Train the modular-addition transformer (or another --experiment) into a bundle.

    OVERRIDES are KEY=VALUE pairs for any config key, e.g. `p=97 epochs=5000 lr_schedule=cosine`,
    or `strategy=hybrid turnover_rate=0.05` for --experiment apoptosis.
    """
    if experiment == "morphogenesis":
        if data_file is not None:
            raise EpochscopeError("--data applies to --experiment evolution or apoptosis")
        _collect_standalone(experiment, config_file, output, overwrite, quiet, preset, resume, overrides)
        return
    if experiment != "modular-addition":
        _collect_experiment(experiment, data_file, preset, config_file, output, overwrite, resume, overrides)
        return
    if data_file is not None:
        raise EpochscopeError("--data applies to --experiment evolution or apoptosis")
    from epochscope.archives import open_bundle
    from epochscope.collectors.config import TrainConfig, load_config
    from epochscope.collectors.train import train

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if resume is not None:
            if preset or config_file or overrides or output:
                raise EpochscopeError("--resume uses the bundle's stored config: give no preset, "
                                      "config file, overrides or --output with it")
            with open_bundle(resume) as b:
                config = TrainConfig.from_dict(b.config)
            path = resume
        else:
            if preset and config_file:
                raise EpochscopeError("give either --preset or --config, not both")
            if output is not None and not any(o.startswith("name=") for o in overrides):
                overrides = (*overrides, f"name={output.name.removesuffix('.h5')}")
            config = load_config(config_file or preset or "demo", list(overrides))
            path = output or Path("runs") / f"{file_stem(config.name)}.h5"
            path.parent.mkdir(parents=True, exist_ok=True)
    _echo_warnings(caught)
    from epochscope.archives.errors import DiskFullError

    try:
        result = train(config, path, overwrite=overwrite, resume=resume is not None,
                       progress=False if quiet else None)
    except DiskFullError as exc:
        raise DiskFullError(f"{exc}; once space is free, continue with `epochscope collect --resume {path}`") from None
    final = result.final
    click.echo(f"wrote {result.bundle_path}: {result.epochs} epochs in {result.wall_time:.1f} s; "
               f"train loss {final['train_loss']:.4g} acc {final['train_acc']:.3f}, "
               f"test loss {final['test_loss']:.4g} acc {final['test_acc']:.3f}")


def _collect_experiment(name: str, data_file: Path | None, preset: str | None, config_file: Path | None,
                        output: Path | None, overwrite: bool, resume: Path | None,
                        overrides: tuple[str, ...]) -> None:
    from epochscope.collectors.experiments import experiment

    if preset or resume:
        raise EpochscopeError(f"--experiment {name} takes --config and KEY=VALUE overrides, "
                              "not --preset or --resume")
    exp = experiment(name)
    if data_file is not None:
        overrides = (*overrides, f"data={data_file}")
    if output is not None and not any(o.startswith("name=") for o in overrides):
        overrides = (*overrides, f"name={output.name.removesuffix('.h5')}")
    config = exp.load_config(config_file, list(overrides))
    path = output or Path("runs") / f"{file_stem(config.name)}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    result = exp.run(config, path, overwrite=overwrite)
    figures = ", ".join(f"{k} {v:.4g}" for k, v in result.final.items())
    click.echo(f"wrote {result.bundle_path}: {result.steps} steps in {result.wall_time:.1f} s "
               f"({result.steps_per_sec:.1f} steps/s); {figures}")


def _collect_standalone(name: str, config_file: Path | None, output: Path | None, overwrite: bool,
                        quiet: bool, preset: str | None, resume: Path | None,
                        overrides: tuple[str, ...]) -> None:
    """An experiment with its own loop: module `config_from(overrides, base)` and
    `run(config, output, overwrite=..., progress=...)` returning a result with `describe()`."""
    import importlib

    from epochscope.collectors.config import _read_file
    from epochscope.collectors.experiments import STANDALONE

    if preset or resume:
        raise EpochscopeError(f"--experiment {name} takes no --preset or --resume")
    module = importlib.import_module(STANDALONE[name])
    base = _read_file(config_file) if config_file else None
    if output is not None and not any(o.startswith("name=") for o in overrides):
        overrides = (*overrides, f"name={output.name.removesuffix('.h5')}")
    config = module.config_from(list(overrides), base)
    path = output or Path("runs") / f"{file_stem(config.name)}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    result = module.run(config, path, overwrite=overwrite, progress=False if quiet else None)
    click.echo(f"wrote {path}: {result.describe()}")


@click.command()
@click.argument("bundle", type=_BUNDLE)
@click.option("--from", "start", type=int, required=True, help="First epoch of the window.")
@click.option("--to", "stop", type=int, required=True, help="Last epoch of the window.")
@click.option("--every", type=int, required=True, help="Add a checkpoint every K epochs.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def densify(bundle: Path, start: int, stop: int, every: int, quiet: bool) -> None:
    """Replay training to add checkpoints every K epochs between --from and --to.

    The replay starts at the checkpoint at or before --from; its metrics must equal the
    recorded ones bit for bit, or the command stops at the first mismatch with an error
    (checkpoints already verified and added before it stay; a densify_failed event is recorded).
    """
    from epochscope.collectors.train import densify as run_densify

    added = run_densify(bundle, start, stop, every, progress=False if quiet else None)
    click.echo(f"added {len(added)} checkpoint(s) to {bundle}"
               + (f": epochs {added[0]}..{added[-1]}" if added else " (all already present)"))


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs"), show_default=True, help="Directory for the sweep's folder.")
@click.option("--scheduler", help="Address of an existing Dask scheduler (default: a local cluster).")
@click.option("--workers", type=int, help="Worker processes of the local cluster (default: cores).")
@click.option("--retry-failed", is_flag=True, help="Run variants that failed before again.")
def sweep(spec: Path, out_dir: Path, scheduler: str | None, workers: int | None,
          retry_failed: bool) -> None:
    """Train every variant of a grid SPEC (TOML/JSON) on Dask, one bundle each.

    `design = "taguchi"` in the spec runs a Taguchi orthogonal array instead of the full grid;
    `experiment = "apoptosis"` (or "evolution") sweeps that experiment. The main effect of
    each factor is stored in sweep.json once the variants have finished.
    Finished variants are skipped and interrupted ones resumed when the sweep runs again.
    Exits 1 if any variant failed (the others still ran).
    """
    from rich.console import Console

    from epochscope.collectors.sweep import load_spec, run_sweep

    console = Console(stderr=True, highlight=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = load_spec(spec)
    _echo_warnings(caught)
    total = len(parsed.variants())

    def update(entry: dict) -> None:
        secs = entry.get("seconds")
        console.print(f"{entry['name']}: {entry['status']}"
                      + (f" in {secs:.0f} s" if secs else "")
                      + (f" ({entry['error']})" if entry.get("error") else ""), markup=False)

    console.print(f"sweep {parsed.name}: {total} variant(s) -> {out_dir / parsed.name}", markup=False)
    result = run_sweep(parsed, out_dir, scheduler=scheduler, workers=workers,
                       retry_failed=retry_failed, on_update=update)
    skipped = [v for v in result.variants if v.get("skipped")]
    click.echo(f"manifest: {result.manifest}; {total - len(result.failed)} ok, {len(result.failed)} failed, "
               f"{len(skipped)} skipped as already done")
    effects = result.main_effects
    if effects and effects["factors"]:
        ranked = sorted(effects["factors"].items(), key=lambda kv: kv[1]["rank"])
        click.echo(f"main effects on {effects['response']} ({effects['goal']}, {effects['runs_used']} runs): "
                   + "; ".join(f"{k} {v['effect']:.4g} (best {v['best_level']})" for k, v in ranked))
    if result.failed:
        raise SystemExit(1)


commands = [collect, densify, sweep]
