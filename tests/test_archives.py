"""Round trips of every bundle group, checksums, format versions, bad inputs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from epochscope.archives import (
    ArtifactUpdate,
    BundleError,
    BundleLockedError,
    BundleWriter,
    NewerFormatError,
    NotABundleError,
    Segment,
    open_bundle,
    verify_bundle,
)
from epochscope.archives.format import FORMAT_NAME, FORMAT_VERSION


def _write_full(path, consolidate=True):
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {"name": "full", "p": 7, "lr": 1e-3, "betas": [0.9, 0.98]},
                                 "seeds": {"data_seed": 1, "model_seed": 2},
                                 "environment": {"torch": "2.13.0", "git": {"commit": "abc", "dirty": True}}},
                        session={"id": "s1", "status": "running"}))
        w.write(Segment(metrics={"loss": (np.arange(3), np.array([3.0, 2.0, 1.0])),
                                 "acc": (np.array([0, 2]), np.array([0.1, 0.9]))},
                        events=[{"epoch": 1, "kind": "activation_switch", "message": "gelu -> silu",
                                 "payload": {"from": "gelu", "to": "silu"}}]))
        w.write(Segment(metrics={"loss": (np.array([3, 4]), np.array([0.5, 0.25]))},
                        checkpoints={0: ({"model_config": {"d": 2}}, {"model": {"w": np.eye(2, dtype=np.float32)},
                                                                    "rng": {"s": np.arange(5, dtype=np.uint8)},
                                                                    "hyper": {"lr": 0.1, "betas": [0.9, 0.98]}}),
                                     4: ({"model_config": {"d": 2}}, {"model": {"w": 2 * np.eye(2, dtype=np.float32)}})},
                        artifacts={"norms": ArtifactUpdate(version="1", epochs=np.array([0, 4]),
                                                           per_epoch={"w": np.array([[1.0, 2.0], [3.0, 4.0]]),
                                                                      "map": np.ones((2, 3, 3), np.float16)},
                                                           summary={"mean": np.array([2.5])},
                                                           scalars={"best": 4, "note": "ok"},
                                                           params={"k": 3})},
                        tables={"candidates": {"id": np.array(["gen0_silu_1", "gen1_gelu_2"]),
                                               "fitness": np.array([0.5, 0.75]),
                                               "steps": np.array([20, 40], dtype=np.int64),
                                               "alive": np.array([True, False])}}))
        w.write(Segment(session={"id": "s1", "status": "complete", "ended": "now"}))
        if consolidate:
            w.consolidate()


@pytest.mark.parametrize("consolidate", [True, False])
def test_round_trip_every_group(tmp_path, consolidate):
    path = tmp_path / "full.h5"
    _write_full(path, consolidate)
    with open_bundle(path) as b:
        assert b.name == "full"
        assert b.status == "complete"
        assert b.context["config"] == {"name": "full", "p": 7, "lr": 1e-3, "betas": [0.9, 0.98]}
        assert b.context["seeds"] == {"data_seed": 1, "model_seed": 2}
        assert b.context["environment"]["git"] == {"commit": "abc", "dirty": True}
        e, v = b.series("loss")
        np.testing.assert_array_equal(e, [0, 1, 2, 3, 4])
        np.testing.assert_array_equal(v, [3.0, 2.0, 1.0, 0.5, 0.25])
        assert e.dtype == np.int64 and v.dtype == np.float64
        np.testing.assert_array_equal(b.series("acc")[0], [0, 2])
        assert b.checkpoint_epochs == [0, 4]
        ck = b.checkpoint(0)
        assert ck.meta == {"model_config": {"d": 2}}
        np.testing.assert_array_equal(ck.state["model"]["w"], np.eye(2))
        assert ck.state["model"]["w"].dtype == np.float32
        assert ck.state["hyper"] == {"lr": 0.1, "betas": [0.9, 0.98]}
        assert ck.state["rng"]["s"].dtype == np.uint8
        assert b.events() == [{"epoch": 1, "kind": "activation_switch", "message": "gelu -> silu",
                               "payload": {"from": "gelu", "to": "silu"}}]
        art = b.artifact("norms")
        assert art.version == "1" and art.params == {"k": 3}
        np.testing.assert_array_equal(art.epochs, [0, 4])
        np.testing.assert_array_equal(art.per_epoch("w")[1], [[1.0, 2.0], [3.0, 4.0]])
        assert art.per_epoch("map")[1].dtype == np.float16
        np.testing.assert_array_equal(art.at("w", 4), [3.0, 4.0])
        assert art.scalars == {"best": 4, "note": "ok"}
        np.testing.assert_array_equal(art.summary("mean"), [2.5])
        t = b.table("candidates")
        assert list(t) == ["id", "fitness", "steps", "alive"]
        assert list(t["id"]) == ["gen0_silu_1", "gen1_gelu_2"]
        assert t["steps"].dtype == np.int64 and t["alive"].dtype == np.bool_
    assert verify_bundle(path).ok


def test_every_group_carries_encoding_type_and_version(tmp_path):
    path = tmp_path / "full.h5"
    _write_full(path)
    with h5py.File(path, "r") as f:
        def text(value):
            return value.decode() if isinstance(value, bytes) else value

        assert text(f.attrs["encoding-type"]) == FORMAT_NAME
        assert text(f.attrs["encoding-version"]) == FORMAT_VERSION
        assert "epochscope-version" in f.attrs
        missing = []

        def visit(name, obj):
            tagged = "encoding-type" in obj.attrs and "encoding-version" in obj.attrs
            # Groups inside a checkpoint's tree are plain nesting: the tree's root is tagged.
            in_tree = "/state/" in f"/{name}"
            if isinstance(obj, h5py.Group) and not tagged and not in_tree:
                missing.append(name)
            if isinstance(obj, h5py.Dataset) and "sha256" not in obj.attrs:
                missing.append(name + " (sha256)")

        f.visititems(visit)
        assert missing == []


def test_artifacts_merge_incrementally_and_replace_on_force(tmp_path):
    path = tmp_path / "a.h5"
    _write_full(path)
    with BundleWriter(path, create=False) as w:
        w.write(Segment(artifacts={"norms": ArtifactUpdate(version="1", epochs=np.array([2]),
                                                           per_epoch={"w": np.array([[9.0, 9.0]]),
                                                                      "map": np.zeros((1, 3, 3), np.float16)})}))
        w.consolidate()
    with open_bundle(path) as b:
        eps, w_ = b.artifact("norms").per_epoch("w")
        np.testing.assert_array_equal(eps, [0, 2, 4])
        np.testing.assert_array_equal(w_[1], [9.0, 9.0])
    with BundleWriter(path, create=False) as w:
        w.write(Segment(artifacts={"norms": ArtifactUpdate(version="2", epochs=np.array([4]),
                                                           per_epoch={"w": np.array([[7.0, 7.0]])},
                                                           replace=True)}))
    with open_bundle(path) as b:
        art = b.artifact("norms")
        assert art.version == "2"
        np.testing.assert_array_equal(art.epochs, [4])
        assert art.names == ["w"]


def test_flipped_byte_in_data_is_detected(tmp_path):
    path = tmp_path / "flip.h5"
    _write_full(path)
    with h5py.File(path, "r") as f:
        dset = f["metrics/loss/value"]
        offset = dset.id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 3] ^= 0x40
    path.write_bytes(bytes(data))
    report = verify_bundle(path)
    assert not report.ok
    assert any("metrics/loss/value" in p for p in report.problems)


def test_flipped_byte_in_unchunked_scalar_is_caught_by_sha256(tmp_path):
    path = tmp_path / "flip2.h5"
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {}},
                        checkpoints={1: ({}, {"step": np.array(123456789.0)})}))
        w.consolidate()
    with h5py.File(path, "r") as f:
        offset = f["checkpoints/e0000000001/state/step"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_bundle(path)
    assert not report.ok and any("SHA-256" in p for p in report.problems)


def test_damage_to_a_checkpoint_survives_later_consolidations(tmp_path):
    # Consolidation keeps the checksums of checkpoints copied from the main file (it does not
    # rehash them), so damage done between consolidations is still reported afterwards.
    path = tmp_path / "damaged.h5"
    _write_full(path)
    with h5py.File(path, "r") as f:
        dset = f["checkpoints/e0000000004/state/model/w"]
        offset = dset.id.get_offset()  # checkpoint tensors are contiguous
        before = dset.attrs["sha256"]
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0x10
    path.write_bytes(bytes(data))
    with BundleWriter(path, create=False) as w:
        w.write(Segment(metrics={"loss": (np.array([5]), np.array([0.1]))}))
        w.consolidate()
    with h5py.File(path, "r") as f:
        assert f["checkpoints/e0000000004/state/model/w"].attrs["sha256"] == before
        assert f["metrics/loss/value"].attrs["sha256"]  # rewritten data is hashed anew
    report = verify_bundle(path)
    assert not report.ok
    assert any("e0000000004/state/model/w" in p for p in report.problems)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "new.h5"
    _write_full(path)
    with h5py.File(path, "r+") as f:
        f.attrs["encoding-version"] = "2.0"  # even as h5py's default variable-length string
    with pytest.raises(NewerFormatError, match="newer than this epochscope reads"):
        open_bundle(path)


def test_newer_element_version_is_refused(tmp_path):
    path = tmp_path / "new2.h5"
    _write_full(path)
    with h5py.File(path, "r+") as f:
        f["metrics/loss"].attrs["encoding-version"] = "3.0"
    with pytest.raises(ValueError, match="newer than this epochscope reads"):
        open_bundle(path)


def test_not_hdf5_and_not_a_bundle(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(NotABundleError, match="not an HDF5 file"):
        open_bundle(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(NotABundleError, match="not an epochscope bundle"):
        open_bundle(other)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "full.h5"
    _write_full(path)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(BundleError, match="truncated or corrupt"):
        open_bundle(cut)
    assert not verify_bundle(cut).ok


def test_journal_only_bundle_reads_and_stray_tmp_is_ignored(tmp_path):
    path = tmp_path / "half.h5"
    _write_full(path, consolidate=False)
    assert not path.exists()
    jdir = tmp_path / "half.h5.journal"
    (jdir / ".seg-00000099.h5.123.tmp").write_bytes(b"\x89HDF\r\n\x1a\ngarbage")
    with open_bundle(path) as b:
        assert len(b.segments) == 4 and b.checkpoint_epochs == [0, 4]
    assert verify_bundle(path).ok


def test_existing_output_is_refused_unless_overwrite_and_left_intact(tmp_path):
    path = tmp_path / "full.h5"
    _write_full(path)
    before = path.read_bytes()
    with pytest.raises(BundleError, match="already exists"):
        BundleWriter(path, create=True)
    assert path.read_bytes() == before
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": {"name": "new"}}))
        w.consolidate()
    with open_bundle(path) as b:
        assert b.name == "new" and b.series_names == []


def test_missing_output_directory_and_second_writer(tmp_path):
    with pytest.raises(BundleError, match="output directory does not exist"):
        BundleWriter(tmp_path / "nope" / "x.h5", create=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BundleError, match="output directory does not exist"):
        BundleWriter(tmp_path / "afile" / "x.h5", create=True)
    path = tmp_path / "locked.h5"
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {}}))
        with pytest.raises(BundleLockedError, match="being written by another process"):
            BundleWriter(path, create=False)
        with open_bundle(path) as b:
            assert b.status == "running" and b.being_written


def test_bad_element_names_are_refused(tmp_path):
    with BundleWriter(tmp_path / "n.h5", create=True) as w:
        with pytest.raises(ValueError, match="invalid element name"):
            w.write(Segment(metrics={"a/b": (np.arange(1), np.ones(1))}))


def test_nonfinite_metrics_are_kept_and_flagged(tmp_path):
    path = tmp_path / "nan.h5"
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {}}, metrics={"loss": (np.arange(3), np.array([1.0, np.nan, np.inf]))}))
        w.consolidate()
    with open_bundle(path) as b:
        v = b.series("loss")[1]
        assert np.isnan(v[1]) and np.isinf(v[2])
    report = verify_bundle(path)
    assert report.ok and any("non-finite" in w for w in report.warnings)


def test_overwrite_keeps_the_old_bundle_until_the_new_one_is_consolidated(tmp_path):
    path = tmp_path / "full.h5"
    _write_full(path)
    before = path.read_bytes()
    w = BundleWriter(path, create=True, overwrite=True)
    w.write(Segment(context={"config": {"name": "replacement"}}))
    w.close()  # the writer dies before consolidating
    assert path.read_bytes() == before  # old main file untouched on disk
    with open_bundle(path) as b:  # readers see the new run only: the reset segment wins
        assert b.name == "replacement" and b.series_names == [] and b.checkpoint_epochs == []
    w = BundleWriter(path, create=False)
    w.consolidate()
    w.close()
    with open_bundle(path) as b:
        assert b.name == "replacement" and not b.segments
