"""The morphogenesis experiment: tiny real runs on the digits, into real bundles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from epochscope.archives import open_bundle, verify_bundle
from epochscope.archives import telemetry as tm
from epochscope.collectors.checkpoints import load_model
from epochscope.collectors.experiments import morphogenesis as mg
from epochscope.errors import EpochscopeError

pytestmark = pytest.mark.slow

# germinate as soon as possible, short stages: every stage is reached within a few epochs
TINY = {"epochs": 9, "warmup_epochs": 1, "plateau_delta": 100.0, "train_epochs": 1,
        "blend_epochs": 2, "embargo_epochs": 1, "cf_every": 1, "batch_size": 128}
TIMING = ("counterfactual.seconds",)


def _run(tmp_path, name, **over):
    cfg = mg.config_from({**TINY, **over, "name": name})
    return mg.run(cfg, tmp_path / f"{name}.h5", progress=False)


def test_tiny_run_records_every_tier_and_replays(tmp_path):
    res = _run(tmp_path, "tiny")
    path = res.bundle_path
    assert verify_bundle(path).ok
    with open_bundle(path) as b:
        t = tm.read_telemetry(b)
        ep = t.episode
        assert ep["host_params"] == mg.param_count(mg.Host((4, 8), 16))
        assert ep["slot_config"] == {"early": 4, "mid": 8, "late": 16}
        base = ep["baseline"]
        assert base["final_host_only_accuracy"] == b.series("host_only.val_acc")[1][-1]
        assert 0 < base["initial_accuracy"] < 0.5 and ep["initial_checkpoint_epoch"] == 0
        # tier 2: one row per slot and epoch, stages from the lifecycle
        assert len(t.slots["epoch"]) == 3 * 9
        stages = {(e["payload"]["from"], e["payload"]["to"]) for e in t.stage_transitions}
        assert {("dormant", "germinated"), ("germinated", "training"), ("training", "blending")} <= stages
        assert any(to in ("fossilised", "culled") for _, to in stages)
        for name in ("train_loss", "val_acc", "host_only.val_acc", "accuracy_delta", "param_ratio",
                     "efficiency_ratio", "params.total", "grad_norm.host", "slot.early.alpha",
                     "slot.early.stage", "grad_norm.early", "isolation_leakage"):
            assert name in b.series_names, name
        # before the first seed blends in, the model IS the host-only baseline (same init and order)
        assert b.series("val_acc")[1][0] == b.series("host_only.val_acc")[1][0]
        delta = b.series("val_acc")[1] - b.series("host_only.val_acc")[1]
        assert np.array_equal(delta, b.series("accuracy_delta")[1])
        # counterfactuals: the efficiency axiom at every matrix; gates cite the matrix
        assert t.counterfactuals
        for cf in t.counterfactuals:
            assert len(cf["configs"]) == 2 ** len(cf["slots"])
            assert abs(cf["efficiency_gap"]) < 1e-9
        assert all(g["payload"]["gate"] in ("G0", "G1", "G2") for g in t.gates)
        # tier 3: stage transitions triggered dense traces with per-batch arrays
        assert t.dense_traces and all("stage_transition" in d["reasons"] or d["reasons"] for d in t.dense_traces)
        withart = [d for d in t.dense_traces if d["arrays"]]
        assert withart and withart[0]["arrays"]["grad_hist"][1].shape[1:] == (4, 24)
        # the stored final model evaluates to the recorded validation accuracy
        model = load_model(b, 9)
        cfg = mg.config_from(TINY)
        x, y = mg.load_data(cfg)["val"]
        acc = float((model(x).argmax(1) == y).float().mean())
        assert acc == b.series("val_acc")[1][-1]
        assert model.config["seeds"] == {k: v.split("-")[-1] for k, v in ep["final"]["seeds"].items()}
    assert res.counterfactual_evaluations > 0 and res.counterfactual_seconds > 0
    assert "vs host-only" in res.describe()


def test_same_seeds_same_bits_and_a_loss_spike_escalates(tmp_path):
    """Two runs with an injected lr spike: bit-identical, and the spike is caught."""
    a = _run(tmp_path, "a", lr_spike_epoch=6, lr_spike_factor=300.0)
    b = _run(tmp_path, "b", lr_spike_epoch=6, lr_spike_factor=300.0)
    with open_bundle(a.bundle_path) as ba, open_bundle(b.bundle_path) as bb:
        assert ba.series_names == bb.series_names
        for name in ba.series_names:
            if name in TIMING:
                continue
            ea, va = ba.series(name)
            eb, vb = bb.series(name)
            assert np.array_equal(ea, eb) and va.tobytes() == vb.tobytes(), name
        assert ba.table_names == bb.table_names
        for name in ba.table_names:
            ta, tb = ba.table(name), bb.table(name)
            for col in ta:
                if col == "seconds" or (name == tm.EPISODE_TABLE and col == "value"):
                    continue
                assert np.array_equal(ta[col], tb[col], equal_nan=ta[col].dtype.kind == "f"), (name, col)
        for kind in (tm.STAGE_EVENT, tm.GATE_EVENT, tm.ALERT_EVENT, tm.DENSE_EVENT):
            assert ba.events(kind) == bb.events(kind)
        for art in ba.artifact_names:
            pa, pb = ba.artifact(art), bb.artifact(art)
            for n in pa.names:
                assert pa.per_epoch(n)[1].tobytes() == pb.per_epoch(n)[1].tobytes()
        ma, mb = ba.checkpoint(9).state["model"], bb.checkpoint(9).state["model"]
        assert all(ma[k].tobytes() == mb[k].tobytes() for k in ma)
        ea, eb = tm.read_telemetry(ba).episode, tm.read_telemetry(bb).episode
        assert ea["episode_id"] != eb["episode_id"] and ea["final"] == eb["final"]

        t = tm.read_telemetry(ba)
        reasons = {x["payload"]["reason"] for x in t.alerts if x["epoch"] in (6, 7)}
        assert reasons & {"loss_spike", "accuracy_drop", "gradient_explosion"}, reasons
        spike = [d for d in t.dense_traces if d["epoch_start"] <= 6 <= d["epoch_end"]]
        assert spike and spike[0]["arrays"]  # escalated: arrays captured after the trigger
        loss = spike[0]["batches"]["loss"][1]
        assert len(loss) == spike[0]["n_batches"] and np.isfinite(loss).all()


def test_planted_do_nothing_seed_gets_zero_and_is_culled(tmp_path):
    """Also in research mode: every epoch traced, per-class counterfactual accuracies."""
    res = _run(tmp_path, "planted", blueprints={"early": ["noop"], "mid": ["bottleneck"], "late": ["norm"]},
               dense_mode="research")
    with open_bundle(res.bundle_path) as b:
        t = tm.read_telemetry(b)
        assert [d["epoch_start"] for d in t.dense_traces] == list(range(1, 10))
        assert all(d["arrays"] and d["mode"] == "research" for d in t.dense_traces)
        assert "metric.val_class_7_acc" in b.table(tm.COUNTERFACTUAL_TABLE)
        seen = [cf for cf in t.counterfactuals if "early" in cf["slots"]]
        assert seen
        for cf in seen:
            a = cf["attribution"]["early"]
            assert a["shapley"] == 0.0 and a["removal"] == 0.0 and a["marginal"] == 0.0
        g1 = [g for g in t.gates if g["payload"]["slot"] == "early" and g["payload"]["gate"] == "G1"]
        assert g1 and g1[0]["payload"]["passed"] is False
        culled = [e for e in t.stage_transitions if e["payload"]["slot"] == "early" and e["payload"]["to"] == "culled"]
        assert culled
        assert any(a["payload"]["reason"] == "gate_failure" for a in t.alerts)


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    pixels, labels = mg._digits()
    d = load_digits()
    assert np.array_equal(pixels, d.data) and np.array_equal(labels, d.target)


def test_bad_config_is_one_clear_error():
    with pytest.raises(EpochscopeError, match="unknown morphogenesis config key 'epoch'"):
        mg.config_from(["epoch=3"])
    with pytest.raises(EpochscopeError, match="unknown blueprint"):
        mg.config_from({"blueprints": {"early": ["attention"]}})
    with pytest.raises(EpochscopeError, match="dense_mode"):
        mg.config_from(["dense_mode=always"])
    assert mg.config_from(["channels=[2,4]", "dense_mode=research", "lr_spike_epoch=none"]).channels == (2, 4)


def test_collect_experiment_cli(tmp_path, cli):
    out = tmp_path / "m.h5"
    proc = cli("collect", "--experiment", "morphogenesis", "-o", out, "--quiet", "epochs=2", "cf_every=1")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "host-only" in proc.stdout
    with open_bundle(out) as b:
        assert b.config["experiment"] == "morphogenesis" and b.name == "m"
    bad = cli("collect", "--experiment", "morphogenesis", "-o", tmp_path / "x.h5", "epochs=two", "bogus=1")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "bogus" in bad.stderr
    assert not (tmp_path / "x.h5").exists()
    with open_bundle(out) as b:
        assert math.isfinite(b.series("val_acc")[1][-1])
