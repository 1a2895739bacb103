"""Pages show the analysis events of the stored analyzer version only (events cannot be
deleted from a bundle, so a re-analysed bundle holds both versions' events)."""

from __future__ import annotations

import numpy as np

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment, open_bundle
from epochscope.generator.events import current_events


def _bundle(path):
    with BundleWriter(path, create=True) as w:
        w.write(Segment(
            context={"config": {"name": "ev"}},
            metrics={"test_loss": (np.arange(5), np.linspace(1, 0.1, 5))},
            events=[
                # written by CUSUM v1, before analyzers stamped their version
                {"epoch": 1, "kind": "cusum_alarm", "message": "old", "payload": {"monitor": "val"}},
                {"epoch": 2, "kind": "cusum_alarm", "message": "new",
                 "payload": {"monitor": "val", "analyzer_version": 2}},
                {"epoch": 3, "kind": "turn", "message": "turn v1", "payload": {}},
                {"epoch": 3, "kind": "activation_switch", "message": "user's own", "payload": {}},
                {"epoch": 4, "kind": "phase", "message": "no phases artifact: kept", "payload": {}},
            ],
            artifacts={"cusum": ArtifactUpdate(version="2", epochs=np.arange(5),
                                               per_epoch={"val_pos": np.zeros(5)}),
                       "turn": ArtifactUpdate(version="2", epochs=np.arange(5),
                                              per_epoch={"fit": np.zeros(5)})},
        ))
        w.consolidate()


def test_superseded_analysis_events_are_left_out(tmp_path):
    path = tmp_path / "ev.h5"
    _bundle(path)
    with open_bundle(path) as b:
        assert len(b.events()) == 5  # the bundle keeps everything
        shown = [(e["kind"], e["message"]) for e in current_events(b)]
    assert shown == [("cusum_alarm", "new"), ("activation_switch", "user's own"),
                     ("phase", "no phases artifact: kept")]
