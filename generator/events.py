"""The events a page shows: the bundle's events, less those of superseded analysis runs.

Events cannot be deleted from a bundle, so a bundle analysed by an older turn or CUSUM
analyzer keeps that version's events (hundreds of v1 CUSUM alarms) beside the new ones. The
stored artifact is authoritative (docs/analysis.md): an analysis event is shown only when it
was written by the analyzer version whose artifact the bundle now holds.
"""

from __future__ import annotations

from typing import Any

from epochscope.archives import Bundle

__all__ = ["ANALYSIS_EVENT_SOURCES", "current_events"]

# event kind -> the artifact whose analyzer writes it
ANALYSIS_EVENT_SOURCES = {"turn": "turn", "loss_spike": "turn", "cusum_alarm": "cusum", "phase": "phases"}


def current_events(bundle: Bundle) -> list[dict[str, Any]]:
    """`bundle.events()` without analysis events from superseded analyzer versions."""
    versions = {kind: str(bundle.artifact(art).version)
                for kind, art in ANALYSIS_EVENT_SOURCES.items() if art in bundle.artifact_names}
    out = []
    for e in bundle.events():
        want = versions.get(e.get("kind"))
        if want is not None:
            payload = e.get("payload") if isinstance(e.get("payload"), dict) else {}
            written = payload.get("analyzer_version")
            # Events written before analyzers stamped their version came from version 1.
            if str(written if written is not None else "1") != want:
                continue
        out.append(e)
    return out
