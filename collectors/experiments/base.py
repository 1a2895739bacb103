"""What every experiment shares: its config dataclass loaded from TOML/JSON and `key=value`,
bad input turned into one clear error, and the result handed back to the CLI and sweeps."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from epochscope.errors import EpochscopeError

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ExperimentResult", "config_from", "config_to_dict", "one_of"]

C = TypeVar("C")

# Seconds between the recorder's timed flushes in an experiment (each writes a journal segment
# that consolidation reads again): a killed run keeps everything up to its last flush, at most
# this far back. Timed by the wall clock, so on a loaded machine a shorter interval means
# many more segments for the same run.
FLUSH_INTERVAL = 30.0


@dataclass
class ExperimentResult:
    """Where the bundle went, how many optimizer steps ran, the final figures, wall time."""

    bundle_path: Path
    steps: int
    final: dict[str, float]
    wall_time: float
    steps_per_sec: float


def one_of(what: str, value: str, valid: list[str] | tuple[str, ...]) -> str:
    """`value` if it is in `valid`, else an error that lists the valid ones."""
    if value not in valid:
        raise EpochscopeError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from(cls: type[C], source: str | os.PathLike | dict[str, Any] | None = None,
                overrides: list[str] | tuple[str, ...] | dict[str, Any] = ()) -> C:
    """Build `cls` from a .toml/.json file or a dict, then `key=value` overrides (or a dict).

    Values are checked against the field types; an unknown key lists the valid ones.
    """
    base: dict[str, Any] = {}
    if isinstance(source, dict):
        base = dict(source)
    elif source is not None:
        base = _read(Path(source))
    base.pop("experiment", None)
    parsed = dict(overrides) if isinstance(overrides, dict) else _parse(cls, overrides)
    merged = {**base, **parsed}
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in merged if k not in names]
    if unknown:
        raise EpochscopeError(f"unknown config key{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))}; valid keys: {', '.join(names)}")
    types = {f.name: str(f.type) for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _coerce(k, v, types[k]) for k, v in merged.items()})


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise EpochscopeError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise EpochscopeError(f"config file {path} is not valid {path.suffix[1:] or 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise EpochscopeError(f"config file {path} must hold a table of key = value")
    return data


def _parse(cls: type, overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    types = {f.name: str(f.type) for f in fields(cls)}
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise EpochscopeError(f"override {item!r} is not of the form key=value")
        if key not in types:
            raise EpochscopeError(f"unknown config key {key!r}; valid keys: {', '.join(types)}")
        kind = types[key]
        try:
            if raw.lower() in ("none", "null") and "None" in kind:
                out[key] = None
            elif kind.startswith("str"):
                out[key] = raw
            elif kind.startswith("bool"):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out[key] = raw.lower() in ("true", "1", "yes")
            elif kind.startswith("int"):
                value = float(raw)
                if not value.is_integer():
                    raise ValueError
                out[key] = int(value)
            elif kind.startswith("float"):
                out[key] = float(raw)
            elif kind.startswith(("tuple", "list")):
                out[key] = [x.strip() for x in raw.strip("[]()").split(",") if x.strip()]
            else:
                out[key] = json.loads(raw)
        except ValueError:
            raise EpochscopeError(f"cannot parse {key}={raw!r} as {kind}") from None
    return out


def _coerce(key: str, value: Any, kind: str) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None and "None" in kind:
        return None
    if kind.startswith("bool") and isinstance(value, bool):
        return value
    if kind.startswith("int") and number and float(value).is_integer():
        return int(value)
    if kind.startswith("float") and number:
        return float(value)
    if kind.startswith("str") and isinstance(value, str):
        return value
    if kind.startswith(("tuple", "list")) and isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    raise EpochscopeError(f"config key {key}: {value!r} is not a valid {kind}")


def run_recorded(make_run: Callable[[], Any], config: Any, path: str | os.PathLike | None, *,
                 experiment: str, steps: int, overwrite: bool, threads: int | None,
                 diverged: type[Exception]) -> ExperimentResult:
    """Run an experiment bare (`path` None: nothing recorded, for benchmarks) or into the
    bundle at `path`, on `threads` torch threads. `make_run()` gives an object with `run()`
    (returning the final figures) and `attach(recorder)`; a `diverged` exception (with
    `.step`) is recorded and closes the bundle as failed, with one error line."""
    import torch

    from epochscope.collectors.recorder import Recorder

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        run = make_run()
        if path is None:
            final = run.run()
        else:
            with Recorder(path, config_to_dict(config) | {"experiment": experiment},
                          seeds=config.seeds(), overwrite=overwrite, flush_interval=FLUSH_INTERVAL) as rec:
                run.attach(rec)
                try:
                    final = run.run()
                except diverged as exc:
                    rec.event(exc.step, "diverged", str(exc))
                    rec.close(status="failed")
                    raise EpochscopeError(f"{exc}; the bundle {path} is kept, marked failed") from None
    finally:
        torch.set_num_threads(before)
    wall = time.perf_counter() - t0
    return ExperimentResult(Path(path) if path else Path(), steps, final, wall, steps / wall)
