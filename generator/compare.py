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

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from epochscope import __version__
from epochscope.archives import open_bundle
from epochscope.archives.errors import DamagedBundleError
from epochscope.errors import EpochscopeError
from epochscope.generator.charts import ChartDef, get_chart
from epochscope.generator.compare_charts import ChartInput
from epochscope.generator.compare_data import (
    Z_LIMIT,
    VariantData,
    crossings,
    read_variant,
    robust_z,
)
from epochscope.generator.context import Unavailable
from epochscope.generator.encode import ArrayStore, script_json
from epochscope.generator.help import COMPARE_HELP
from epochscope.generator.html import (
    CSP_SLOT,
    csp,
    environment,
    make_parent,
    plotly_js,
    safe_href,
    write_atomic,
    write_shared_plotly,
)
from epochscope.generator.palette import assign_colors
from epochscope.generator.render import nav_links

__all__ = ["COLUMNS", "Column", "Comparison", "build_comparison", "render_compare"]

# A variant highlighted in at least this many columns is drawn with thicker lines.
STANDS_OUT = 3
# Config keys shown as table columns when they differ between variants, in this order first.
_CONFIG_ORDER = ("p", "model_seed", "data_seed", "seed", "d_model", "d_mlp", "n_heads", "n_layers", "lr",
                 "weight_decay", "train_frac", "epochs")
_MAX_CONFIG_COLUMNS = 6
_SIZE_KEYS = ("d_model", "d_mlp", "n_heads", "n_layers", "d_head")


# ------------------------------------------------------------------------------ table

def _epochs(v: float) -> str:
    return str(int(round(v)))


def _loss(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.2e}"


@dataclass(frozen=True)
class Column:
    """One numeric column of the summary table and how its values are flagged.

    `scale`: "linear" or "log" (z-score on log10), None for never flagged. `floor`: the
    smallest z-score scale (the column's resolution, in its z units); `rel_floor`: the same as
    a share of the median's magnitude. `binary`: flag on value > 0 (e.g. "crosses itself").
    """

    key: str
    label: str
    title: str
    fmt: Any
    scale: str | None = "linear"
    floor: float = 0.0
    rel_floor: float = 0.0
    binary: bool = False

    @property
    def tooltip(self) -> str:
        """The header's tooltip: what the column is and how its values are flagged."""
        if self.scale is None:
            return f"{self.title}; not highlighted"
        if self.binary:
            return f"{self.title}; highlighted on whether it is 0 or not"
        how = "robust z on log10" if self.scale == "log" else "robust z"
        res = []
        if self.floor:
            res.append(f"{self.floor:g}" + (" decade" if self.scale == "log" else ""))
        if self.rel_floor:
            res.append(f"{100 * self.rel_floor:g}% of the median")
        return f"{self.title}; highlighted by {how}" + (f", resolution {' or '.join(res)}" if res else "")


COLUMNS: tuple[Column, ...] = (
    Column("turn", "Turn", "epoch of the turn (onset of generalisation)", _epochs, rel_floor=0.02),
    Column("health", "Health", "the turn analysis' health class (hover for its reason)", str, None),
    Column("grok_speed", "Turn → 95%", "epochs from the turn until test accuracy first reaches 95%", _epochs,
           rel_floor=0.05),
    Column("train_loss", "Train loss", "final train loss", _loss, "log", floor=0.1),
    Column("test_loss", "Test loss", "final test loss", _loss, "log", floor=0.1),
    Column("train_acc", "Train acc", "final train accuracy", lambda v: f"{100 * v:.2f}%", floor=0.01),
    Column("test_acc", "Test acc", "final test accuracy", lambda v: f"{100 * v:.2f}%", floor=0.01),
    Column("key_freqs", "Key freqs", "key frequencies (sorted by how many)", None, None),
    Column("min_pr", "Min PR", "smallest participation ratio over training of W_E, W_in, W_out or W_U (the matrices whose compression precedes grokking)",
           lambda v: f"{v:.1f}", rel_floor=0.05),
    Column("self_intersects", "PC2/PC3 crossings", "self-crossings of the PC2/PC3 path (own basis)",
           lambda v: f"yes ({int(v)})" if v > 0 else "no", binary=True),
    Column("shared_crossings", "Crossings (shared)", "self-crossings of the PC2/PC3 path in the shared basis",
           lambda v: f"yes ({int(v)})" if v > 0 else "no", binary=True),
    Column("loop_area", "Loop area / L²", "largest loop's area over the squared path length (PC2/PC3)",
           lambda v: f"{v:.3f}", floor=0.002),
    Column("excursion", "Excursion / L", "farthest distance from the start over the path length (PC2/PC3)",
           lambda v: f"{v:.2f}", floor=0.01),
    Column("imbalance", "cos/sin", "largest cos/sin imbalance of W_E's key frequencies (final)",
           lambda v: f"{v:.2f} : 1", "log", floor=0.02),
    Column("gini", "Gini W_E", "Gini coefficient of W_E's Fourier norms (final)", lambda v: f"{v:.3f}", floor=0.01),
    Column("clustered", "Clustered", "share of MLP neurons in a frequency cluster (final)",
           lambda v: f"{100 * v:.0f}%", floor=0.02),
    Column("alarms", "CUSUM alarms", "number of CUSUM alarms, all monitors", _epochs, floor=0.5),
)


@dataclass
class Cell:
    """One table cell: the text shown, the value sorted on, the tooltip, the flag."""

    text: str
    sort: float | str | None
    tip: str = ""
    z: float | None = None
    flag: bool = False
    missing: bool = False


@dataclass
class Row:
    v: int
    label: str
    href: str | None
    color: str
    config: list[Cell]
    cells: list[Cell]
    flags: int = 0


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
    config_keys: list[str]
    rows: list[Row]
    groups: list[Group]
    notes: list[tuple[str, str]]  # (what cannot be compared, why)
    configs: list[tuple[str, list[str], bool]]  # (key, value per variant, differs)
    page: dict[str, Any]
    store: ArrayStore
    damage: list[str] = field(default_factory=list)  # damage met with allow_damaged (banner)

    def column(self, key: str) -> list[Cell]:
        """The cells of column `key`, one per variant (tests and scripts)."""
        i = [c.key for c in self.columns].index(key)
        return [r.cells[i] for r in self.rows]


# ------------------------------------------------------------------------------ entry points

def render_compare(bundles: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                   shared_assets: str | os.PathLike | None = None, nav: list[tuple[str, str]] | None = None,
                   links: dict[str, str] | None = None, plotly: str = "partial",
                   allow_damaged: bool = False) -> Path:
    """Compare the runs in `bundles` (two or more bundle paths) on one HTML page at `output`.

    `output`: the HTML file (an existing directory: "compare.html" in it); missing parent
    directories are created. `shared_assets`: a directory that receives plotly.js once,
    loaded by a relative path instead of being inlined. `nav`: (label, href) links shown at the
    top. `links`: {str(bundle path): href of that run's report} for the table's drill-down.
    `plotly`: "partial" (vendored, the trace types the page uses) or "full" (plotly package).
    A damaged bundle raises DamagedBundleError; with `allow_damaged` its intact parts are
    compared and a banner lists the damage.
    Raises EpochscopeError for fewer than two bundles, a bundle path that does not exist,
    fewer than two readable bundles, or an output that cannot be written.
    """
    out = Path(output)
    if out.is_dir():
        out = out / "compare.html"
    plotly_js(plotly)  # an unknown plotly bundle fails before any bundle is read
    cmp = build_comparison(bundles, links=links, allow_damaged=allow_damaged)
    make_parent(out)
    plotly_src = (write_shared_plotly(Path(shared_assets), out.parent, plotly)
                  if shared_assets is not None else None)
    html = environment().get_template("compare.html.j2").render(
        cmp=cmp,
        title=_title(cmp),
        page_json=Markup(script_json(cmp.page)),
        arrays=list(cmp.store.arrays.values()),
        plotly_js=None if plotly_src else Markup(plotly_js(plotly)),
        plotly_src=plotly_src,
        version=__version__,
        nav=nav_links(nav),
        zlimit=Z_LIMIT,
        cmp_help_summary=COMPARE_HELP["summary"].sections(),
        stands_out=STANDS_OUT,
        damage=cmp.damage,
    )
    html = html.replace(CSP_SLOT, csp(html, external_scripts=plotly_src is not None), 1)
    write_atomic(out, html)
    return out


def build_comparison(bundles: Sequence[str | os.PathLike], *, links: dict[str, str] | None = None,
                     allow_damaged: bool = False) -> Comparison:
    """Read the bundles and build the page's content (table, charts, notes), without HTML."""
    paths = [Path(b) for b in bundles]
    if len(paths) == 1:
        raise EpochscopeError("comparing one bundle: use `epochscope report`")
    if not paths:
        raise EpochscopeError("nothing to compare: give two or more bundles")
    notes: list[tuple[str, str]] = []
    seen: dict[Path, Path] = {}
    unique: list[Path] = []
    for p in paths:
        if not p.exists():
            raise EpochscopeError(f"no such bundle: {p}")
        key = p.resolve()
        if key in seen:
            notes.append((f"{p}", f"the same bundle as {seen[key]}, given twice: compared once"))
            continue
        seen[key] = p
        unique.append(p)
    if len(unique) == 1:
        raise EpochscopeError("comparing one bundle: use `epochscope report`")
    variants: list[VariantData] = []
    damage: list[str] = []
    for p in unique:
        try:
            with open_bundle(p, allow_damaged=allow_damaged) as b:
                damage += [f"{p.name}: {d}" for d in b.check()]
                variants.append(read_variant(b))
        except DamagedBundleError:
            raise  # never compared silently: refused, or (allow_damaged) listed in the banner
        except (EpochscopeError, OSError, KeyError, ValueError) as exc:
            notes.append((f"{p}", f"could not be read, left out of every chart and the table ({exc})"))
    if len(variants) < 2:
        raise EpochscopeError(f"fewer than two readable bundles among {len(unique)}: nothing to compare")
    labels = _labels(variants)
    hrefs = _hrefs(variants, links or {})
    store = ArrayStore()
    shared, shared_reason = _shared_bases(variants, labels, notes)
    config_keys, configs = _configs(variants)
    columns = [c for c in COLUMNS if (c.key != "shared_crossings" or shared)
               and any(c.key in v.facts or c.key in v.missing for v in variants)]
    rows = _rows(variants, labels, hrefs, columns, config_keys)
    emph = [r.flags >= STANDS_OUT for r in rows]
    inp = ChartInput(variants, labels, store, shared, shared_reason)
    groups, charts = _charts(inp)
    colors = assign_colors([v.name for v in variants])
    _notes(variants, labels, notes)
    page = {
        "version": __version__,
        "variants": [{"label": labels[i], "color": colors[i], "turn": v.turn,
                      "turnReason": v.turn_reason, "emph": emph[i]} for i, v in enumerate(variants)],
        "charts": charts,
        "columns": ["variant"] + [f"cfg:{k}" for k in config_keys] + [c.key for c in columns],
    }
    page["arrays"] = {a.id: a.meta for a in store.arrays.values()}
    return Comparison(variants, labels, columns, config_keys, rows, groups, notes, configs, page, store, damage)


# ------------------------------------------------------------------------------ pieces

def _title(cmp: Comparison) -> str:
    names = cmp.labels
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"{len(names)} runs: {shown}"


def _labels(variants: list[VariantData]) -> list[str]:
    """Display names: the run names, made unique with the file name (then a number)."""
    names = [v.name for v in variants]
    out = []
    for v in variants:
        label = v.name if names.count(v.name) == 1 else f"{v.name} ({v.path.name})"
        n = 2
        base = label
        while label in out:
            label, n = f"{base} #{n}", n + 1
        out.append(label)
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
    """The config keys that differ between variants (table columns) and the whole config."""
    keys = sorted({k for v in variants for k in v.config})
    rows = []
    differ = []
    for k in keys:
        values = ["–" if k not in v.config else _short(v.config[k]) for v in variants]
        d = len(set(values)) > 1
        rows.append((k, values, d))
        if d and k != "name":
            differ.append(k)
    differ.sort(key=lambda k: (_CONFIG_ORDER.index(k) if k in _CONFIG_ORDER else len(_CONFIG_ORDER), k))
    return differ[:_MAX_CONFIG_COLUMNS], rows


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
        rule = "on log10, " if col.scale == "log" else ""
        tip = (tip + "; " if tip else "") + f"robust z = {z:+.1f} ({rule}|z| > {Z_LIMIT} is highlighted)"
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
    if no_weights:
        why = sorted({variants[i].weights_reason for i in no_weights})
        notes.append(("Shared PCA basis: " + ", ".join(labels[i] for i in no_weights),
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
            notes.append(("Shared PCA basis: " + ", ".join(labels[i] for i in g),
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
            runs.append((i, epochs, coords))
            variants[i].facts["shared_crossings"] = len(crossings(coords[:, 1:3]))
            others = len(variants[i].bases[bid][3]) - 1
            variants[i].details["shared_crossings"] = (f"in the basis shared with {others} other run"
                                                       f"{'s' if others != 1 else ''} ({len(epochs)} checkpoints)")
        placed.update(members)
        shared.append({"members": members, "runs": runs, "evr": variants[members[0]].bases[bid][2]})
    unplaced = [i for g in layout_groups if len(g) > 1 for i in g if i not in placed]
    if unplaced:
        notes.append(("Shared PCA basis: " + ", ".join(labels[i] for i in unplaced),
                      "no shared basis stored in their bundles: `epochscope compare` (with the analysis extras, "
                      "torch) fits one and stores it"))
    reason = ""
    if not shared:
        reason = ("no shared PCA basis is stored in these bundles (`epochscope compare` fits and stores one)"
                  if any(len(g) > 1 for g in layout_groups) else
                  "no two variants have checkpoints with model weights of identical shapes"
                  if by_layout else "no variant has checkpoints with model weights")
    for v in variants:
        if "shared_crossings" not in v.facts:
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
            card, spec = _build(inp, chart)
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

def _notes(variants: list[VariantData], labels: list[str], notes: list[tuple[str, str]]) -> None:
    """What cannot be compared, and why (appended to `notes`)."""
    names = lambda idx: ", ".join(labels[i] for i in idx)  # noqa: E731
    no_turn = [i for i, v in enumerate(variants) if v.turn is None]
    if no_turn:
        why = "; ".join(f"{labels[i]}: {variants[i].turn_reason}" for i in no_turn)
        notes.append(("Relative to the turn: " + names(no_turn),
                      f"no turn, so they cannot be aligned on it ({why}); in the relative view they are listed "
                      "under each chart, and drawn only on the epoch axis"))
    not_complete = [i for i, v in enumerate(variants) if v.status != "complete"]
    if not_complete:
        notes.append(("Final values: " + names(not_complete),
                      "the run is not complete (" + ", ".join(f"{labels[i]}: {variants[i].status}"
                                                            for i in not_complete)
                      + "): its final values are from its last logged epoch"))
    finals = {i: v.final_epoch for i, v in enumerate(variants) if v.final_epoch}
    if finals and max(finals.values()) > 1.1 * min(finals.values()):
        by: dict[int, list[int]] = {}
        for i, e in finals.items():
            by.setdefault(e, []).append(i)
        notes.append(("Final values", "taken at each run's last epoch, which differs ("
                      + "; ".join(f"{e}: {names(idx)}" for e, idx in sorted(by.items())) + ")"))
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
        for i, what in sorted(by_owner.items()):
            shown = ", ".join(what[:8]) + (f" and {len(what) - 8} more" if len(what) > 8 else "")
            notes.append((f"Only in {labels[i]}", f"{shown}: no other variant has these series to compare with"))
