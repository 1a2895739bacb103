"""What a bundle looks like inline in Jupyter (`Bundle._repr_html_`): a short summary table.

Rendered by the one autoescaping Jinja environment, so names, config keys and values, series
and event kinds stay text whatever they hold.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from epochscope.archives import Bundle
from epochscope.generator.html import environment

__all__ = ["bundle_html"]

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
