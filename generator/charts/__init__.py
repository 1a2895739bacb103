"""The chart registry: every chart a run report or a comparison page can show, what it
reads, and how it is drawn. One registry for both pages; packs (generator/packs/) arrange
its charts into sections.

A chart is a `ChartDef`: a name (used in layout files), a title, the page it belongs to
(`page`: "run" or "compare"), the page-side renderer (`kind`, see templates/report_charts.js
and compare.js), the analyses/series it needs (for the "not in this run" line), the global
state it follows (epoch, neuron, head) and a builder. A run chart's builder turns a
`BuildContext` into a JSON spec referencing embedded arrays (or, for a `multi` chart, into a
list of cards: one per series group, table or artifact array); a comparison chart's builder
turns a `ChartInput` (generator/compare/charts.py) into a spec. Builders register themselves
with `@chart(...)`; comparison charts are keyed "compare:<name>" in `CHARTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from epochscope.generator.context import BuildContext, Unavailable

__all__ = ["CHARTS", "ChartDef", "Unavailable", "add_chart", "chart", "get_chart", "known_charts"]

Builder = Callable[[Any], Any]


@dataclass(frozen=True)
class ChartDef:
    """Static description of one chart type."""

    name: str
    title: str
    kind: str
    needs: tuple[str, ...]  # analyses (artifact names) or "metrics" it reads
    build: Builder
    epoch_axis: bool = False  # x is the epoch: event lines, epoch marker, click sets epoch
    follows: tuple[str, ...] = ()  # global state it redraws for: "epoch", "neuron", "head"
    wide: bool = False  # spans the full width of its group
    heavy: float = 0.0  # share of the detail size budget (0: small, embedded in full)
    page: str = "run"  # "run" (a run report) or "compare" (a comparison page)
    alignable: bool = False  # comparison: x is the epoch, follows the epoch / relative-to-turn switch
    multi: bool = False  # the builder returns a list of cards (see generator/packs/generic.py)
    late: bool = False  # built after every other chart (it shows what they did not)

    @property
    def key(self) -> str:
        return self.name if self.page == "run" else f"{self.page}:{self.name}"


CHARTS: dict[str, ChartDef] = {}


def chart(name: str, title: str, kind: str, *, needs: tuple[str, ...] = (), epoch_axis: bool = False,
          follows: tuple[str, ...] = (), wide: bool = False, heavy: float = 0.0, page: str = "run",
          alignable: bool = False, multi: bool = False, late: bool = False) -> Callable[[Builder], Builder]:
    """Register the decorated builder as chart `name` of `page`."""

    def register(build: Builder) -> Builder:
        add_chart(ChartDef(name, title, kind, needs, build, epoch_axis, follows, wide, heavy, page, alignable,
                           multi, late))
        return build

    return register


def add_chart(definition: ChartDef) -> ChartDef:
    """Register `definition` (the non-decorator form of `chart`)."""
    if definition.key in CHARTS:
        raise ValueError(f"chart {definition.key!r} registered twice")
    CHARTS[definition.key] = definition
    return definition


def known_charts(page: str = "run") -> list[str]:
    """Names of every chart of `page`: pack by pack (their modules in `PACKS` order), each
    module's in registration order, whichever module was imported first."""
    from epochscope.generator.packs import load_packs

    _load_builders()
    modules = list(dict.fromkeys(m for p in load_packs() for m in p.modules))
    rank = {m: i for i, m in enumerate(modules)}
    ordered = sorted((c for c in CHARTS.values() if c.page == page),
                     key=lambda c: rank.get(c.build.__module__, len(rank)))  # stable: registration order within
    return [c.name for c in ordered]


def get_chart(name: str, page: str = "run") -> ChartDef:
    _load_builders()
    return CHARTS[name if page == "run" else f"{page}:{name}"]


def _load_builders() -> None:
    # Importing the packs imports their chart modules, whose @chart decorators fill CHARTS.
    from epochscope.generator.packs import load_packs

    load_packs()


# -- helpers shared by the builders -------------------------------------------------------------

def series_trace(ctx: BuildContext, series: str, label: str, **style: Any) -> dict[str, Any]:
    """A line trace of metric series `series` (shared with the CSV table, embedded once)."""
    return {"name": label, **ctx.series_ref(series), **style}


def array_trace(ctx: BuildContext, epochs: Any, values: Any, label: str, *, floor: float = 0.0,
                **style: Any) -> dict[str, Any]:
    """A line trace of an artifact array over epochs: float16 when every value keeps 0.2%
    (`floor`: see ArrayStore.add_float; 0 keeps small values exact enough for log axes)."""
    return {"name": label, "x": ctx.store.add_int(epochs), "y": ctx.store.add_float(values, floor=floor), **style}


def present_series(ctx: BuildContext, names: tuple[str, ...]) -> list[str]:
    """The series of `names` that exist with at least one finite value; Unavailable when none."""
    have = [n for n in names if ctx.has_series(n)]
    if not have:
        raise Unavailable("no metric series " + " or ".join(f"'{n}'" for n in names) + " in this bundle")
    finite = [n for n in have if _any_finite(ctx.series(n)[1])]
    if not finite:
        raise Unavailable("no data: " + ", ".join(f"'{n}'" for n in have) + " hold only NaN/inf")
    return finite


def columns(values: Any, what: str) -> Any:
    """`values` as a 2-D (epochs, columns) float array; a 1-D array becomes one column."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise Unavailable(f"{what} has shape {arr.shape}, expected (epochs, n)")
    if not np.isfinite(arr).any():
        raise Unavailable(f"no data: {what} holds only NaN/inf")
    return arr


def _any_finite(values: Any) -> bool:
    return bool(np.isfinite(values).any())
