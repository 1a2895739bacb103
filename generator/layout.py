"""Report layouts as data: which groups, which charts in each, in what order.

The default comes from the packs (generator/packs/): the sections of every pack that
applies to the bundle. `render_report(layout=path)` takes a TOML file of this form instead
(chart names from `known_charts()`, the generic ones included: "metric_summary", "metrics",
"tables", "events", "artifacts"):

    [[group]]
    title = "Training"                       # required
    id = "training"                          # optional, derived from the title
    description = "Loss and accuracy."       # optional, shown under the title
    charts = ["loss", "accuracy"]            # required, names from `known_charts()`
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epochscope.errors import EpochscopeError
from epochscope.generator.charts import known_charts

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Group", "Layout", "load_layout"]

_GROUP_KEYS = {"id", "title", "description", "charts"}


@dataclass
class Group:
    """One section of the page: a summary chart and the detail charts that go with it."""

    id: str
    title: str
    charts: list[str]
    description: str = ""


@dataclass
class Layout:
    groups: list[Group] = field(default_factory=list)
    source: str = "default"

    @property
    def charts(self) -> list[str]:
        return [c for g in self.groups for c in g.charts]


def load_layout(path: str | os.PathLike | None = None) -> Layout:
    """Read and check a layout file (None: the default layout).

    Raises EpochscopeError (one line) for an unreadable file, bad TOML, a malformed group,
    an unknown chart name (listing the known ones) or a chart placed twice.
    """
    if path is None:
        return _default()
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise EpochscopeError(f"cannot read layout {where}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise EpochscopeError(f"layout {where} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EpochscopeError(f"layout {where} is not valid TOML: {exc}") from None
    return _parse(data, where)


def _parse(data: dict[str, Any], where: str) -> Layout:
    extra = set(data) - {"group"}
    if extra:
        raise EpochscopeError(f"layout {where}: unknown top-level key(s) {', '.join(sorted(extra))}; "
                              "expected [[group]] tables")
    groups_raw = data.get("group")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise EpochscopeError(f"layout {where}: no [[group]] tables")
    known = known_charts()
    seen: dict[str, str] = {}
    groups: list[Group] = []
    ids: set[str] = set()
    for n, raw in enumerate(groups_raw, 1):
        if not isinstance(raw, dict):
            raise EpochscopeError(f"layout {where}: group {n} is not a table")
        bad = set(raw) - _GROUP_KEYS
        if bad:
            raise EpochscopeError(f"layout {where}: group {n} has unknown key(s) {', '.join(sorted(bad))}; "
                                  f"allowed: {', '.join(sorted(_GROUP_KEYS))}")
        title = raw.get("title")
        charts = raw.get("charts")
        if not isinstance(title, str) or not title.strip():
            raise EpochscopeError(f"layout {where}: group {n} needs a title")
        if not isinstance(charts, list) or not all(isinstance(c, str) for c in charts):
            raise EpochscopeError(f"layout {where}: group '{title}' needs charts = [\"name\", ...]")
        for c in charts:
            if c not in known:
                raise EpochscopeError(f"layout {where}: unknown chart '{c}' in group '{title}'; "
                                      f"known charts: {', '.join(known)}")
            if c in seen:
                raise EpochscopeError(f"layout {where}: chart '{c}' appears twice "
                                      f"(groups '{seen[c]}' and '{title}')")
            seen[c] = title
        gid = str(raw.get("id") or _slug(title))
        if gid in ids:
            gid = f"{gid}-{n}"
        ids.add(gid)
        groups.append(Group(gid, title.strip(), list(charts), str(raw.get("description", ""))))
    return Layout(groups, where)


def _default() -> Layout:
    """Every pack's sections (what a bundle holding everything would show)."""
    from epochscope.generator.packs import load_packs

    known_charts()
    return Layout(pack_groups([s for p in load_packs() for s in p.sections]), "default")


def pack_groups(sections: list[Any]) -> list[Group]:
    """Groups of packs' sections in order, each chart placed once (packs share some charts,
    e.g. the per-step monitors of the experiment packs): a later section drops the charts an
    earlier one placed, and is left out when none remain. Section ids stay unique too."""
    placed: set[str] = set()
    ids: set[str] = set()
    groups = []
    for s in sections:
        charts = [c for c in s.charts if c not in placed]
        if not charts:
            continue
        placed.update(charts)
        gid, n = s.id, 2
        while gid in ids:
            gid, n = f"{s.id}-{n}", n + 1
        ids.add(gid)
        groups.append(Group(gid, s.title, charts, s.description))
    return groups


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "group"
