"""Recorder elements beyond scalars: per-step series, per-epoch arrays, growing tables and
top-k checkpoints, through flushes, crashes (unconsolidated journals) and consolidation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import epochscope
from epochscope.errors import EpochscopeError


def _open(path):
    return epochscope.open_bundle(path)


def test_log_step_keeps_a_step_beside_the_epoch_across_flushes(tmp_path):
    path = tmp_path / "r.h5"
    with epochscope.Recorder(path, consolidate_on_close=False) as rec:
        for epoch in range(3):
            for step in range(4):
                rec.log_step(epoch, step, loss=epoch + step / 10)
            rec.log(epoch, val_loss=float(epoch))
            rec.flush()  # every epoch in its own segment
    with _open(path) as b:  # read from the journal, unconsolidated
        e, v = b.series("loss")
        np.testing.assert_array_equal(e, np.repeat([0, 1, 2], 4))
        np.testing.assert_array_equal(b.series_steps("loss"), np.tile([0, 1, 2, 3], 3))
        np.testing.assert_allclose(v[:4], [0, 0.1, 0.2, 0.3])
        assert b.series_steps("val_loss") is None
    epochscope.archives.consolidate(path)
    with _open(path) as b:
        np.testing.assert_array_equal(b.series_steps("loss"), np.tile([0, 1, 2, 3], 3))
        with pytest.raises(KeyError, match="no metric series"):
            b.series_steps("nope")


def test_a_series_keeps_one_kind(tmp_path):
    with epochscope.Recorder(tmp_path / "r.h5") as rec:
        rec.log(0, loss=1.0)
        rec.flush()
        with pytest.raises(EpochscopeError, match="per epoch: use log"):
            rec.log_step(1, 0, loss=1.0)
        rec.log_step(1, 0, grad=1.0)
        with pytest.raises(EpochscopeError, match="per step: use log_step"):
            rec.log(2, grad=1.0)


def test_arrays_round_trip_per_epoch_and_refuse_a_new_shape(tmp_path):
    path = tmp_path / "r.h5"
    ages = np.zeros((2, 5), dtype=np.int64)
    with epochscope.Recorder(path) as rec:
        for epoch in (0, 10, 20):
            rec.array(epoch, "neuron_age", ages)
            ages += 10  # the recorder copied it: changing it later changes nothing stored
            rec.flush()
        with pytest.raises(ValueError, match=r"shape \(3,\)"):
            rec.array(30, "neuron_age", np.zeros(3))
        with pytest.raises(TypeError, match="earlier epochs are int64"):
            rec.array(30, "neuron_age", np.full((2, 5), 0.5))
        with pytest.raises(TypeError, match="numbers or bools"):
            rec.array(30, "names", np.array(["a"]))
    with _open(path) as b:
        assert b.array_names == ["neuron_age"]
        epochs, values = b.array("neuron_age")
        np.testing.assert_array_equal(epochs, [0, 10, 20])
        np.testing.assert_array_equal(values[:, 0, 0], [0, 10, 20])
        assert values.dtype == np.int64 and values.shape == (3, 2, 5)
        # stored as an artifact, so generic artifact readers see it too
        assert b.artifact("array.neuron_age").params == {"recorded_by": "Recorder.array"}
        with pytest.raises(KeyError, match="no recorded array 'x'; have: neuron_age"):
            b.array("x")


def test_growing_table_keeps_columns_and_dtypes(tmp_path):
    path = tmp_path / "r.h5"
    with epochscope.Recorder(path, consolidate_on_close=False) as rec:
        rec.row("samples", step=0, text="first", score=0.5, ok=True)
        rec.flush()
        rec.append_rows("samples", {"step": [1, 2], "text": ["b", "c"], "score": [1, 2], "ok": [False, True]})
        with pytest.raises(EpochscopeError, match="columns"):
            rec.row("samples", step=3, text="d")
        with pytest.raises(EpochscopeError, match="cannot store float64"):
            rec.row("samples", step=3.5, text="d", score=1.0, ok=True)
        with pytest.raises(EpochscopeError, match="holds strings"):
            rec.row("samples", step=3, text=4, score=1.0, ok=True)
    with _open(path) as b:  # two parts in the journal, merged on read
        t = b.table("samples")
        assert list(t) == ["step", "text", "score", "ok"]
        np.testing.assert_array_equal(t["step"], [0, 1, 2])
        assert t["step"].dtype == np.int64 and t["score"].dtype == np.float64 and t["ok"].dtype == bool
        assert list(t["text"]) == ["first", "b", "c"]
        np.testing.assert_array_equal(t["score"], [0.5, 1.0, 2.0])  # ints cast into the float column
    epochscope.archives.consolidate(path)
    with _open(path) as b:
        assert list(b.table("samples")["text"]) == ["first", "b", "c"]
    assert epochscope.verify_bundle(path).ok


def test_table_replace_then_append(tmp_path):
    path = tmp_path / "r.h5"
    with epochscope.Recorder(path) as rec:
        rec.row("t", a=1)
        rec.table("t", {"a": [10, 20]})  # replaces the pending row too
        rec.row("t", a=30)
    with _open(path) as b:
        np.testing.assert_array_equal(b.table("t")["a"], [10, 20, 30])


def test_appended_rows_survive_a_killed_writer(tmp_path):
    """A recorder that never closes (the process died) leaves its flushed rows readable."""
    path = tmp_path / "r.h5"
    rec = epochscope.Recorder(path, consolidate_on_close=False)
    rec.row("t", a=1)
    rec.flush()
    rec.row("t", a=2)  # not flushed: lost, as scalars would be
    rec._writer.close()  # release the lock without a final segment, as a SIGKILL would
    with _open(path) as b:
        np.testing.assert_array_equal(b.table("t")["a"], [1])
        assert b.status == "interrupted"


def _net():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def test_keep_best_top_k_evicts_and_records_ranking(tmp_path):
    path = tmp_path / "r.h5"
    net = _net()
    losses = {1: 0.9, 2: 0.5, 3: 0.7, 4: 0.2, 5: float("nan"), 6: 0.6}
    with epochscope.Recorder(path, consolidate_on_close=False) as rec:
        rec.keep_best("val_loss", k=2, mode="min")
        assert rec.checkpoint(0, net, always=True)  # kept whatever the ranking says
        kept = {}
        for epoch, loss in losses.items():
            rec.log(epoch, val_loss=loss)
            with torch.no_grad():
                net.weight.fill_(epoch)
            kept[epoch] = rec.checkpoint(epoch, net)
    assert kept == {1: True, 2: True, 3: True, 4: True, 5: False, 6: False}
    for consolidated in (False, True):
        if consolidated:
            epochscope.archives.consolidate(path)
        with _open(path) as b:
            assert b.checkpoint_epochs == [0, 2, 4]
            assert b.checkpoint_policy == {"kind": "top-k", "monitor": "val_loss", "k": 2, "mode": "min"}
            assert b.best_checkpoints == [{"epoch": 4, "score": 0.2, "rank": 1},
                                          {"epoch": 2, "score": 0.5, "rank": 2}]
            np.testing.assert_array_equal(b.checkpoint(4).state["model"]["weight"], np.full((2, 3), 4.0))


def test_keep_best_max_mode_explicit_score_and_errors(tmp_path):
    net = _net()
    with epochscope.Recorder(tmp_path / "r.h5") as rec:
        with pytest.raises(EpochscopeError, match="mode"):
            rec.keep_best("acc", mode="up")
        with pytest.raises(EpochscopeError, match="k=0"):
            rec.keep_best("acc", k=0)
        rec.keep_best("acc", k=1, mode="max")
        with pytest.raises(EpochscopeError, match="no 'acc' logged yet"):
            rec.checkpoint(1, net)
        assert rec.checkpoint(1, net, score=0.3)
        assert not rec.checkpoint(2, net, score=0.1)
        assert rec.checkpoint(3, net, score=0.8)
    with epochscope.open_bundle(tmp_path / "r.h5") as b:
        assert b.checkpoint_epochs == [3] and b.best_checkpoints[0]["score"] == 0.8


def test_keep_best_continues_its_ranking_on_resume(tmp_path):
    path = tmp_path / "r.h5"
    net = _net()
    with epochscope.Recorder(path) as rec:
        rec.keep_best("loss", k=1)
        rec.checkpoint(1, net, score=0.5)
    with epochscope.Recorder(path, resume=True) as rec:
        rec.keep_best("loss", k=1)
        assert not rec.checkpoint(2, net, score=0.7)  # worse than the stored best
        assert rec.checkpoint(3, net, score=0.4)
    with epochscope.open_bundle(path) as b:
        assert b.checkpoint_epochs == [3]
