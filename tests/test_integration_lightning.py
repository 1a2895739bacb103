"""The Lightning logger with the real `lightning` package: a tiny model trained a few epochs,
checkpoints in the bundle, test after fit, and a run SIGKILLed and resumed that ends up with
exactly the record of an uninterrupted one."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")

from epochscope.archives import open_bundle, verify_bundle  # noqa: E402

pytestmark = pytest.mark.slow

SCRIPT = '''
import os, sys, time
import torch
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, Callback
from epochscope.integrations.lightning import EpochscopeLogger

class Tiny(L.LightningModule):
    def __init__(self, d_in=6, d_hidden=16, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(d_in, d_hidden), torch.nn.Tanh(), torch.nn.Linear(d_hidden, 1))

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch, _):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

def data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, :1] * 2 - x[:, 1:2]).tanh()
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)

class PauseAt(Callback):
    """Tell the parent the checkpoint of epoch `epoch - 1` is written, then wait to be killed."""
    def __init__(self, epoch, marker):
        self.epoch, self.marker = epoch, marker
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            open(self.marker, "w").write("ready")
            time.sleep(600)

def trainer(bundle, epochs, *, resume=False, pause_at=None, marker=None):
    ckpt = ModelCheckpoint(save_last=True, save_top_k=-1, every_n_epochs=1)
    callbacks = [ckpt] + ([PauseAt(pause_at, marker)] if pause_at is not None else [])
    logger = EpochscopeLogger(bundle, resume=resume, config={"dataset": "tiny-regression"})
    return L.Trainer(max_epochs=epochs, logger=logger, callbacks=callbacks, accelerator="cpu", devices=1,
                     log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                     deterministic=True), logger

def main(bundle, epochs, resume, pause_at, marker):
    L.seed_everything(7, verbose=False)
    model = Tiny()
    tr, _ = trainer(bundle, epochs, resume=resume, pause_at=pause_at, marker=marker)
    tr.fit(model, data(), data(32), ckpt_path="last" if resume else None)
    torch.save(model.state_dict(), bundle + ".final.pt")
    return tr, model

if __name__ == "__main__":
    bundle, epochs, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    pause = int(sys.argv[4]) if len(sys.argv) > 4 else None
    main(bundle, epochs, resume, pause, bundle + ".marker")
'''


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pl") / "train_pl.py"
    path.write_text(SCRIPT)
    return path


def _load(script: Path):
    spec = importlib.util.spec_from_file_location("train_pl", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script: Path, *args: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen([sys.executable, str(script), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(script, tmp_path_factory):
    """An uninterrupted 5-epoch run, in this process: (bundle, trainer, model, fit metrics)."""
    mod = _load(script)
    root = tmp_path_factory.mktemp("ref")
    bundle = root / "runs" / "tiny.h5"
    bundle.parent.mkdir()
    tr, model = mod.main(str(bundle), 5, False, None, None)
    with open_bundle(bundle) as b:
        fit = {k: (e.copy(), v.copy()) for k, (e, v) in b.metrics().items()}
    return bundle, tr, model, fit, mod


def test_fit_records_metrics_config_and_checkpoints_then_test_reopens(reference):
    import torch

    from epochscope.collectors.checkpoints import restore_checkpoint

    bundle, tr, model, fit_metrics, mod = reference
    assert verify_bundle(bundle).ok
    with open_bundle(bundle) as b:
        assert b.status == "complete" and b.name == "tiny"
        assert b.config["d_hidden"] == 16 and b.config["lr"] == 0.05 and b.config["dataset"] == "tiny-regression"
        assert b.config["trainer"]["max_epochs"] == 5
        assert b.context["seeds"] == {"seed_everything": 7}
        steps, loss = b.series("train.loss")
        assert steps.tolist() == list(range(20))  # 4 batches x 5 epochs, one point per step
        assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]
        assert b.series("epoch")[1].max() == 4 and len(b.series("val_loss")[0]) == 5
        assert b.checkpoint_epochs == [4, 8, 12, 16, 20]  # the global step at each epoch's checkpoint
        ckpt = b.checkpoint(20)
        assert {"model", "optimizer", "rng"} <= set(ckpt.state)
        assert ckpt.meta["optimizer_class"].endswith("Adam")
        assert [e["kind"] for e in b.events("checkpoint")] == ["checkpoint"] * 5
    # the last checkpoint is the trained model, bit for bit, and loads strictly
    fresh = mod.Tiny()
    restore_checkpoint(bundle, 20, fresh, torch.optim.Adam(fresh.parameters()), restore_rng=False)
    for (k, a), (_, c) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, c), k
    # Lightning's own checkpoint files went beside the bundle
    assert (bundle.parent / "tiny" / "version_0" / "checkpoints" / "last.ckpt").exists()

    tr.test(model, mod.data(32))  # logs after finalize: the bundle is reopened, nothing lost
    with open_bundle(bundle) as b:
        assert b.status == "complete" and len(b.sessions) == 2
        assert "test_loss" in b.series_names
        for k, (e, v) in fit_metrics.items():
            e2, v2 = b.series(k)
            assert np.array_equal(e2[: len(e)], e) and np.array_equal(v2[: len(v)], v), k


def test_failed_fit_closes_the_bundle_as_failed(script, tmp_path):
    mod = _load(script)

    class Boom(mod.Tiny):
        def training_step(self, batch, i):
            if self.current_epoch == 1:
                raise RuntimeError("diverged")
            return super().training_step(batch, i)

    bundle = tmp_path / "boom.h5"
    tr, _ = mod.trainer(str(bundle), 3)
    with pytest.raises(RuntimeError, match="diverged"):
        tr.fit(Boom(), mod.data(), mod.data(32))
    with open_bundle(bundle) as b:
        assert b.status == "failed"
        assert b.series("train.loss")[0].tolist() == [0, 1, 2, 3]
        assert b.checkpoint_epochs == [4]


def test_sigkilled_run_resumes_to_the_uninterrupted_record(script, reference, tmp_path):
    """Killed (SIGKILL) at the start of epoch 3, resumed from Lightning's last.ckpt: the same
    metrics, checkpoints and final weights as the uninterrupted reference run."""
    import torch

    ref_bundle, _, ref_model, ref_fit, _ = reference
    run = str(tmp_path / "runs" / "tiny.h5")
    (tmp_path / "runs").mkdir()
    killed = _run(script, run, "5", "0", "3", cwd=tmp_path)  # pauses at the start of epoch 3
    deadline = time.monotonic() + 240
    while not Path(run + ".marker").exists():
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached epoch 3"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    with open_bundle(run) as b:
        assert b.status == "interrupted"
        assert b.checkpoint_epochs == [4, 8, 12]
        assert b.series("train.loss")[0].max() == 11

    resumed = _run(script, run, "5", "1", cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    with open_bundle(ref_bundle) as a, open_bundle(run) as b:
        assert b.status == "complete"
        # the killed session reads "running" or, once the Recorder marks it on resume, "interrupted"
        assert len(b.sessions) == 2 and b.sessions[-1]["status"] == "complete"
        assert a.checkpoint_epochs == b.checkpoint_epochs == [4, 8, 12, 16, 20]
        assert not b.events("resume_gap")
        for name in ("train.loss", "val_loss", "epoch"):
            ea, va = ref_fit[name]
            eb, vb = b.series(name)
            order = np.argsort(eb, kind="stable")
            assert np.array_equal(ea, eb[order]) and np.array_equal(va, vb[order]), name
        wa, wb = a.checkpoint(20).state["model"], b.checkpoint(20).state["model"]
        for k in wa:
            assert np.array_equal(wa[k], wb[k]), k
    final = torch.load(run + ".final.pt")
    for k, v in ref_model.state_dict().items():
        assert torch.equal(v, final[k]), k
