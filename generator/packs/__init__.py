"""Experiment packs: what a report shows for one kind of experiment, as data on the one chart
registry (generator/charts.py).

A pack declares its sections (each a title, a description and chart names), the charts it
registers (the modules whose `@chart` decorators define them, with their help texts in
templates/help/), the data each chart needs (`ChartDef.needs`), and when it applies to a
bundle. The `generic` pack applies to every bundle and shows whatever the others did not:
every metric series, table, event kind and analysis artifact. Adding a pack is a new module
here with a `PACK` and its name in `PACKS`; nothing else changes (docs/report-packs.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from epochscope.archives import Bundle

__all__ = ["PACKS", "Pack", "Section", "applicable_packs", "load_packs"]

# The registration list: pack modules in this package, in page order. `generic` is always
# last (it shows what the others left).
PACKS: list[str] = ["modular_addition", "morphogenesis", "evolution", "apoptosis", "sweep", "generic"]


@dataclass(frozen=True)
class Section:
    """One section of a page: a title, a line of description and its charts in order."""

    id: str
    title: str
    charts: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Pack:
    """One experiment kind's charts and sections (see the module docstring)."""

    name: str
    title: str
    sections: tuple[Section, ...] = ()  # run report
    compare_sections: tuple[Section, ...] = ()  # comparison page
    # Summary-table columns of a comparison page (generator/compare/table.py `Column`), shown
    # where at least one run has the value in its facts.
    compare_columns: tuple = ()
    modules: tuple[str, ...] = ()  # modules whose @chart decorators register the pack's charts
    applies: Callable[[Bundle], bool] = field(default=lambda bundle: True)
    # Whether its comparison sections belong on a page comparing these variants (a list of
    # generator.compare.data.VariantData): a pack for one experiment kind shows them only
    # when some compared run is of that kind.
    compare_applies: Callable[[list], bool] = field(default=lambda variants: True)
    # Sections a run report puts before every other pack's (the generic metrics go first on a
    # run no pack claims, after the pack's own training curves otherwise).
    lead: bool = False


@cache
def load_packs() -> tuple[Pack, ...]:
    """Every registered pack (their chart modules imported), in `PACKS` order."""
    packs = []
    for name in PACKS:
        pack = importlib.import_module(f"epochscope.generator.packs.{name}").PACK
        for module in pack.modules:
            importlib.import_module(module)
        packs.append(pack)
    return tuple(packs)


def applicable_packs(bundle: Bundle) -> list[Pack]:
    """The packs whose data this bundle holds."""
    return [p for p in load_packs() if p.applies(bundle)]
