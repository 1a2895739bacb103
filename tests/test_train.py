"""Training configs, the training loop into a bundle, exact resume and densify."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from epochscope.archives import open_bundle  # noqa: E402
from epochscope.collectors.checkpoints import load_model  # noqa: E402
from epochscope.collectors.config import (  # noqa: E402
    ConfigWarning,
    TrainConfig,
    apply_overrides,
    checkpoint_schedule,
    load_config,
    lr_at,
    preset,
)
from epochscope.collectors.model import Transformer  # noqa: E402
from epochscope.collectors.train import (  # noqa: E402
    TIMING_SERIES,
    Run,
    densify,
    split_data,
    stored_config,
    train,
)
from epochscope.errors import EpochscopeError  # noqa: E402

TINY = {"name": "tiny", "p": 23, "d_model": 32, "n_heads": 4, "train_frac": 0.5, "epochs": 60,
        "lr": 3e-3, "data_seed": 1, "model_seed": 2, "checkpoint_every": 20}  # fmt: skip


def tiny(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


def _state(path, epoch: int) -> dict:
    return load_model(path, epoch).state_dict()


def _series(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with open_bundle(path) as b:
        return {n: b.series(n) for n in b.series_names if n not in TIMING_SERIES}


def _assert_same_run(a, b, epoch: int) -> None:
    sa, sb = _series(a), _series(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        np.testing.assert_array_equal(sa[name][0], sb[name][0], err_msg=name)
        np.testing.assert_array_equal(sa[name][1], sb[name][1], err_msg=name)  # bit for bit
    wa, wb = _state(a, epoch), _state(b, epoch)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest, and steadiest on a shared machine, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- config


def test_presets():
    nanda = preset("nanda2023")
    assert (nanda.p, nanda.train_frac, nanda.d_model, nanda.epochs) == (113, 0.3, 128, 25000)
    assert (nanda.lr, nanda.weight_decay, nanda.betas, nanda.d_mlp) == (1e-3, 1.0, (0.9, 0.98), 512)
    demo = load_config("demo")
    assert demo.name == "demo" and demo.epochs <= 10000


def test_dict_roundtrip_is_json():
    cfg = tiny(grad_clip=1.0, lr_schedule="cosine")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_dict(d) == cfg
    assert d["betas"] == [0.9, 0.98] and d["d_mlp"] == 128


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    with pytest.raises(EpochscopeError, match=r"'lrate'.*valid keys: .*weight_decay"):
        load_config("demo", ["lrate=1"])
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"p": 7, "bogus": 1}))
    with pytest.raises(EpochscopeError, match="'bogus'"):
        load_config(f)
    with pytest.raises(EpochscopeError, match="'x'"):
        TrainConfig.from_dict({"x": 1})
    with pytest.raises(EpochscopeError, match="p: 'abc' is not a valid int"):
        TrainConfig.from_dict({"p": "abc"})
    assert TrainConfig.from_dict({"lr": 1, "epochs": 1e3}).lr == 1.0  # TOML/JSON numbers


@pytest.mark.parametrize("frac", ["0", "1", "1.5", "-0.1"])
def test_train_frac_must_be_inside_unit_interval(frac):
    with pytest.raises(EpochscopeError, match="train_frac"):
        load_config("demo", [f"train_frac={frac}"])


def test_non_prime_warns_but_is_allowed():
    with pytest.warns(ConfigWarning, match="not prime"):
        cfg = load_config("demo", ["p=20"])
    assert cfg.p == 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config("demo", ["p=23"])


def test_files_and_overrides(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "nanda2023"\nname = "mine"\np = 97\nbetas = [0.9, 0.99]\n')
    cfg = load_config(toml, ["d_model=64", "grad_clip=0.5", "lr_schedule=cosine", "epochs=1e3"])
    assert (cfg.name, cfg.p, cfg.betas, cfg.train_frac) == ("mine", 97, (0.9, 0.99), 0.3)
    assert (cfg.d_model, cfg.d_mlp, cfg.grad_clip, cfg.epochs) == (64, 256, 0.5, 1000)
    assert apply_overrides(cfg, ["grad_clip=none", "betas=0.8,0.9"]).grad_clip is None
    js = tmp_path / "run.json"
    js.write_text(json.dumps(cfg.to_dict()))
    assert load_config(js) == cfg
    with pytest.raises(EpochscopeError, match="epochs"):
        load_config("demo", ["epochs=ten"])
    with pytest.raises(EpochscopeError, match="neither"):
        load_config("no-such-preset")


def test_checkpoint_schedule_and_lr():
    cfg = tiny(epochs=1000, checkpoint_every=250, checkpoint_log_until=100, checkpoint_log_count=5)
    assert checkpoint_schedule(cfg) == [0, 1, 3, 10, 32, 100, 250, 500, 750, 1000]
    assert checkpoint_schedule(tiny(epochs=50, checkpoint_every=20)) == [0, 20, 40, 50]
    c = tiny(epochs=110, warmup_steps=10, lr=1.0)
    assert [lr_at(c, s) for s in (0, 4, 9, 10, 100)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    cos = apply_overrides(c, {"lr_schedule": "cosine", "min_lr": 0.1})
    assert lr_at(cos, 10) == 1.0 and lr_at(cos, 110) == pytest.approx(0.1)
    step = apply_overrides(c, {"lr_schedule": "step", "step_size": 30, "gamma": 0.5})
    assert [lr_at(step, s) for s in (39, 40, 70)] == [1.0, 0.5, 0.25]


def test_split_is_seeded_partition():
    cfg = tiny()
    tx, ty, vx, vy = split_data(cfg)
    assert len(tx) == int(0.5 * 23 * 23) and len(tx) + len(vx) == 23 * 23
    assert len({tuple(r) for r in torch.cat([tx, vx]).tolist()}) == 23 * 23
    assert torch.equal(split_data(cfg)[0], tx)
    assert not torch.equal(split_data(tiny(data_seed=5))[0], tx)


# ---------------------------------------------------------------- training into a bundle


def test_train_records_everything(tmp_path):
    path = tmp_path / "run.h5"
    cfg = tiny(grad_clip=0.05)
    result = train(cfg, path, progress=False)
    assert result.final["train_acc"] >= 0.0 and result.epochs == 60
    assert stored_config(path) == cfg
    with open_bundle(path) as b:
        assert b.status == "complete"
        assert b.config == cfg.to_dict()
        assert b.checkpoint_epochs == [0, 20, 40, 60]
        names = set(b.series_names)
        for n in ("train_loss", "test_loss", "train_acc", "test_acc", "grad_norm", "lr",
                  "weight_norm", "param_velocity", "examples_per_sec", "clip_fraction",
                  "grad_norm.W_E", "grad_norm.b_out", "weight_norm.W_U"):  # fmt: skip
            assert n in names, n
            epochs, values = b.series(n)
            assert epochs.tolist() == list(range(1, 61)) and np.isfinite(values).all(), n
        assert b.series("lr")[1][0] == pytest.approx(3e-4)  # warm-up step 1 of 10
        assert (b.series("clip_fraction")[1] > 0).any()
        finished = b.events("finished")
        assert finished and finished[0]["payload"]["test_acc"] == result.final["test_acc"]
        train_loss = b.series("train_loss")[1]
        w_norm = b.series("weight_norm")[1]
        # metrics of epoch e+1 describe the weights of checkpoint e
        model = load_model(b, 20)
    run = Run(cfg)
    assert isinstance(model, Transformer)
    logits = model(run.train_x)
    loss = torch.nn.functional.cross_entropy(logits, run.train_y).item()
    assert loss == train_loss[20]
    norms = torch.stack([p.detach().norm() for p in model.parameters()])
    assert norms.norm().item() == pytest.approx(w_norm[20], rel=1e-6)


def test_same_config_is_bit_identical(tmp_path):
    cfg = tiny(epochs=40)
    train(cfg, tmp_path / "a.h5", progress=False)
    train(cfg, tmp_path / "b.h5", progress=False)
    _assert_same_run(tmp_path / "a.h5", tmp_path / "b.h5", 40)


def test_existing_bundle_needs_overwrite(tmp_path):
    path = tmp_path / "a.h5"
    train(tiny(epochs=5), path, progress=False)
    with pytest.raises(EpochscopeError):
        train(tiny(epochs=5), path, progress=False)
    train(tiny(epochs=6), path, overwrite=True, progress=False)
    with open_bundle(path) as b:
        assert b.checkpoint_epochs[-1] == 6


def test_divergence_fails_the_bundle(tmp_path):
    path = tmp_path / "nan.h5"
    with pytest.raises(EpochscopeError, match="diverged"):
        train(tiny(lr=1e30, warmup_steps=0, weight_decay=0.0), path, progress=False)
    with open_bundle(path) as b:
        assert b.status == "failed"
        (event,) = b.events("diverged")
        epochs, losses = b.series("train_loss")
        assert event["epoch"] == epochs[-1] and not np.isfinite(losses[-1])


def test_resume_rejects_another_config(tmp_path):
    path = tmp_path / "a.h5"
    with pytest.raises(EpochscopeError, match="no such bundle"):
        train(tiny(), path, resume=True, progress=False)
    train(tiny(epochs=5), path, progress=False)
    with pytest.raises(EpochscopeError, match=r"config differs.*lr: 0.003 != 0.001"):
        train(tiny(epochs=5, lr=1e-3), path, resume=True, progress=False)


_CHILD = textwrap.dedent("""
    import json, sys, time
    from epochscope.collectors import recorder
    from epochscope.collectors.config import TrainConfig
    from epochscope.collectors.train import train

    original = recorder.Recorder.log
    def log(self, epoch, **scalars):
        original(self, epoch, **scalars)
        if epoch == 130:  # past the checkpoint at 100: these metrics must be dropped on resume
            self.flush()
            print("flushed", flush=True)
            time.sleep(60)
    recorder.Recorder.log = log
    train(TrainConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], progress=False)
""")


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    cfg = tiny(epochs=160, checkpoint_every=50)
    killed, clean = tmp_path / "killed.h5", tmp_path / "clean.h5"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(cfg.to_dict()), str(killed)],
                             stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "flushed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with open_bundle(killed) as b:
        assert b.status != "complete" and b.checkpoint_epochs[-1] == 100
        assert b.series("train_loss")[0][-1] == 130
    result = train(cfg, killed, resume=True, progress=False)
    assert result.resumed_from == 100
    train(cfg, clean, progress=False)
    _assert_same_run(killed, clean, 160)
    with open_bundle(killed) as b:
        assert b.status == "complete" and b.checkpoint_epochs == [0, 50, 100, 150, 160]
        assert [e["epoch"] for e in b.events("resumed")] == [100]
    train(cfg, killed, resume=True, progress=False)  # already complete: nothing to redo
    with open_bundle(killed) as b:
        assert len(b.events("finished")) == 1 and b.series("train_loss")[0][-1] == 160


def test_densify_adds_checkpoints_from_an_exact_replay(tmp_path):
    path = tmp_path / "run.h5"
    cfg = tiny(epochs=60, checkpoint_every=30)
    train(cfg, path, progress=False)
    before = _state(path, 30)
    assert densify(path, 10, 40, 10, progress=False) == [10, 20, 40]
    with open_bundle(path) as b:
        assert b.checkpoint_epochs == [0, 10, 20, 30, 40, 60]
        assert b.status == "complete"
        assert b.events("densified")[0]["payload"]["added"] == [10, 20, 40]
    after = _state(path, 30)
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the densified checkpoint equals what an uninterrupted run saves at that epoch
    dense = tmp_path / "dense.h5"
    train(apply_overrides(cfg, {"checkpoint_every": 10}), dense, progress=False)
    ref, got = _state(dense, 20), _state(path, 20)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert densify(path, 10, 40, 10, progress=False) == []


def test_densify_errors(tmp_path):
    path = tmp_path / "run.h5"
    train(tiny(epochs=30, checkpoint_every=30), path, progress=False)
    with pytest.raises(EpochscopeError, match="outside the recorded epochs"):
        densify(path, 10, 31, 5, progress=False)
    with pytest.raises(EpochscopeError, match="every"):
        densify(path, 10, 20, 0, progress=False)
    # a recorded metric that the replay cannot reproduce is a loud error
    from epochscope.collectors.recorder import Recorder

    with Recorder(path, resume=True) as rec:
        rec.log(7, test_loss=123.0)
    with pytest.raises(EpochscopeError, match="epoch 7 does not reproduce.*test_loss"):
        densify(path, 10, 20, 5, progress=False)
    with open_bundle(path) as b:
        assert b.status == "complete" and b.checkpoint_epochs == [0, 30]
        assert b.events("densify_failed")[0]["epoch"] == 7


def _flat(tree, prefix=""):
    """A nested checkpoint state as {path: array-or-scalar}."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[prefix + k] = v
    return out


def test_two_collects_store_identical_bundles_rng_states_included(tmp_path):
    """Two `collect` processes with one config: every checkpoint (weights, optimizer state and
    the torch, numpy and Python RNG states) and every metric are the same. Each process starts
    with OS-seeded numpy/Python generators, so unseeded states would differ."""
    overrides = [f"{k}={v}" for k, v in TINY.items()] + ["epochs=4", "checkpoint_every=2"]
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for path in paths:
        subprocess.run([sys.executable, "-m", "epochscope", "collect", "--quiet", *overrides,
                        "-o", str(path)], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    _assert_same_run(*paths, 4)
    with open_bundle(paths[0]) as a, open_bundle(paths[1]) as b:
        assert a.checkpoint_epochs == b.checkpoint_epochs and len(a.checkpoint_epochs) >= 3
        for epoch in a.checkpoint_epochs:
            sa, sb = _flat(a.checkpoint(epoch).state), _flat(b.checkpoint(epoch).state)
            assert sa.keys() == sb.keys()
            assert any(k.startswith("rng/numpy") for k in sa)
            assert any(k.startswith("rng/python") for k in sa)
            for k in sa:
                np.testing.assert_array_equal(np.asarray(sa[k]), np.asarray(sb[k]), err_msg=k)


def test_run_seeds_numpy_and_python_from_the_model_seed():
    import random

    np.random.seed(12345)
    random.seed(12345)
    Run(tiny())
    after = (np.random.get_state()[1].copy(), random.getstate())
    np.random.seed(999)
    random.seed(999)
    Run(tiny())
    np.testing.assert_array_equal(after[0], np.random.get_state()[1])
    assert after[1] == random.getstate()
    Run(tiny(model_seed=3))
    assert after[1] != random.getstate()
