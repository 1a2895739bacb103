"""The shared PCA basis of several runs, computed on the analysis side and stored in each
run's bundle, where comparison pages read it (the generator only reads).

Runs whose checkpoints hold model tensors of identical shapes get one PCA basis fitted on all
their checkpoints together (`trajectory.shared_pca_basis` defines it); each member's bundle
receives an artifact `shared_pca.<basis id>` with its per-checkpoint coordinates on PC1-3
(`coords`), the crossings of its PC2/PC3 path in that basis (summary `crossing_points`
[K, 2] and `crossing_epochs` [K, 2], the start epochs of both segments; scalar
`n_crossings`), and as scalars the basis id, the members' names, the explained-variance
ratios and the layout. The id depends only on the members (names, checkpoint epochs) and their
tensor shapes, so storing the same basis again is skipped, and a run can belong to several
bases (its sweep's and the whole site's).

    store_shared_bases(["runs/p113_s1.h5", "runs/p113_s2.h5"])   # what `epochscope compare` does
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment, open_bundle
from epochscope.archives.errors import DamagedBundleError
from epochscope.errors import EpochscopeError

__all__ = ["ARTIFACT_PREFIX", "shared_basis", "store_shared_bases", "store_site_bases", "weights_layout"]

ARTIFACT_PREFIX = "shared_pca."
VERSION = "2"  # 2: each member's crossings in the basis

Layout = list[tuple[str, tuple[int, ...]]]


def weights_layout(path: str | os.PathLike) -> tuple[Layout | None, list[int], str]:
    """(the model tensors' shapes or None, checkpoint epochs, run name) of one bundle."""
    with open_bundle(path) as b:
        epochs = b.checkpoint_epochs
        if len(epochs) < 2:
            return None, epochs, b.name
        try:
            state = b.checkpoint_group(epochs[0])["state"]
            if "model" not in state:
                return None, epochs, b.name
            shapes = [(str(n), tuple(int(s) for s in item.shape)) for n, item in state["model"].items()
                      if hasattr(item, "shape") and item.dtype.kind == "f"]
        except (KeyError, OSError, ValueError):
            return None, epochs, b.name
        return (shapes or None), epochs, b.name


def shared_basis(paths: list[Path], layout: Layout) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """One PCA basis over every checkpoint of `paths` (runs with the parameter `layout`):
    per run (epochs, coordinates [N, 3]) and the explained-variance ratios.

    `trajectory.shared_pca_basis` defines it; this computes the same thing reading each
    checkpoint once (the model tensors straight from the file) when all of them fit in memory
    as float32. Larger runs (and checkpoints stored in dtypes numpy lacks) go through
    `shared_pca_basis` itself. Raises what that raises (AnalysisError, ImportError...).
    """
    from epochscope.collectors.analysis.trajectory import (
        MAX_ROW_BYTES,
        pca_from_rows,
        shared_pca_basis,
    )

    dim = sum(int(np.prod(s)) for _, s in layout)
    names = [n for n, _ in layout]
    rows: list[np.ndarray] = []
    owner: list[tuple[int, int]] = []
    fallback = False
    for r, path in enumerate(paths):
        with open_bundle(path) as b:
            if len(b.checkpoint_epochs) * dim * 4 * len(paths) > MAX_ROW_BYTES:
                fallback = True
                break
            for epoch in b.checkpoint_epochs:
                group = b.checkpoint_group(epoch)
                meta = b.checkpoint_meta(epoch)
                model = group["state"].get("model")
                if model is None or meta.get("tensor_dtypes") or any(n not in model for n in names):
                    fallback = True
                    break
                row = np.concatenate([np.asarray(model[n][()], dtype=np.float32).ravel() for n in names])
                if row.size != dim:
                    fallback = True
                    break
                if np.all(np.isfinite(row)):
                    rows.append(row)
                    owner.append((r, int(epoch)))
        if fallback or sum(len(x) for x in rows) * 4 > MAX_ROW_BYTES:
            fallback = True
            break
    if fallback:
        basis = shared_pca_basis(paths)
        runs = [(np.asarray(basis.runs[n][0], dtype=np.int64), np.asarray(basis.runs[n][1], dtype=np.float64))
                for n in basis.runs]
        return runs, np.asarray(basis.explained_variance_ratio, dtype=np.float64)
    pca = pca_from_rows(np.stack(rows), 3)
    k = pca.eigvecs.shape[1]
    out = []
    for r in range(len(paths)):
        idx = [i for i, (o, _) in enumerate(owner) if o == r]
        out.append((np.asarray([owner[i][1] for i in idx], dtype=np.int64), pca.coords[idx, :k]))
    return out, np.asarray(pca.explained_ratio[:k], dtype=np.float64)


def _basis_id(members: list[tuple[str, list[int]]], layout: Layout) -> str:
    text = json.dumps({"members": sorted(members), "layout": layout}, sort_keys=True, default=list)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def store_shared_bases(paths: Sequence[str | os.PathLike], *,
                       note: Callable[[str], None] | None = None) -> list[dict]:
    """Fit and store one shared basis per group of two or more `paths` with identical model
    tensor shapes; return one record per basis ({"id", "members", "stored"}). A basis already
    stored in every member is not fitted again. Runs without weights, and groups that cannot
    be fitted, are skipped (with a line to `note`)."""
    from epochscope.collectors.analysis.trajectory import self_intersections

    say = note or (lambda _line: None)
    by_layout: dict[str, tuple[Layout, list[tuple[Path, str, list[int]]]]] = {}
    for p in dict.fromkeys(Path(x).resolve() for x in paths):
        try:
            layout, epochs, name = weights_layout(p)
        except DamagedBundleError:
            continue  # left out of every basis; the caller's own read reports the damage once
        except (EpochscopeError, OSError, KeyError, ValueError) as exc:
            say(f"shared basis: {p} skipped ({exc})")
            continue
        if layout is None:
            continue
        key = json.dumps(layout, default=list)
        by_layout.setdefault(key, (layout, []))[1].append((p, name, epochs))
    out = []
    for layout, members in by_layout.values():
        if len(members) < 2:
            continue
        bid = _basis_id([(name, epochs) for _, name, epochs in members], layout)
        art = ARTIFACT_PREFIX + bid
        have = 0
        for p, _, _ in members:
            with open_bundle(p) as b:
                have += art in b.artifact_names and b.artifact(art).version == VERSION
        if have == len(members):
            out.append({"id": bid, "members": [str(p) for p, _, _ in members], "stored": False})
            continue
        try:
            fitted, evr = shared_basis([p for p, _, _ in members], layout)
        except ImportError as exc:
            say(f"shared basis: needs the analysis extras (torch): {exc}")
            return out
        except (EpochscopeError, OSError, KeyError, ValueError, MemoryError) as exc:
            say(f"shared basis of {', '.join(n for _, n, _ in members)}: could not be computed ({exc})")
            continue
        scalars = {"basis": bid, "members": [n for _, n, _ in members],
                   "explained_variance_ratio": [float(x) for x in evr[:3]],
                   "layout": [[n, list(s)] for n, s in layout]}
        for (p, _, _), (epochs, coords) in zip(members, fitted, strict=True):
            coords = np.asarray(coords, dtype=np.float64)
            if coords.ndim != 2 or coords.shape[1] < 3 or len(epochs) < 2:
                continue
            epochs = np.asarray(epochs, dtype=np.int64)
            hits = self_intersections(coords[:, 1:3])
            summary = {"crossing_points": np.asarray([[x, y] for _, _, x, y in hits], dtype=np.float64).reshape(-1, 2),
                       "crossing_epochs": np.asarray([[epochs[i], epochs[j]] for i, j, _, _ in hits],
                                                     dtype=np.int64).reshape(-1, 2)}
            try:
                with BundleWriter(p, create=False) as w:
                    w.write(Segment(artifacts={art: ArtifactUpdate(
                        VERSION, epochs, {"coords": coords[:, :3]}, summary=summary,
                        scalars={**scalars, "n_crossings": len(hits)}, replace=True)}))
                    w.consolidate()
            except EpochscopeError as exc:
                say(f"shared basis: {p} not updated ({exc})")
        out.append({"id": bid, "members": [str(p) for p, _, _ in members], "stored": True})
    return out


def store_site_bases(bundles_dir: str | os.PathLike, *, note: Callable[[str], None] | None = None) -> list[dict]:
    """The shared bases a site build compares on: one per directory of bundles (a sweep) and
    one over every bundle under `bundles_dir`."""
    root = Path(bundles_dir)
    found = sorted(p for p in root.rglob("*.h5") if not p.name.startswith(".")
                   and not any(part.endswith(".journal") or part.startswith(".") for part in p.relative_to(root).parts[:-1]))
    by_dir: dict[Path, list[Path]] = {}
    for p in found:
        by_dir.setdefault(p.parent, []).append(p)
    out = []
    for members in by_dir.values():
        if len(members) >= 2:
            out += store_shared_bases(members, note=note)
    if len(found) >= 2 and len(by_dir) > 1:
        out += store_shared_bases(found, note=note)
    return out
