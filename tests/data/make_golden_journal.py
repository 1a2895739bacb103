"""Writes tests/data/journal-<FORMAT_VERSION>/: an UNconsolidated bundle (journal segments
only, as a killed writer leaves it), kept in git forever like bundle-<version>.bundle.

journal-1.1 was written by the 1.1 writer (epochscope at commit 16e685c) with
    PYTHONPATH=<that version's epochscope package> python tests/data/make_golden_journal.py
Never regenerate an old one; tests/test_compat.py reads the bytes the old writer produced.
"""

import shutil
from pathlib import Path

import numpy as np

from epochscope.archives import FORMAT_VERSION, BundleWriter, Segment

OUT = Path(__file__).with_name(f"journal-{FORMAT_VERSION}") / "run.h5"

if __name__ == "__main__":
    shutil.rmtree(OUT.parent, ignore_errors=True)
    OUT.parent.mkdir()
    w = BundleWriter(OUT, create=True)
    w.write(Segment(context={"config": {"name": f"journal-{FORMAT_VERSION}", "p": 5}},
                    session={"id": "killed", "started": "2026-11-21T00:00:00+00:00", "status": "running"}))
    w.write(Segment(metrics={"train_loss": (np.arange(3), np.array([2.0, 1.5, 1.0]))},
                    events=[{"epoch": 1, "kind": "note", "message": "m", "payload": {"k": "test_acc"}}]))
    w.write(Segment(metrics={"train_loss": (np.array([3]), np.array([0.5]))},
                    checkpoints={3: ({"model_config": {"d": 2}, "tensor_dtypes": {}},
                                     {"model": {"W": np.arange(4, dtype=np.float32).reshape(2, 2)}})},
                    tables={"t": {"id": np.array(["a", "b"]), "v": np.array([1.0, 2.0])}}))
    w.close()  # no consolidation, no "complete": the writer was killed
    OUT.with_name("run.h5.lock").unlink(missing_ok=True)
