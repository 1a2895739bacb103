"""Turn detection on synthetic training curves: grokking shapes and runs that never grok."""

from __future__ import annotations

import numpy as np
import pytest
from test_analysis_support import grok_curve, metrics_bundle

from epochscope.archives import open_bundle
from epochscope.collectors.analysis import analyze, detect_turn

GROKKING = {
    "plain": {},
    "noisy": {"noise": 0.15},
    "logged every 50 epochs": {"every": 50},
    "slow decline on the plateau": {"slow": 0.4},
    "loss spikes": {"spikes": 10},
    "sharp cliff": {"width": 20},
    "late": {"T": 4200, "width": 80},
    "early": {"T": 700, "width": 60},
    "25k epochs": {"E": 25000, "T": 9000, "width": 600},
    "25k epochs, sparse": {"E": 25000, "T": 9000, "width": 600, "every": 100},
    "shallow floor": {"floor": 0.05},
}


def _turn(curves, **kw):
    return detect_turn(
        curves["test_loss"], train_acc=curves["train_acc"], test_acc=curves["test_acc"], **kw
    )


@pytest.mark.parametrize("name", list(GROKKING))
def test_turn_lies_between_train_acc_99_and_test_acc_95(name):
    curves = grok_curve(**GROKKING[name])
    res = _turn(curves)
    assert res.epoch is not None, res.reason
    t99, t95 = res.details["train_acc_99_epoch"], res.details["test_acc_95_epoch"]
    assert t99 < res.epoch < t95, (res.epoch, t99, t95)
    assert res.details["between_acc_marks"] is True
    assert 0.5 <= res.confidence <= 1.0
    assert res.reason is None and res.signals == ["test_loss"]


def _noise(n, seed, sd=0.05):
    return sd * np.random.default_rng(seed).standard_normal(n)


NO_TURN = {
    # never generalises: test loss stays on its memorisation plateau
    "plateau": lambda e: np.log10(4.7) + 0.2 * np.clip(e / 400, 0, 1) + _noise(len(e), 1),
    # test loss keeps rising (overfitting)
    "rising": lambda e: np.log10(4.7) + 0.5 * e / e[-1] + _noise(len(e), 2),
    # ordinary learning: falls from the start, no plateau, so no delayed generalisation
    "falls from the start": lambda e: (
        np.log10(4.7) - 2.5 * (1 - np.exp(-e / 300)) + _noise(len(e), 3)
    ),
    # a small dip only (0.6 decades)
    "partial": lambda e: np.log10(8) - 0.6 / (1 + np.exp(-(e - 3000) / 100)) + _noise(len(e), 4),
}


@pytest.mark.parametrize("name", list(NO_TURN))
def test_no_turn_is_reported_not_guessed(name):
    e = np.arange(0, 5001)
    res = detect_turn((e, 10 ** NO_TURN[name](e.astype(float))))
    assert res.epoch is None
    assert res.confidence == 0.0 and res.reason
    assert res.details["health"] == "no grokking" and res.details["health_reason"]


def test_too_few_points():
    res = detect_turn((np.arange(5), np.ones(5)))
    assert res.epoch is None and "too few" in res.reason


def test_cross_checks_raise_confidence_when_they_agree():
    curves = grok_curve(E=5000, T=2000, width=150)
    e = curves["test_loss"][0]
    # parameter velocity jumps at the turn; a second one changes far away from it
    near = (e, 0.01 * np.where(e < 2100, 1.0, 3.0) * (1 + 0.01 * np.sin(e)))
    far = (e, 0.01 * np.where(e < 400, 1.0, 3.0) * (1 + 0.01 * np.sin(e)))
    base = _turn(curves)
    agree = _turn(curves, velocity=near)
    disagree = _turn(curves, velocity=far)
    assert agree.epoch == base.epoch == disagree.epoch  # cross-checks never move the turn
    assert agree.details["cross_checks"]["velocity"]["agrees"] is True
    assert disagree.details["cross_checks"]["velocity"]["agrees"] is False
    assert agree.confidence > base.confidence > disagree.confidence
    assert agree.signals == ["test_loss", "velocity"]


def test_turn_analyzer_on_metrics_only_bundles(tmp_path):
    grok = metrics_bundle(tmp_path / "grok.h5", grok_curve(E=4000, T=1500, every=5))
    res = analyze(grok, analyzers=["turn"])
    assert res.turn["epoch"] is not None
    with open_bundle(grok) as b:
        art = b.artifact("turn")
        assert art.scalars["epoch"] == res.turn["epoch"]
        assert set(art.names) == {"log10_loss", "fit"}
        assert len(art.summary("breakpoints")) >= 1
        assert [ev["epoch"] for ev in b.events("turn")] == [res.turn["epoch"]]
    assert analyze(grok, analyzers=["turn"]).up_to_date == ["turn"]
    analyze(grok, analyzers=["turn"], force=True)
    with open_bundle(grok) as b:
        assert len(b.events("turn")) == 1  # same turn: no duplicate event

    e = np.arange(0, 3001, 5)
    flat = metrics_bundle(
        tmp_path / "flat.h5",
        {"test_loss": (e, 10 ** (0.8 + _noise(len(e), 7))), "train_loss": (e, np.exp(-e / 100.0))},
    )
    res = analyze(flat, analyzers=["turn", "cusum"])
    assert res.turn["epoch"] is None and res.turn["reason"]
    with open_bundle(flat) as b:
        assert b.artifact("turn").scalars["epoch"] is None
        assert b.events("turn") == []

    only_train = metrics_bundle(tmp_path / "train.h5", {"train_loss": (e, np.exp(-e / 100.0))})
    res = analyze(only_train, analyzers=["turn"])
    assert "test_loss" in res.skipped["turn"]


# -- the fall into generalisation, spikes, health ------------------------------------------------


def _with(curves, log_add):
    """`curves` with log_add(e) added to the log10 test loss."""
    e, v = curves["test_loss"]
    return {**curves, "test_loss": (e, v * 10 ** log_add(e.astype(float)))}


def _bump(e, at, size, width):
    """A rise of `size` decades starting at `at`, back down over `width` epochs."""
    return size * np.clip(1 - np.abs(e - at - width / 2) / (width / 2), 0, 1)


def test_later_spikes_and_refalls_never_move_the_turn():
    clean = grok_curve(E=6000, T=1500, width=80, floor=1e-3)
    base = _turn(clean)
    assert base.epoch is not None and base.details["health"] == "healthy"
    # a post-grokking spike of 4 decades, a larger secondary fall, and a spike at the very end
    later = _with(clean, lambda e: _bump(e, 3500, 4.0, 60) - 3.0 * np.clip((e - 4200) / 300, 0, 1)
                  + _bump(e, 5960, 5.0, 80))
    res = _turn(later)
    assert res.epoch == base.epoch
    assert res.details["health"] == "healthy", res.details["health_reason"]
    spikes = [s for s in res.details["spikes"] if s["series"] == "test_loss"]
    assert [s["peak_epoch"] // 20 for s in spikes] == [3530 // 20, 6000 // 20]
    assert spikes[0]["size_decades"] == pytest.approx(4.0, abs=0.3)
    assert 3530 < spikes[0]["recovery_epoch"] < 3600 and spikes[1]["recovery_epoch"] is None


def test_memorisation_slingshots_are_spikes_not_the_turn():
    curves = grok_curve(E=5000, T=2500, width=100)
    e, tr = curves["train_loss"]
    slings = _bump(e.astype(float), 900, 3.5, 30) + _bump(e.astype(float), 1700, 3.5, 30)
    curves = {**curves, "train_loss": (e, tr * 10**slings)}
    curves = _with(curves, lambda x: _bump(x, 1300, 1.5, 30))  # a test-loss spike on the plateau
    res = detect_turn(curves["test_loss"], train_acc=curves["train_acc"],
                      test_acc=curves["test_acc"], train_loss=curves["train_loss"])  # fmt: skip
    t99, t95 = res.details["train_acc_99_epoch"], res.details["test_acc_95_epoch"]
    assert t99 < 2400 < res.epoch < t95
    kinds = [(s["series"], s["peak_epoch"] // 20) for s in res.details["spikes"]]
    assert kinds == [("train_loss", 915 // 20), ("test_loss", 1315 // 20), ("train_loss", 1715 // 20)]


def test_loss_only_runs_get_a_turn_from_the_loss():
    curves = grok_curve(E=5000, T=2000, width=150)
    full = _turn(curves)
    alone = detect_turn(curves["test_loss"])
    assert alone.epoch is not None and abs(alone.epoch - full.epoch) < 250
    assert alone.epoch < full.details["test_acc_95_epoch"]
    assert alone.details["health"] == "healthy"


def _health(curves, **kw):
    res = _turn(curves, **kw)
    return res, res.details["health"], res.details["health_reason"]


def test_health_classes():
    ok = grok_curve(E=5000, T=1500, width=80)
    assert _health(ok)[1] == "healthy"
    late = grok_curve(E=5000, T=3600, width=60)
    assert _health(late)[1] == "late grokker"

    def lose(c, at, back=None):
        e, acc = c["test_acc"]
        lost = (e >= at) & ((e < back) if back else True)
        c = _with(c, lambda x: np.where((x >= at) & ((x < back) if back else True), 4.0, 0.0))
        return {**c, "test_acc": (e, np.where(lost, 0.3, acc))}

    res, health, why = _health(lose(ok, 3500))
    assert health == "degraded" and res.epoch == _turn(ok).epoch and "3500" in why
    res, health, why = _health(lose(ok, 3000, 3600))
    assert health == "rebound" and "3000" in why and res.epoch == _turn(ok).epoch
    flat = {**ok, "test_acc": (ok["test_acc"][0], np.full(len(ok["test_acc"][0]), 0.3))}
    res, health, why = _health(flat)
    assert res.epoch is None and health == "no grokking" and "95%" in why
    # without accuracy the loss decides: back to the plateau for good is degraded
    e = np.arange(0, 5001).astype(float)
    back = np.log10(8) - 3 / (1 + np.exp(-(e - 2000) / 50)) + 3 / (1 + np.exp(-(e - 3000) / 50))
    res = detect_turn((e, 10 ** (back + _noise(len(e), 5))))
    assert res.epoch is not None and 1500 < res.epoch < 2100
    assert res.details["health"] == "degraded"


def test_the_rise_into_generalisation_is_not_losing_it():
    """Test accuracy reaches 95% at G and dips right after it for less than the sustain window
    (a p=61 demo run trained here: 95.4% at 635, 64% at 655, back by 700). A median window
    centred on G mixes the rise before G with that dip and read it as "lost it at G"; losing it
    is judged only where the whole window lies after G, so this is healthy."""
    from epochscope.collectors.analysis.health import classify_health

    e = np.arange(0, 3000, 10)
    acc = np.clip(0.2 + (e - 440) / 200 * 0.75, 0.2, 1.0)  # 95% at 640, after a slow rise
    acc[(e > 640) & (e <= 690)] = 0.64  # the dip right after generalising: 50 epochs
    g = int(e[np.argmax(acc >= 0.95)])
    assert g == 640
    loss = np.where(e < 600, 0.5, -4.0).astype(float)
    kw = dict(turn=560, turn_reason=None, generalised_epoch=g, loss=(e, loss), plateau_log=0.5,
              sustain=300.0)
    health, why = classify_health(test_acc=(e, acc), **kw)
    assert health == "healthy", why
    # lost for longer than the sustain window, well after G, and back: a rebound at that epoch
    dip = acc.copy()
    dip[(e >= 1500) & (e < 2000)] = 0.5
    health, why = classify_health(test_acc=(e, dip), **kw)
    assert health == "rebound" and "lost it at epoch 1" in why, why


def test_cleanup_end_found_or_its_absence_explained():
    """A loss that levels off gives the cleanup's end; one that keeps spiking after grokking
    (the periodic slingshots of the nanda2023 runs) leaves it open, saying which loss and where."""
    from epochscope.collectors.analysis.phases import find_phases

    curves = grok_curve(E=6000, T=1500, every=5, noise=0.02)
    got = find_phases(test_loss=curves["test_loss"], train_acc=curves["train_acc"], test_acc=curves["test_acc"])
    cleanup = got["phases"][2]
    assert cleanup["start"] == got["turn_epoch"] and cleanup["end"] is not None
    assert cleanup["start"] < cleanup["end"] < 6000
    e, loss = curves["test_loss"]
    spiky = loss.copy()
    for at in range(3500, 6000, 600):  # 2-decade spikes of 50 epochs, the last at 5900-5945
        spiky[(e >= at) & (e < at + 50)] *= 100
    got = find_phases(test_loss=(e, spiky), train_acc=curves["train_acc"], test_acc=curves["test_acc"])
    cleanup = got["phases"][2]
    assert cleanup["end"] is None
    assert cleanup["reason"].startswith("not levelled off by the end of the run: the test loss is more than x2")
    assert "as late as epoch 5945" in cleanup["reason"], cleanup["reason"]
