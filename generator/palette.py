"""The one palette of every page: a run keeps its colour on its report, the site index and
every comparison it appears in.

A run's colour follows from its name (a stable hash into `PALETTE`), so it is the same on
every page without any page knowing the others; when two runs of one comparison hash to the
same colour, the later one (in the page's order) takes the next free colour.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["PALETTE", "assign_colors", "run_color"]

# Distinct on white, colour-blind-aware first ten (Tableau 10), then ten darker companions.
PALETTE = ("#1f77b4", "#e8731a", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
           "#31a354", "#756bb1", "#636363", "#e6550d")


def _slot(name: str) -> int:
    return int.from_bytes(hashlib.sha256(str(name).encode("utf-8")).digest()[:4], "big") % len(PALETTE)


def run_color(name: str) -> str:
    """The colour of the run called `name` on every page."""
    return PALETTE[_slot(name)]


def assign_colors(names: Iterable[str]) -> list[str]:
    """One colour per run of a page: its own, unless an earlier run of the page has it."""
    taken: set[int] = set()
    out = []
    for name in names:
        slot = _slot(name)
        if len(taken) < len(PALETTE):
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
        taken.add(slot)
        out.append(PALETTE[slot])
    return out
