"""The stored split, the neuron atlas, per-input analysis, neuron dynamics and probe traces."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from test_analysis_support import MODEL, P, train_bundle

from epochscope.archives import open_bundle, verify_bundle
from epochscope.collectors.analysis import AnalysisError, analyze
from epochscope.collectors.analysis.atlas import atlas_coefficients, atlas_maps
from epochscope.collectors.analysis.base import EpochData
from epochscope.collectors.analysis.dynamics import neuron_dynamics, transient_frequencies
from epochscope.collectors.analysis.fourier import (
    centre,
    frequency_energy,
    frequency_fractions,
    sum_spectra,
)
from epochscope.collectors.analysis.inputs import CLASSES, graduation
from epochscope.collectors.analysis.probe import make_probe, run_probe
from epochscope.collectors.analysis.traces import parse_probe
from epochscope.collectors.checkpoints import load_model
from epochscope.collectors.recorder import Recorder

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """A tiny trained bundle with its split recorded (as `collect` records it)."""
    return train_bundle(tmp_path_factory.mktemp("raw") / "run.h5", epochs=40, split=True)


@pytest.fixture(scope="module")
def analysed(raw, tmp_path_factory):
    path = tmp_path_factory.mktemp("an") / "run.h5"
    shutil.copy(raw, path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return path, analyze(path, probes=["mine=1+2,12+12,0+0", "test:5"])
    finally:
        torch.set_num_threads(threads)


# -- the split in the bundle ------------------------------------------------------------------


def test_split_round_trips_and_survives_consolidation(tmp_path):
    path = tmp_path / "r.h5"
    with Recorder(path, config={"name": "s"}) as rec:
        rec.split(10, {"train": [3, 1, 2], "test": [0, 4, 5, 6, 7, 8, 9]}, {"p": 0})
        rec.log(1, loss=1.0)
    with open_bundle(path) as b:  # consolidated on close
        split = b.split
    assert split["n"] == 10 and list(split["subsets"]) == ["train", "test"]
    assert split["subsets"]["train"].tolist() == [1, 2, 3]  # sorted
    assert split["meta"] == {"p": 0}
    assert verify_bundle(path).ok  # the split's datasets are in the checksum manifest


def test_threads_follow_the_load(monkeypatch):
    import os

    from epochscope.collectors.analysis.pipeline import auto_threads

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert auto_threads(3) == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert auto_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert auto_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (15.0, 15.0, 15.0))
    assert auto_threads() == 1


@pytest.mark.parametrize("subsets, why", [
    ({"train": [0, 10]}, "outside 0..9"),
    ({"train": [0, 1], "test": [1, 2]}, "overlaps"),
    ({"train": [1, 1]}, "repeats"),
])
def test_bad_split_is_refused(tmp_path, subsets, why):
    with Recorder(tmp_path / "r.h5", config={"name": "s"}) as rec, pytest.raises(ValueError, match=why):
        rec.split(10, subsets)


def test_older_bundles_have_no_split():
    for name in ("bundle-1.0.bundle", "bundle-1.1.bundle"):
        with open_bundle(DATA / name) as b:
            assert b.split is None


def test_collect_stores_the_trainers_split(tmp_path):
    from epochscope.collectors.config import TrainConfig
    from epochscope.collectors.train import split_data, train

    cfg = TrainConfig.from_dict({"name": "t", "p": 11, "d_model": 16, "n_heads": 2,
                                 "train_frac": 0.4, "epochs": 2, "data_seed": 3,
                                 "checkpoint_every": 1})
    train(cfg, tmp_path / "t.h5", progress=False, threads=1)
    with open_bundle(tmp_path / "t.h5") as b:
        split = b.split
    tx = split_data(cfg)[0]
    assert np.array_equal(split["subsets"]["train"], np.sort((tx[:, 0] * 11 + tx[:, 1]).numpy()))
    assert len(split["subsets"]["train"]) + len(split["subsets"]["test"]) == 121
    assert split["meta"]["p"] == 11


def test_analysis_never_calls_the_trainer(raw, tmp_path, monkeypatch):
    import epochscope.collectors.train as train_mod

    def boom(*a, **k):
        raise AssertionError("analysis rebuilt the split with the trainer")

    monkeypatch.setattr(train_mod, "split_data", boom)
    monkeypatch.setattr(train_mod, "split_indices", boom)
    path = tmp_path / "run.h5"
    shutil.copy(raw, path)
    res = analyze(path, analyzers=["restricted_loss", "inputs"])
    assert not res.notes
    with open_bundle(path) as b:
        assert np.isfinite(b.artifact("restricted_loss").per_epoch("restricted_loss_test")[1]).all()
        assert b.artifact("restricted_loss").scalars["excluded_on"] == "train"


def test_bundle_without_split_says_which_classes_are_unavailable(tmp_path):
    path = train_bundle(tmp_path / "old.h5", epochs=20)
    res = analyze(path, analyzers=["inputs", "restricted_loss"])
    note = " ".join(res.notes)
    assert "no train/test split" in note and "restricted_loss_test" in note
    with open_bundle(path) as b:
        art = b.artifact("inputs")
        assert art.scalars["unavailable_classes"] == ["train", "test"]
        acc = art.per_epoch("class_acc")[1]
        assert np.isnan(acc[:, CLASSES.index("train")]).all()
        assert np.isfinite(acc[:, CLASSES.index("wrap")]).all()
    with pytest.raises(AnalysisError, match="rule 'test' needs the train/test split.*unavailable"):
        analyze(path, probes=["test:3"])


# -- the neuron atlas -------------------------------------------------------------------------


@pytest.mark.parametrize("p", [13, 12])
def test_atlas_is_exact_on_maps_of_a_b_sums_and_differences(p):
    """Functions of a, b, a + b and a - b are reconstructed exactly with every frequency kept."""
    rng = np.random.default_rng(p)
    a = np.arange(p)[:, None]
    b = np.arange(p)[None, :]
    maps = []
    for _ in range(5):
        f = [rng.standard_normal(p) for _ in range(4)]
        maps.append(3.0 + f[0][a] + f[1][b] + f[2][(a + b) % p] + f[3][(a - b) % p] + 0 * a * b)
    maps = np.stack(maps)  # [n, p, p]
    flat = torch.from_numpy(maps.reshape(len(maps), -1).T.copy()).float()
    centred, mean, var = centre(flat)
    spectra = sum_spectra(centred, p)
    frac = frequency_fractions(frequency_energy(centred, p, spectra), var, mean, p)
    assert np.allclose(frac.sum(axis=1), 1.0, atol=1e-5)  # all variance in those classes
    freqs = np.tile(np.arange(1, p // 2 + 1), (len(maps), 1))
    rec = atlas_maps(mean.numpy(), freqs, atlas_coefficients(spectra, freqs, p), p)
    assert np.allclose(rec, maps, atol=1e-4)
    # keeping only the strongest frequency leaves exactly the other frequencies' share
    top = frac.argmax(axis=1)[:, None] + 1
    rec1 = atlas_maps(mean.numpy(), top, atlas_coefficients(spectra, top, p), p)
    err = ((rec1 - maps) ** 2).sum(axis=(1, 2)) / (var.numpy() * p * p)
    assert np.allclose(err, 1 - frac.max(axis=1), atol=1e-4)


def test_atlas_residual_is_the_measured_error(analysed):
    path, _ = analysed
    with open_bundle(path) as b:
        art = b.artifact("neuron_atlas")
        epochs = art.epochs
        assert art.per_epoch("coef")[1].shape == (len(epochs), MODEL["d_mlp"], 2, 8)
        assert art.per_epoch("coef")[1].dtype == np.float16
        probe = make_probe(P, b.split)
        for epoch in (int(epochs[0]), int(epochs[-1])):
            cache = run_probe(load_model(b, epoch), probe)
            maps = cache["mlp_post"].float().numpy().reshape(P, P, -1).transpose(2, 0, 1)
            rec = atlas_maps(art.at("mean", epoch), art.at("freqs", epoch), art.at("coef", epoch), P)
            var = ((maps - maps.mean(axis=(1, 2), keepdims=True)) ** 2).sum(axis=(1, 2))
            ok = var > 1e-8
            err = ((maps - rec) ** 2).sum(axis=(1, 2))[ok] / var[ok]
            stored = art.at("residual", epoch).astype(np.float64)[ok]
            assert np.abs(err - stored).max() < 5e-3, epoch  # float16 rounding only
            nf = b.artifact("neuron_freq").at("frac_explained", epoch).astype(np.float64)
            top2 = -np.sort(-nf, axis=1)[:, :2].sum(axis=1)
            assert np.allclose(stored, np.clip(1 - top2[ok], 0, 1), atol=2e-3)


# -- per-input analysis -----------------------------------------------------------------------


def test_inputs_match_the_model(analysed):
    path, _ = analysed
    with open_bundle(path) as b:
        art = b.artifact("inputs")
        epoch = int(art.epochs[-1])
        probe = make_probe(P, b.split)
        logits = run_probe(load_model(b, epoch), probe)["logits"].float()
        y = probe.labels
        correct = logits.argmax(1) == y
        assert np.array_equal(art.at("correct", epoch), correct.numpy())
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="none").numpy()
        assert np.allclose(art.at("loss", epoch), loss, rtol=1e-4, atol=1e-6)
        margin = art.at("margin", epoch).astype(np.float32)
        assert np.array_equal(margin > 0, correct.numpy())
        acc = art.at("class_acc", epoch)
        train = probe.train_idx
        assert acc[CLASSES.index("all")] == pytest.approx(correct.float().mean().item())
        assert acc[CLASSES.index("train")] == pytest.approx(correct[train].float().mean().item())
        a = np.arange(P).repeat(P)
        bb = np.tile(np.arange(P), P)
        wrap = a + bb >= P
        assert acc[CLASSES.index("wrap")] == pytest.approx(correct.numpy()[wrap].mean())
        assert art.summary("in_train").sum() == len(train)


def test_graduation_definitions():
    epochs = np.array([0, 10, 20, 30, 40])
    correct = np.array([
        [0, 0, 0, 1, 0],
        [0, 1, 0, 1, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 0, 1, 0],
        [1, 1, 1, 1, 1],
    ], dtype=bool)  # [epoch, input]
    stays, window = graduation(correct, epochs, window=3)
    # stays correct from: 20, 10, 40 (wrong at 30), 0, 40 (correct only at the last one)
    assert stays.tolist() == [20, 10, 40, 0, 40]
    # first of 3 consecutive correct checkpoints: inputs 2 and 4 never have 3 in a row
    assert window.tolist() == [20, 10, -1, 0, -1]
    never, _ = graduation(correct[:4], epochs[:4])
    assert never[4] == -1  # wrong at the last checkpoint: never graduated


def test_graduation_artifact(analysed):
    path, _ = analysed
    with open_bundle(path) as b:
        g = b.artifact("input_graduation")
        correct = b.artifact("inputs").per_epoch("correct")[1]
        grad = g.summary("graduation_epoch")
        assert grad.shape == (P * P,)
        final_ok = correct[-1]
        assert ((grad >= 0) == final_ok).all()
        share = g.per_epoch("graduated_share")[1]
        assert share.shape == (len(g.epochs), len(CLASSES))
        assert np.all(np.diff(share[:, 0]) >= 0)  # cumulative
        assert share[-1, 0] == pytest.approx(final_ok.mean())


# -- neuron dynamics ------------------------------------------------------------------------


def test_neuron_dynamics_switches_commitment_and_transients():
    epochs = np.arange(0, 100, 10)
    n, m, k = len(epochs), 40, 6
    dominant = np.ones((n, m), dtype=np.int64)
    frac = np.full((n, m), 0.9)
    frac[:2] = 0.01  # everyone uncommitted at first
    # neurons 0..9 sit on frequency 3 from epoch 20 to 50, then move to frequency 5
    dominant[2:6, :10] = 3
    dominant[6:, :10] = 5
    # neuron 39 never commits at the end
    frac[-1, 39] = 0.01
    dyn = neuron_dynamics(dominant, frac, epochs, threshold=3 / k)
    assert dyn["switch_count"][:10].tolist() == [1] * 10 and dyn["switch_count"][10:].sum() == 0
    assert set(dyn["switch_epoch"].tolist()) == {60}
    assert dyn["commitment_epoch"][0] == 60 and dyn["commitment_epoch"][20] == 20
    assert dyn["commitment_epoch"][39] == -1 and dyn["final_freq"][39] == 0
    tr = transient_frequencies(dominant, frac, epochs, k, 0.7, 0.05, 0.10)
    assert tr["transient_freq"].tolist() == [3]
    assert tr["transient_rise"][0] == 20 and tr["transient_disappear"][0] == 60
    assert tr["transient_peak_share"][0] == pytest.approx(10 / m)
    members = tr["transient_members"][tr["transient_member_offsets"][0]:tr["transient_member_offsets"][1]]
    assert members.tolist() == list(range(10))


def test_neuron_dynamics_artifact(analysed):
    path, _ = analysed
    with open_bundle(path) as b:
        nd = b.artifact("neuron_dynamics")
        nf = b.artifact("neuron_freq")
        committed = nd.per_epoch("committed_freq")[1]
        dom = nf.per_epoch("dominant_freq")[1]
        frac = nf.per_epoch("max_frac")[1]
        thr = nd.scalars["commit_threshold"]
        assert thr == pytest.approx(3 / (P // 2))
        assert np.array_equal(committed, np.where(frac >= thr, dom, 0))
        assert nd.summary("commitment_epoch").shape == (MODEL["d_mlp"],)


# -- probe traces -----------------------------------------------------------------------------


def test_trace_attribution_sums_and_lens(analysed):
    path, result = analysed
    assert {"probe_mine", "probe_test5"} <= set(result.computed)
    with open_bundle(path) as b:
        tr = b.artifact("probe_mine")
        assert tr.summary("a").tolist() == [1, 12, 0] and tr.summary("b").tolist() == [2, 12, 0]
        assert tr.scalars["spec"] == "mine=1+2,12+12,0+0"
        total = (tr.per_epoch("dla_embed")[1] + tr.per_epoch("dla_heads")[1].sum(-1)
                 + tr.per_epoch("dla_mlp")[1])
        assert np.allclose(total, tr.per_epoch("logit_centred")[1], atol=1e-4)
        mlp = (tr.per_epoch("dla_mlp_mean")[1] + tr.per_epoch("dla_mlp_freq")[1].sum(-1)
               + tr.per_epoch("dla_mlp_other")[1])
        assert np.allclose(mlp, tr.per_epoch("dla_mlp")[1], atol=1e-4)
        lens = tr.per_epoch("lens_logprob")[1]
        assert np.allclose(-lens[:, :, -1], tr.per_epoch("loss")[1], atol=1e-4)
        inputs = b.artifact("inputs")
        for i, e in enumerate(tr.epochs):
            assert np.array_equal(tr.per_epoch("correct")[1][i],
                                  inputs.at("correct", int(e))[[1 * P + 2, 12 * P + 12, 0]])
        t5 = b.artifact("probe_test5")
        idx = t5.summary("a") * P + t5.summary("b")
        assert len(idx) == 5 and not np.isin(idx, b.split["subsets"]["train"]).any()
        assert (t5.summary("in_train") == 0).all()


def test_probes_follow_new_checkpoints(raw, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(raw, path)
    first = analyze(path, probes=["3+4"], epochs=[0, 10, 20])
    name = next(n for n in first.computed if n.startswith("probe_"))
    second = analyze(path)  # no --probe: the stored probe is extended
    assert second.computed[name] == [30, 40]
    with open_bundle(path) as b:
        assert b.artifact(name).epochs.tolist() == [0, 10, 20, 30, 40]
    from epochscope.collectors.analysis import analysis_status

    status = analysis_status(path)
    assert status[name]["up_to_date"] and status[name]["epochs"] == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("spec, message", [
    ("4+x", "bad probe item '4+x'"),
    ("4+29,", "bad probe"),
    ("wrong:0", "N must be"),
    ("bad name!=1+2", "bad probe name"),
])
def test_malformed_probe(spec, message):
    with pytest.raises(AnalysisError, match=re.escape(message)):
        parse_probe(spec)


def test_probe_outside_range_and_cli(raw, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(raw, path)
    with pytest.raises(AnalysisError, match=r"b = 13 is outside 0..12"):
        analyze(path, probes=["1+13"])
    bad = run_cli("analyze", str(path), "--probe", "1+x")
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1 and "bad probe item" in bad.stderr
    ok = run_cli("analyze", str(path), "-a", "inputs", "--probe", "pair=4+5", "--probe", "wrong:3")
    assert ok.returncode == 0, ok.stderr
    with open_bundle(path) as b:
        assert {"probe_pair", "probe_wrong3"} <= set(b.artifact_names)
        assert b.artifact("probe_wrong3").scalars["resolved"]


def test_reference_margin_orders_the_wrong_rule(analysed):
    path, _ = analysed
    with open_bundle(path) as b:
        epoch = b.checkpoint_epochs[-1]
        probe = make_probe(P, b.split)
        d = EpochData(epoch, {}, cache=run_probe(load_model(b, epoch), probe), probe=probe)
        from epochscope.collectors.analysis.probe import _margin

        margin = _margin(d)
        assert (margin >= 0).mean() == pytest.approx(b.artifact("inputs").at("class_acc", epoch)[0])
