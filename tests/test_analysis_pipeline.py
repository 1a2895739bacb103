"""End-to-end tests of `analyze` / `analysis_status` on real (tiny) bundles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_analysis_support import MODEL, P, add_checkpoint, grok_curve, metrics_bundle, train_bundle

from epochscope.archives import BundleWriter, open_bundle, verify_bundle
from epochscope.archives.journal import journal_dir
from epochscope.collectors.analysis import ANALYZERS, AnalysisError, analysis_status, analyze
from epochscope.collectors.analysis.weights import WeightNorms
from epochscope.errors import EpochscopeError

EPOCHS = [0, 10, 20, 30, 40, 50, 60]
N_FREQ = P // 2


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """A trained tiny bundle, never analysed (tests copy it)."""
    return train_bundle(tmp_path_factory.mktemp("raw") / "run.h5", grad_step_at=35)


@pytest.fixture(scope="module")
def analysed(raw, tmp_path_factory) -> tuple[Path, object]:
    """The same bundle fully analysed once (copied by tests that modify it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = _copy(raw, tmp_path_factory.mktemp("an"))
        return path, analyze(path)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add barrier waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


def test_every_analyzer_runs_once_per_checkpoint_with_one_forward_pass(analysed):
    path, result = analysed
    assert set(result.computed) == set(ANALYZERS)
    assert not result.skipped and not result.epoch_skips
    assert result.checkpoints_read == len(EPOCHS)
    # exactly one forward pass per checkpoint (the reference epoch's pass is reused)
    assert result.forward_passes == len(EPOCHS)
    for name in ANALYZERS:
        if ANALYZERS[name].consumes != "metrics":
            assert result.computed[name] == EPOCHS, name
    assert not journal_dir(path).exists()  # consolidated
    assert verify_bundle(path).ok
    assert "weight_norms" in str(result) and result.timings["total"] > 0


def test_artifact_shapes(analysed):
    path, _ = analysed
    n, d_mlp, heads = len(EPOCHS), MODEL["d_mlp"], MODEL["n_heads"]
    with open_bundle(path) as b:
        wn = b.artifact("weight_norms")
        tensors = list(wn.summary("tensors"))
        assert tensors[:2] == ["W_E", "W_K"] or "W_E" in tensors
        assert wn.per_epoch("norms")[1].shape == (n, len(tensors))
        ed = b.artifact("effective_dim")
        mats = list(ed.summary("matrices"))
        assert "W_Q" in mats and "b_in" not in mats
        assert ed.per_epoch("participation_ratio")[1].shape == (n, len(mats))
        assert ed.per_epoch("singular_values")[1].shape == (n, len(mats), max(ed.summary("ranks")))
        fw = b.artifact("fourier_weights")
        assert fw.per_epoch("embed_freq_norms")[1].shape == (n, N_FREQ)
        assert fw.per_epoch("unembed_key_mask")[1].dtype == bool
        nf = b.artifact("neuron_freq")
        frac = nf.per_epoch("frac_explained")[1]
        assert frac.shape == (n, d_mlp, N_FREQ) and frac.dtype == np.float16
        assert np.all(frac.astype(np.float32).sum(axis=2) <= 1.01)
        nm = b.artifact("neuron_maps")
        sel = nm.summary("neurons")
        assert nm.per_epoch("heatmaps")[1].shape == (n, len(sel), P, P)
        assert nm.per_epoch("heatmaps")[1].dtype == np.float16
        assert nm.scalars["selection_epoch"] == EPOCHS[-1]
        at = b.artifact("attention")
        assert at.per_epoch("to_a")[1].shape == (n, heads, P, P)
        assert at.per_epoch("dominant_freq")[1].shape == (n, heads)
        co = b.artifact("coarseness")
        assert co.per_epoch("neuron_fft_low")[1].shape == (n, d_mlp)
        assert co.per_epoch("head_gradient")[1].shape == (n, heads)
        rl = b.artifact("restricted_loss")
        assert len(rl.summary("key_freqs")) >= 1
        assert np.all(np.isfinite(rl.per_epoch("excluded_loss")[1]))
        tr = b.artifact("trajectory")
        assert tr.per_epoch("pca")[1].shape == (n, 3)
        assert isinstance(tr.scalars["self_intersects"], bool)
        # the loop measures the comparison page shows are stored here, from the stored path
        from epochscope.collectors.analysis.trajectory import loop_measures

        loops = loop_measures(tr.per_epoch("pca")[1][:, 1:3])
        for key in ("loop_area", "excursion", "path_length"):
            assert tr.scalars[key] == pytest.approx(loops[key])
        assert tr.summary("intersection_points").shape == (tr.scalars["n_intersections"], 2)
        assert len(tr.summary("explained_variance_ratio")) >= 3
        cu = b.artifact("cusum")
        assert "grad_pos" in cu.names and "val_neg" in cu.names
        assert cu.scalars["monitors"]["clip"]["series"] is None  # not logged by this run
        assert "turn" in b.artifact_names


def test_cusum_alarm_events_written_once(analysed, tmp_path):
    path, _ = analysed
    with open_bundle(path) as b:
        alarms = [e for e in b.events("cusum_alarm") if e["payload"]["monitor"] == "grad"]
    assert alarms and 35 <= alarms[0]["epoch"] <= 40
    copy = _copy(path, tmp_path)
    analyze(copy, analyzers=["cusum"], force=True)
    with open_bundle(copy) as b:
        assert len(b.events("cusum_alarm")) == len(
            [e for e in open_bundle(path).events("cusum_alarm")]
        )


def test_rerun_is_a_no_op_and_status_is_complete(analysed):
    path, _ = analysed
    again = analyze(path)
    assert again.checkpoints_read == 0 and again.forward_passes == 0
    assert set(again.up_to_date) == set(ANALYZERS) and not again.computed
    status = analysis_status(path)
    assert set(status) == set(ANALYZERS)
    for name, entry in status.items():
        assert entry["up_to_date"], (name, entry)
        assert entry["missing"] == []
        assert entry["version"] == ANALYZERS[name].version
    assert status["neuron_freq"]["epochs"] == EPOCHS


def test_incremental_only_new_epochs(analysed, tmp_path):
    path, _ = analysed
    copy = _copy(path, tmp_path)
    with open_bundle(copy) as b:
        neurons = b.artifact("neuron_maps").summary("neurons").tolist()
    add_checkpoint(copy, 70)
    status = analysis_status(copy)
    assert status["neuron_freq"]["missing"] == [70] and not status["trajectory"]["up_to_date"]
    res = analyze(copy)
    assert res.computed["neuron_freq"] == [70] and res.computed["weight_norms"] == [70]
    assert res.computed["trajectory"] == [*EPOCHS, 70]  # PCA basis depends on all checkpoints
    assert res.forward_passes == 1  # neuron selection / key frequencies reused, no reference pass
    with open_bundle(copy) as b:
        assert b.artifact("neuron_freq").epochs.tolist() == [*EPOCHS, 70]
        assert b.artifact("neuron_maps").summary("neurons").tolist() == neurons
        assert b.artifact("trajectory").per_epoch("pca")[1].shape == (len(EPOCHS) + 1, 3)


def test_force_and_version_change_replace(analysed, tmp_path, monkeypatch):
    path, _ = analysed
    copy = _copy(path, tmp_path)
    res = analyze(copy, analyzers=["neuron_maps", "weight_norms"], force=True)
    assert res.computed == {"neuron_maps": EPOCHS, "weight_norms": EPOCHS}
    monkeypatch.setattr(WeightNorms, "version", "99")
    assert analysis_status(copy)["weight_norms"]["up_to_date"] is False
    res = analyze(copy, analyzers=["weight_norms"])
    assert res.computed["weight_norms"] == EPOCHS
    with open_bundle(copy) as b:
        art = b.artifact("weight_norms")
        assert art.version == "99"
        epochs, norms = art.per_epoch("norms")
        assert epochs.tolist() == EPOCHS and len(norms) == len(EPOCHS)


def test_epochs_subset_then_rest(raw, tmp_path):
    path = _copy(raw, tmp_path)
    res = analyze(
        path, analyzers=["weight_norms", "neuron_freq"], epochs=[0, 20, 999], prefetch=False
    )
    assert res.forward_passes == 2
    assert res.computed["weight_norms"] == [0, 20] and any("999" in n for n in res.notes)
    assert analysis_status(path)["weight_norms"]["missing"] == [10, 30, 40, 50, 60]
    res = analyze(path, analyzers=["weight_norms", "neuron_freq"])
    assert res.computed["weight_norms"] == [10, 30, 40, 50, 60]


def test_prefetch_gives_the_same_artifacts(analysed, raw, tmp_path):
    """Reading + forward in a background thread changes the timing, never the results."""
    path = _copy(raw, tmp_path)
    res = analyze(path, prefetch=True)
    assert res.forward_passes == len(EPOCHS) and set(res.computed) == set(ANALYZERS)
    with open_bundle(analysed[0]) as ref, open_bundle(path) as b:
        for name in ANALYZERS:
            want, got = ref.artifact(name), b.artifact(name)
            assert got.names == want.names, name
            for key in want.names:
                e0, v0 = want.per_epoch(key)
                e1, v1 = got.per_epoch(key)
                assert np.array_equal(e0, e1) and np.array_equal(v0, v1, equal_nan=True), key


def test_unknown_analyzer_lists_valid_ones(analysed):
    path, _ = analysed
    with pytest.raises(EpochscopeError) as err:
        analyze(path, analyzers=["weight_norms", "nope"])
    assert "'nope'" in str(err.value) and "neuron_freq" in str(err.value)
    assert "\n" not in str(err.value)


def test_refuses_bundle_being_written(analysed, tmp_path):
    path, _ = analysed
    copy = _copy(path, tmp_path)
    with BundleWriter(copy, create=False):
        with pytest.raises(AnalysisError, match="being written"):
            analyze(copy)


def test_nan_checkpoint_is_skipped_with_reason(analysed, tmp_path):
    path = _copy(analysed[0], tmp_path)
    add_checkpoint(path, 70, nan="W_in")
    add_checkpoint(path, 80)
    res = analyze(path)
    assert list(res.epoch_skips) == [70] and "W_in" in res.epoch_skips[70]
    assert res.computed["neuron_freq"] == [80]
    with open_bundle(path) as b:
        assert "70" in b.artifact("neuron_freq").scalars["skipped"]
        assert b.artifact("trajectory").epochs.tolist() == [*EPOCHS, 80]
        assert "70" in b.artifact("trajectory").scalars["skipped"]
    status = analysis_status(path)
    assert status["neuron_freq"]["missing"] == [] and "70" in status["neuron_freq"]["skipped"]
    assert analyze(path).checkpoints_read == 0  # the skip is remembered


def test_checkpoint_failing_strict_load_names_epoch(analysed, raw, tmp_path):
    path = _copy(analysed[0], tmp_path)
    add_checkpoint(path, 70)
    add_checkpoint(path, 80, drop="W_in")
    with pytest.raises(EpochscopeError, match="epoch 80.*W_in"):
        analyze(path)
    # the batches before the bad checkpoint were kept (crash-safe), and consolidated
    assert not journal_dir(path).exists()
    assert 70 in analysis_status(path)["weight_norms"]["epochs"]
    first = tmp_path / "first.h5"
    shutil.copy(raw, first)
    add_checkpoint(first, 70, reshape="W_out")
    with pytest.raises(EpochscopeError, match="epoch 70.*W_out"):
        analyze(first, analyzers=["neuron_freq"], epochs=[70])


def test_metrics_only_bundle(tmp_path):
    path = metrics_bundle(tmp_path / "ingested.h5", grok_curve(E=3000, T=1200, every=10))
    res = analyze(path)
    assert set(res.computed) == {"cusum", "turn", "phases"}
    # analyzers of stored per-checkpoint artifacts say which artifact they lack
    derived = {"neuron_dynamics": "neuron_freq", "input_graduation": "inputs"}
    for name, why in res.skipped.items():
        if name in derived:
            assert f"`{derived[name]}` artifact" in why
        else:
            assert why == "the bundle has no checkpoints", name
    assert len(res.skipped) == len(ANALYZERS) - 3
    assert res.turn["epoch"] is not None
    with open_bundle(path) as b:
        turn = b.artifact("turn").scalars
        assert turn["epoch"] == res.turn["epoch"] and turn["method"]
        assert turn["health"] == "healthy" and turn["health_reason"].endswith(".")
        events = b.events("turn")
        assert [e["epoch"] for e in events] == [turn["epoch"]]
        phases = b.artifact("phases").scalars["phases"]
        assert [p["phase"] for p in phases] == ["memorisation", "circuit formation", "cleanup"]
        assert phases[1]["end"] == turn["epoch"] == phases[2]["start"]
    status = analysis_status(path)
    assert status["turn"]["up_to_date"] and not status["neuron_freq"]["applicable"]


def test_unregistered_model_runs_weight_analyzers_only(raw, tmp_path, monkeypatch):
    path = _copy(raw, tmp_path)
    from epochscope.collectors import checkpoints

    monkeypatch.setattr(checkpoints, "_REGISTRY", {})
    monkeypatch.setattr(checkpoints, "_import_builtin_models", lambda: None)
    res = analyze(path, analyzers=["weight_norms", "trajectory", "neuron_freq"])
    assert "weight_norms" in res.computed and "trajectory" in res.computed
    assert "not registered" in res.skipped["neuron_freq"]
