"""The SQLite run catalog: indexing, --where queries, self-healing, read-only conditions."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment
from epochscope.errors import EpochscopeError
from epochscope.generator.catalog import Catalog


def make_run(path, p, seed, turn=None, acc=(0.1, 0.99)):
    path.parent.mkdir(parents=True, exist_ok=True)
    with BundleWriter(path, create=True) as w:
        arts = {}
        if turn is not None:
            arts["turn"] = ArtifactUpdate(version="1", scalars={"epoch": turn, "confidence": 0.9})
        w.write(Segment(context={"config": {"name": path.stem, "p": p, "model_seed": seed, "lr": 1e-3}},
                        session={"id": "s", "status": "complete"},
                        metrics={"test_acc": (np.array([0, 100, 200]), np.array([acc[0], 0.5, acc[1]])),
                                 "test_loss": (np.array([0, 100, 200]), np.array([4.0, 2.0, 0.1]))},
                        artifacts=arts))
        w.consolidate()


@pytest.fixture
def runs_dir(tmp_path):
    make_run(tmp_path / "sweepA" / "p113_s1.h5", 113, 1, turn=5000)
    make_run(tmp_path / "sweepA" / "p113_s2.h5", 113, 2, turn=12000)
    make_run(tmp_path / "sweepA" / "p97_s1.h5", 97, 1, turn=3000)
    make_run(tmp_path / "lone.h5", 101, 999)
    return tmp_path


def test_where_answers_cross_variant_questions(runs_dir):
    with Catalog(runs_dir) as cat:
        assert sorted(cat.scan()["added"]) == ["lone.h5", "sweepA/p113_s1.h5", "sweepA/p113_s2.h5",
                                               "sweepA/p97_s1.h5"]
        rows = cat.runs(where="turn_epoch < 10000 and p = 113")
        assert [r["name"] for r in rows] == ["p113_s1"]
        assert rows[0]["sweep"] == "sweepA" and rows[0]["grok_epoch"] == 200
        assert rows[0]["final_test_loss"] == pytest.approx(0.1)
        assert [r["name"] for r in cat.runs(where="turn_epoch is null")] == ["lone"]


def test_catalog_heals_when_bundles_are_added_removed_or_changed(runs_dir):
    with Catalog(runs_dir) as cat:
        cat.scan()
        assert cat.scan()["unchanged"] and not cat.scan()["added"]
        os.remove(runs_dir / "sweepA" / "p97_s1.h5")
        make_run(runs_dir / "sweepB" / "p59_s3.h5", 59, 3, turn=800)
        old_hash = cat.content_hash("lone.h5")
        make_run_path = runs_dir / "lone.h5"
        os.remove(make_run_path)
        make_run(make_run_path, 101, 999, turn=4242)
        report = cat.scan()
        assert report["removed"] == ["sweepA/p97_s1.h5"]
        assert report["added"] == ["sweepB/p59_s3.h5"]
        assert report["updated"] == ["lone.h5"]
        assert cat.content_hash("lone.h5") != old_hash
        assert cat.runs(where="name = 'lone'")[0]["turn_epoch"] == 4242
        assert len(cat.runs()) == 4


def test_corrupt_bundle_is_listed_as_broken_not_fatal(runs_dir):
    (runs_dir / "sweepA" / "junk.h5").write_bytes(b"not hdf5 at all")
    with Catalog(runs_dir) as cat:
        report = cat.scan()
        assert report["broken"] == ["sweepA/junk.h5"]
        assert cat.runs(where="status = 'unreadable'")[0]["error"].endswith("is not an HDF5 file")


def test_where_conditions_cannot_modify_the_catalog(runs_dir):
    with Catalog(runs_dir) as cat:
        cat.scan()
        for bad in ("1=1; DELETE FROM runs", "p = 113) OR (1", "no_such_column = 1"):
            with pytest.raises(EpochscopeError, match="bad --where condition"):
                cat.runs(where=bad)
        assert len(cat.runs()) == 4


def test_runs_cli(cli, runs_dir, tmp_path):
    out = cli("runs", runs_dir, "--where", "p = 113", "--json", check=True).stdout
    assert sorted(r["name"] for r in json.loads(out)) == ["p113_s1", "p113_s2"]
    table = cli("runs", runs_dir, check=True).stdout
    assert "4 run(s)" in table
    shutil.rmtree(runs_dir / "sweepA")
    assert "1 run(s)" in cli("runs", runs_dir, check=True).stdout
    bad = cli("runs", runs_dir, "--where", "nope(")
    assert bad.returncode == 1 and "bad --where condition" in bad.stderr
    missing = cli("runs", tmp_path / "nothing-here")
    assert missing.returncode == 1 and "no such directory" in missing.stderr


def test_key_frequencies_and_health_are_indexed_and_queryable(tmp_path):
    """The catalog reads the run's headline facts (generator/facts.py): key frequencies from
    the restricted_loss analysis (else W_E's key-frequency mask), the turn analysis' health."""
    make_run(tmp_path / "sw" / "plain.h5", 113, 1)
    keyed = tmp_path / "sw" / "keyed.h5"
    with BundleWriter(keyed, create=True) as w:
        w.write(Segment(
            context={"config": {"name": "keyed", "p": 13, "model_seed": 2}},
            session={"id": "s", "status": "complete"},
            metrics={"test_acc": (np.array([0, 10, 20]), np.array([0.1, 0.97, 0.99]))},
            artifacts={
                "restricted_loss": ArtifactUpdate("1", np.array([0, 10]),
                                                  {"restricted_loss": np.array([3.0, 0.1])},
                                                  summary={"key_freqs": np.array([4, 5])},
                                                  scalars={"key_epoch": 10}),
                "turn": ArtifactUpdate("1", scalars={"epoch": 8, "confidence": 0.8, "health": "late grokker",
                                                     "health_reason": "the turn came after 80% of the run"}),
            }))
        w.consolidate()
    masked = tmp_path / "sw" / "masked.h5"
    mask = np.zeros((2, 6), dtype=np.uint8)
    mask[-1, [1, 3]] = 1
    with BundleWriter(masked, create=True) as w:
        w.write(Segment(context={"config": {"name": "masked", "p": 13}}, session={"id": "s", "status": "complete"},
                        artifacts={"fourier_weights": ArtifactUpdate("1", np.array([0, 10]),
                                                                     {"embed_key_mask": mask},
                                                                     summary={"frequencies": np.arange(1, 7)})}))
        w.consolidate()
    with Catalog(tmp_path) as cat:
        cat.scan()
        rows = {r["name"]: r for r in cat.runs()}
        assert json.loads(rows["keyed"]["key_frequencies"]) == [4, 5]
        assert json.loads(rows["masked"]["key_frequencies"]) == [2, 4]
        assert rows["plain"]["key_frequencies"] is None
        assert rows["keyed"]["health"] == "late grokker" and rows["keyed"]["grok_epoch"] == 10
        hits = cat.runs(where="key_frequencies LIKE '%4%' AND health = 'late grokker'")
        assert [r["name"] for r in hits] == ["keyed"]
        assert {r["name"] for r in cat.runs(where="key_frequencies IS NOT NULL")} == {"keyed", "masked"}
