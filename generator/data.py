"""Turning a bundle into what the template renders: header facts, chart cards and the page's
JSON (chart specs, events, snap epochs, series for the CSV, the run summary for "Copy as JSON").

Nothing here knows HTML; `render.py` hands the result to the Jinja template.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from epochscope import __version__
from epochscope.archives import Bundle
from epochscope.generator import sources as src
from epochscope.generator.charts import CHARTS, ChartDef, known_charts
from epochscope.generator.context import BuildContext, Unavailable
from epochscope.generator.encode import ArrayStore
from epochscope.generator.events import current_events
from epochscope.generator.facts import RunFacts, run_facts
from epochscope.generator.help import HELP
from epochscope.generator.layout import Layout
from epochscope.generator.packs import applicable_packs
from epochscope.generator.palette import EVENT_COLORS, PALETTE, run_color

__all__ = ["DEFAULT_DATA_BUDGET", "ChartCard", "PageData", "build_page", "default_layout"]

# Bytes of embedded data (arrays + JSON) a report aims to stay under, plotly.js aside. With
# the deflated partial plotly.js (0.54 MB) and the page itself (0.3 MB), a demo run's report
# stays under 3 MB; the detail charts it thins (neuron maps, attention, input maps) keep the
# turn, the first and the last epoch, and say how many epochs they embed.
DEFAULT_DATA_BUDGET = 2_300_000
# Kept back from the detail budget for the JSON and HTML around the arrays.
_RESERVE = 150_000
# What the heavy detail charts share at least (or the whole budget, if smaller), even when the
# other charts alone take the budget (a big run's every-neuron atlas and long series do):
# without it they would keep one epoch each.
_MIN_DETAIL = 1_200_000


@dataclass
class ChartCard:
    """One chart as the template shows it."""

    name: str  # the card's id on the page (a chart name; "<chart>-<key>" for a multi chart's cards)
    title: str
    kind: str
    status: str  # "ok" or "unavailable"
    reason: str = ""
    note: str = ""
    wide: bool = False
    small: bool = False
    subtitle: str = ""
    help: list[tuple[str, str]] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)
    log_toggle: bool = False
    epoch_axis: bool = False
    at_epoch: bool = False
    smooth: bool = False
    reads: tuple[str, ...] = ()  # artifacts a multi chart's card shows (their epochs join the snap list)


@dataclass
class GroupView:
    id: str
    title: str
    description: str
    charts: list[ChartCard]


@dataclass
class PageData:
    run: dict[str, Any]
    groups: list[GroupView]
    page: dict[str, Any]
    store: ArrayStore
    unavailable: list[tuple[str, str]]  # what this run lacks: (section or chart, why), one collapsed line


# Total metric points embedded (all series); beyond it each series is thinned to its share
# (min/max per bucket, so spikes survive), never below _MIN_SERIES_POINTS.
_SERIES_POINTS = 750_000
_MIN_SERIES_POINTS = 5_000


def _series_cap(bundle: Bundle) -> int:
    lengths = [len(bundle.series(n)[0]) for n in bundle.series_names]
    if sum(lengths) <= _SERIES_POINTS:
        return 0
    return max(_MIN_SERIES_POINTS, _SERIES_POINTS // max(1, len(lengths)))


def default_layout(bundle: Bundle) -> Layout:
    """The sections of every pack that applies to `bundle`, in pack order (a leading pack's
    sections first, the generic pack's metrics after them, then the rest)."""
    from epochscope.generator.layout import pack_groups

    packs = applicable_packs(bundle)
    lead = [s for p in packs if p.lead for s in p.sections]
    rest = [s for p in packs if not p.lead for s in p.sections]
    groups = pack_groups(lead + rest)
    return Layout(groups, "default (packs: " + ", ".join(p.name for p in packs) + ")")


def build_page(bundle: Bundle, layout: Layout | None, *, data_budget: int = DEFAULT_DATA_BUDGET,
               store: ArrayStore | None = None, thin_series: bool = True) -> PageData:
    """Build every chart of `layout` (None: the packs' default for this bundle) from `bundle`
    within `data_budget` bytes of data, into `store` (default: a new page ArrayStore; the
    notebook's figures pass one that keeps arrays exact, with `thin_series=False`)."""
    known_charts()
    if layout is None or layout.source == "default":
        layout = default_layout(bundle)
    store = ArrayStore() if store is None else store
    ctx = BuildContext(bundle, store)
    ctx.series_cap = _series_cap(bundle) if thin_series else 0
    built: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    reads: dict[str, set[str]] = {}

    series_table = [{"name": n, **ctx.series_ref(n)} for n in bundle.series_names]

    names = layout.charts
    early = [n for n in names if not CHARTS[n].late]
    light = [n for n in early if not CHARTS[n].heavy]
    heavy = [n for n in early if CHARTS[n].heavy]
    for name in light:
        _build(ctx, CHARTS[name], built, reasons, reads)
    light_bytes = store.total_bytes
    # Heavy detail charts share what is left, each taking its weight's share of the rest
    # (so a chart that turns out unavailable leaves its share to the next).
    for i, name in enumerate(heavy):
        spent = store.total_bytes - light_bytes  # by the heavy charts built so far
        left = max(0, data_budget - _RESERVE - store.total_bytes, min(_MIN_DETAIL, data_budget) - spent)
        weight = sum(CHARTS[n].heavy for n in heavy[i:])
        ctx.budget_bytes = int(left * CHARTS[name].heavy / weight)
        _build(ctx, CHARTS[name], built, reasons, reads)
    for name in names:
        if CHARTS[name].late:
            _build(ctx, CHARTS[name], built, reasons, reads)

    facts = run_facts(bundle, ctx)
    run = _run_facts(ctx, facts)
    events = _events(ctx)
    groups: list[GroupView] = []
    charts: dict[str, dict[str, Any]] = {}
    unavailable: list[tuple[str, str]] = []
    at_epoch_artifacts: set[str] = set()
    snap_extra: list[np.ndarray] = []
    for g in layout.groups:
        cards = []
        lacking = []
        for n in g.charts:
            chart = CHARTS[n]
            for card, entry in _cards(ctx, chart, built, reasons):
                if card.status != "ok":
                    lacking.append((card.title, card.reason))
                    continue
                cards.append(card)
                charts[card.name] = entry
                # A chart whose rows are not indexed by epoch (e.g. batch steps) names the epochs
                # it shows instead; the page snaps to those.
                own = entry["spec"].pop("snapEpochs", None) if isinstance(entry.get("spec"), dict) else None
                if own is not None:
                    snap_extra.append(np.asarray(own, dtype=np.int64))
                    continue
                if card.at_epoch:
                    at_epoch_artifacts |= (reads.get(chart.name, set()) | set(card.reads)
                                           | {a for a in chart.needs if ctx.has_artifact(a)})
        if cards:
            groups.append(GroupView(g.id, g.title, g.description, cards))
            unavailable.extend((f"{g.title}: {t}", r) for t, r in lacking)
        elif lacking:
            why = lacking[0][1] if len({r for _, r in lacking}) == 1 else "; ".join(f"{t}: {r}" for t, r in lacking)
            unavailable.append((g.title, why))
    checkpoints = store.add_int(bundle.checkpoint_epochs) if bundle.checkpoint_epochs else None
    snap, snap_label = _snap_epochs(ctx, sorted(at_epoch_artifacts), snap_extra)
    snap_ref = store.add_int(snap) if len(snap) else None
    specs = {n: c["spec"] for n, c in charts.items()}
    page = {
        "version": __version__,
        "charts": charts,
        "events": events,
        "eventKinds": _event_kinds(events),
        "checkpoints": checkpoints,
        "snap": snap_ref,
        "snapLabel": snap_label,
        "series": series_table,
        "thinned": ctx.series_cap,
        "csvName": f"{_slug(run['name'])}-metrics.csv",
        "limits": _limits(specs),
        "defaults": {"epoch": int(snap[-1]) if len(snap) else (ctx.final_epoch or 0)},
        "absent": [{"what": w, "reason": r} for w, r in unavailable],
        "seriesShown": sorted(ctx.shown_series),
        "palette": list(PALETTE),
        "eventColors": EVENT_COLORS,
        "runColor": run["color"],
        "summary": _summary(ctx, run, facts),
    }
    page["arrays"] = {a.id: a.meta for a in store.arrays.values()}  # last: every array is in
    return PageData(run, groups, page, store, unavailable)


def absent_summary(unavailable: list[tuple[str, str]]) -> str:
    """The collapsed line's text: whole sections by name, partial ones as "N charts of S"."""
    parts: dict[str, int] = {}
    whole: list[str] = []
    for what, _ in unavailable:
        section, sep, _chart = what.partition(": ")
        if sep:
            parts[section] = parts.get(section, 0) + 1
        else:
            whole.append(what)
    items = whole + [f"{n} chart{'s' if n > 1 else ''} of {s}" if n > 1 else f"a chart of {s}" for s, n in parts.items()]
    return ", ".join(items)


def _build(ctx: BuildContext, chart: ChartDef, built: dict, reasons: dict, reads: dict) -> None:
    """Build one chart; a chart that cannot be built says why instead of sinking the report."""
    ctx.reading = (set(), set())
    ctx.reading_tables = set()
    kinds = set(ctx.shown_events)
    try:
        built[chart.name] = chart.build(ctx)
    except Unavailable as exc:
        reasons[chart.name] = str(exc)
        ctx.shown_events = kinds  # what it read is not drawn: generic shows it
    except Exception as exc:  # noqa: BLE001 - an odd artifact must not cost the whole report
        reasons[chart.name] = f"could not be built from this bundle's data ({type(exc).__name__}: {exc})"
        warnings.warn(f"report chart {chart.name!r}: {reasons[chart.name]}", RuntimeWarning, stacklevel=2)
        ctx.shown_events = kinds
    else:
        ctx.shown_series |= ctx.reading[0]
        ctx.shown_artifacts |= ctx.reading[1]
        ctx.shown_tables |= ctx.reading_tables
        reads[chart.name] = set(ctx.reading[1])
    finally:
        ctx.reading = None
        ctx.reading_tables = None


def _cards(ctx: BuildContext, chart: ChartDef, built: dict, reasons: dict) -> list[tuple[ChartCard, dict]]:
    """The cards of one chart (a multi chart has one per item) with their page JSON."""
    if chart.name not in built:
        card = ChartCard(chart.name, chart.title, chart.kind, "unavailable", reason=reasons.get(chart.name, ""))
        return [(card, {})]
    if not chart.multi:
        items = [{"key": None, "title": chart.title, "kind": chart.kind, "spec": built[chart.name],
                  "note": ctx.notes.get(chart.name, "")}]
    else:
        items = built[chart.name]
    out = []
    help_text = HELP[chart.name].sections()
    for item in items:
        name = chart.name if item.get("key") is None else f"{chart.name}-{item['key']}"
        if item.get("unavailable"):
            out.append((ChartCard(name, item["title"], chart.kind, "unavailable", reason=item["unavailable"]), {}))
            continue
        spec = item["spec"]
        kind = item.get("kind", chart.kind)
        follows = tuple(item.get("follows", chart.follows))
        epoch_axis = bool(item.get("epoch_axis", chart.epoch_axis))
        card_help = list(help_text)
        if item.get("about"):
            card_help.append(("This chart", item["about"]))
        card = ChartCard(
            name=name, title=item["title"], kind=kind, status="ok", note=str(item.get("note") or ""),
            wide=bool(item.get("wide", chart.wide)), small=bool(item.get("small", False)),
            subtitle=str(item.get("subtitle") or ""), help=card_help,
            provenance=_provenance(ctx, chart), log_toggle=bool(spec.get("logToggle")),
            epoch_axis=epoch_axis, at_epoch="epoch" in follows and not epoch_axis,
            smooth=bool(spec.get("smooth")), reads=tuple(item.get("reads", ())),
        )
        entry = {"kind": kind, "status": "ok", "epochAxis": epoch_axis, "follows": list(follows),
                 "logToggle": bool(spec.get("logToggle", False)), "logy": bool(spec.get("logy", False)),
                 "smooth": card.smooth, "small": card.small, "spec": spec}
        out.append((card, entry))
    return out


def _provenance(ctx: BuildContext, chart: ChartDef) -> list[str]:
    """One line per analysis the chart reads: its version and parameters."""
    out = []
    for need in chart.needs:
        if need != "metrics" and ctx.has_artifact(need):
            art = ctx.bundle.artifact(need)
            params = ", ".join(f"{k} = {_short(v)}" for k, v in sorted(art.params.items()))
            out.append(f"analysis '{need}' version {art.version}" + (f"; parameters: {params}" if params else ""))
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------- header facts

def _run_facts(ctx: BuildContext, facts: RunFacts) -> dict[str, Any]:
    b = ctx.bundle
    env = b.context.get("environment") or {}
    sessions = b.sessions
    final = {}
    for name in facts.headline:
        m = facts.metrics[name]
        final[name] = {"value": m.final, "epoch": m.final_epoch, "text": _fmt_metric(name, m.final, m.unit),
                       "best": None if m.best is None else _fmt_metric(name, m.best, m.unit),
                       "best_epoch": m.best_epoch, "degraded": m.degraded_text if m.degraded else "",
                       "label": name}
    started = _parse_time(sessions[0].get("started")) if sessions else None
    ended = _parse_time(sessions[-1].get("ended")) if sessions else None
    hardware = [v for v in (env.get("cuda_device"), env.get("device") if env.get("device") != "cpu" else None,
                            env.get("processor") or env.get("machine"),
                            f"{env['cpu_count']} CPU cores" if env.get("cpu_count") else None,
                            f"{env['torch_threads']} torch threads" if env.get("torch_threads") else None) if v]
    throughput = None
    if ctx.has_series("examples_per_sec"):
        v = ctx.series("examples_per_sec")[1]
        v = v[np.isfinite(v)]
        throughput = f"{np.median(v):,.0f} examples/s (median)" if v.size else None
    versions = {k: env[k] for k in ("python", "torch", "numpy", "h5py", "hdf5", "epochscope") if env.get(k)}
    git = env.get("git") or {}
    return {
        "name": b.name,
        "color": run_color(b.name),
        "status": b.status,
        "file": b.path.name,
        "final": final,
        "turn": facts.turn,
        "health": facts.health,
        "health_reason": facts.health_reason,
        "key_frequencies": facts.key_frequencies,
        "key_frequencies_how": facts.key_frequencies_how,
        "started": sessions[0].get("started") if sessions else env.get("started"),
        "ended": sessions[-1].get("ended") if sessions else None,
        "duration": _fmt_duration((ended - started).total_seconds()) if started and ended else None,
        "sessions": len(sessions),
        "hardware": ", ".join(str(h) for h in hardware) or None,
        "platform": env.get("platform"),
        "throughput": throughput,
        "host": env.get("host"),
        "config": b.config,
        "seeds": b.context.get("seeds") or {},
        "versions": versions,
        "git": {"commit": git.get("commit"), "dirty": git.get("dirty")} if git else None,
        "argv": " ".join(str(a) for a in env.get("argv", [])) or None,
        "checkpoints": len(b.checkpoint_epochs),
        "epochs_logged": ctx.final_epoch,
        "series_count": len(b.series_names),
        "tables_count": len(b.table_names),
        "events_count": len(current_events(b)),
        "analyses": [{"name": n, "version": b.artifact(n).version, "epochs": len(b.artifact(n).epochs)}
                     for n in b.artifact_names],
        "problems": list(b.problems),
        "epochscope": __version__,
    }


def _fmt_metric(name: str, value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if "acc" in name.lower() and not unit and -0.001 <= value <= 1.001:
        return f"{100 * value:.2f}%"
    text = f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
    return f"{text} {unit}" if unit else text


def _fmt_duration(seconds: float) -> str:
    if seconds < 0 or not math.isfinite(seconds):
        return "?"
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {s:02d} s" if m else f"{s} s")


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None


def _summary(ctx: BuildContext, run: dict[str, Any], facts: RunFacts) -> dict[str, Any]:
    """What "Copy as JSON" copies: the run's final metrics and every analysis' summary."""
    analyses = {}
    for name in ctx.bundle.artifact_names:
        art = ctx.bundle.artifact(name)
        analyses[name] = {"version": art.version, "params": art.params, "scalars": art.scalars,
                          "epochs": [int(art.epochs[0]), int(art.epochs[-1])] if len(art.epochs) else []}
    return {
        "run": run["name"], "status": run["status"], "file": run["file"],
        "final": {k: v["value"] for k, v in run["final"].items()},
        "final_epoch": {k: v["epoch"] for k, v in run["final"].items()},
        "turn": run["turn"], "health": run["health"], "health_reason": run["health_reason"],
        "key_frequencies": run["key_frequencies"],
        "metrics": {n: {k: v for k, v in vars(m).items() if k != "name"} for n, m in facts.metrics.items()},
        "metric_info": ctx.bundle.metric_info,
        "tables": ctx.bundle.table_names,
        "started": run["started"], "ended": run["ended"], "sessions": run["sessions"],
        "checkpoints": run["checkpoints"], "config": run["config"], "seeds": run["seeds"],
        "environment": ctx.bundle.context.get("environment") or {},
        "analyses": analyses,
        # The events travel once, in the page's own list; "Copy as JSON" adds them.
    }


# ------------------------------------------------------------------------- events & epochs

def _events(ctx: BuildContext) -> list[dict[str, Any]]:
    """Every event to draw on epoch axes: the bundle's events (analyses write theirs there:
    the turn, CUSUM alarms), plus the turn and alarms of analyses that did not."""
    out = []
    for e in current_events(ctx.bundle):
        payload = e.get("payload") or {}
        detail = ", ".join(f"{k}: {_short(v, 40)}" for k, v in list(payload.items())[:6]) if isinstance(payload, dict) else ""
        out.append({"epoch": int(e["epoch"]), "kind": str(e["kind"]), "message": _short(e.get("message", ""), 300),
                    "detail": detail})
    seen = {(e["kind"], e["epoch"]) for e in out}
    turn = src.turn(ctx)
    if turn and turn["epoch"] is not None and ("turn", turn["epoch"]) not in seen:
        out.append({"epoch": turn["epoch"], "kind": "turn", "message": f"the turn ({turn['method']})", "detail": ""})
    for a in src.cusum_alarms(ctx):
        if ("cusum_alarm", a["epoch"]) not in seen:
            out.append({"epoch": a["epoch"], "kind": "cusum_alarm", "message": f"CUSUM alarm on {a['monitor']}",
                        "detail": ""})
    return sorted(out, key=lambda e: e["epoch"])


# Event kinds with more events than this start hidden (e.g. hundreds of CUSUM alarms on a
# noisy throughput series would bury every chart); the sidebar lists them to switch on.
MAX_SHOWN_EVENTS = 12


def _event_kinds(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for e in events:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    return [{"kind": k, "count": n, "hidden": n > MAX_SHOWN_EVENTS} for k, n in counts.items()]


def _snap_epochs(ctx: BuildContext, artifacts: list[str], extra: list[np.ndarray] = ()) -> tuple[np.ndarray, str]:
    """The epochs the global epoch snaps to: the epochs of the analyses behind the page's
    at-epoch charts (per-checkpoint results) and the epochs such charts name themselves
    (`snapEpochs` in a spec); else the checkpoints; else every logged epoch."""
    eps = [np.asarray(ctx.bundle.artifact(a).epochs) for a in artifacts if ctx.has_artifact(a)]
    eps = [e for e in eps if e.size]
    own = [e for e in extra if e.size]
    if eps or own:
        label = "analysed checkpoints" if eps else "logged epochs"
        return np.unique(np.concatenate(eps + own)).astype(np.int64), label
    if ctx.bundle.checkpoint_epochs:
        return np.asarray(ctx.bundle.checkpoint_epochs, dtype=np.int64), "checkpoints"
    # Series usually share their epochs: each distinct epoch array counts once.
    distinct: dict[tuple, np.ndarray] = {}
    for n in ctx.bundle.series_names:
        e = ctx.series(n)[0]
        if e.size:
            distinct.setdefault((e.size, int(e[0]), int(e[-1]), hash(e.tobytes())), e)
    if distinct:
        arrays = list(distinct.values())
        merged = arrays[0] if len(arrays) == 1 else np.unique(np.concatenate(arrays))
        return merged.astype(np.int64), "logged epochs"
    return np.zeros(0, dtype=np.int64), "epochs"


def _limits(specs: dict) -> dict[str, int]:
    """How many neurons and heads the neuron/head controls range over (0: no control);
    builders declare them as "neurons"/"heads" in their specs."""
    return {"neuron": max([int(s.get("neurons", 0)) for s in specs.values()] + [0]),
            "head": max([int(s.get("heads", 0)) for s in specs.values()] + [0])}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"
