"""The one palette of every page: a run keeps its colour on its report, the site index and
every comparison it appears in.

A run's colour follows from its name (a stable hash into `PALETTE`), so it is the same on
every page without any page knowing the others; when two runs of one comparison hash to the
same colour, or to two colours the eye barely tells apart, the later one (in the page's order)
takes the next free colour that is clearly different from those already on the page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["EVENT_COLORS", "PALETTE", "assign_colors", "run_color"]

# Distinct on white, colour-blind-aware first ten (Tableau 10), then ten darker companions of
# other hues (no lighter twin of a first-ten colour: two greens side by side read as one run).
PALETTE = ("#1f77b4", "#e8731a", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#00796b",
           "#c51b7d", "#252525", "#b8860b", "#5e81ac")
# Event lines by kind (the page and the notebook's figures); any other kind takes a palette
# colour from a hash of its name.
EVENT_COLORS = {"turn": "#d62728", "cusum_alarm": "#9467bd", "alarm": "#9467bd", "resumed": "#7f7f7f",
                "densified": "#17becf", "diverged": "#000000", "finished": "#2ca02c"}
# Colours closer than this ("redmean" RGB distance) are avoided on one page while others are free.
MIN_DISTANCE = 100.0


def _slot(name: str) -> int:
    return int.from_bytes(hashlib.sha256(str(name).encode("utf-8")).digest()[:4], "big") % len(PALETTE)


def run_color(name: str) -> str:
    """The colour of the run called `name` on every page."""
    return PALETTE[_slot(name)]


def assign_colors(names: Iterable[str]) -> list[str]:
    """One colour per run of a page: its own, unless an earlier run of the page has it or one
    too close to it; then the next free colour clearly apart from the page's (else any free)."""
    taken: list[int] = []
    out = []
    n = len(PALETTE)
    for name in names:
        own = _slot(name)
        order = [(own + i) % n for i in range(n)]
        free = [s for s in order if s not in taken]
        apart = [s for s in free if all(_distance(PALETTE[s], PALETTE[t]) >= MIN_DISTANCE for t in taken)]
        slot = apart[0] if apart else free[0] if free else own
        taken.append(slot)
        out.append(PALETTE[slot])
    return out


def _distance(a: str, b: str) -> float:
    """Perceptual-ish RGB distance ("redmean"), enough to keep look-alike colours apart."""
    (r1, g1, b1), (r2, g2, b2) = (tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in (a, b))
    rm = (r1 + r2) / 2
    return ((2 + rm / 256) * (r1 - r2) ** 2 + 4 * (g1 - g2) ** 2 + (2 + (255 - rm) / 256) * (b1 - b2) ** 2) ** 0.5
