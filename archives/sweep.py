"""The sweep manifest, `sweep.json`: what ties a sweep's bundles together (see
docs/bundle-format.md, "Sweep manifest").

`epochscope sweep` (collectors/sweep.py) writes it beside the variants' bundles; readers
(the comparison page, the site) find it here: `read_sweep(directory)`, or `sweep_of(paths)`
for the sweep a set of bundles belongs to. JSON in, plain dicts out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epochscope.errors import EpochscopeError

__all__ = ["MANIFEST", "MANIFEST_FORMAT", "SweepManifest", "read_sweep", "sweep_of"]

MANIFEST = "sweep.json"
MANIFEST_FORMAT = "epochscope-sweep"


@dataclass
class SweepManifest:
    """One sweep: its spec, each variant's entry (name, params, bundle file name, status,
    final figures) and, once every variant finished, the main effects of its factors."""

    path: Path
    version: str
    spec: dict[str, Any]
    variants: list[dict[str, Any]]
    main_effects: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.path.parent.name)

    def bundle_path(self, entry: dict[str, Any]) -> Path:
        return self.path.parent / str(entry.get("bundle", ""))

    def member(self, bundle: str | os.PathLike) -> dict[str, Any] | None:
        """The variant entry whose bundle is `bundle`, or None."""
        target = _resolved(Path(bundle))
        return next((e for e in self.variants if _resolved(self.bundle_path(e)) == target), None)


def read_sweep(directory: str | os.PathLike) -> SweepManifest:
    """The manifest of the sweep in `directory` (or the manifest file itself)."""
    path = Path(directory)
    if path.is_dir() or path.name != MANIFEST:
        path = path / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EpochscopeError(f"cannot read sweep manifest {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise EpochscopeError(f"{path} is not an epochscope sweep manifest")
    variants = [v for v in data.get("variants") or [] if isinstance(v, dict)]
    effects = data.get("main_effects")
    return SweepManifest(path, str(data.get("version", "")), dict(data.get("spec") or {}), variants,
                         effects if isinstance(effects, dict) else None, data)


def sweep_of(bundles: list[str | os.PathLike]) -> SweepManifest | None:
    """The sweep every one of `bundles` is a variant of: the manifest in their common directory
    that lists each of them; None when they are not all members of one sweep."""
    paths = [Path(b) for b in bundles]
    if not paths:
        return None
    folders = {_resolved(p.parent) for p in paths}
    if len(folders) != 1:
        return None
    folder = folders.pop()
    if not (folder / MANIFEST).is_file():
        return None
    try:
        manifest = read_sweep(folder)
    except EpochscopeError:
        return None
    return manifest if all(manifest.member(p) is not None for p in paths) else None


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()
