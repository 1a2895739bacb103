"""A Hugging Face `TrainerCallback` that records `Trainer` runs into epochscope bundles.

    from epochscope.integrations.transformers import EpochscopeCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      callbacks=[EpochscopeCallback("runs/bert-tiny.h5")])
    trainer.train()

Every `Trainer.log` (training loss, learning rate, grad norm, evaluation metrics) becomes a
series indexed by the global step, with the fractional `epoch` as a series of its own; the
end-of-training summary (runtime, samples per second, FLOs) is a `train_summary` event. The
config holds the TrainingArguments, the model's config and class. At each `save_strategy`
save the model weights, optimizer state and RNG states are stored in the bundle too (like
Trainer's own `checkpoint-N/` folders). `on_train_end` closes the bundle as complete; a run
that never reaches it (an exception, Ctrl-C) is closed as interrupted when Python exits, or
call `close("failed")` yourself (e.g. in a notebook).
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from epochscope.integrations._common import jsonable, metric_name, number
from epochscope.optional import require

_tf = require("transformers", extra="transformers", purpose="epochscope.integrations.transformers")

from epochscope.collectors.recorder import Recorder  # noqa: E402 - after the transformers check

__all__ = ["EpochscopeCallback"]

# What Trainer logs once, at the end of train(): a summary, not a series.
_SUMMARY_KEYS = frozenset({"train_runtime", "train_samples_per_second", "train_steps_per_second",
                           "total_flos", "train_loss", "train_tokens_per_second"})


def _close_quietly(rec: Recorder, status: str) -> None:
    try:
        rec.close(status)
    except Exception:  # noqa: BLE001 - at interpreter exit there is nobody to tell
        pass


class EpochscopeCallback(_tf.TrainerCallback):
    """Write the Trainer's run into `path` (default: `<output_dir>/epochscope.h5`).

    `config`: extra configuration stored with the TrainingArguments and model config.
    `resume=True` continues an existing bundle (use it with `train(resume_from_checkpoint=...)`;
    what was logged after the bundle's last checkpoint is dropped, as the replay logs it
    again). `checkpoints=False` keeps weights out of the bundle. `overwrite` replaces it.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, config: dict[str, Any] | None = None,
                 resume: bool = False, checkpoints: bool = True, overwrite: bool = False,
                 flush_interval: float = 2.0):
        self.path = Path(path) if path is not None else None
        self._extra_config = jsonable(dict(config or {}))
        self._resume = resume
        self._checkpoints = checkpoints
        self._overwrite = overwrite
        self._flush_interval = flush_interval
        self._rec: Recorder | None = None
        self._finalizer: weakref.finalize | None = None
        self._logged: tuple[int, set[str]] = (-1, set())

    @property
    def recorder(self) -> Recorder | None:
        """The open Recorder (None outside a train() call)."""
        return self._rec

    # -- Trainer events -------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self._rec is not None:
            return
        if self.path is None:
            self.path = Path(args.output_dir) / "epochscope.h5"
        exists = self.path.exists() or _journal(self.path).is_dir()
        if self._resume and exists:
            rec = Recorder(self.path, resume=True, flush_interval=self._flush_interval)
        else:
            seeds = {k: int(v) for k, v in (("seed", args.seed), ("data_seed", args.data_seed)) if v is not None}
            rec = Recorder(self.path, config=self._config(args, model), seeds=seeds,
                           overwrite=self._overwrite,
                           flush_interval=self._flush_interval)
        self._rec = rec
        self._finalizer = weakref.finalize(self, _close_quietly, rec, "interrupted")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if self._rec is None or not logs:
            return
        step = int(state.global_step)
        summary = {k: v for k, v in logs.items() if k in _SUMMARY_KEYS}
        if summary and "train_runtime" in logs:
            self._rec.event(step, "train_summary", "Trainer.train() finished",
                            payload=jsonable({**summary, "epoch": logs.get("epoch")}))
            return
        self._log(step, logs)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kwargs: Any) -> None:
        """Evaluation metrics (Trainer usually logged them just before: kept once)."""
        if self._rec is not None and metrics:
            self._log(int(state.global_step), metrics)

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                **kwargs: Any) -> None:
        if self._rec is None or not self._checkpoints or model is None:
            return
        step = int(state.global_step)
        self._rec.checkpoint(step, model, optimizer)
        self._rec.event(step, "checkpoint", f"Trainer checkpoint at step {step}",
                        payload={"epoch": state.epoch, "global_step": step,
                                 "trainer_checkpoint": str(Path(args.output_dir) / f"checkpoint-{step}")})
        self._rec.flush()  # durable before training goes on, like the Trainer's own folder

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close("complete")

    def close(self, status: str = "complete") -> None:
        """Close the bundle with `status` (complete, failed, interrupted); idempotent."""
        rec, self._rec = self._rec, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if rec is not None:
            rec.close(status)

    # -- internals ------------------------------------------------------------------------------
    def _log(self, step: int, logs: dict[str, Any]) -> None:
        at, seen = self._logged
        if at != step:
            seen = set()
            self._logged = (step, seen)
        values = {}
        for key, value in logs.items():
            x = number(value)
            name = metric_name(key)
            if x is not None and name not in seen:
                values[name] = x
        if values:
            self._rec.log(step, **values)
            seen.update(values)

    def _config(self, args: Any, model: Any) -> dict[str, Any]:
        name = self.path.name.removesuffix(".h5").removesuffix(".hdf5") if self.path else "run"
        run_name = getattr(args, "run_name", None)
        config: dict[str, Any] = {"name": run_name if run_name and run_name != args.output_dir else name}
        config["training_args"] = jsonable(args.to_dict())
        if model is not None:
            config["model_class"] = f"{type(model).__module__}.{type(model).__qualname__}"
            model_config = getattr(model, "config", None)
            if model_config is not None and hasattr(model_config, "to_dict"):
                config["model"] = jsonable(model_config.to_dict())
        config["transformers"] = _tf.__version__
        config.update(self._extra_config)
        return config


def _journal(path: Path) -> Path:
    from epochscope.archives.journal import journal_dir

    return journal_dir(path)
