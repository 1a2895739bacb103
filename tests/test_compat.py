"""Bundles written by earlier format versions stay readable (anndata-style golden files)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from epochscope.archives import FORMAT_VERSION, open_bundle, verify_bundle

DATA = Path(__file__).with_name("data")


def test_current_format_has_a_golden_file():
    assert (DATA / f"bundle-{FORMAT_VERSION}.bundle").is_file(), "run tests/data/make_golden.py"


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_reads_golden_file(version):
    path = DATA / f"bundle-{version}.bundle"
    assert verify_bundle(path).ok
    with h5py.File(path, "r") as f:
        assert f.attrs["encoding-version"].decode() == version
    with open_bundle(path) as b:
        assert b.name == f"golden-{version}" and b.status == "complete"
        assert b.context["seeds"] == {"data_seed": 1, "model_seed": 2}
        np.testing.assert_allclose(b.series("train_loss")[1], np.linspace(2.0, 0.1, 5))
        np.testing.assert_array_equal(b.series("test_acc")[0], [0, 2, 4])
        assert b.events()[0]["payload"] == {"confidence": 0.9}
        if version >= "1.2":  # a top-k policy evicted epoch 4 in favour of epoch 5
            assert b.checkpoint_epochs == [5] and b.best_checkpoints == [{"epoch": 5, "score": 0.1, "rank": 1}]
            assert b.checkpoint_policy == {"kind": "top-k", "monitor": "train_loss", "k": 1, "mode": "min"}
            np.testing.assert_array_equal(b.series_steps("loss_step"), [0, 1, 0])
            assert b.series_steps("train_loss") is None
            assert list(b.table("candidates")["id"]) == ["a", "b", "c"]
            np.testing.assert_array_equal(b.table("candidates")["fitness"], [0.5, 0.25, 0.75])
            assert b.array_names == ["neuron_age"]
            np.testing.assert_array_equal(b.array("neuron_age")[1], [[0, 3]])
            assert list(b.table("candidates")["id"])[:2] == ["a", "b"]
            assert b.split["n"] == 6 and b.split["meta"] == {"dataset": "golden"}
            np.testing.assert_array_equal(b.split["subsets"]["test"], [1, 3, 4])
            assert b.metric_info == {"train_loss": {"direction": "min", "unit": "nats"}}
            return
        assert b.series_steps("train_loss") is None and b.checkpoint_policy is None
        assert b.array_names == [] and b.best_checkpoints == []
        ck = b.checkpoint(4)
        assert ck.meta["model_config"] == {"d": 2}
        np.testing.assert_array_equal(ck.state["model"]["W"], [[0, 1], [2, 3]])
        assert ck.state["optimizer"]["param_groups"][0]["betas"] == [0.9, 0.98]
        art = b.artifact("norms")
        assert art.scalars == {"max": 3.74} and list(art.summary("sel")) == [0, 1]
        assert list(b.table("candidates")["id"]) == ["a", "b"]
        if version != "1.0":  # tree 2.0: values below the top level, empty mappings
            assert ck.state["rng"]["numpy"]["kind"] == "MT19937"
            assert ck.state["rng"]["numpy"]["pos"] == 3
            np.testing.assert_array_equal(ck.state["rng"]["numpy"]["keys"], [0, 1, 2])
            assert ck.state["empty"] == {}


def test_reads_current_golden_file_with_checksums_everywhere():
    path = DATA / f"bundle-{FORMAT_VERSION}.bundle"
    assert verify_bundle(path).ok
    with open_bundle(path) as b:
        assert b.name == f"golden-{FORMAT_VERSION}"
        assert b.check(tensors=True) == []


def test_reads_and_consolidates_a_journal_written_by_format_1_1(tmp_path):
    """Segments of the 1.1 writer carry no per-dataset SHA-256 (only fletcher32 on chunks):
    they still read, resume and consolidate."""
    import shutil

    from epochscope.archives import BundleWriter, Segment

    path = tmp_path / "run.h5"
    shutil.copytree(DATA / "journal-1.1" / "run.h5.journal", tmp_path / "run.h5.journal")
    with h5py.File(tmp_path / "run.h5.journal" / "seg-00000002.h5", "r") as f:
        assert f.attrs["encoding-version"].decode() == "1.1"
        assert "sha256" not in f["metrics/train_loss/value"].attrs
    with open_bundle(path) as b:
        assert b.status == "interrupted"
        np.testing.assert_array_equal(b.series("train_loss")[1], [2.0, 1.5, 1.0, 0.5])
        assert b.events()[0]["payload"] == {"k": "test_acc"}
        np.testing.assert_array_equal(b.checkpoint(3).state["model"]["W"], [[0, 1], [2, 3]])
        assert list(b.table("t")["id"]) == ["a", "b"]
    assert verify_bundle(path).ok
    with BundleWriter(path, create=False) as w:  # a resume appends 1.2 segments, then consolidates
        w.write(Segment(metrics={"train_loss": (np.array([4]), np.array([0.25]))}))
        w.consolidate()
    assert verify_bundle(path).ok
    with open_bundle(path) as b:
        np.testing.assert_array_equal(b.series("train_loss")[1], [2.0, 1.5, 1.0, 0.5, 0.25])
