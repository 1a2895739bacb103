"""A PyTorch Lightning logger that records the run into one epochscope bundle.

    from epochscope.integrations.lightning import EpochscopeLogger

    logger = EpochscopeLogger("runs/my-run.h5")
    trainer = L.Trainer(max_epochs=20, logger=logger)      # checkpoints go into the bundle too
    trainer.fit(model, data)

Metrics are indexed by Lightning's step (the `step` it passes to loggers); Lightning's
`epoch` comes along as a series. Hyperparameters (`save_hyperparameters()`, the datamodule's)
are the bundle's config. Each time a ModelCheckpoint saves, the model's weights, the first
optimizer's state and the RNG states are stored in the bundle at the trainer's global step,
and written durably before training goes on. `finalize` closes the bundle as complete or
failed; logging again afterwards (`trainer.test` after `fit`) reopens it.

Resuming a killed run: run the same script with `EpochscopeLogger(path, resume=True)` and
`trainer.fit(..., ckpt_path="last")`. The bundle keeps what it held up to its last
checkpoint; Lightning replays from its own last checkpoint and logs the rest again. If
Lightning's checkpoint is newer than the bundle's (the kill fell between the two writes),
an event `resume_gap` says which steps' metrics were lost.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from epochscope.integrations._common import jsonable, metric_name, number
from epochscope.optional import MissingExtraError, require

try:
    _pl = require("lightning.pytorch", extra="lightning", purpose="epochscope.integrations.lightning",
                  package="lightning")
except MissingExtraError:
    try:  # the standalone distribution works the same
        import pytorch_lightning as _pl
    except ImportError:
        raise MissingExtraError(
            "epochscope.integrations.lightning needs the lightning package, which is not installed: "
            "pip install \"epochscope[lightning]\"") from None

from epochscope.collectors.recorder import Recorder  # noqa: E402 - after the lightning import

rank_zero_only = _pl.utilities.rank_zero_only

__all__ = ["EpochscopeLogger"]


def _bundle_exists(path: Path) -> bool:
    """A bundle is there: consolidated, or still only journal segments (its writer was killed)."""
    from epochscope.archives.journal import journal_dir

    return path.exists() or journal_dir(path).is_dir()

_STATUS = {"success": "complete", "finished": "complete", "failed": "failed", "interrupted": "interrupted"}


class EpochscopeLogger(_pl.loggers.logger.Logger):
    """Lightning `Logger` writing the run (metrics, hyperparameters, checkpoints) into `path`.

    `name` (default: the file's stem) and `version` (default 0) name the run for Lightning,
    which puts its own checkpoint files under `<path's folder>/<name>/version_<version>/`.
    `config`: extra configuration stored with the hyperparameters. `resume=True` continues
    an existing bundle (a new one is started when there is none). `checkpoints=False` keeps
    Lightning's checkpoints out of the bundle. `overwrite` replaces an existing bundle.
    """

    def __init__(self, path: str | os.PathLike, *, name: str | None = None, version: int | str | None = None,
                 config: dict[str, Any] | None = None, resume: bool = False, checkpoints: bool = True,
                 overwrite: bool = False, flush_interval: float = 2.0):
        super().__init__()
        self._path = Path(path)
        self._name = name or self._path.name.removesuffix(".h5").removesuffix(".hdf5")
        self._version = 0 if version is None else version
        self._extra_config = jsonable(dict(config or {}))
        self._hparams: dict[str, Any] = {}
        self._resume = resume
        self._overwrite = overwrite
        self._checkpoints = checkpoints
        self._flush_interval = flush_interval
        self._rec: Recorder | None = None
        self._finalized = False
        self._module: weakref.ref | None = None
        self._saved_steps: set[int] = set()
        self.resume_step: int | None = None

    # -- what Lightning asks of a logger ------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> int | str:
        return self._version

    @property
    def save_dir(self) -> str:
        """Lightning's checkpoint files go under this folder (the bundle's)."""
        return str(self._path.parent)

    @property
    def path(self) -> Path:
        """The bundle this logger writes."""
        return self._path

    @property
    def recorder(self) -> Recorder | None:
        """The open Recorder (None before the first metric or after finalize)."""
        return self._rec

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters become the bundle's config; any arriving once the bundle exists
        (a second call) are recorded as a `hyperparams` event."""
        values = jsonable(params if params is not None else {})
        if not isinstance(values, dict):
            values = {"hparams": values}
        if self._rec is None and not self._finalized:
            self._hparams.update(values)
            return
        new = {k: v for k, v in values.items() if self._hparams.get(k, object()) != v}
        if new:
            self._hparams.update(new)
            self._recorder().event(self._step(), "hyperparams", "hyperparameters logged after the start",
                                   payload=new)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Lightning hands over the LightningModule here: kept (weakly) to checkpoint it."""
        self._module = weakref.ref(model)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        rec = self._recorder()
        at = int(step) if step is not None else self._step()
        values = {}
        for key, value in metrics.items():
            x = number(value)
            if x is not None:
                values[metric_name(key)] = x
        if values:
            rec.log(at, **values)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Store the model, its first optimizer and the RNG states at the global step."""
        if not self._checkpoints:
            return
        module = self._module() if self._module is not None else None
        trainer = getattr(module, "_trainer", None) if module is not None else None
        if module is None or trainer is None:
            return  # nothing to capture (Lightning always calls log_graph first in fit)
        step = int(trainer.global_step)
        if step in self._saved_steps:
            return  # several ModelCheckpoint callbacks saving the same step
        rec = self._recorder()
        optimizers = list(trainer.optimizers or [])
        rec.checkpoint(step, module, optimizers[0] if optimizers else None)
        payload = {"epoch": int(trainer.current_epoch), "global_step": step,
                   "lightning_checkpoint": str(getattr(checkpoint_callback, "last_model_path", "") or
                                               getattr(checkpoint_callback, "best_model_path", "") or "")}
        if len(optimizers) > 1:
            payload["optimizers_not_stored"] = len(optimizers) - 1
        rec.event(step, "checkpoint", f"Lightning checkpoint at epoch {trainer.current_epoch}", payload=payload)
        rec.flush()  # durable before training goes on, like Lightning's own file
        self._saved_steps.add(step)

    @rank_zero_only
    def save(self) -> None:
        """Nothing to do: the Recorder flushes on its own schedule and at each checkpoint."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Close the bundle: "success"/"finished" -> complete, "failed" -> failed."""
        rec = self._recorder()  # a run that logged nothing still gets its config recorded
        self._rec = None
        self._finalized = True
        rec.close(_STATUS.get(status, "failed"))

    # -- internals ----------------------------------------------------------------------------
    def _step(self) -> int:
        module = self._module() if self._module is not None else None
        trainer = getattr(module, "_trainer", None) if module is not None else None
        return int(trainer.global_step) if trainer is not None else 0

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self._name, **self._hparams, **self._extra_config}
        module = self._module() if self._module is not None else None
        trainer = getattr(module, "_trainer", None) if module is not None else None
        if module is not None:
            config.setdefault("model_class", f"{type(module).__module__}.{type(module).__qualname__}")
        if trainer is not None:
            config.setdefault("trainer", jsonable({
                "max_epochs": trainer.max_epochs, "max_steps": trainer.max_steps,
                "precision": getattr(trainer, "precision", None),
                "accumulate_grad_batches": trainer.accumulate_grad_batches,
                "gradient_clip_val": trainer.gradient_clip_val, "lightning": _pl.__version__}))
        return config

    def _seeds(self) -> dict[str, int] | None:
        seed = os.environ.get("PL_GLOBAL_SEED")  # set by lightning's seed_everything
        return {"seed_everything": int(seed)} if seed and seed.lstrip("-").isdigit() else None

    def _recorder(self) -> Recorder:
        if self._rec is not None:
            return self._rec
        if self._finalized:
            self._rec = self._reopen()
        elif self._resume and _bundle_exists(self._path):
            self._rec = Recorder(self._path, config=self._config(), resume=True,
                                 flush_interval=self._flush_interval)
            self.resume_step = self._rec.resume_epoch
            self._note_gap()
        else:
            self._rec = Recorder(self._path, config=self._config(), seeds=self._seeds(),
                                 overwrite=self._overwrite, flush_interval=self._flush_interval)
        return self._rec

    def _note_gap(self) -> None:
        """After a resume: Lightning restarting past the bundle's last checkpoint loses steps."""
        restored = self._step()
        have = self.resume_step if self.resume_step is not None else -1
        if restored > have + 1 and self._rec is not None:
            self._rec.event(restored, "resume_gap",
                            f"Lightning resumed at step {restored}; the bundle's last checkpoint was at "
                            f"{have}: metrics of steps {have + 1}..{restored - 1} are missing",
                            payload={"bundle_step": have, "lightning_step": restored})

    def _reopen(self) -> Recorder:
        """Continue a bundle this logger closed (test after fit) without losing anything.

        A resumed Recorder drops what follows its last checkpoint (a replay logs it again);
        here nothing replays, so that part is read first and logged again.
        """
        from epochscope.archives import open_bundle

        with open_bundle(self._path) as b:
            ckpts = b.checkpoint_epochs
            last = ckpts[-1] if ckpts else None
            later = {}
            for series, (epochs, values) in b.metrics().items():
                keep = epochs > last if last is not None else epochs == epochs
                if keep.any():
                    later[series] = (epochs[keep], values[keep])
            events = [e for e in b.events() if last is None or e["epoch"] > last]
        rec = Recorder(self._path, resume=True, flush_interval=self._flush_interval)
        for series, (epochs, values) in later.items():
            for e, v in zip(epochs.tolist(), values.tolist(), strict=True):
                rec.log(int(e), **{series: v})
        for e in events:
            rec.event(e["epoch"], e["kind"], e["message"], e["payload"])
        rec.flush()
        return rec
