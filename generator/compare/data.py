"""What a comparison page knows about each variant, read once per bundle.

`read_variant` opens one bundle and extracts everything the comparison needs (the headline
numbers of the summary table, every time series it can overlay, the per-variant detail for
the small multiples, the trajectory) into a `VariantData`, then closes the bundle; the rest
of the comparison works on these plain numpy values. Nothing here knows HTML.

The PC2/PC3 crossings and loop measures are the analysis side's (the `trajectory` analyzer
and the stored shared bases); this only reads them. The statistics of the table and bands
are in `stats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from epochscope.archives import Bundle
from epochscope.generator import sources as src
from epochscope.generator.compare.stats import (
    MAD_SCALE,
    MEANAD_SCALE,
    MIN_FLAG_VALUES,
    Z_LIMIT,
    decimate,
    robust_z,
)
from epochscope.generator.context import BuildContext, Unavailable
from epochscope.generator.encode import ArrayStore
from epochscope.generator.facts import RunFacts, run_facts
from epochscope.generator.packs import applicable_packs

__all__ = [
    "MAD_SCALE",
    "MEANAD_SCALE",
    "MIN_FLAG_VALUES",
    "Z_LIMIT",
    "Series",
    "VariantData",
    "decimate",
    "read_variant",
    "read_variants",
    "robust_z",
]

@dataclass
class Series:
    """One time series of one variant: epochs (int64, increasing) and values (float64)."""

    epochs: np.ndarray
    values: np.ndarray
    label: str  # what it is, e.g. "participation ratio · W_in"
    source: str  # where it came from, e.g. "metric series 'grad_norm'"


@dataclass
class VariantData:
    """Everything the comparison uses from one bundle (the bundle itself is closed)."""

    path: Path
    name: str
    status: str
    config: dict[str, Any]
    analyses: list[str]
    final_epoch: int | None
    # table facts: key -> value (None: missing, with the reason in `missing`)
    facts: dict[str, Any] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)  # key -> tooltip detail
    missing: dict[str, str] = field(default_factory=dict)  # key -> why it is missing
    turn: int | None = None
    turn_reason: str = ""
    series: dict[str, Series] = field(default_factory=dict)  # overlay key -> series
    spectrum: dict[str, Any] | None = None  # W_E Fourier norms at the last analysed epoch
    clusters: dict[str, Any] | None = None  # neurons per frequency cluster, last epoch
    pca: tuple[np.ndarray, np.ndarray] | None = None  # (epochs, [N, 3]) own basis
    pca_cross: np.ndarray | None = None  # [K, 2] stored PC2/PC3 crossing points (None: not stored)
    layout: list[tuple[str, tuple[int, ...]]] | None = None  # model tensor shapes
    weights_reason: str = ""  # why the checkpoints cannot join a shared basis
    run: RunFacts | None = None  # the run's headline facts (generator/facts.py)
    experiment: str = "other"  # the title of the first experiment pack that applies (not generic)
    # overlay key -> the series thinned to DISPLAY_POINTS (what the page embeds, see charts.py)
    display: dict[str, Series] = field(default_factory=dict)
    initial: dict[str, float] = field(default_factory=dict)  # metric name -> first finite value
    # shared PCA bases stored in the bundle: basis id -> (epochs, coords [N, 3], evr, member names)
    bases: dict[str, tuple[np.ndarray, np.ndarray, list[float], list[str]]] = field(default_factory=dict)
    # basis id -> this run's stored PC2/PC3 crossing points [K, 2] in it (absent: not stored)
    bases_cross: dict[str, np.ndarray] = field(default_factory=dict)


# ----------------------------------------------------------------------------- statistics

# ----------------------------------------------------------------------------- reading

# Points of a series' display copy (min/max decimation); the page may thin it further.
DISPLAY_POINTS = 600
# From this many bundles on, they are read by a pool of processes (reading is mostly HDF5
# attribute and dataset access, which holds the interpreter).
PARALLEL_FROM = 64


def read_variants(paths: list[Path], *, allow_damaged: bool = False, workers: int | None = None
                  ) -> list[tuple[VariantData | None, list[str], str | None]]:
    """Read every bundle of `paths` (in order): (variant or None, damage found, why it could
    not be read or None). A damaged bundle raises DamagedBundleError unless `allow_damaged`.
    Many bundles are read in parallel processes (`workers`: their number, default one per
    CPU up to 8); the result does not depend on how they were read."""
    import os

    n = workers if workers is not None else (min(os.cpu_count() or 1, 8) if len(paths) >= PARALLEL_FROM else 1)
    if n <= 1 or len(paths) < 2:
        got = [_read_one(p, allow_damaged, False) for p in paths]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        methods = multiprocessing.get_all_start_methods()
        mp = multiprocessing.get_context("fork" if "fork" in methods else methods[0])
        with ProcessPoolExecutor(min(n, len(paths)), mp_context=mp) as pool:
            got = list(pool.map(_read_one, paths, [allow_damaged] * len(paths), [True] * len(paths),
                                chunksize=max(1, len(paths) // (4 * n))))
    for _, _, error in got:
        if isinstance(error, tuple):  # damaged: refused, never compared silently
            from epochscope.archives.errors import DamagedBundleError

            raise DamagedBundleError(error[0], error[1])
    return got  # type: ignore[return-value]


def _read_one(path: Path, allow_damaged: bool, slim: bool) -> tuple[VariantData | None, list[str], Any]:
    """One bundle for `read_variants`; `slim` (a worker process): only the display copies of
    the series travel back (everything computed from the full series is computed here)."""
    from epochscope.archives import open_bundle
    from epochscope.archives.errors import DamagedBundleError
    from epochscope.errors import EpochscopeError

    try:
        with open_bundle(path, allow_damaged=allow_damaged) as b:
            damage = [f"{path.name}: {d}" for d in b.check()]
            v = read_variant(b)
    except DamagedBundleError as exc:
        return None, [], (str(exc), exc.findings)
    except (EpochscopeError, OSError, KeyError, ValueError) as exc:
        return None, [], str(exc)
    if slim:
        v.series = dict(v.display)
    return v, damage, None

def read_variant(bundle: Bundle) -> VariantData:
    """Extract what the comparison needs from one open bundle."""
    ctx = BuildContext(bundle, ArrayStore())
    facts = run_facts(bundle, ctx)  # the same headline facts the report, index and catalog show
    v = VariantData(path=bundle.path, name=bundle.name, status=bundle.status, config=bundle.config,
                    analyses=[a for a in bundle.artifact_names if not a.startswith(src.SHARED_PCA_PREFIX)],
                    final_epoch=ctx.final_epoch, run=facts)
    for name in bundle.series_names:
        epochs, values = ctx.series(name)
        ok = np.nonzero(np.isfinite(values))[0]
        if epochs.size and ok.size:
            v.series[f"metric:{name}"] = Series(epochs, values, name, f"metric series '{name}'")
            v.initial[name] = float(values[ok[0]])
    v.experiment = next((p.title for p in applicable_packs(bundle) if p.name != "generic"), "other")
    _artifact_series(ctx, v)
    _turn_facts(ctx, v, facts)
    _final_facts(ctx, v, facts)
    _structure_facts(ctx, v)
    _trajectory_facts(ctx, v)
    _weights_layout(bundle, v)
    _stored_bases(bundle, v)
    for key, s in v.series.items():
        x, y = decimate(s.epochs, s.values, DISPLAY_POINTS)
        v.display[key] = s if len(x) == len(s.epochs) else Series(x, y, s.label, s.source)
    return v


def _per_epoch(ctx: BuildContext, artifact: str, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        epochs, values = ctx.per_epoch(artifact, names)
    except (Unavailable, KeyError, ValueError, OSError):
        return None
    return (epochs, values) if epochs.size else None


def _add(v: VariantData, key: str, epochs: np.ndarray, values: np.ndarray, label: str, source: str) -> None:
    values = np.asarray(values, dtype=np.float64).ravel()
    epochs = np.asarray(epochs, dtype=np.int64).ravel()
    if epochs.size and epochs.size == values.size and np.isfinite(values).any():
        order = np.argsort(epochs, kind="stable")
        v.series[key] = Series(epochs[order], values[order], label, source)


def _artifact_series(ctx: BuildContext, v: VariantData) -> None:
    """Time series from the analyses, under keys the overlay charts look for."""
    got = _per_epoch(ctx, src.EFFECTIVE_DIM, src.PARTICIPATION_ARRAYS)
    if got is not None and got[1].ndim == 2:
        names = ctx.labels(src.EFFECTIVE_DIM, src.MATRIX_LABELS, got[1].shape[1], "matrix ")
        for m, name in enumerate(names):
            _add(v, f"pr:{name}", got[0], got[1][:, m], f"participation ratio · {name}",
                 "effective_dim analysis, participation_ratio")
        gap = _per_epoch(ctx, src.EFFECTIVE_DIM, src.GAP_ARRAYS)
        if gap is not None and gap[1].ndim == 2 and gap[1].shape[1] == len(names):
            for m, name in enumerate(names):
                _add(v, f"gap:{name}", gap[0], gap[1][:, m], f"spectral gap · {name}",
                     "effective_dim analysis, spectral_gap")
    for side, matrix in (("embed", "W_E"), ("unembed", "W_U")):
        got = _per_epoch(ctx, src.FOURIER, src.FOURIER_GINI[side])
        if got is not None:
            _add(v, f"gini:{side}", got[0], got[1], f"Gini of the Fourier norms · {matrix}",
                 f"fourier_weights analysis, {side}_gini")
    for key, names, label in (("restricted", src.RESTRICTED_ALL, "restricted loss (train)"),
                              ("restricted_test", src.RESTRICTED_TEST, "restricted loss (test)"),
                              ("excluded", src.EXCLUDED, "excluded loss")):
        got = _per_epoch(ctx, src.RESTRICTED, names)
        if got is not None and got[1].ndim == 1:
            _add(v, f"rl:{key}", got[0], got[1], label, f"restricted_loss analysis, {names[0]}")
    got = _per_epoch(ctx, src.NEURON_FREQ, ("frac_clustered",))
    if got is None:
        got = _per_epoch(ctx, src.NEURON_FREQ, src.NEURON_CLUSTERED)
        if got is not None:
            got = (got[0], np.asarray(got[1], dtype=np.float64).reshape(len(got[0]), -1).mean(axis=1))
    if got is not None:
        _add(v, "clustered", got[0], got[1], "share of MLP neurons in a frequency cluster",
             "neuron_freq analysis")
    if "metric:weight_norm" not in v.series:
        got = _per_epoch(ctx, src.WEIGHT_NORMS, src.WEIGHT_NORM_TOTAL)
        if got is not None:
            _add(v, "weight_norm", got[0], got[1], "weight norm (all parameters)", "weight_norms analysis, total")
    if "metric:param_velocity" not in v.series:
        got = _per_epoch(ctx, src.TRAJECTORY, src.VELOCITY_ARRAYS)
        if got is not None:
            _add(v, "velocity", got[0], got[1], "parameter velocity", "trajectory analysis, velocity")


def _last_finite(s: Series | None) -> tuple[float, int] | None:
    if s is None:
        return None
    ok = np.nonzero(np.isfinite(s.values))[0]
    return (float(s.values[ok[-1]]), int(s.epochs[ok[-1]])) if ok.size else None


def _turn_facts(ctx: BuildContext, v: VariantData, facts: RunFacts) -> None:
    turn = facts.turn
    acc = v.series.get("metric:test_acc")
    if turn is None:
        v.turn_reason = "the turn analysis was not run for this bundle"
    elif turn["epoch"] is None:
        v.turn_reason = "no turn found: " + str(turn.get("reason") or turn.get("method") or "no reason recorded")
    else:
        v.turn = int(turn["epoch"])
    if v.turn is not None:
        v.facts["turn"] = v.turn
        conf = turn.get("confidence") if turn else None
        v.details["turn"] = f"method: {turn['method']}" + (f"; confidence {conf:.2f}" if conf is not None else "")
    else:
        v.missing["turn"] = v.turn_reason
    if facts.health:
        v.facts["health"] = facts.health
        v.details["health"] = facts.health_reason or ""
    else:
        v.missing["health"] = ("the turn analysis stored no health class" if turn is not None
                               else "the turn analysis was not run for this bundle")
    # Grokking speed: epochs from the turn until test accuracy first reaches 95%.
    grok = facts.grok_epoch
    if v.turn is None:
        v.missing["grok_speed"] = v.turn_reason
    elif grok is not None:
        v.facts["grok_speed"] = grok - v.turn
        v.details["grok_speed"] = f"turn at epoch {v.turn}, test accuracy first >= 95% at epoch {grok}"
    elif acc is not None:
        best = float(np.nanmax(acc.values))
        last = int(acc.epochs[-1])
        v.facts["grok_speed"] = last - v.turn
        v.facts["grok_speed_censored"] = True
        v.details["grok_speed"] = (f"test accuracy never reached 95% (best {100 * best:.1f}%) by epoch {last}: "
                                   "a lower bound")
    else:
        v.missing["grok_speed"] = "no test accuracy series ('test_acc') in this bundle"


def _final_facts(ctx: BuildContext, v: VariantData, facts: RunFacts) -> None:
    for name in ("train_loss", "test_loss", "train_acc", "test_acc"):
        m = facts.metrics.get(name)
        got = (m.final, m.final_epoch) if m is not None and m.final is not None else None
        if got is None:
            have = ctx.has_series(name)
            v.missing[name] = (f"metric series '{name}' holds only NaN/inf" if have
                               else f"no metric series '{name}' in this bundle")
        else:
            v.facts[name] = got[0]
            v.details[name] = f"at epoch {got[1]}"
    if facts.key_frequencies is None:
        v.missing["key_freqs"] = "no Fourier analysis (restricted_loss or fourier_weights) in this bundle"
    else:
        v.facts["key_freqs"] = facts.key_frequencies
        v.details["key_freqs"] = facts.key_frequencies_how or ""
    alarms = src.cusum_alarms(ctx)
    if not alarms and not ctx.has_artifact(src.CUSUM):
        v.missing["alarms"] = "the CUSUM analysis was not run for this bundle"
    else:
        v.facts["alarms"] = len(alarms)
        monitors: dict[str, int] = {}
        for a in alarms:
            monitors[a["monitor"]] = monitors.get(a["monitor"], 0) + 1
        v.details["alarms"] = (", ".join(f"{m}: {n}" for m, n in sorted(monitors.items()))
                               if monitors else "no alarm")


_PR_MATRICES = ("W_E", "W_in", "W_out", "W_U")


def _structure_facts(ctx: BuildContext, v: VariantData) -> None:
    """Minimum participation ratio, cos/sin imbalance, Gini, clustered share, final spectra."""
    prs = {k.removeprefix("pr:"): s for k, s in v.series.items() if k.startswith("pr:")}
    # The matrices whose compression the researchers track (embedding, MLP, unembedding);
    # tiny ones such as W_pos (rank 3) or collapsed attention keys would always win the min.
    tracked = {k: s for k, s in prs.items() if k in _PR_MATRICES}
    prs = tracked or prs
    best = None
    per_matrix = []
    for name, s in prs.items():
        ok = np.nonzero(np.isfinite(s.values))[0]
        if not ok.size:
            continue
        i = ok[np.argmin(s.values[ok])]
        per_matrix.append(f"{name} {s.values[i]:.3g} (epoch {int(s.epochs[i])})")
        if best is None or s.values[i] < best[0]:
            best = (float(s.values[i]), name, int(s.epochs[i]))
    if best is None:
        v.missing["min_pr"] = "the effective_dim analysis was not run for this bundle"
    else:
        v.facts["min_pr"] = best[0]
        v.details["min_pr"] = f"{best[1]} at epoch {best[2]}; per matrix: " + "; ".join(per_matrix)

    # facts that are a series' last finite value: key, series, the analysis behind it, detail
    for key, name, analysis, where in (("gini", "gini:embed", "fourier_weights", "W_E at epoch "),
                                       ("clustered", "clustered", "neuron_freq", "at epoch ")):
        got = _last_finite(v.series.get(name))
        if got is None:
            v.missing[key] = f"the {analysis} analysis was not run for this bundle"
        else:
            v.facts[key] = got[0]
            v.details[key] = f"{where}{got[1]}"

    _imbalance(ctx, v)
    _spectrum(ctx, v)
    _cluster_sizes(ctx, v)


def _imbalance(ctx: BuildContext, v: VariantData) -> None:
    """cos/sin imbalance of W_E's key frequencies at the last analysed epoch: the largest
    max(|cos k|, |sin k|) / min(...) over the key frequencies k (the run's key frequencies
    when known, else W_E's key frequencies at that epoch)."""
    if not ctx.has_artifact(src.FOURIER):
        v.missing["imbalance"] = "the fourier_weights analysis was not run for this bundle"
        return
    mask = _per_epoch(ctx, src.FOURIER, src.FOURIER_KEY_MASK["embed"])
    cos = _per_epoch(ctx, src.FOURIER, ("embed_cos_norms",))
    sin = _per_epoch(ctx, src.FOURIER, ("embed_sin_norms",))
    if cos is not None and sin is not None:
        epochs, c, s = cos[0], np.asarray(cos[1][-1], np.float64), np.asarray(sin[1][-1], np.float64)
    else:
        basis = _per_epoch(ctx, src.FOURIER, src.FOURIER_COMPONENTS["embed"])
        if basis is None:
            v.missing["imbalance"] = "fourier_weights has neither cos/sin norms nor basis norms"
            return
        epochs, row = basis[0], np.asarray(basis[1][-1], dtype=np.float64)
        p = row.size
        k = np.arange(1, p // 2 + 1)
        c = row[2 * k - 1]
        s = np.where(2 * k < p, row[np.minimum(2 * k, p - 1)], np.nan)
    run_keys = v.facts.get("key_freqs")
    if run_keys:  # the run's key frequencies (fixed at the reference epoch), else W_E's at the end
        keys = np.array(sorted(int(k) - 1 for k in run_keys if 1 <= int(k) <= min(c.size, s.size)), dtype=np.int64)
    elif mask is not None:
        keys = np.nonzero(np.asarray(mask[1][-1]).astype(bool))[0]
        keys = keys[keys < min(c.size, s.size)]
    else:
        v.missing["imbalance"] = "no key frequencies: fourier_weights has no key-frequency mask"
        return
    if not keys.size:
        v.missing["imbalance"] = f"no key frequencies in W_E at epoch {int(epochs[-1])}"
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(c[keys], s[keys]) / np.minimum(c[keys], s[keys])
    if not np.isfinite(ratio).any():
        v.missing["imbalance"] = "cos or sin norm 0 or undefined for every key frequency"
        return
    worst = int(np.nanargmax(ratio))
    k = int(keys[worst]) + 1
    strong = "cos" if c[keys[worst]] >= s[keys[worst]] else "sin"
    v.facts["imbalance"] = float(ratio[worst])
    v.details["imbalance"] = (f"k = {k}: cos {c[keys[worst]]:.4g}, sin {s[keys[worst]]:.4g} ({strong} stronger) "
                              f"at epoch {int(epochs[-1])}; key frequencies "
                              + ", ".join(str(int(x) + 1) for x in keys))


def _spectrum(ctx: BuildContext, v: VariantData) -> None:
    got = _per_epoch(ctx, src.FOURIER, src.FOURIER_FREQ["embed"])
    if got is None:
        return
    norms = np.asarray(got[1][-1], dtype=np.float64).ravel()
    mask = _per_epoch(ctx, src.FOURIER, src.FOURIER_KEY_MASK["embed"])
    keys = (np.asarray(mask[1][-1]).astype(bool).ravel() if mask is not None
            else np.zeros(norms.size, dtype=bool))
    if keys.size != norms.size:
        keys = np.zeros(norms.size, dtype=bool)
    v.spectrum = {"freqs": np.asarray(src.frequencies(ctx, src.FOURIER, norms.size)), "norms": norms,
                  "keys": keys, "epoch": int(got[0][-1])}


def _cluster_sizes(ctx: BuildContext, v: VariantData) -> None:
    got = _per_epoch(ctx, src.NEURON_FREQ, ("cluster_sizes",))
    if got is None:
        return
    sizes = np.asarray(got[1][-1], dtype=np.float64).ravel()
    total = None
    dom = _per_epoch(ctx, src.NEURON_FREQ, src.NEURON_CLUSTERED)
    if dom is not None:
        total = int(np.asarray(dom[1][-1]).size)
    v.clusters = {"freqs": np.asarray(src.frequencies(ctx, src.NEURON_FREQ, sizes.size)), "sizes": sizes,
                  "epoch": int(got[0][-1]), "neurons": total}


def _trajectory_facts(ctx: BuildContext, v: VariantData) -> None:
    got = _per_epoch(ctx, src.TRAJECTORY, src.PCA_ARRAYS)
    if got is None or got[1].ndim != 2 or got[1].shape[1] < 3:
        reason = ("the trajectory analysis was not run for this bundle" if not ctx.has_artifact(src.TRAJECTORY)
                  else "the trajectory analysis has no PC1-3 coordinates")
        for key in ("self_intersects", "loop_area", "excursion"):
            v.missing[key] = reason
        return
    epochs, coords = got[0], np.asarray(got[1], dtype=np.float64)
    v.pca = (epochs, coords[:, :3])
    art = ctx.bundle.artifact(src.TRAJECTORY)
    scalars = art.scalars
    points = ctx.optional_summary(src.TRAJECTORY, src.PCA_CROSSING_POINTS)
    if points is not None and points.size % 2 == 0:
        v.pca_cross = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = scalars.get("n_intersections")
    if isinstance(n, (int, float)) and not isinstance(n, bool):
        n = int(n)
        v.facts["self_intersects"] = n
        v.details["self_intersects"] = (f"{n} crossing{'s' if n != 1 else ''} of the PC2/PC3 path in the run's own "
                                        f"PCA basis ({len(epochs)} checkpoints)")
    else:
        v.missing["self_intersects"] = "the trajectory analysis stored no crossing count"
    for key in ("loop_area", "excursion"):
        value = scalars.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            v.facts[key] = float(value)
        elif key in scalars or "path_length" in scalars:
            v.missing[key] = "the PC2/PC3 path has no length"
        else:
            v.missing[key] = (f"stored by trajectory analysis version {art.version}, which predates the loop "
                              "measures: `epochscope analyze` brings it up to date")


def _weights_layout(bundle: Bundle, v: VariantData) -> None:
    """The model tensors' shapes, when the checkpoints hold model weights (for a shared basis)."""
    epochs = bundle.checkpoint_epochs
    if len(epochs) < 2:
        v.weights_reason = "fewer than 2 checkpoints" if epochs else "no checkpoints"
        return
    try:
        group = bundle.checkpoint_group(epochs[0])
        state = group["state"]
        if "model" not in state:
            v.weights_reason = "its checkpoints hold no model weights"
            return
        shapes = [(str(n), tuple(int(s) for s in item.shape)) for n, item in state["model"].items()
                  if hasattr(item, "shape") and item.dtype.kind == "f"]
    except (KeyError, OSError, ValueError) as exc:
        v.weights_reason = f"its checkpoints cannot be read ({exc})"
        return
    if not shapes:
        v.weights_reason = "its checkpoints hold no floating-point model tensors"
        return
    v.layout = shapes


# ----------------------------------------------------------------------------- shared bases

def _stored_bases(bundle: Bundle, v: VariantData) -> None:
    """The shared PCA bases the analysis side stored in this bundle
    (collectors/analysis/shared_basis.py): artifacts `shared_pca.<id>`."""
    for name in bundle.artifact_names:
        if not name.startswith(src.SHARED_PCA_PREFIX):
            continue
        art = bundle.artifact(name)
        try:
            epochs, coords = art.per_epoch("coords")
        except (KeyError, OSError, ValueError):
            continue
        coords = np.asarray(coords, dtype=np.float64)
        if coords.ndim != 2 or coords.shape[1] < 3 or len(epochs) < 2:
            continue
        evr = [float(x) for x in (art.scalars.get("explained_variance_ratio") or [])][:3]
        bid = str(art.scalars.get("basis") or name.removeprefix(src.SHARED_PCA_PREFIX))
        v.bases[bid] = (np.asarray(epochs, dtype=np.int64), coords[:, :3], evr,
                        [str(m) for m in art.scalars.get("members") or []])
        if "crossing_points" in art.summary_names:  # basis version 2 on
            points = np.asarray(art.summary("crossing_points"), dtype=np.float64)
            if points.size % 2 == 0:
                v.bases_cross[bid] = points.reshape(-1, 2)
