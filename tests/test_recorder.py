"""The Recorder API, strict checkpoint loading, exact optimizer/RNG restore."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import epochscope
from epochscope.collectors.checkpoints import (
    CheckpointMismatchError,
    load_model,
    restore_checkpoint,
)
from epochscope.errors import EpochscopeError


def _train_steps(model, opt, steps):
    losses = []
    for _ in range(steps):
        x = torch.randn(16, 4)  # draws from the global torch RNG: restore must bring it back
        noise = np.random.rand() + random.random()
        loss = (model(x) ** 2).mean() + noise * 0
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_three_line_recorder_round_trip(tmp_path, tiny_model_cls):
    torch.manual_seed(0)
    model = tiny_model_cls()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.98))
    path = tmp_path / "runs" / "my-run.h5"
    path.parent.mkdir()
    with epochscope.Recorder(path, config={"lr": 1e-2, "seed": 0}) as rec:
        for epoch in range(6):
            (loss,) = _train_steps(model, opt, 1)
            rec.log(epoch, train_loss=loss, test_loss=loss * 2)
            if epoch % 2 == 1:
                rec.checkpoint(epoch, model, opt)
        rec.event(3, "activation_switch", "gelu -> silu", payload={"from": "gelu", "to": "silu"})
    with epochscope.open_bundle(path) as b:
        assert b.name == "my-run"  # no config name: the file's stem
        assert b.status == "complete"
        assert b.series_names == ["test_loss", "train_loss"]
        assert len(b.series("train_loss")[0]) == 6
        assert b.checkpoint_epochs == [1, 3, 5]
        assert b.events()[0]["payload"] == {"from": "gelu", "to": "silu"}
        env = b.context["environment"]
        for key in ("python", "torch", "numpy", "h5py", "platform", "device", "host", "argv", "started"):
            assert key in env, key
        assert b.context["seeds"] == {"seed": 0}
        assert b.sessions[0]["ended"]
        meta = b.checkpoint_meta(5)
        assert meta["model_config"] == {"d_in": 4, "d_hidden": 8, "d_out": 3}
        loaded = load_model(b, 5)
        for k, v in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v)


def test_restore_gives_bit_identical_continuation(tmp_path, tiny_model_cls):
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    model = tiny_model_cls()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1.0, betas=(0.9, 0.98))
    _train_steps(model, opt, 5)
    path = tmp_path / "r.h5"
    with epochscope.Recorder(path, config={}) as rec:
        rec.checkpoint(5, model, opt)
    expected = _train_steps(model, opt, 5)
    expected_state = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(999)  # scramble everything
    np.random.seed(999)
    random.seed(999)
    model2 = tiny_model_cls()
    opt2 = torch.optim.AdamW(model2.parameters(), lr=5.0)
    restore_checkpoint(path, 5, model2, opt2)
    assert opt2.param_groups[0]["lr"] == 1e-2 and opt2.param_groups[0]["betas"] == (0.9, 0.98)
    got = _train_steps(model2, opt2, 5)
    assert got == expected
    for k, v in model2.state_dict().items():
        assert torch.equal(v, expected_state[k])


def test_strict_load_lists_every_difference(tmp_path, tiny_model_cls):
    model = tiny_model_cls()
    path = tmp_path / "s.h5"
    with epochscope.Recorder(path, config={}) as rec:
        rec.checkpoint(0, model)

    class Other(torch.nn.Module):
        def __init__(self, d_in=4, d_hidden=8, d_out=3):
            super().__init__()
            self.inp = torch.nn.Linear(d_in, d_hidden + 1)  # wrong shape
            self.extra = torch.nn.Linear(2, 2)  # unexpected by the checkpoint; `out` missing

    with pytest.raises(CheckpointMismatchError) as err:
        load_model(path, 0, factory=Other)
    text = str(err.value)
    for part in ("missing key extra.weight", "missing key extra.bias", "unexpected key out.weight",
                 "unexpected key out.bias", "inp.weight: stored shape (8, 4) != model shape (9, 4)"):
        assert part in text, text
    assert "6 difference(s)" in text


def test_config_drift_is_refused(tmp_path, tiny_model_cls):
    path = tmp_path / "d.h5"
    with epochscope.Recorder(path, config={}) as rec:
        rec.checkpoint(0, tiny_model_cls())
    with pytest.raises(CheckpointMismatchError, match="config drift.*d_hidden: stored 8, now 16"):
        load_model(path, 0, config={"d_in": 4, "d_hidden": 16, "d_out": 3})
    with pytest.raises(KeyError, match="no checkpoint at epoch 7"):
        load_model(path, 7)


def test_unregistered_model_needs_a_factory(tmp_path):
    class Plain(torch.nn.Module):
        def __init__(self, n=2):
            super().__init__()
            self.config = {"n": n}
            self.w = torch.nn.Parameter(torch.ones(n))

    path = tmp_path / "u.h5"
    with epochscope.Recorder(path, config={}) as rec:
        rec.checkpoint(0, Plain())
    with pytest.raises(CheckpointMismatchError, match="not registered: pass factory="):
        load_model(path, 0)
    assert torch.equal(load_model(path, 0, factory=Plain).w, torch.ones(2))


def test_bfloat16_tensors_round_trip_bit_exact(tmp_path):
    class Half(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = {}
            self.w = torch.nn.Parameter(torch.randn(5, dtype=torch.bfloat16))

    model = Half()
    path = tmp_path / "bf.h5"
    with epochscope.Recorder(path, config={}) as rec:
        rec.checkpoint(0, model)
    assert torch.equal(load_model(path, 0, factory=Half).w, model.w)


def test_resume_refuses_a_different_config(tmp_path):
    path = tmp_path / "c.h5"
    with epochscope.Recorder(path, config={"lr": 1e-3, "p": 113}):
        pass
    with pytest.raises(EpochscopeError, match="config differs.*lr: stored 0.001, now 0.01"):
        epochscope.Recorder(path, config={"lr": 1e-2, "p": 113}, resume=True)
    # Nothing was damaged by the refusal.
    with epochscope.open_bundle(path) as b:
        assert b.status == "complete" and len(b.sessions) == 1


def test_exception_inside_with_marks_failed_and_keeps_data(tmp_path):
    path = tmp_path / "f.h5"
    with pytest.raises(RuntimeError):
        with epochscope.Recorder(path, config={}) as rec:
            rec.log(0, loss=1.0)
            rec.log(1, loss=float("nan"))
            raise RuntimeError("diverged")
    with epochscope.open_bundle(path) as b:
        assert b.status == "failed"
        assert np.isnan(b.series("loss")[1][1])
        assert b.events("error")[0]["message"] == "RuntimeError: diverged"


def test_user_strings_are_data_not_paths(tmp_path):
    path = tmp_path / "safe.h5"
    name = "../../etc/<script>alert(1)</script>"
    with epochscope.Recorder(path, config={"name": name}) as rec:
        rec.event(0, "note", "<img src=x onerror=alert(1)>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["safe.h5"]
    with epochscope.open_bundle(path) as b:
        assert b.name == name


def test_bad_series_names_and_closed_recorder(tmp_path):
    rec = epochscope.Recorder(tmp_path / "x.h5", config={})
    with pytest.raises(ValueError, match="invalid element name"):
        rec.log(0, **{"a/b": 1.0})
    rec.close()
    with pytest.raises(EpochscopeError, match="closed"):
        rec.flush()


def test_non_durable_mode_round_trips(tmp_path, tiny_model_cls):
    path = tmp_path / "fast.h5"
    with epochscope.Recorder(path, config={}, durable=False) as rec:
        rec.log(0, loss=1.0)
        rec.checkpoint(0, tiny_model_cls())
    with epochscope.open_bundle(path) as b:
        assert b.status == "complete" and b.checkpoint_epochs == [0] and not b.segments
    assert epochscope.verify_bundle(path).ok


def _state_equal(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert sorted(a["state"]) == sorted(b["state"])
    for i, s in a["state"].items():
        assert sorted(s) == sorted(b["state"][i])
        for k, v in s.items():
            w = b["state"][i][k]
            if isinstance(v, torch.Tensor):
                assert v.dtype == w.dtype and v.shape == w.shape and torch.equal(v, w), (i, k)
            else:
                assert v == w, (i, k)


@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.5),
    lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9),
    lambda ps: torch.optim.Adagrad(ps, lr=1e-2),
], ids=["adamw", "sgd-momentum", "adagrad"])
def test_optimizer_state_is_packed_per_key_and_restored_exactly(tmp_path, make_opt):
    import h5py

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    model[0].bias.requires_grad_(False)  # a parameter without optimizer state
    model.config = {}
    opt = make_opt([p for p in model.parameters()])
    _train_steps(model, opt, 3)
    path = tmp_path / "opt.h5"
    with epochscope.Recorder(path, config={}) as rec:
        rec.checkpoint(3, model, opt)
    with h5py.File(path, "r") as f:
        flat = f["checkpoints/e0000000003/state/optimizer/flat"]
        assert set(flat) == set(next(iter(opt.state_dict()["state"].values())))  # one dataset per key
        assert set(f["checkpoints/e0000000003/state/optimizer"]) == {"flat"}  # no per-parameter groups
    fresh = make_opt(list(model.parameters()))
    restore_checkpoint(path, 3, model, fresh, restore_rng=False)
    _state_equal(opt.state_dict(), fresh.state_dict())
    # and training continues identically
    torch.manual_seed(1)
    a = _train_steps(model, opt, 2)
    torch.manual_seed(1)
    restore_checkpoint(path, 3, model, fresh, restore_rng=False)
    b = _train_steps(model, fresh, 2)
    assert a != [] and a == b


def test_recorder_creates_missing_parent_folders(tmp_path):
    """Issue 17: like every logger, `Recorder("runs/my-run.h5")` creates runs/ itself."""
    path = tmp_path / "runs" / "deeper" / "my-run.h5"
    assert not path.parent.exists()
    with epochscope.Recorder(path, config={"name": "nested"}) as rec:
        rec.log(0, loss=1.0)
    with epochscope.open_bundle(path) as b:
        assert b.series("loss")[1].tolist() == [1.0]
    with pytest.raises(EpochscopeError, match="does not exist"):
        epochscope.Recorder(tmp_path / "missing" / "run.h5", resume=True)
