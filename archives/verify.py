"""Integrity and completeness checks of a bundle (what `epochscope verify` runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from epochscope.archives import format as fmt
from epochscope.archives.errors import BundleError
from epochscope.archives.journal import list_segments, stale_temporaries, writer_active
from epochscope.archives.reader import Bundle, _open_h5
from epochscope.errors import clip

__all__ = ["VerifyReport", "verify_bundle"]


@dataclass
class VerifyReport:
    """`ok` is False when anything is damaged or inconsistent; `problems` says what."""

    path: str
    ok: bool = True
    status: str = "unknown"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


def verify_bundle(path: str | os.PathLike) -> VerifyReport:
    """Read every byte of every part, check checksums and structure, report what is there.

    It reads one consistent state: a writer that consolidates or packs the journal at the
    same time makes it read again (the state after the swap), never report a false failure.
    """
    report = VerifyReport(path=str(path))
    path = Path(path)
    try:
        bundle = Bundle(path, allow_damaged=True)
    except (BundleError, OSError, ValueError) as exc:
        # No merged view: still locate the damage file by file.
        _check_files(path, report)
        if not report.problems:
            report.problem(str(exc))
        report.ok = False
        return report
    with bundle:
        # Every file on its own (all datasets, those no reader asks for too), then the merged view.
        for f in bundle._files:
            _check_datasets(f, report)
        for text in bundle.check(tensors=True):
            if text not in " ".join(report.problems) and not any(t in text for t in report.problems):
                report.problem(text)
        try:
            _check_structure(bundle, report)
        except Exception as exc:  # noqa: BLE001 - damaged structures fail in many ways
            report.problem(f"structure unreadable ({' '.join(str(exc).split())[:120]})")
        report.status = bundle.status
        epochs = [e.max() for e, _ in bundle.metrics().values() if len(e)]
        report.facts = {
            "name": bundle.name,
            "status": bundle.status,
            "main_file": bundle.main is not None,
            "journal_segments": len(bundle.segments),
            "series": len(bundle.series_names),
            "points": int(sum(len(e) for e, _ in bundle.metrics().values())),
            "last_epoch": int(max(epochs)) if epochs else None,
            "checkpoints": len(bundle.checkpoint_epochs),
            "last_checkpoint": bundle.checkpoint_epochs[-1] if bundle.checkpoint_epochs else None,
            "events": len(bundle.events()),
            "artifacts": bundle.artifact_names,
            "tables": bundle.table_names,
        }
        if bundle.status == "interrupted":
            report.warnings.append(
                "the writer stopped without closing the bundle (killed?): everything listed was "
                "committed before that; continue training with `epochscope collect --resume`"
            )
        elif bundle.status == "running":
            report.warnings.append("another process is still writing this bundle; checked what is committed")
        for name, (_e, v) in bundle.metrics().items():
            bad = int(np.count_nonzero(~np.isfinite(v)))
            if bad:
                report.warnings.append(f"series {clip(name)!r} has {bad} non-finite value(s)")
    if not writer_active(path):
        stale = stale_temporaries(path)
        if stale:
            size = sum(p.stat().st_size for p in stale if p.exists())
            report.warnings.append(
                f"{len(stale)} temporary file(s) left by a killed writer ({size / 1e6:.1f} MB: "
                f"{', '.join(p.name for p in stale[:3])}{' ...' if len(stale) > 3 else ''}); "
                "never part of the bundle, removed when it is next opened for writing")
        report.facts["stale_temporaries"] = [str(p) for p in stale]
    return report


def _check_files(path: Path, report: VerifyReport) -> None:
    files = ([path] if path.exists() else []) + [p for _, p in list_segments(path)]
    for file in files:
        try:
            with _open_h5(file) as f:
                _check_datasets(f, report)
        except (BundleError, OSError) as exc:
            report.problem(str(exc))


def _check_datasets(f: h5py.File, report: VerifyReport) -> None:
    """Read all data (fletcher32 is checked on read) and compare SHA-256 where stored."""

    def visit(name: str, obj: h5py.HLObject) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        where = f"{Path(f.filename).name}:/{name}"
        try:
            digest = fmt.sha256_of(obj)
        except (OSError, ValueError) as exc:
            report.problem(f"{where}: data unreadable or checksum mismatch ({' '.join(str(exc).split())[:120]})")
            return
        stored = obj.attrs.get("sha256")
        if stored is not None:
            stored = stored.decode() if isinstance(stored, bytes) else str(stored)
            if stored != digest:
                report.problem(f"{where}: SHA-256 mismatch (content changed since it was written)")

    try:
        f.visititems(visit)
    except (OSError, RuntimeError, KeyError) as exc:
        report.problem(f"{Path(f.filename).name}: structure unreadable ({' '.join(str(exc).split())[:120]})")


def _check_structure(bundle: Bundle, report: VerifyReport) -> None:
    if not bundle.context:
        report.problem("no context group: the run's config and environment are missing")
    for name, (epochs, values) in bundle.metrics().items():
        if len(epochs) != len(values):
            report.problem(f"series {name!r}: {len(epochs)} epochs but {len(values)} values")
    for epoch in bundle.checkpoint_epochs:
        try:
            meta = bundle.checkpoint_meta(epoch)
        except (OSError, ValueError, BundleError) as exc:
            report.problem(f"checkpoint {epoch}: unreadable metadata ({exc})")
            continue
        if "model_config" not in meta:
            report.warnings.append(f"checkpoint {epoch}: no model config stored (load_model needs a factory)")
    for name in bundle.artifact_names:
        art = bundle.artifact(name)
        for arr_name in art.names:
            try:
                art.per_epoch(arr_name)
            except (OSError, ValueError, KeyError, BundleError) as exc:
                text = f"artifact {name}/{arr_name}: {exc}"
                if not any(p in text for p in report.problems):
                    report.problem(text)
