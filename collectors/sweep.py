"""Sweeps: a grid of training variants run on Dask distributed, one bundle per variant.

A spec (TOML or JSON) names a preset, base overrides and a grid (or an explicit list of
`[[variants]]` tables, for combinations a grid cannot express):

    name = "primes"
    preset = "demo"
    [base]
    epochs = 3000
    [grid]
    p = [53, 59]
    model_seed = [0, 1]

`design = "taguchi"` runs a Taguchi orthogonal array over the grid's factors instead of
their full product (16 runs for up to five factors of four levels, see collectors/design.py);
`experiment = "apoptosis"` (or "evolution") sweeps that experiment's config instead of the
modular-addition one. Once every variant has finished, the main effect of each factor on
`response` (a key of the variants' final figures; `goal` "min" or "max") is computed and
stored in the manifest under "main_effects".

Each variant is named from its grid values (`p53_model_seed0`) and trains into
`OUT/<name>/<variant>.h5`; `OUT/<name>/sweep.json` (the manifest, written atomically) ties them
together with each variant's status and error. Re-running skips finished variants and resumes
interrupted ones; a failing variant (e.g. NaN loss) is recorded and the rest go on.
By default an embedded `LocalCluster` (one single-threaded worker process per core) runs
the variants; `scheduler="tcp://host:port"` sends them to an existing Dask cluster instead,
through the same code path (`collectors/cluster.py`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epochscope.archives.sweep import MANIFEST, MANIFEST_FORMAT, read_sweep
from epochscope.collectors.cluster import dask_client
from epochscope.collectors.config import TrainConfig, load_config, preset
from epochscope.collectors.design import main_effects, taguchi_points
from epochscope.errors import EpochscopeError

__all__ = ["SweepResult", "SweepSpec", "load_spec", "run_sweep", "variant_name"]

_SPEC_KEYS = {"name", "preset", "base", "grid", "variants", "config", "experiment", "design",
              "response", "goal"}
DESIGNS = ("grid", "taguchi")
# The figure main effects are computed on when a spec names none, and whether lower is better.
DEFAULT_RESPONSE = {"modular-addition": ("test_loss", "min"), "evolution": ("best_fitness", "max"),
                    "apoptosis": ("final_val_loss", "min")}


@dataclass
class SweepSpec:
    """A named grid of overrides over a base config."""

    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    preset: str | None = None
    config: str | None = None  # a config file the base overrides apply to
    explicit: list[dict[str, Any]] = field(default_factory=list)  # [[variants]] tables
    experiment: str = "modular-addition"
    design: str = "grid"
    response: str | None = None
    goal: str | None = None

    @property
    def array(self) -> str | None:
        """The orthogonal array of a Taguchi design, e.g. "L16(4^5)"."""
        return taguchi_points(self.grid)[1] if self.design == "taguchi" else None

    def points(self) -> list[dict[str, Any]]:
        """The overrides of each variant: the grid's product (or its Taguchi array), then the
        explicit variants."""
        keys = list(self.grid)
        if self.design == "taguchi":
            grid = taguchi_points(self.grid)[0]
        else:
            grid = [dict(zip(keys, values, strict=True))
                    for values in itertools.product(*(self.grid[k] for k in keys))] if keys else []
        return grid + [dict(v) for v in self.explicit]

    def response_goal(self) -> tuple[str, str]:
        response, goal = DEFAULT_RESPONSE.get(self.experiment, ("final_val_loss", "min"))
        return self.response or response, self.goal or goal

    def variants(self) -> list[tuple[str, dict[str, Any], Any]]:
        """(name, overrides, full config) for every variant, in order."""
        out = []
        for params in self.points():
            vname = variant_name(params)
            overrides = {**self.base, **params, "name": f"{self.name}/{vname}"}
            if self.experiment != "modular-addition":
                from epochscope.collectors.experiments import experiment

                cfg = experiment(self.experiment).load_config(self.config, overrides)
            elif self.config:
                cfg = load_config(self.config, overrides)
            else:
                cfg = load_config(preset(self.preset or "demo").to_dict(), overrides)
            out.append((vname, params, cfg))
        names = [v[0] for v in out]
        if len(set(names)) != len(names):
            raise EpochscopeError(f"sweep {self.name!r}: grid values give duplicate variant names")
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "preset": self.preset, "config": self.config,
               "base": self.base, "grid": self.grid, "variants": self.explicit}
        if self.experiment != "modular-addition":
            out["experiment"] = self.experiment
        if self.design != "grid":
            out["design"], out["array"] = self.design, self.array
        if self.response or self.goal:
            out["response"], out["goal"] = self.response_goal()
        return out


def variant_name(params: dict[str, Any]) -> str:
    """A file-safe name from grid values: {"p": 97, "model_seed": 485} -> "p97_model_seed485"."""
    parts = []
    for key, value in params.items():
        text = f"{key}{value}"
        parts.append(re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-"))
    return "_".join(parts) or "base"


def load_spec(source: str | os.PathLike | dict[str, Any]) -> SweepSpec:
    """Read and validate a sweep spec from a TOML/JSON file or a dict."""
    if isinstance(source, dict):
        data, origin = dict(source), "spec"
    else:
        path = Path(source)
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EpochscopeError(f"cannot read sweep spec {path}: {exc.strerror}") from None
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import tomllib

                data = tomllib.loads(text)
        except (ValueError, json.JSONDecodeError) as exc:
            raise EpochscopeError(f"{path}: not a valid sweep spec ({exc})") from None
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise EpochscopeError(f"{origin}: unknown sweep key(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(_SPEC_KEYS))}")
    grid = data.get("grid") or {}
    explicit = data.get("variants") or []
    if not isinstance(grid, dict) or not isinstance(explicit, list) or not (grid or explicit):
        raise EpochscopeError(f"{origin}: a sweep needs a non-empty [grid] of lists or [[variants]]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise EpochscopeError(f"{origin}: grid.{key} must be a non-empty list")
    if not all(isinstance(v, dict) and v for v in explicit):
        raise EpochscopeError(f"{origin}: each [[variants]] entry must be a non-empty table")
    from epochscope.collectors.experiments import EXPERIMENT_NAMES
    from epochscope.collectors.experiments.base import one_of

    experiment_name = one_of("experiment", str(data.get("experiment", "modular-addition")), EXPERIMENT_NAMES)
    design = one_of("design", str(data.get("design", "grid")), DESIGNS)
    if design == "taguchi" and not grid:
        raise EpochscopeError(f"{origin}: a Taguchi design needs a [grid] of factors and their levels")
    goal = data.get("goal")
    if goal is not None:
        one_of("goal", str(goal), ("min", "max"))
    if experiment_name != "modular-addition" and data.get("preset"):
        raise EpochscopeError(f"{origin}: preset applies to the modular-addition experiment only")
    name = str(data.get("name") or (Path(origin).stem if origin != "spec" else "sweep"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise EpochscopeError(f"{origin}: sweep name {name!r} must be letters, digits, '.', '_', '+', '-'")
    spec = SweepSpec(name=name, base=dict(data.get("base") or {}), grid=grid,
                     preset=data.get("preset"), config=data.get("config"), explicit=list(explicit),
                     experiment=experiment_name, design=design,
                     response=data.get("response"), goal=goal)
    spec.variants()  # validates every variant's config now, before anything runs
    return spec


@dataclass
class SweepResult:
    """Where everything went, and how each variant ended."""

    directory: Path
    manifest: Path
    variants: list[dict[str, Any]] = field(default_factory=list)

    main_effects: dict[str, Any] | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [v for v in self.variants if v["status"] == "failed"]


def _bundle_state(path: Path) -> str:
    """'missing', 'complete', 'failed' or 'unfinished' (interrupted, resumable)."""
    from epochscope.archives import open_bundle

    if not path.exists() and not path.with_name(path.name + ".journal").exists():
        return "missing"
    try:
        with open_bundle(path) as b:
            status = b.status
            finished = bool(b.events("finished"))
    except EpochscopeError:
        return "unfinished"
    if status == "complete" and finished:
        return "complete"
    if status == "failed":
        return "failed"
    return "unfinished"


def run_variant(config_dict: dict[str, Any], path: str, resume: bool | None,
                analyze: bool = False, experiment: str = "modular-addition") -> dict[str, Any]:
    """Train (resume=None: skip training) and optionally analyse one variant; never raises.

    Experiments other than modular addition do not resume: an interrupted one starts over.
    """
    import torch

    from epochscope.collectors.train import train

    torch.set_num_threads(1)  # one variant per worker process, one core each
    t0 = time.time()
    try:
        final = None
        if resume is not None and experiment != "modular-addition":
            from epochscope.collectors.experiments import experiment as get_experiment

            exp = get_experiment(experiment)
            final = exp.run(exp.load_config(config_dict), path, overwrite=True).final
        elif resume is not None:
            final = train(TrainConfig.from_dict(config_dict), path, resume=resume, progress=False).final
        if analyze:
            from epochscope.collectors.analysis import analyze as run_analyze

            run_analyze(path)
    except Exception as exc:  # noqa: BLE001 - recorded in the manifest, the sweep goes on
        return {"status": "failed", "error": " ".join(str(exc).split()), "seconds": time.time() - t0}
    out: dict[str, Any] = {"status": "complete", "error": None, "seconds": time.time() - t0}
    if final is not None:
        out["final"] = final
    return out


def run_sweep(spec: SweepSpec, out_dir: str | os.PathLike, *, scheduler: str | None = None,
              workers: int | None = None, retry_failed: bool = False, analyze: bool = False,
              on_update: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run every variant of `spec` on Dask; skip finished ones, resume interrupted ones.

    With `analyze`, each worker also runs the analyzers on its bundle (only what is missing,
    so finished variants that lack analyses are analysed too).
    """
    from dask.distributed import as_completed

    directory = Path(out_dir) / spec.name
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / MANIFEST
    entries: dict[str, dict[str, Any]] = {}
    todo = []
    for vname, params, cfg in spec.variants():
        path = directory / f"{vname}.h5"
        state = _bundle_state(path)
        entry = {"name": vname, "params": params, "bundle": path.name, "status": state, "error": None}
        entries[vname] = entry
        if state == "failed" and not retry_failed:
            entry["skipped"] = True
            entry["error"] = _failure_reason(path)
            continue
        if state == "complete":
            if not analyze or _analysed(path):
                entry["skipped"] = True
                continue
            todo.append((vname, cfg, path, None))  # trained already: analyse only
        else:
            todo.append((vname, cfg, path, state == "unfinished"))
        entry["status"] = "pending"
    _write_manifest(manifest, spec, entries)

    if todo:
        with dask_client(scheduler, workers, len(todo)) as client:
            futures = {}
            for vname, cfg, path, resume in todo:
                fut = client.submit(run_variant, _config_dict(cfg), str(path.resolve()), resume, analyze,
                                    spec.experiment, key=f"epochscope-{spec.name}-{vname}-{time.time_ns()}", pure=False)
                futures[fut] = vname
                entries[vname]["status"] = "running"
            _write_manifest(manifest, spec, entries)
            for fut in as_completed(futures):
                vname = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker died: record, go on
                    outcome = {"status": "failed", "error": f"worker failed: {exc}"}
                entries[vname].update(outcome)
                _write_manifest(manifest, spec, entries)
                if on_update:
                    on_update(entries[vname])
    effects = sweep_main_effects(spec, directory, entries)
    if effects is not None:
        _write_manifest(manifest, spec, entries, main_effects=effects)
    return SweepResult(directory, manifest, list(entries.values()), main_effects=effects)


def _config_dict(cfg: Any) -> dict[str, Any]:
    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    from epochscope.collectors.experiments.base import config_to_dict

    return config_to_dict(cfg)


def sweep_main_effects(spec: SweepSpec, directory: Path, entries: dict[str, dict[str, Any]]
                       ) -> dict[str, Any] | None:
    """Main effects of the grid's factors on the spec's response, from every finished variant
    (its final figures: the run's result, or the bundle's "finished" event); None without a grid."""
    from epochscope.archives import open_bundle

    if not spec.grid:
        return None
    response, goal = spec.response_goal()
    values: list[float | None] = []
    points = []
    for entry in entries.values():
        final = entry.get("final")
        if final is None and entry["status"] == "complete":
            try:
                with open_bundle(directory / entry["bundle"]) as b:
                    done = b.events("finished")
                    final = done[-1]["payload"] if done else None
            except EpochscopeError:
                final = None
        value = (final or {}).get(response) if entry["status"] == "complete" else None
        values.append(float(value) if isinstance(value, (int, float)) else None)
        points.append({k: v for k, v in entry["params"].items() if k in spec.grid})
    effects = main_effects(points, values, goal)
    effects.update(response=response, design=spec.design, array=spec.array)
    return effects


def _analysed(path: Path) -> bool:
    """True when every applicable analyzer is up to date for the bundle."""
    from epochscope.collectors.analysis import analysis_status

    try:
        return all(s["up_to_date"] or not s["applicable"] for s in analysis_status(path).values())
    except EpochscopeError:
        return False


def _failure_reason(path: Path) -> str | None:
    from epochscope.archives import open_bundle

    try:
        with open_bundle(path) as b:
            events = b.events("diverged") or b.events("error")
            return events[-1]["message"] if events else None
    except EpochscopeError:
        return None


def _write_manifest(path: Path, spec: SweepSpec, entries: dict[str, dict[str, Any]],
                    main_effects: dict[str, Any] | None = None) -> None:
    """Atomically (re)write the manifest: the spec, every variant's state, the main effects."""
    data = {"format": MANIFEST_FORMAT, "version": "1.1", "spec": spec.to_dict(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "variants": list(entries.values())}
    if main_effects is not None:
        data["main_effects"] = main_effects
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the sweep in `directory` as a dict (archives/sweep.py reads it)."""
    return read_sweep(directory).raw
