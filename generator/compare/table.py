"""The summary table's model: its columns (config keys, each shared headline metric's final
value, best value and best epoch, then the packs' columns), cells and rows.

A pack adds columns with `Pack.compare_columns` (generator/packs/); their values come from
`VariantData.facts` (generator/compare/data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Cell", "Column", "Row", "fmt_epochs", "fmt_loss", "metric_columns"]


def fmt_epochs(v: float) -> str:
    return str(int(round(v)))


def fmt_loss(v: float) -> str:
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
    # How the page formats a group's mean ("int", "pct", "g"; None: not aggregated in group rows).
    agg: str | None = "g"

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


# Headline metrics shown as table columns (each: final, best, best epoch).
MAX_METRICS = 6


def _fmt_value(name: str):
    low = name.lower()
    if "acc" in low:
        return (lambda v: f"{100 * v:.2f}%"), "pct", "linear", 0.01, 0.0
    if "loss" in low:
        return fmt_loss, "g", "log", 0.1, 0.0
    return (lambda v: f"{v:.4g}"), "g", "linear", 0.0, 0.02


def metric_columns(variants: list[Any]) -> tuple[list[str], list[Column]]:
    """The headline metrics at least two runs share (the runs' own headline order, the most
    common first) and their table columns; fills each run's facts "final:NAME", "best:NAME",
    "best_epoch:NAME" from its headline facts (generator/facts.py)."""
    rank: dict[str, tuple[int, int]] = {}
    for v in variants:
        if v.run is None:
            continue
        for pos, name in enumerate(v.run.headline):
            count, best = rank.get(name, (0, pos))
            rank[name] = (count + 1, min(best, pos))
    shared = [n for n, (count, _) in rank.items() if count >= 2 or len(variants) == 1]
    shared.sort(key=lambda n: (rank[n][1], -rank[n][0], n))
    names = shared[:MAX_METRICS]
    columns: list[Column] = []
    for name in names:
        fmt, agg, scale, floor, rel = _fmt_value(name)
        has_best = False
        for v in variants:
            m = v.run.metrics.get(name) if v.run is not None else None
            if m is None or m.final is None:
                why = f"no metric series '{name}' in this run" if m is None else f"'{name}' holds only NaN/inf"
                for key in ("final", "best", "best_epoch"):
                    v.missing[f"{key}:{name}"] = why
                continue
            v.facts[f"final:{name}"] = m.final
            v.details[f"final:{name}"] = f"at epoch {m.final_epoch}"
            if m.best is None:
                why = f"'{name}' has no direction (lower or higher is better), so no best"
                v.missing[f"best:{name}"] = v.missing[f"best_epoch:{name}"] = why
                continue
            has_best = True
            v.facts[f"best:{name}"] = m.best
            v.facts[f"best_epoch:{name}"] = m.best_epoch
            better = "lowest" if m.direction == "min" else "highest"
            v.details[f"best:{name}"] = f"{better} value, at epoch {m.best_epoch}" + (
                f"; {m.degraded_text}" if m.degraded else "")
        columns.append(Column(f"final:{name}", f"{name} final", f"final {name} (last finite logged value)", fmt,
                              scale, floor=floor, rel_floor=rel, agg=agg))
        if has_best:
            columns.append(Column(f"best:{name}", f"{name} best", f"best {name} over training", fmt, scale,
                                  floor=floor, rel_floor=rel, agg=agg))
            columns.append(Column(f"best_epoch:{name}", f"{name} best epoch", f"epoch of the best {name}",
                                  fmt_epochs, rel_floor=0.05, agg="int"))
    return names, columns
