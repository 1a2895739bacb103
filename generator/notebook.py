"""What a bundle and a rendered report look like inline in Jupyter (`_repr_html_`): a short
summary table of the bundle; the report page itself in an iframe.

Rendered by the one autoescaping Jinja environment, so names, config keys and values, series
and event kinds stay text whatever they hold; the page reaches the iframe as an escaped
`srcdoc` attribute, so nothing in it can end the attribute or run in the notebook itself.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from epochscope.archives import Bundle
from epochscope.generator.html import environment

__all__ = ["bundle_html", "report_iframe"]

_MAX_ROWS = 30
_MAX_VALUE = 120


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _number(x: float) -> str:
    return f"{x:.6g}"


def bundle_html(bundle: Bundle) -> str:
    """The inline summary: run, status, config, series (points, last value), checkpoints,
    analyses and events; long lists are cut at a few dozen rows and say how many are left."""
    series = []
    for name in bundle.series_names[:_MAX_ROWS]:
        epochs, values = bundle.series(name)
        series.append({"name": name, "points": len(values),
                       "epochs": f"{int(epochs.min())}..{int(epochs.max())}" if len(epochs) else "",
                       "last": _number(float(values[-1])) if len(values) else ""})
    config = [(str(k), _short(v)) for k, v in list(bundle.config.items())[:_MAX_ROWS]]
    ckpts = bundle.checkpoint_epochs
    events = Counter(e["kind"] for e in bundle.events())
    return environment().get_template("bundle_repr.html.j2").render(
        name=bundle.name, status=bundle.status, path=str(bundle.path),
        config=config, config_more=max(0, len(bundle.config) - _MAX_ROWS),
        series=series, series_more=max(0, len(bundle.series_names) - _MAX_ROWS),
        checkpoints=len(ckpts), checkpoint_range=f"{ckpts[0]}..{ckpts[-1]}" if ckpts else "",
        artifacts=bundle.artifact_names, tables=bundle.table_names,
        events=sorted(events.items()), sessions=len(bundle.sessions),
    )


def report_iframe(page: str | os.PathLike, height: int = 820) -> str:
    """The report file `page` inline: an iframe whose `srcdoc` is the whole page, escaped.

    The page keeps its own Content-Security-Policy (no network) and runs sandboxed: scripts
    yes, but in an origin of its own, with no access to the notebook.
    """
    text = Path(page).read_text(encoding="utf-8")
    return (f'<iframe srcdoc="{html.escape(text, quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {int(height)}px; border: 1px solid #d0d4dc" '
            f'title="{html.escape(Path(page).name, quote=True)}"></iframe>')
