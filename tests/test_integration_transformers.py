"""The Trainer callback with the real `transformers` package: a tiny BERT built from a config
in the test (nothing downloaded, HF_HUB_OFFLINE=1) trained for a few epochs."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: no network, ever
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from epochscope.archives import open_bundle, verify_bundle  # noqa: E402

pytestmark = pytest.mark.slow


def _tiny_bert():
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    return config, transformers.BertForSequenceClassification(config)


class _Parity:
    """Sequences of 8 tokens; the label is whether token 5 occurs an odd number of times."""

    def __init__(self, n: int, seed: int):
        import torch

        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 40, (n, 8), generator=g)
        self.labels = ((self.ids == 5).sum(1) % 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        import torch

        return {"input_ids": self.ids[i], "attention_mask": torch.ones(8, dtype=torch.long),
                "labels": self.labels[i]}


def _args(out, **kw):
    return transformers.TrainingArguments(
        output_dir=str(out), num_train_epochs=3, per_device_train_batch_size=8, per_device_eval_batch_size=16,
        learning_rate=5e-3, logging_steps=2, eval_strategy="epoch", save_strategy="epoch", report_to=[],
        use_cpu=True, seed=0, disable_tqdm=True, **kw)


def test_trainer_run_recorded_with_steps_epochs_config_and_checkpoints(tmp_path):
    import torch

    from epochscope.collectors.checkpoints import restore_checkpoint
    from epochscope.integrations.transformers import EpochscopeCallback

    config, model = _tiny_bert()
    bundle = tmp_path / "bert-tiny.h5"
    trainer = transformers.Trainer(model=model, args=_args(tmp_path / "out"), train_dataset=_Parity(48, 1),
                                   eval_dataset=_Parity(32, 2), callbacks=[EpochscopeCallback(bundle)])
    trainer.train()
    steps_per_epoch = 6
    assert verify_bundle(bundle).ok
    with open_bundle(bundle) as b:
        assert b.status == "complete" and b.name == "bert-tiny"
        assert b.config["training_args"]["learning_rate"] == 5e-3
        assert b.config["model"]["hidden_size"] == 16 and b.config["model_class"].endswith("BertForSequenceClassification")
        assert b.context["seeds"]["seed"] == 0
        steps, loss = b.series("loss")
        assert steps.tolist() == list(range(2, 3 * steps_per_epoch + 1, 2))  # logging_steps=2
        assert np.all(np.isfinite(loss))
        e_steps, epochs = b.series("epoch")
        assert epochs[-1] == pytest.approx(3.0) and np.all(np.diff(epochs) >= 0)
        # every log carries its fractional epoch at its step
        assert dict(zip(e_steps.tolist(), epochs.tolist(), strict=True))[steps_per_epoch] == pytest.approx(1.0)
        ev_steps, ev_loss = b.series("eval_loss")
        assert ev_steps.tolist() == [6, 12, 18]  # once per evaluation, not twice (on_log + on_evaluate)
        assert {"learning_rate", "grad_norm", "eval_runtime"} <= set(b.series_names)
        assert "train_runtime" not in b.series_names
        (summary,) = b.events("train_summary")
        assert summary["payload"]["train_runtime"] > 0 and summary["epoch"] == 18
        assert b.checkpoint_epochs == [6, 12, 18]
        assert [e["payload"]["trainer_checkpoint"].endswith(f"checkpoint-{s}")
                for e, s in zip(b.events("checkpoint"), [6, 12, 18], strict=True)] == [True] * 3
        ckpt = b.checkpoint(18)
        assert {"model", "optimizer", "rng"} <= set(ckpt.state)
    for step in (6, 12, 18):
        assert (tmp_path / "out" / f"checkpoint-{step}").is_dir()
    # the bundle's last checkpoint is the trained model, strictly loaded into a fresh one
    fresh = transformers.BertForSequenceClassification(config)
    restore_checkpoint(bundle, 18, fresh, restore_rng=False)
    for (k, a), (_, c) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a.cpu(), c), k


def test_default_path_and_a_run_that_raises(tmp_path):
    from epochscope.integrations.transformers import EpochscopeCallback

    class Boom(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 7:
                raise RuntimeError("diverged")

    _, model = _tiny_bert()
    callback = EpochscopeCallback()
    trainer = transformers.Trainer(model=model, args=_args(tmp_path / "out"), train_dataset=_Parity(48, 1),
                                   eval_dataset=_Parity(32, 2), callbacks=[callback, Boom()])
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.train()
    callback.close("failed")  # what a notebook user does; at exit it closes as interrupted
    with open_bundle(tmp_path / "out" / "epochscope.h5") as b:
        assert b.status == "failed" and b.checkpoint_epochs == [6]
        assert b.series("loss")[0].tolist() == [2, 4, 6]
