"""The one place analyzers are registered.

Adding an analyzer: write its class (see `base.Analyzer`), add it to `_CLASSES` below. Order
matters only where one analyzer reads another's artifact (`turn` reads `trajectory`, so it
comes later); the pipeline runs them in this order within each kind.
"""

from __future__ import annotations

from epochscope.collectors.analysis.activations import Attention, NeuronMaps
from epochscope.collectors.analysis.atlas import NeuronAtlas
from epochscope.collectors.analysis.base import CONSUMES, AnalysisError, Analyzer
from epochscope.collectors.analysis.coarseness import Coarseness
from epochscope.collectors.analysis.cusum import Cusum
from epochscope.collectors.analysis.dynamics import NeuronDynamics
from epochscope.collectors.analysis.fourier import FourierWeights, NeuronFreq
from epochscope.collectors.analysis.inputs import InputGraduation, Inputs
from epochscope.collectors.analysis.loss import RestrictedLoss
from epochscope.collectors.analysis.phases import Phases
from epochscope.collectors.analysis.trajectory import Trajectory
from epochscope.collectors.analysis.turn import Turn
from epochscope.collectors.analysis.weights import EffectiveDim, WeightNorms

__all__ = ["ANALYZERS", "register", "resolve"]

_CLASSES: list[type[Analyzer]] = [
    # weights: one pass over each checkpoint's tensors, batched across checkpoints
    WeightNorms,
    EffectiveDim,
    FourierWeights,
    # activations: one shared forward pass over the p x p probe per checkpoint
    NeuronFreq,
    NeuronMaps,
    Attention,
    Coarseness,
    RestrictedLoss,
    NeuronAtlas,
    Inputs,
    # whole trajectory
    Trajectory,
    # metric series (after trajectory: turn cross-checks with it)
    Cusum,
    Turn,
    Phases,  # reads restricted_loss (activations) and the turn it recomputes
    # stored per-checkpoint artifacts, once per run
    NeuronDynamics,
    InputGraduation,
]

ANALYZERS: dict[str, type[Analyzer]] = {}


def register(cls: type[Analyzer]) -> type[Analyzer]:
    """Add an analyzer class to the registry (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.consumes not in CONSUMES:
        raise ValueError(f"{cls.__name__}: consumes={cls.consumes!r} is not a known kind")
    ANALYZERS[cls.name] = cls
    return cls


for _cls in _CLASSES:
    register(_cls)


def resolve(names: list[str] | None) -> list[type[Analyzer]]:
    """Analyzer classes for `names` (all when None) in registry order; unknown names raise."""
    if names is None:
        return list(ANALYZERS.values())
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in ANALYZERS]
    if unknown:
        raise AnalysisError(
            f"unknown analyzer(s) {', '.join(map(repr, unknown))}; valid: {', '.join(ANALYZERS)}"
        )
    wanted = set(names)
    return [cls for name, cls in ANALYZERS.items() if name in wanted]
