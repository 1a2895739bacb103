"""Reading checkpoint weights for analysis: once per checkpoint, model tensors only.

`read_weights` reads only `state/model` of a checkpoint (not the optimizer moments or RNG
states, which are twice the model's size and which no analyzer needs). `ModelLoader` rebuilds
the model once per architecture with `load_model` (strict) and then loads each further
checkpoint into the same module with the same strict checks, so every checkpoint is still
verified key by key, shape by shape.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from epochscope.archives import Bundle
from epochscope.archives import format as fmt
from epochscope.archives.errors import DamagedBundleError
from epochscope.collectors.analysis.base import AnalysisError

__all__ = ["ModelLoader", "flatten", "model_shapes", "nonfinite", "read_weights"]


def _group(bundle: Bundle, epoch: int):
    # checkpoint(epoch) reads the whole tree; analysis reads the model subtree only.
    return bundle.checkpoint_group(epoch)


def _special_dtypes(g) -> dict[str, str]:
    meta = fmt.attr_json(g, "meta", {}) or {}
    return {
        k.removeprefix("model/"): v
        for k, v in (meta.get("tensor_dtypes") or {}).items()
        if k.startswith("model/")
    }


def read_weights(bundle: Bundle, epoch: int) -> dict[str, np.ndarray]:
    """The model tensors stored at `epoch` (name -> array, in stored order).

    Tensors stored bit-exact in a dtype numpy lacks (bfloat16 as int16) come back as float32.
    """
    g = _group(bundle, epoch)
    state = g["state"]
    if "model" not in state:
        raise AnalysisError(f"checkpoint at epoch {epoch} holds no model weights (state/model)")
    try:
        tree = fmt.read_tree(state, "model")
    except DamagedBundleError as exc:
        raise DamagedBundleError(
            f"{bundle.path}: the checkpoint at epoch {epoch} is damaged ({exc}); nothing is computed "
            "from damaged weights; see `epochscope verify`", exc.findings) from None
    special = _special_dtypes(g)
    out = {}
    for k, v in tree.items():
        if not isinstance(v, np.ndarray):
            continue
        if k in special:
            import torch

            v = (
                torch.from_numpy(np.ascontiguousarray(v))
                .view(getattr(torch, special[k]))
                .float()
                .numpy()
            )
        out[k] = v
    return out


def model_shapes(bundle: Bundle, epoch: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the floating-point model tensors at `epoch`, without reading them."""
    group = _group(bundle, epoch)
    g = group["state"]
    if "model" not in g:
        return {}
    special = _special_dtypes(group)
    out = {}
    for name, item in g["model"].items():
        if hasattr(item, "shape") and (item.dtype.kind == "f" or name in special):
            out[name] = tuple(int(s) for s in item.shape)
    return out


def flatten(
    weights: dict[str, np.ndarray], layout: list[tuple[str, tuple[int, ...]]]
) -> np.ndarray:
    """One float64 vector of the tensors named in `layout`, in that order."""
    return np.concatenate([np.asarray(weights[n], dtype=np.float64).ravel() for n, _ in layout])


def nonfinite(weights: dict[str, np.ndarray]) -> str | None:
    """None when every float tensor is finite, else a short reason naming the tensors."""
    bad = []
    for name, arr in weights.items():
        if arr.dtype.kind == "f":
            count = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if count:
                bad.append(f"{name} ({count} value{'s' if count > 1 else ''})")
    if not bad:
        return None
    return "non-finite weights in " + ", ".join(bad)


class ModelLoader:
    """Rebuilds the stored model once per architecture and loads checkpoints strictly into it."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self._models: dict[str, Any] = {}
        self.unavailable: str | None = None

    def load(self, epoch: int, weights: dict[str, np.ndarray]) -> Any | None:
        """The model with `epoch`'s weights, or None when the model cannot be rebuilt at all
        (class not registered, no stored config: `unavailable` says why). A checkpoint that
        does not match its model raises AnalysisError naming the epoch."""
        import torch

        from epochscope.collectors.checkpoints import CheckpointMismatchError, load_model

        meta = self.bundle.checkpoint_meta(epoch)
        key = json.dumps(
            [meta.get("model_class"), meta.get("model_config")], sort_keys=True, default=str
        )
        model = self._models.get(key)
        if model is None:
            try:
                model = load_model(self.bundle, epoch)
            except CheckpointMismatchError as exc:
                text = str(exc)
                if "not registered" in text or "stores no model config" in text:
                    self.unavailable = text
                    return None
                raise AnalysisError(
                    f"cannot analyse the checkpoint at epoch {epoch}: {text}"
                ) from None
            self._models[key] = model
            return model
        _load_strict(model, weights, meta.get("tensor_dtypes", {}), epoch, torch)
        return model


def _load_strict(
    model: Any, weights: dict[str, np.ndarray], dtypes: dict[str, str], epoch: int, torch: Any
) -> None:
    expected = model.state_dict()
    diffs = [f"missing key {k}" for k in sorted(set(expected) - set(weights))]
    diffs += [f"unexpected key {k}" for k in sorted(set(weights) - set(expected))]
    tensors = {}
    for k in sorted(set(expected) & set(weights)):
        t = torch.from_numpy(np.ascontiguousarray(weights[k]))
        if f"model/{k}" in dtypes:  # read_weights widened it to float32: narrow back exactly
            t = t.to(getattr(torch, dtypes[f"model/{k}"]))
        if tuple(t.shape) != tuple(expected[k].shape):
            diffs.append(
                f"{k}: stored shape {tuple(t.shape)} != model shape {tuple(expected[k].shape)}"
            )
        elif t.dtype != expected[k].dtype:
            diffs.append(f"{k}: stored dtype {t.dtype} != model dtype {expected[k].dtype}")
        tensors[k] = t
    if diffs:
        raise AnalysisError(
            f"checkpoint at epoch {epoch} does not match the model "
            f"({len(diffs)} difference(s)): " + "; ".join(diffs)
        )
    with torch.no_grad():
        for k, t in tensors.items():
            expected[k].copy_(t)
