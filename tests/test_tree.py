"""Checkpoint trees (encoding `tree` 2.0) round-trip exactly, whole or by subtree."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from epochscope.archives import format as fmt

TREE = {
    "model": {"W_E": np.arange(6, dtype=np.float32).reshape(2, 3), "blocks.0.b": np.zeros(0, np.float64)},
    "optimizer": {
        "state": {"0": {"step": np.array(3.0, np.float32), "exp_avg": np.ones(4, np.float32)}},
        "param_groups": [{"lr": 1e-3, "betas": [0.9, 0.98], "params": [0]}],
    },
    "rng": {"numpy": {"kind": "MT19937", "keys": np.arange(5, dtype=np.uint32), "pos": 7,
                      "cached": None}, "flags": np.array([True, False])},
    "empty": {},
    "note": "top-level leaf",
}


def _equal(a, b):
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), (a, b)
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_round_trip_whole_and_subtree(tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f:
        fmt.write_tree(f.create_group("state"), TREE)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        g = f["state"]
        _equal(fmt.read_tree(g), TREE)
        _equal(fmt.read_tree(g, "model"), TREE["model"])
        _equal(fmt.read_tree(g, "rng/numpy"), TREE["rng"]["numpy"])
        # Only the root is tagged; inner groups are plain nesting, readable with plain h5py.
        assert g.attrs["encoding-version"] == b"2.0"
        assert "encoding-type" not in g["model"].attrs
        np.testing.assert_array_equal(f["state/model/W_E"][()], TREE["model"]["W_E"])


def test_tree_keys_are_checked(tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f, pytest.raises(ValueError, match="invalid element name"):
        fmt.write_tree(f.create_group("state"), {"a": {"b/c": np.zeros(2)}})


def test_unknown_tree_major_is_refused(tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f:
        g = f.create_group("state")
        fmt.write_tree(g, {"w": np.zeros(2)})
        fmt.set_attr_str(g, "encoding-version", "3.0")
        with pytest.raises(ValueError, match="tree encoding version 3.0"):
            fmt.read_tree(g)


def test_checkpoint_tensors_are_written_raw_after_hdf5_closes_the_segment(tmp_path):
    # BundleWriter reserves contiguous space for checkpoint tensors and pwrites their bytes once
    # HDF5 has closed the segment: every dtype must come back bit-exact, and stay exact through
    # consolidation.
    from epochscope.archives import BundleWriter, Segment, open_bundle, verify_bundle

    tensors = {
        "f32": np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32),
        "f16": np.linspace(-2, 2, 9, dtype=np.float16),
        "i64": np.arange(-3, 3, dtype=np.int64),
        "u8": np.arange(200, dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "big_endian": np.arange(4, dtype=">f8"),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "strided": np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2],
    }
    path = tmp_path / "raw.h5"
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {}}, checkpoints={3: ({}, {"model": tensors})}))
        with w.open_reader() as b:
            got = b.checkpoint(3).state["model"]
            for name, arr in tensors.items():
                assert got[name].dtype == arr.dtype.newbyteorder("<") or got[name].dtype == arr.dtype, name
                np.testing.assert_array_equal(got[name], arr, err_msg=name)
            seg = next((path.parent / (path.name + ".journal")).glob("seg-*.h5"))
        with h5py.File(seg, "r") as f:
            assert f["checkpoints/e0000000003/state/model/f32"].chunks is None  # contiguous
        w.consolidate()
    assert verify_bundle(path).ok
    with open_bundle(path) as b:
        for name, arr in tensors.items():
            np.testing.assert_array_equal(b.checkpoint(3).state["model"][name], arr, err_msg=name)
