"""The telemetry profile through the Recorder: episode, slots, counterfactuals, dense traces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import epochscope
from epochscope.archives import open_bundle, verify_bundle
from epochscope.archives import telemetry as tm
from epochscope.collectors.dense import DenseTracer, DenseTriggers

DATA = Path(__file__).parent / "data"


def test_recorder_writes_every_tier_and_reads_back(tmp_path):
    path = tmp_path / "loop.h5"

    def evaluate(alphas):
        if alphas["late"] > 0 and alphas["early"] == 0:
            raise ValueError("bad config")
        return {"val_acc": 0.8 + 0.05 * alphas["early"] + 0.01 * alphas["late"], "val_loss": 0.4}

    with epochscope.Recorder(path, config={"lr": 0.1, "seed": 3}) as rec:
        rec.episode(host_params=1234, slot_config={"early": 8, "late": 16})
        for epoch in range(1, 4):
            rec.log(epoch, train_loss=1.0 / epoch)
            rec.slots(epoch, [
                {"slot": "early", "stage": "training", "alpha": 0.5, "seed_params": 40,
                 "last_gate": "G1", "last_gate_passed": epoch > 1, "last_gate_reason": "ok"},
                {"slot": "late", "stage": "dormant", "alpha": 0.0, "seed_params": 0}])
        m = rec.counterfactual(3, evaluate, {"early": 0.5, "late": 1.0})
        rec.dense(3, "forced", batches={"loss": [0.5, 0.4, 0.3]}, arrays={"hist": np.ones((3, 4))},
                  message="look closer")
        rec.dense(3, "loss_spike", batches={"loss": [0.9]}, value=2.5, threshold=2.0)
        rec.log(4, train_loss=0.2)  # the loop goes on after a failing callback
        rec.episode(baseline={"final_host_only_accuracy": 0.75})
    assert m.errors and m.errors[0].code == "01"
    assert verify_bundle(path).ok
    with open_bundle(path) as b:
        t = tm.read_telemetry(b)
        assert t.present
        assert t.episode["host_params"] == 1234 and t.episode["baseline"]["final_host_only_accuracy"] == 0.75
        assert t.episode["telemetry_version"] == tm.TELEMETRY_VERSION
        assert list(t.slots["epoch"]) == [1, 1, 2, 2, 3, 3]
        assert list(t.slots["last_gate_passed"]) == ["fail", "", "pass", "", "pass", ""]
        assert b.series(tm.slot_series("early", "stage"))[1].tolist() == [2.0, 2.0, 2.0]
        (cf,) = t.counterfactuals
        assert cf["epoch"] == 3 and cf["slots"] == ["early", "late"] and cf["method"] == "factorial"
        assert [c["config"] for c in cf["configs"]] == ["00", "01", "10", "11"]
        assert cf["configs"][1]["error"] == "ValueError: bad config"
        assert cf["configs"][3]["alphas"] == {"early": 0.5, "late": 1.0}
        # v(01) failed: early's removal (v(11) - v(01)) and every Shapley value are NaN
        assert cf["attribution"]["late"]["removal"] == pytest.approx(0.01)
        assert math.isnan(cf["attribution"]["early"]["removal"])
        assert math.isnan(cf["attribution"]["early"]["shapley"]) and math.isnan(cf["efficiency_gap"])
        assert ("early", "late") in cf["interactions"]
        alerts = t.alerts
        assert [a["payload"]["reason"] for a in alerts] == ["counterfactual_error"]
        d1, d2 = t.dense_traces
        assert (d1["trigger"], d1["step_start"], d1["step_end"], d1["n_batches"]) == ("forced", 0, 2, 3)
        assert d1["batches"]["loss"][1].tolist() == [0.5, 0.4, 0.3]
        assert d1["arrays"]["hist"][1].shape == (3, 4)
        assert (d2["step_start"], d2["value"], d2["threshold"], d2["artifact"]) == (3, 2.5, 2.0, "")
        assert [e["payload"]["trace"] for e in b.events(tm.DENSE_EVENT)] == [1, 2]
        assert b.series("train_loss")[0].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("name", ["bundle-1.0.bundle", "bundle-1.1.bundle"])
def test_bundles_older_than_the_profile_read_as_empty_telemetry(tmp_path, name):
    with open_bundle(DATA / name) as b:
        t = tm.read_telemetry(b)
    assert not t.present and t.counterfactuals == [] and t.dense_traces == [] and t.episode == {}


def test_slot_snapshot_with_an_unknown_field_is_refused(tmp_path):
    with epochscope.Recorder(tmp_path / "r.h5") as rec:
        with pytest.raises(ValueError, match="unknown field"):
            rec.slots(1, [{"slot": "a", "stagee": "dormant"}])


class _FakeRec:
    """Collects what a DenseTracer asks the recorder to store."""

    def __init__(self):
        self.traces, self.events = [], []

    def dense(self, epoch, trigger, **kw):
        self.traces.append({"epoch": epoch, "trigger": trigger, **kw})
        return len(self.traces)

    def event(self, epoch, kind, message="", payload=None):
        self.events.append((epoch, kind, payload))


def _feed(tracer, epochs, loss=None, acc=None, grad=None, detail_shape=(2,)):
    step = 0
    for e in epochs:
        for _ in range(3):
            arrays = {"hist": np.full(detail_shape, float(e))} if tracer.detailed else None
            tracer.batch(step, e, arrays, loss=1.0)
            step += 1
        tracer.end_epoch(e, loss=(loss or {}).get(e, 1.0), accuracy=(acc or {}).get(e, 0.9),
                         grad_norm=(grad or {}).get(e, 1.0))


def test_triggers_fire_above_their_thresholds_only():
    rec = _FakeRec()
    tracer = DenseTracer(rec, "standard")
    _feed(tracer, range(1, 12), loss={6: 2.5, 8: 1.5}, acc={9: 0.84, 10: 0.80},
          grad={11: 150.0})
    reasons = [(f["epoch"], f["reason"]) for f in tracer.fired]
    # 8: 1.5x the rolling average is no spike; 9: a 6-point drop; 10: 4 points is not
    assert reasons == [(6, "loss_spike"), (9, "accuracy_drop"), (11, "gradient_explosion")]
    assert [t["epoch"] for t in rec.traces] == [6, 9, 11]
    assert all(t["arrays"] is None and len(t["steps"]) == 3 for t in rec.traces)  # standard: scalars
    alerts = [p for _, kind, p in rec.events if kind == "alert"]
    assert alerts[0]["threshold"] == pytest.approx(2.0) and alerts[0]["value"] == 2.5
    assert alerts[2]["reference"] == pytest.approx(1.0)


def test_adaptive_escalation_and_research_mode():
    rec = _FakeRec()
    tracer = DenseTracer(rec, "adaptive", calm_epochs=2)
    _feed(tracer, range(1, 10), loss={5: 5.0})
    (trace,) = rec.traces
    # the triggering epoch (scalars only) through two calm epochs with arrays
    assert (trace["epoch"], trace["end_epoch"], trace["trigger"]) == (5, 7, "loss_spike")
    assert len(trace["steps"]) == 9
    hist = trace["arrays"]["hist"]
    assert np.isnan(hist[:3]).all() and hist[3:, 0].tolist() == [6] * 3 + [7] * 3
    assert not tracer.detailed

    rec = _FakeRec()
    tracer = DenseTracer(rec, "research", DenseTriggers(loss_spike=None), force_epochs=[2])
    _feed(tracer, range(1, 4))
    assert [(t["epoch"], t["trigger"]) for t in rec.traces] == [
        (1, "research_mode"), (2, "forced"), (3, "research_mode")]
    assert all(t["arrays"]["hist"].shape == (3, 2) for t in rec.traces)

    with pytest.raises(ValueError, match="dense mode"):
        DenseTracer(rec, "always")


def test_sampling_is_announced_and_resume_keeps_rows_up_to_the_checkpoint(tmp_path, tiny_model_cls):
    import torch

    path = tmp_path / "r.h5"
    names = [f"s{i}" for i in range(6)]
    model = tiny_model_cls()
    with epochscope.Recorder(path) as rec:
        for epoch in (1, 2, 3):
            rec.slots(epoch, [{"slot": "s0", "stage": "training", "alpha": 0.1 * epoch}])
            m = rec.counterfactual(epoch, lambda a: sum(a.values()), names, permutations=5)
            if epoch == 2:
                rec.checkpoint(2, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert m.method == "sampled"
    with open_bundle(path) as b:
        (note, *_) = b.events("counterfactual_sampling")
        assert "more than the 4 a full factorial allows" in note["message"]
        assert sorted(set(b.table(tm.ATTRIBUTION_TABLE)["epoch"].tolist())) == [1, 2, 3]
        assert (b.table(tm.ATTRIBUTION_TABLE)["method"] == "sampled").all()
    with epochscope.Recorder(path, resume=True) as rec:
        assert rec.resume_epoch == 2
        rec.slots(3, [{"slot": "s0", "stage": "blending", "alpha": 0.5}])
        rec.counterfactual(3, lambda a: 2 * sum(a.values()), names[:2])
    with open_bundle(path) as b:
        t = tm.read_telemetry(b)
        assert t.slots["epoch"].tolist() == [1, 2, 3] and t.slots["stage"].tolist()[-1] == "blending"
        assert [cf["epoch"] for cf in t.counterfactuals] == [1, 2, 3]
        assert t.counterfactuals[-1]["slots"] == ["s0", "s1"] and t.counterfactuals[-1]["full"] == 4.0
