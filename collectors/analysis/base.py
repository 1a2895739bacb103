"""The analyzer contract: what an analyzer consumes, what it is given, what it returns.

An analyzer is one class with a `name`, a `version` (stored with its artifacts: a changed
version makes the pipeline recompute it) and `consumes`, which tells the pipeline how to feed it:

- ``"weights"``: per checkpoint, the model's tensors as numpy arrays (any model);
- ``"activations"``: per checkpoint, the rebuilt model and ONE cached forward pass over the
  canonical probe (the full p x p input grid), shared by every activation analyzer;
- ``"trajectory"``: once per run, the flattened weights of every checkpoint (PCA, velocity);
- ``"metrics"``: once per run, the metric series (and artifacts already in the bundle).

Per-checkpoint analyzers get a batch of `EpochData` and return arrays stacked along the batch,
so they can vectorise across checkpoints (e.g. one batched eigen-solve for all SVD spectra).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from epochscope.errors import EpochscopeError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from epochscope.archives import Artifact

__all__ = [
    "Analyzer",
    "AnalysisError",
    "EpochData",
    "MetricsView",
    "Output",
    "Probe",
    "RunInfo",
    "fingerprint",
]

CONSUMES = ("weights", "activations", "trajectory", "metrics")


class AnalysisError(EpochscopeError):
    """A refused or failed analysis (bad analyzer name, bundle being written, bad checkpoint)."""


@dataclass
class RunInfo:
    """What the pipeline knows about a run before computing anything.

    `model_config` is the architecture config stored with the first checkpoint (may be empty);
    `shapes` maps model tensor names to shapes; `series` lists the metric series names.
    """

    model_class: str | None
    model_config: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    series: list[str]
    checkpoint_epochs: list[int]
    config: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] | None = None  # `Bundle.split`: recorded at collect time, or None

    @property
    def p(self) -> int | None:
        """The modulus of a modular-addition model, when the weights look like one."""
        p = self.model_config.get("p", self.config.get("p"))
        if not isinstance(p, int) or p < 3:
            return None
        we, wu = self.shapes.get("W_E"), self.shapes.get("W_U")
        if we is None or wu is None or len(we) != 2 or len(wu) != 2:
            return None
        if we[0] not in (p, p + 1) or wu[1] != p:
            return None
        return p


@dataclass
class Probe:
    """The canonical probe: every (a, b, '=') triple, row-major in (a, b), and its labels.

    `train_idx` / `test_idx`, when the bundle stores the run's data split, index the training
    and test pairs in the grid (sorted); otherwise None and `split_missing` says why.
    """

    p: int
    tokens: torch.Tensor  # [p*p, 3] int64
    labels: torch.Tensor  # [p*p] int64, (a + b) mod p
    train_idx: np.ndarray | None = None
    test_idx: np.ndarray | None = None
    split_missing: str | None = None


@dataclass
class EpochData:
    """Everything per-checkpoint analyzers may read for one epoch (valid during the batch only).

    `weights`: model tensors (float arrays, as stored). `model` and `cache` are set only when
    an activation analyzer runs: the model is reused across epochs (weights reloaded in place)
    and `cache` is the one forward pass over the probe (final position: `mlp_post` [p*p, d_mlp],
    `pattern` [p*p, heads, n_ctx], `logits` [p*p, p], ...). `derived` memoises quantities that
    several analyzers share (e.g. the 2-D Fourier transform of every neuron's activation map).
    """

    epoch: int
    weights: dict[str, np.ndarray]
    model: Any = None
    cache: dict[str, Any] | None = None
    probe: Probe | None = None
    derived: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """Memoised derived value shared between analyzers of this epoch."""
        if key not in self.derived:
            self.derived[key] = compute()
        return self.derived[key]


@dataclass
class Output:
    """What an analyzer produced: per-epoch rows (stacked in `epochs` order), summaries, events."""

    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    per_epoch: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


class MetricsView:
    """Metric series and stored artifacts, as metric analyzers see them."""

    def __init__(
        self,
        series: Mapping[str, tuple[np.ndarray, np.ndarray]],
        artifacts: Mapping[str, Artifact] | None = None,
    ):
        self._series = dict(series)
        self._artifacts = dict(artifacts or {})

    @property
    def names(self) -> list[str]:
        return sorted(self._series)

    def has(self, name: str) -> bool:
        return name in self._series

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) sorted by epoch; a repeated epoch keeps its last logged value."""
        epochs, values = self._series[name]
        epochs = np.asarray(epochs, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        rev = epochs[::-1]
        uniq, first = np.unique(rev, return_index=True)
        return uniq, values[::-1][first]

    def artifact(self, name: str) -> Artifact | None:
        return self._artifacts.get(name)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of arrays/strings (detects changed inputs of metric analyzers)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode())
            h.update(str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def signals_fingerprint(signals: dict[str, Any]) -> str:
    """The fingerprint of named (epochs, values) signals, None for an absent one."""
    parts: list[Any] = []
    for key, value in sorted(signals.items()):
        parts.append(key)
        if value is not None:
            parts += [np.asarray(value[0]), np.asarray(value[1], dtype=np.float64)]
    return fingerprint(*parts)


class Analyzer:
    """Base class. Subclass, set the class attributes, implement the method for `consumes`:

    - weights / activations: `compute(batch) -> dict[name, array stacked over batch]`,
      optionally `prepare(info, stored, reference)` and `summary()`;
    - trajectory: `compute_run(epochs, rows, layout) -> Output`;
    - metrics: `compute_metrics(view) -> Output` and `inputs(view) -> str` (a fingerprint:
      the pipeline recomputes only when it changes).

    Then add the class to `registry.ANALYZERS` (one line). Instances live for one pipeline run.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    consumes: ClassVar[str] = "weights"
    description: ClassVar[str] = ""
    modular: ClassVar[bool] = False  # needs a modular-addition model (p, W_E, W_U)

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults())
        if unknown:
            raise AnalysisError(
                f"analyzer {self.name}: unknown parameter(s) {sorted(unknown)}; "
                f"valid: {sorted(self.defaults())}"
            )
        self.params: dict[str, Any] = {**self.defaults(), **params}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Tunable parameters and their defaults (stored with the artifact)."""
        return {}

    def applies(self, info: RunInfo) -> str | None:
        """None when this analyzer can run on the run, else the reason it cannot."""
        if self.modular and info.p is None:
            return "not a modular-addition model (needs config p and W_E/W_U tensors)"
        return None

    # -- per-checkpoint analyzers ------------------------------------------------------------
    def prepare(self, info: RunInfo, stored: Artifact | None, reference: Callable[[], Any]) -> None:
        """Fix run-level choices before the first batch (e.g. which neurons get heatmaps).

        `stored` is the existing artifact when results are being extended (reuse its choices
        so old and new epochs agree), None on a fresh or forced run. `reference()` returns the
        lazily computed `ReferenceInfo` of the run's last checkpoint.
        """

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(summary arrays, JSON scalars) written with every batch of this analyzer."""
        return {}, {}

    # -- whole-run analyzers ---------------------------------------------------------------------
    def compute_run(
        self,
        epochs: np.ndarray,
        rows: np.ndarray,
        layout: list[tuple[str, tuple[int, ...]]],
        approximate: bool,
    ) -> Output:
        raise NotImplementedError

    # -- metric analyzers ----------------------------------------------------------------------
    def applies_to(self, view: MetricsView) -> str | None:
        """None when the run's metric series suffice, else the reason they do not."""
        return None

    def inputs(self, view: MetricsView) -> str:
        raise NotImplementedError

    def compute_metrics(self, view: MetricsView) -> Output:
        raise NotImplementedError
