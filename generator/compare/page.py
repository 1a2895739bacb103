"""`render_compare`: several bundles (variants of one experiment) -> one self-contained HTML
comparison page.

Comparing variants is how the anomalies in these experiments are found, so the page starts
from a summary table (one row per variant, sortable, strongly deviating values highlighted
by a robust z-score, every row linking to that run's report) and drills down: overlays of
every time series the variants share (x axis switchable between the epoch and the distance
from each run's turn), the parameter trajectories in one shared PCA basis where the
architectures allow it, small multiples of per-variant detail, and for exactly two variants
a difference view. What cannot be compared is listed on the page with the reason, never
dropped silently.

The page is built like the run report (generator/render.py): the same Jinja environment,
plotly.js inlined unless `shared_assets`, the same CSP with script hashes, every user string
escaped, no network access, and the same bundles always give the same bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from epochscope import __version__
from epochscope.errors import EpochscopeError
from epochscope.generator.charts import ChartDef, get_chart
from epochscope.generator.compare import stats
from epochscope.generator.compare.charts import (
    GRID_LIMIT,
    MAX_POINTS,
    MIN_POINTS,
    SERIES_BUDGET,
    Absent,
    ChartInput,
)
from epochscope.generator.compare.data import VariantData, read_variants
from epochscope.generator.compare.stats import Z_LIMIT, robust_z
from epochscope.generator.compare.table import Cell, Column, Row, metric_columns
from epochscope.generator.context import Unavailable
from epochscope.generator.encode import ArrayStore, script_json
from epochscope.generator.help import COMPARE_HELP
from epochscope.generator.html import (
    CSP_SLOT,
    PACKED_PLOTLY,
    csp,
    environment,
    make_parent,
    plotly_js,
    plotly_packed,
    safe_href,
    write_atomic,
    write_shared_plotly,
)
from epochscope.generator.palette import assign_colors
from epochscope.generator.render import nav_links

__all__ = ["Comparison", "build_comparison", "name_list", "render_compare"]

# A variant highlighted in at least this many columns is drawn with thicker lines.
STANDS_OUT = 3
# Config keys shown as table columns when they differ between variants, in this order first.
_CONFIG_ORDER = ("p", "model_seed", "data_seed", "seed", "d_model", "d_mlp", "n_heads", "n_layers", "lr",
                 "weight_decay", "train_frac", "epochs")
_MAX_CONFIG_COLUMNS = 8
_SIZE_KEYS = ("d_model", "d_mlp", "n_heads", "n_layers", "d_head")


@dataclass
class Card:
    """One chart as the template shows it."""

    name: str
    title: str
    kind: str
    status: str
    reason: str = ""
    wide: bool = False
    help: list[tuple[str, str]] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    log_toggle: bool = False
    alignable: bool = False
    note: str = ""


@dataclass
class Group:
    id: str
    title: str
    description: str
    cards: list[Card]


@dataclass
class Comparison:
    """Everything the comparison page shows (see `build_comparison`)."""

    variants: list[VariantData]
    labels: list[str]
    columns: list[Column]
    config_keys: list[str]  # the differing keys shown as table columns
    rows: list[Row]
    groups: list[Group]  # the page's chart sections
    notes: list[tuple[str, str]]  # (what cannot be compared, why)
    configs: list[tuple[str, list[str], bool]]  # (key, value per variant, differs)
    page: dict[str, Any]
    store: ArrayStore
    damage: list[str] = field(default_factory=list)  # damage met with allow_damaged (banner)
    keys: list[str] = field(default_factory=list)  # every config key that differs between runs
    seed_keys: list[str] = field(default_factory=list)  # the differing keys collapsed as seeds
    group_by: list[str] = field(default_factory=list)  # the default grouping (differing, not seeds)
    run_groups: list[stats.RunGroup] = field(default_factory=list)  # groups of the default grouping
    metrics: list[str] = field(default_factory=list)  # headline metrics shown in the table
    shared_config: list[tuple[str, str]] = field(default_factory=list)  # keys every run has alike

    def column(self, key: str) -> list[Cell]:
        """The cells of column `key`, one per variant (tests and scripts)."""
        i = [c.key for c in self.columns].index(key)
        return [r.cells[i] for r in self.rows]


# ------------------------------------------------------------------------------ entry points

def render_compare(bundles: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                   shared_assets: str | os.PathLike | None = None, nav: list[tuple[str, str]] | None = None,
                   links: dict[str, str] | None = None, plotly: str = "partial",
                   allow_damaged: bool = False, seed_keys: Sequence[str] = (),
                   reports: str | os.PathLike | None = None) -> Path:
    """Compare the runs in `bundles` (two or more bundle paths) on one HTML page at `output`.

    `output`: the HTML file (an existing directory: "compare.html" in it); missing parent
    directories are created. `shared_assets`: a directory that receives plotly.js once,
    loaded by a relative path instead of being inlined. `nav`: (label, href) links shown at the
    top. `links`: {str(bundle path): href of that run's report} for the table's and the
    curves' drill-down. `plotly`: "partial" (vendored, the trace types the page uses) or
    "full" (plotly package). `seed_keys`: config keys that are seeds besides those whose name
    contains "seed" (collapsed into a group's band instead of splitting it). `reports`: a
    directory holding run reports as `epochscope report` names them (<run name>.html); runs
    whose report is there get a link (relative to the page) unless `links` gives one.
    A damaged bundle raises DamagedBundleError; with `allow_damaged` its intact parts are
    compared and a banner lists the damage.
    Raises EpochscopeError for fewer than two bundles, a bundle path that does not exist,
    fewer than two readable bundles, or an output that cannot be written.
    """
    out = Path(output)
    if out.is_dir():
        out = out / "compare.html"
    plotly_js(plotly)  # an unknown plotly bundle fails before any bundle is read
    cmp = build_comparison(bundles, links=links, allow_damaged=allow_damaged, seed_keys=seed_keys,
                           reports=(Path(reports), out.parent) if reports is not None else None)
    make_parent(out)
    plotly_src = (write_shared_plotly(Path(shared_assets), out.parent, plotly)
                  if shared_assets is not None else None)
    html = environment().get_template("compare.html.j2").render(
        cmp=cmp,
        title=_title(cmp),
        page_json=Markup(script_json(cmp.page)),
        arrays=list(cmp.store.arrays.values()),
        plotly_js=None if plotly_src else Markup(plotly_packed(plotly)),
        plotly_enc=PACKED_PLOTLY,
        plotly_src=plotly_src,
        version=__version__,
        nav=nav_links(nav),
        zlimit=Z_LIMIT,
        min_flag=stats.MIN_FLAG_VALUES,
        cmp_help_summary=COMPARE_HELP["summary"].sections(),
        cmp_help_variance=COMPARE_HELP["seed_variance"].sections(),
        stands_out=STANDS_OUT,
        damage=cmp.damage,
        grid_limit=GRID_LIMIT,
    )
    html = html.replace(CSP_SLOT, csp(html, external_scripts=plotly_src is not None), 1)
    write_atomic(out, html)
    return out


def build_comparison(bundles: Sequence[str | os.PathLike], *, links: dict[str, str] | None = None,
                     allow_damaged: bool = False, seed_keys: Sequence[str] = (),
                     reports: tuple[Path, Path] | None = None) -> Comparison:
    """Read the bundles and build the page's content (table, charts, notes), without HTML.
    `reports`: (directory of run reports, directory of the page) to link reports found there."""
    paths = [Path(b) for b in bundles]
    if len(paths) == 1:
        raise EpochscopeError("comparing one bundle: use `epochscope report`")
    if not paths:
        raise EpochscopeError("nothing to compare: give two or more bundles")
    notes: list[tuple[str, str]] = []
    seen: dict[Path, Path] = {}
    unique: list[Path] = []
    twice: list[str] = []
    for p in paths:
        if not p.exists():
            raise EpochscopeError(f"no such bundle: {p}")
        key = p.resolve()
        if key in seen:
            twice.append(str(p))
            continue
        seen[key] = p
        unique.append(p)
    if twice:
        notes.append(("Given twice: " + name_list(twice), "the same bundle more than once: compared once"))
    if len(unique) == 1:
        raise EpochscopeError("comparing one bundle: use `epochscope report`")
    variants: list[VariantData] = []
    damage: list[str] = []
    unreadable: list[tuple[str, str]] = []
    for p, (v, found, error) in zip(unique, read_variants(unique, allow_damaged=allow_damaged), strict=True):
        if v is None:
            unreadable.append((str(p), str(error)))
        else:
            variants.append(v)
            damage += found
    for path, why in unreadable[:5]:
        notes.append((path, f"could not be read, left out of every chart and the table ({why})"))
    if len(unreadable) > 5:
        notes.append((f"{len(unreadable) - 5} more bundles", "could not be read either: "
                      + name_list([p for p, _ in unreadable[5:]])))
    if len(variants) < 2:
        raise EpochscopeError(f"fewer than two readable bundles among {len(unique)}: nothing to compare")
    labels = _labels(variants)
    store = ArrayStore()
    shared, shared_reason = _shared_bases(variants, labels, notes)
    configs = [v.config for v in variants]
    keys = _ordered(stats.differing_keys(configs))
    declared = [str(k) for k in seed_keys]
    absent = [k for k in declared if all(k not in c for c in configs)]
    if absent:
        notes.append(("Declared seed keys " + ", ".join(f"'{k}'" for k in absent),
                      "no run's configuration has them"))
    seeds = [k for k in keys if stats.is_seed_key(k, declared)]
    group_by = [k for k in keys if k not in seeds]
    run_groups = stats.group_runs(configs, group_by)
    config_keys = (group_by + seeds)[:_MAX_CONFIG_COLUMNS]
    _, config_rows = _configs(variants)
    metric_names, metric_cols = metric_columns(variants)
    pack_cols = [c for c in _pack_columns() if c.key not in metric_names
                 and (c.key != "shared_crossings" or shared) and any(c.key in v.facts for v in variants)]
    columns = metric_cols + pack_cols
    focus = [_focus(v, metric_names) for v in variants]
    hrefs = _hrefs(variants, {**(_report_links(variants, *reports) if reports else {}), **(links or {})})
    rows = _rows(variants, labels, [_at(h, f) for h, f in zip(hrefs, focus, strict=True)], columns, config_keys)
    emph = [r.flags >= STANDS_OUT for r in rows]
    inp = ChartInput(variants, labels, store, shared, shared_reason, points=_points(variants))
    groups, charts = _charts(inp)
    colors = assign_colors([v.name for v in variants])
    _notes(variants, labels, notes, run_groups, group_by)
    page = {
        "version": __version__,
        "variants": [{"label": labels[i], "color": colors[i], "turn": v.turn, "turnReason": v.turn_reason,
                      "emph": emph[i], "href": hrefs[i], "focus": focus[i],
                      "cfg": [stats.config_text(v.config.get(k)) for k in keys]} for i, v in enumerate(variants)],
        "keys": keys,
        "seedKeys": seeds,
        "groupBy": group_by,
        "charts": charts,
        "columns": ["variant"] + [f"cfg:{k}" for k in config_keys] + [c.key for c in columns],
        "table": {"cfg": config_keys, "cols": [{"key": c.key, "label": c.label, "title": c.title, "agg": c.agg}
                                               for c in columns],
                  "values": {c.key: [_number(v.facts.get(c.key)) if c.agg else None for v in variants]
                             for c in columns}},
        "metrics": [_metric_page(name, variants) for name in metric_names],
        "minFlag": stats.MIN_FLAG_VALUES,
        "gridLimit": GRID_LIMIT,
    }
    page["arrays"] = {a.id: a.meta for a in store.arrays.values()}
    shared_config = [(k, values[0]) for k, values, differs in config_rows if not differs and k != "name"]
    return Comparison(variants, labels, columns, config_keys, rows, groups, notes, config_rows, page, store, damage,
                      keys=keys, seed_keys=seeds, group_by=group_by, run_groups=run_groups, metrics=metric_names,
                      shared_config=shared_config)


# ------------------------------------------------------------------------------ pieces

def name_list(names: Sequence[str], limit: int = 5) -> str:
    """Up to `limit` names, then how many more: never a sentence of 100 names."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def _pack_columns() -> list[Column]:
    from epochscope.generator.packs import load_packs

    return [c for pack in load_packs() for c in pack.compare_columns]


def _ordered(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: (_CONFIG_ORDER.index(k) if k in _CONFIG_ORDER else len(_CONFIG_ORDER), k))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def _focus(v: VariantData, metrics: list[str]) -> int | None:
    """The epoch a drill-down opens the run's report at: its turn, else the best epoch of its
    first headline metric that has one."""
    if v.turn is not None:
        return int(v.turn)
    for name in metrics:
        m = v.run.metrics.get(name) if v.run is not None else None
        if m is not None and m.best_epoch is not None:
            return int(m.best_epoch)
    return None


def _at(href: str | None, epoch: int | None) -> str | None:
    return href if href is None or epoch is None else f"{href}#epoch={epoch}"


def _metric_page(name: str, variants: list[VariantData]) -> dict[str, Any]:
    """One headline metric's per-run final and best values (the page's group statistics)."""
    ms = [v.run.metrics.get(name) if v.run is not None else None for v in variants]
    direction = next((m.direction for m in ms if m is not None and m.direction), None)
    return {"name": name, "direction": direction,
            "final": [_number(m.final) if m else None for m in ms],
            "best": [_number(m.best) if m else None for m in ms],
            "bestEpoch": [m.best_epoch if m else None for m in ms]}


def _points(variants: list[VariantData]) -> int:
    """Points per embedded series: MAX_POINTS, fewer when many series would pass the budget."""
    count = sum(len(v.series) for v in variants)
    return int(max(MIN_POINTS, min(MAX_POINTS, SERIES_BUDGET // max(1, count * 6))))


def _title(cmp: Comparison) -> str:
    names = cmp.labels
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"{len(names)} runs: {shown}"


def _labels(variants: list[VariantData]) -> list[str]:
    """Display names: the run names, made unique with the file name (then a number)."""
    counts: dict[str, int] = {}
    for v in variants:
        counts[v.name] = counts.get(v.name, 0) + 1
    out: list[str] = []
    taken: set[str] = set()
    for v in variants:
        label = v.name if counts[v.name] == 1 else f"{v.name} ({v.path.name})"
        n = 2
        base = label
        while label in taken:
            label, n = f"{base} #{n}", n + 1
        out.append(label)
        taken.add(label)
    return out


def _report_links(variants: list[VariantData], folder: Path, page_dir: Path) -> dict[str, str]:
    """Links to the runs' reports that exist in `folder` under the name `epochscope report`
    gives them, relative to the page's directory."""
    from epochscope.generator.render import report_filename

    out = {}
    for v in variants:
        target = folder / report_filename(v.name)
        if target.is_file():
            out[str(v.path)] = Path(os.path.relpath(target, page_dir)).as_posix()
    return out


def _hrefs(variants: list[VariantData], links: dict[str, str]) -> list[str | None]:
    resolved = {}
    for key, href in links.items():
        try:
            resolved[str(Path(key).resolve())] = href
        except (OSError, ValueError):
            continue
    out = []
    for v in variants:
        href = links.get(str(v.path))
        if href is None:
            href = resolved.get(str(v.path.resolve()))
        out.append(safe_href(href) if href is not None else None)
    return out


def _configs(variants: list[VariantData]) -> tuple[list[str], list[tuple[str, list[str], bool]]]:
    """The config keys that differ between variants and the whole config."""
    keys = sorted({k for v in variants for k in v.config})
    rows = []
    differ = []
    for k in keys:
        values = ["–" if k not in v.config else _short(v.config[k]) for v in variants]
        d = len(set(values)) > 1
        rows.append((k, values, d))
        if d and k != "name":
            differ.append(k)
    return _ordered(differ), rows


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rows(variants: list[VariantData], labels: list[str], hrefs: list[str | None], columns: list[Column],
          config_keys: list[str]) -> list[Row]:
    colors = assign_colors([v.name for v in variants])
    rows = [Row(i, labels[i], hrefs[i], colors[i], [], []) for i in range(len(variants))]
    for row, v in zip(rows, variants, strict=True):
        for k in config_keys:
            value = v.config.get(k)
            if value is None:
                row.config.append(Cell("–", None, f"'{k}' is not in this run's configuration", missing=True))
            else:
                sort = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _short(value)
                row.config.append(Cell(_short(value), sort))
    for col in columns:
        values = [_zvalue(col, v) for v in variants]
        zs = robust_z(values, log=col.scale == "log", floor=col.floor, rel_floor=col.rel_floor) \
            if col.scale else [None] * len(variants)
        for row, v, z in zip(rows, variants, zs, strict=True):
            row.cells.append(_cell(col, v, z))
    for row in rows:
        row.flags = sum(c.flag for c in row.cells)
    return rows


def _zvalue(col: Column, v: VariantData) -> float | None:
    value = v.facts.get(col.key)
    if value is None or col.scale is None:
        return None
    if col.binary:
        return 1.0 if value > 0 else 0.0
    return float(value)


def _cell(col: Column, v: VariantData, z: float | None) -> Cell:
    if col.key not in v.facts:
        return Cell("–", None, v.missing.get(col.key, "not available for this run"), missing=True)
    value = v.facts[col.key]
    detail = v.details.get(col.key, "")
    if col.key == "key_freqs":
        text = ", ".join(str(k) for k in value) if value else "none"
        return Cell(text, float(len(value)), detail)
    if isinstance(value, str):
        return Cell(value, value, detail)
    text = col.fmt(value)
    if col.key == "grok_speed" and v.facts.get("grok_speed_censored"):
        text = "> " + text
    flag = z is not None and abs(z) > Z_LIMIT
    tip = detail
    if z is not None:
        tip = (tip + "; " if tip else "") + f"robust z = {z:+.1f}" + (" (log10)" if col.scale == "log" else "")
    elif col.scale is not None:
        tip = (tip + "; " if tip else "") + (f"not scored: fewer than {stats.MIN_FLAG_VALUES} runs have this "
                                             "value, too few to call one an outlier")
    return Cell(text, float(value), tip, z=z, flag=flag)


# ------------------------------------------------------------------------------ shared basis

def _describe_layout(layout: list[tuple[str, tuple[int, ...]]], other: list[tuple[str, tuple[int, ...]]]) -> str:
    """The tensors whose shapes differ between two layouts, briefly."""
    a, b = dict(layout), dict(other)
    diffs = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            fa = "×".join(map(str, a[name])) if name in a else "absent"
            fb = "×".join(map(str, b[name])) if name in b else "absent"
            diffs.append(f"{name} {fa} vs {fb}")
    return ", ".join(diffs[:3]) + (f" and {len(diffs) - 3} more" if len(diffs) > 3 else "")


def _shared_bases(variants: list[VariantData], labels: list[str],
                  notes: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], str]:
    """The shared PCA bases stored in the variants' bundles (the analysis side fits them:
    collectors/analysis/shared_basis.py, run by `epochscope compare` and `epochscope build`),
    each variant in the basis that covers most of this page's variants; notes for the
    variants that are in none. Adds each member's crossings in its shared basis to its facts."""
    by_layout: dict[tuple, list[int]] = {}
    for i, v in enumerate(variants):
        if v.layout is not None:
            by_layout.setdefault(tuple(v.layout), []).append(i)
    no_weights = [i for i, v in enumerate(variants) if v.layout is None]
    layout_groups = sorted(by_layout.values(), key=lambda g: (-len(g), g[0]))
    if no_weights and any(v.pca is not None for v in variants):
        why = sorted({variants[i].weights_reason for i in no_weights})
        notes.append(("Shared PCA basis: " + name_list([labels[i] for i in no_weights]),
                      "no model weights to project (" + "; ".join(why) + "): their trajectories are shown only "
                      "in their own PCA basis"))
    big = layout_groups[0] if layout_groups else []
    for g in layout_groups:
        if len(g) == 1:
            i = g[0]
            ref = big[0] if len(big) > 1 else None
            detail = (f" ({_describe_layout(variants[i].layout, variants[ref].layout)} in {labels[ref]})"
                      if ref is not None else "")
            notes.append((f"Shared PCA basis: {labels[i]}",
                          f"its parameter shapes match no other variant's{detail}: only variants with identical "
                          "parameter shapes can share a basis"))
        elif g is not big and len(big) > 1:
            notes.append(("Shared PCA basis: " + name_list([labels[i] for i in g]),
                          f"parameter shapes differ from {labels[big[0]]}'s ({_describe_layout(variants[g[0]].layout, variants[big[0]].layout)}): "
                          "these variants share a basis of their own"))
    # Stored bases, the one covering most variants first; a variant joins one basis only.
    cover: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        for bid in v.bases:
            cover.setdefault(bid, []).append(i)
    placed: set[int] = set()
    shared: list[dict[str, Any]] = []
    for bid, idx in sorted(cover.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        members = [i for i in idx if i not in placed]
        if len(members) < 2:
            continue
        runs = []
        for i in members:
            epochs, coords, evr, _ = variants[i].bases[bid]
            points = variants[i].bases_cross.get(bid)
            runs.append((i, epochs, coords, points))
            others = len(variants[i].bases[bid][3]) - 1
            if points is None:
                variants[i].missing["shared_crossings"] = ("the shared basis was stored by an earlier version, "
                                                           "without its crossings: `epochscope compare` stores it again")
                continue
            variants[i].facts["shared_crossings"] = len(points)
            variants[i].details["shared_crossings"] = (f"in the basis shared with {others} other run"
                                                       f"{'s' if others != 1 else ''} ({len(epochs)} checkpoints)")
        placed.update(members)
        shared.append({"members": members, "runs": runs, "evr": variants[members[0]].bases[bid][2]})
    unplaced = [i for g in layout_groups if len(g) > 1 for i in g if i not in placed]
    if unplaced:
        notes.append(("Shared PCA basis: " + name_list([labels[i] for i in unplaced]),
                      "no shared basis stored in their bundles: `epochscope compare` (with the analysis extras, "
                      "torch) fits one and stores it"))
    reason = ""
    if not shared:
        reason = ("no shared PCA basis is stored in these bundles (`epochscope compare` fits and stores one)"
                  if any(len(g) > 1 for g in layout_groups) else
                  "no two variants have checkpoints with model weights of identical shapes"
                  if by_layout else "no variant has checkpoints with model weights")
    for v in variants:
        if "shared_crossings" not in v.facts and "shared_crossings" not in v.missing:
            v.missing["shared_crossings"] = ("not in a shared basis: " + (
                v.weights_reason if v.layout is None else
                "no other variant has its parameter shapes" if not any(v.layout == o.layout for o in variants if o is not v)
                else "none stored in its bundle"))
    return shared, reason


# ------------------------------------------------------------------------------ charts

def _charts(inp: ChartInput) -> tuple[list[Group], dict[str, Any]]:
    groups: list[Group] = []
    page: dict[str, Any] = {}
    for section in compare_sections(inp.variants):
        cards = []
        for chart in (get_chart(n, "compare") for n in section.charts):
            if chart.name == "difference" and len(inp.variants) != 2:
                continue
            analyses = [n for n in chart.needs if n not in ("metrics", "artifacts")]
            if analyses and not any(a in v.analyses for v in inp.variants for a in analyses):
                continue  # no run has the analysis at all: said once in "Not comparable"
            card, spec = _build(inp, chart)
            if card.status == "absent":
                continue
            cards.append(card)
            page[chart.name] = {"kind": chart.kind, "status": card.status, "spec": spec,
                                "alignable": chart.alignable,
                                "logToggle": bool(spec and spec.get("logToggle")),
                                "logy": bool(spec and spec.get("logy"))}
        if cards:
            groups.append(Group(section.id, section.title, section.description, cards))
    return groups, page


def compare_sections(variants: list | None = None) -> list:
    """The comparison page's sections: every pack's (those whose `compare_applies` accepts
    `variants`, when given), in pack order (one layout mechanism with the run report's, see
    generator/packs/)."""
    from epochscope.generator.packs import load_packs

    return [s for pack in load_packs() if variants is None or pack.compare_applies(variants)
            for s in pack.compare_sections]


def _build(inp: ChartInput, chart: ChartDef) -> tuple[Card, dict[str, Any] | None]:
    title = chart.title
    if chart.name == "difference" and len(inp.labels) == 2:
        title = f"Difference: {inp.labels[1]} − {inp.labels[0]}"
    card = Card(chart.name, title, chart.kind, "ok", wide=chart.wide, help=COMPARE_HELP[chart.name].sections(),
                alignable=chart.alignable)
    try:
        spec = chart.build(inp)
    except Absent:
        card.status = "absent"
        return card, None
    except Unavailable as exc:
        card.status, card.reason = "unavailable", str(exc)
        return card, None
    card.options = [str(o["label"]) for o in spec.get("options", [])]
    card.log_toggle = bool(spec.get("logToggle"))
    notes = []
    if spec.get("legend"):
        notes.append(str(spec["legend"]))
    if spec.get("missing"):
        notes.append(f"Not drawn (no data): {spec['missing']}.")
    card.note = " ".join(notes)
    return card, spec


# ------------------------------------------------------------------------------ not comparable

def _notes(variants: list[VariantData], labels: list[str], notes: list[tuple[str, str]],
           run_groups: list[stats.RunGroup], group_by: list[str]) -> None:
    """What cannot be compared, and why (appended to `notes`): groups and counts, never a
    sentence of every name."""
    groups = [g for g in run_groups if len(g.members) > 1]

    def names(idx) -> str:
        idx = list(idx)
        if len(idx) == len(variants) and len(idx) > 5:
            return f"all {len(idx)} runs"
        whole = [g for g in run_groups if set(g.members) <= set(idx)]
        if group_by and len(idx) > 5 and sum(len(g.members) for g in whole) == len(idx) and len(whole) <= 6:
            return "; ".join(f"{g.label} ({len(g.members)} runs)" for g in whole)
        return name_list([labels[i] for i in idx]) + (f" ({len(idx)} runs)" if len(idx) > 5 else "")

    singles = [g for g in run_groups if len(g.members) == 1]
    if group_by and singles and groups:
        notes.append((f"Groups of one run: {len(singles)} of {len(run_groups)}",
                      name_list([g.label for g in singles]) + ": no band and no spread (one run, nothing to "
                      "spread); drawn as the run's own line"))
    elif group_by and len(singles) == len(run_groups):
        notes.append(("Groups", f"every run is a group of its own by {', '.join(group_by)}: no bands; group by "
                      "fewer keys at the top to pool runs"))
    for k in group_by:
        lacking = [i for i, v in enumerate(variants) if k not in v.config]
        if lacking:
            notes.append((f"Config key '{k}': " + names(lacking),
                          f"their configuration lacks '{k}': grouped under '{k}={stats.MISSING}'"))
    kinds: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        kinds.setdefault(v.experiment, []).append(i)
    if len(kinds) > 1:
        notes.append(("Different experiments", "; ".join(f"{k}: {names(idx)}" for k, idx in kinds.items())
                      + ": compared on the series and values they share, each experiment's own charts and "
                      "columns only for its runs"))
    no_turn = [i for i, v in enumerate(variants) if v.turn is None]
    if no_turn and len(no_turn) == len(variants) and any(a == "turn" for v in variants for a in v.analyses):
        notes.append(("Relative to the turn", "no run has a turn: the curves are drawn on the epoch axis only"))
    elif no_turn and len(no_turn) < len(variants):
        reasons: dict[str, list[int]] = {}
        for i in no_turn:
            reasons.setdefault(variants[i].turn_reason, []).append(i)
        why = "; ".join(f"{r} ({names(idx)})" if len(reasons) > 1 else r for r, idx in reasons.items())
        notes.append(("Relative to the turn: " + names(no_turn),
                      f"no turn, so they cannot be aligned on it ({why}); in the relative view they are listed "
                      "under each chart, and drawn only on the epoch axis"))
    not_complete = [i for i, v in enumerate(variants) if v.status != "complete"]
    if not_complete:
        notes.append(("Final values: " + names(not_complete),
                      "the run is not complete (" + ", ".join(sorted({variants[i].status for i in not_complete}))
                      + "): its final values are from its last logged epoch"))
    finals = {i: v.final_epoch for i, v in enumerate(variants) if v.final_epoch}
    if finals and max(finals.values()) > 1.1 * min(finals.values()):
        by: dict[int, list[int]] = {}
        for i, e in finals.items():
            by.setdefault(e, []).append(i)
        parts = [f"{e}: {names(idx)}" for e, idx in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
        more = f"; {len(parts) - 4} more last epochs" if len(parts) > 4 else ""
        notes.append(("Final values", "taken at each run's last epoch, which differs (" + "; ".join(parts[:4])
                      + more + ")"))
    ps: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        if v.config.get("p") is not None:
            ps.setdefault(str(v.config["p"]), []).append(i)
    if len(ps) > 1:
        notes.append(("Fourier spectra and key frequencies",
                      f"p differs ({'; '.join(f'p = {x}: {names(idx)}' for x, idx in sorted(ps.items()))}): the "
                      "frequencies 1..p//2 differ, so spectra are shown per variant, not overlaid, and key "
                      "frequencies compare as numbers only"))
    sizes = {}
    for k in _SIZE_KEYS:
        values = {str(v.config[k]) for v in variants if v.config.get(k) is not None}
        if len(values) > 1:
            sizes[k] = values
    if sizes:
        detail = "; ".join(f"{k}: " + ", ".join(sorted(vals)) for k, vals in sizes.items())
        notes.append(("Participation ratio, weight norms", f"model sizes differ ({detail}): the participation "
                      "ratio is bounded by each matrix' size and norms grow with it, so compare their shapes "
                      "over training, not their absolute values"))
    all_analyses = sorted({a for v in variants for a in v.analyses})
    by_lacking: dict[tuple[int, ...], list[str]] = {}
    for a in all_analyses:
        lacking = tuple(i for i, v in enumerate(variants) if a not in v.analyses)
        if lacking:
            by_lacking.setdefault(lacking, []).append(a)
    for lacking, analyses in by_lacking.items():
        what = ", ".join(f"'{a}'" for a in analyses)
        notes.append((f"Analys{'is' if len(analyses) == 1 else 'es'} {what}: " + names(lacking),
                      "not run for these variants: their cells are '–' and the charts from "
                      f"{'this analysis' if len(analyses) == 1 else 'these analyses'} leave them out"))
    if not all_analyses:
        notes.append(("Analyses", "no variant has been analysed (epochscope analyze): only the metric series "
                      "compare"))
    counts: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        for key in v.series:
            counts.setdefault(key, []).append(i)
    # Series only one variant has (a derived series only when others have its kind at all: a
    # missing analysis is noted above).
    prefix = lambda key: key.split(":")[0] + ":" if ":" in key else key  # noqa: E731
    single = sorted((k, idx[0]) for k, idx in counts.items() if len(idx) == 1
                    and (k.startswith("metric:") or any(prefix(o) == prefix(k) for o in counts if o != k
                                                        and counts[o] != idx)))
    if single:
        by_owner: dict[int, list[str]] = {}
        for key, i in single:
            by_owner.setdefault(i, []).append(variants[i].series[key].label)
        for i, what in sorted(by_owner.items())[:5]:
            notes.append((f"Only in {labels[i]}", f"{name_list(what, 8)}: no other variant has these series to "
                          "compare with"))
        if len(by_owner) > 5:
            rest = sorted(by_owner)[5:]
            notes.append((f"Only in one run: {len(rest)} more runs", names(rest) + " each have series no other "
                          "run has"))
    if not any(len(idx) > 1 for idx in counts.values()):
        notes.insert(0, ("Series", "these runs share no series: no chart can overlay them; the table compares "
                         "the values each run has"))
