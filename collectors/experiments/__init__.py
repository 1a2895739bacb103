"""Experiments beyond the reference modular-addition run, one module each, on one interface.

`EXPERIMENTS[name]` gives the config dataclass and the function that runs it into a bundle;
`epochscope collect --experiment NAME` and sweep specs with `experiment = "NAME"` use it.
The modular-addition collector (`collectors/train.py`) stays the default experiment.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from epochscope.errors import EpochscopeError

__all__ = ["DEFAULT_EXPERIMENT", "EXPERIMENT_NAMES", "STANDALONE", "Experiment", "experiment"]

DEFAULT_EXPERIMENT = "modular-addition"
# name -> (module, config class, run function); imported on use (they import torch)
_TABLE = {
    "evolution": ("evolution", "EvolutionConfig", "run_evolution"),
    "apoptosis": ("apoptosis", "ApoptosisConfig", "run_apoptosis"),
}
# Experiments with a loop and CLI entry of their own (`config_from`, `run(config, output)`),
# not (yet) on the sweep interface above.
STANDALONE = {"morphogenesis": "epochscope.collectors.experiments.morphogenesis"}
EXPERIMENT_NAMES = (DEFAULT_EXPERIMENT, *_TABLE, *STANDALONE)


@dataclass
class Experiment:
    """A config class (a dataclass) and `run(config, path, overwrite=...) -> ExperimentResult`."""

    name: str
    config_cls: type
    run: Any

    def load_config(self, source: Any = None, overrides: Any = ()) -> Any:
        from epochscope.collectors.experiments.base import config_from

        return config_from(self.config_cls, source, overrides)


def experiment(name: str) -> Experiment:
    """The experiment `name` (not the default modular-addition one, which has its own loop)."""
    if name in STANDALONE:
        raise EpochscopeError(f"experiment {name!r} runs with `epochscope collect --experiment {name}`; "
                              f"sweeps support: {', '.join(_TABLE)}")
    if name not in _TABLE:
        valid = ", ".join(EXPERIMENT_NAMES)
        raise EpochscopeError(f"unknown experiment {name!r}; valid: {valid}")
    module, cls, fn = _TABLE[name]
    mod = importlib.import_module(f"epochscope.collectors.experiments.{module}")
    return Experiment(name, getattr(mod, cls), getattr(mod, fn))
