"""Torch <-> bundle checkpoints: state capture, strict loading, exact resume.

A checkpoint stores the model's class name and architecture config beside its tensors, so
`load_model` rebuilds the model exactly and loads it strictly: any missing or unexpected
key, wrong shape or dtype, or config drift raises one error that lists every difference
(research-notes/training-sweep-summary.md: a silent strict=False load inverted results).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from epochscope.archives import Bundle, open_bundle
from epochscope.archives.format import Concat
from epochscope.errors import EpochscopeError

__all__ = [
    "CheckpointMismatchError",
    "capture_checkpoint",
    "load_model",
    "register_model",
    "restore_checkpoint",
]

_REGISTRY: dict[str, Callable[..., torch.nn.Module]] = {}


class CheckpointMismatchError(EpochscopeError):
    """A stored checkpoint does not match the model it is loaded into."""


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_model(cls: type) -> type:
    """Allow `load_model` to rebuild `cls` from a stored config by its class path."""
    _REGISTRY[class_path(cls)] = cls
    return cls


def model_config_of(model: torch.nn.Module) -> dict[str, Any] | None:
    """The architecture config a model exposes as `.config` (dataclass or dict), if any."""
    cfg = getattr(model, "config", None)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    if isinstance(cfg, dict):
        return dict(cfg)
    return None


# -- capture ---------------------------------------------------------------------------------
_NATIVE = {torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
           torch.int64, torch.uint8, torch.bool}


def _to_numpy(t: torch.Tensor, key: str, dtypes: dict[str, str]) -> np.ndarray:
    t = t.detach()
    if t.dtype not in _NATIVE:
        # e.g. bfloat16: stored bit-exact as int16, the torch dtype recorded in the metadata.
        dtypes[key] = str(t.dtype).removeprefix("torch.")
        return t.cpu().contiguous().view(torch.int16).numpy()
    # A view, not a copy: the archive writes it before the caller can change the tensor.
    return t.cpu().contiguous().numpy()


def _state_tree(obj: Any, prefix: str, dtypes: dict[str, str]) -> Any:
    if isinstance(obj, torch.Tensor):
        return _to_numpy(obj, prefix, dtypes)
    if isinstance(obj, dict):
        return {str(k): _state_tree(v, f"{prefix}/{k}", dtypes) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_state_tree(v, f"{prefix}/{i}", dtypes) for i, v in enumerate(obj)]
    return obj


def _optimizer_tree(sd: dict[str, Any], dtypes: dict[str, str]) -> dict[str, Any]:
    """The optimizer's state dict as a tree.

    A per-parameter state key holding a tensor of one dtype for every parameter (AdamW's
    `exp_avg`, `exp_avg_sq`, `step`) is stored as ONE dataset, `flat/<key>`: the parameters'
    tensors flattened end to end in the order `flat_layout` gives (a dataset per parameter
    and key made HDF5's bookkeeping cost more than the bytes). Other keys stay per parameter
    under `state/<index>/<key>`.
    """
    state = sd["state"]
    params = sorted(state, key=int)
    flat: dict[str, Concat] = {}
    shapes: dict[str, list[list[int]]] = {}
    for key in sorted({k for s in state.values() for k in s}):
        tensors = [state[i].get(key) for i in params]
        if all(isinstance(t, torch.Tensor) for t in tensors) and len({t.dtype for t in tensors}) == 1:
            flat[key] = Concat(tuple(_to_numpy(t, f"optimizer/flat/{key}", dtypes).reshape(-1) for t in tensors))
            shapes[key] = [list(t.shape) for t in tensors]
    rest = {str(i): {k: _state_tree(v, f"optimizer/state/{i}/{k}", dtypes) for k, v in s.items() if k not in flat}
            for i, s in state.items()}
    tree: dict[str, Any] = {"param_groups": _state_tree(sd["param_groups"], "optimizer/param_groups", dtypes)}
    rest = {i: s for i, s in rest.items() if s}
    if rest or not flat:
        tree["state"] = rest
    if flat:
        tree["flat"] = flat
        # a list, so the tree keeps it as one JSON leaf (a mapping would become HDF5 groups)
        tree["flat_layout"] = [{"key": k, "params": [int(i) for i in params], "shapes": shapes[k]}
                               for k in flat]
    return tree


def capture_rng() -> dict[str, Any]:
    """Every RNG state training may touch: torch (CPU and CUDA), numpy, python."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    rng: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state().numpy().copy(),
        "numpy": {"kind": np_state[0], "keys": np.asarray(np_state[1]), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "state": np.asarray(py_internal, dtype=np.uint32),
                   "gauss_next": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["torch_cuda"] = {str(i): s.numpy().copy() for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return rng


def owned(tree: Any) -> Any:
    """`tree` with every array copied: a capture holds views of the live tensors, which a
    checkpoint kept for a later write must not follow."""
    if isinstance(tree, np.ndarray):
        return tree.copy()
    if isinstance(tree, Concat):
        return Concat(tuple(p.copy() for p in tree.parts))
    if isinstance(tree, dict):
        return {k: owned(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [owned(v) for v in tree]
    return tree


def capture_checkpoint(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                       *, rng: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, tree) for the archive: weights, optimizer state, RNG states, model class+config."""
    dtypes: dict[str, str] = {}
    tree: dict[str, Any] = {"model": {k: _to_numpy(v, f"model/{k}", dtypes)
                                      for k, v in model.state_dict().items()}}
    meta: dict[str, Any] = {"model_class": class_path(type(model)),
                            "model_config": model_config_of(model)}
    if optimizer is not None:
        sd = optimizer.state_dict()
        tree["optimizer"] = _optimizer_tree(sd, dtypes)
        meta["optimizer_class"] = class_path(type(optimizer))
    if rng:
        tree["rng"] = capture_rng()
    meta["tensor_dtypes"] = dtypes
    return meta, tree


# -- loading ---------------------------------------------------------------------------------
def _to_tensor(arr: Any, key: str, dtypes: dict[str, str]) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(arr, order="C"))  # keeps 0-d arrays 0-d (ascontiguousarray does not)
    if key in dtypes:
        t = t.view(getattr(torch, dtypes[key]))
    return t


def _with_bundle(bundle: Bundle | str | os.PathLike, fn: Callable[[Bundle], Any]) -> Any:
    if isinstance(bundle, Bundle):
        return fn(bundle)
    with open_bundle(bundle) as b:
        return fn(b)


def load_model(bundle: Bundle | str | os.PathLike, epoch: int, *,
               factory: Callable[..., torch.nn.Module] | None = None,
               config: dict[str, Any] | None = None) -> torch.nn.Module:
    """Rebuild the model stored at `epoch` from its architecture config and load it strictly.

    `factory` builds a model class that was not registered (called with the stored config);
    `config`, when given, must equal the stored architecture config.
    """

    def load(b: Bundle) -> torch.nn.Module:
        ckpt = b.checkpoint(epoch)
        stored_cfg = ckpt.meta.get("model_config")
        if config is not None and stored_cfg is not None:
            diffs = config_differences(stored_cfg, config)
            if diffs:
                raise CheckpointMismatchError(f"config drift at epoch {epoch}: " + "; ".join(diffs))
        model = _build(ckpt.meta, factory)
        built_cfg = model_config_of(model)
        if built_cfg is not None and stored_cfg is not None:
            diffs = config_differences(stored_cfg, built_cfg)
            if diffs:
                raise CheckpointMismatchError(
                    f"the rebuilt model's config differs from the stored one: {'; '.join(diffs)}")
        _load_weights_strict(model, ckpt.state["model"], ckpt.meta.get("tensor_dtypes", {}), epoch)
        model.eval()
        return model

    return _with_bundle(bundle, load)


def _build(meta: dict[str, Any], factory: Callable[..., torch.nn.Module] | None) -> torch.nn.Module:
    cfg = meta.get("model_config")
    if factory is None:
        name = meta.get("model_class", "?")
        factory = _REGISTRY.get(name)
        if factory is None:
            _import_builtin_models()
            factory = _REGISTRY.get(name)
        if factory is None:
            raise CheckpointMismatchError(
                f"model class {name} is not registered: pass factory= (or call register_model)")
    if cfg is None:
        raise CheckpointMismatchError("the checkpoint stores no model config; build the model yourself "
                                      "and use restore_checkpoint")
    if hasattr(factory, "from_config"):
        return factory.from_config(cfg)
    return factory(**cfg)


def _import_builtin_models() -> None:
    import importlib

    for module in ("epochscope.collectors.model", "epochscope.collectors.experiments.lm"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            pass


def _load_weights_strict(model: torch.nn.Module, stored: dict[str, Any], dtypes: dict[str, str],
                         epoch: int) -> None:
    expected = model.state_dict()
    diffs = []
    for key in sorted(set(expected) - set(stored)):
        diffs.append(f"missing key {key}")
    for key in sorted(set(stored) - set(expected)):
        diffs.append(f"unexpected key {key}")
    tensors = {}
    for key in sorted(set(expected) & set(stored)):
        t = _to_tensor(stored[key], f"model/{key}", dtypes)
        if tuple(t.shape) != tuple(expected[key].shape):
            diffs.append(f"{key}: stored shape {tuple(t.shape)} != model shape {tuple(expected[key].shape)}")
        elif t.dtype != expected[key].dtype:
            diffs.append(f"{key}: stored dtype {t.dtype} != model dtype {expected[key].dtype}")
        tensors[key] = t
    if diffs:
        raise CheckpointMismatchError(
            f"checkpoint at epoch {epoch} does not match the model ({len(diffs)} difference(s)): "
            + "; ".join(diffs))
    model.load_state_dict(tensors, strict=True)


def restore_checkpoint(bundle: Bundle | str | os.PathLike, epoch: int, model: torch.nn.Module,
                       optimizer: torch.optim.Optimizer | None = None, *,
                       restore_rng: bool = True) -> dict[str, Any]:
    """Load weights (strictly), optimizer state and RNG states stored at `epoch`; return meta."""

    def restore(b: Bundle) -> dict[str, Any]:
        ckpt = b.checkpoint(epoch)
        dtypes = ckpt.meta.get("tensor_dtypes", {})
        _load_weights_strict(model, ckpt.state["model"], dtypes, epoch)
        if optimizer is not None:
            if "optimizer" not in ckpt.state:
                raise CheckpointMismatchError(f"checkpoint at epoch {epoch} has no optimizer state")
            optimizer.load_state_dict(_optimizer_state(ckpt.state["optimizer"], dtypes))
        if restore_rng:
            if "rng" not in ckpt.state:
                raise CheckpointMismatchError(f"checkpoint at epoch {epoch} has no RNG state")
            _restore_rng(ckpt.state["rng"])
        return ckpt.meta

    return _with_bundle(bundle, restore)


def _optimizer_state(tree: dict[str, Any], dtypes: dict[str, str]) -> dict[str, Any]:
    def back(obj: Any, prefix: str) -> Any:
        if isinstance(obj, np.ndarray):
            return _to_tensor(obj, prefix, dtypes)
        if isinstance(obj, dict):
            return {k: back(v, f"{prefix}/{k}") for k, v in obj.items()}
        return obj

    state = {int(i): back(s, f"optimizer/state/{i}") for i, s in tree.get("state", {}).items()}
    layout = {rec["key"]: rec for rec in tree.get("flat_layout") or []}
    for key, arr in (tree.get("flat") or {}).items():
        offset = 0
        for i, shape in zip(layout[key]["params"], layout[key]["shapes"], strict=True):
            n = int(np.prod(shape, dtype=np.int64))
            part = np.asarray(arr)[offset:offset + n].reshape(shape)
            state.setdefault(int(i), {})[key] = _to_tensor(part, f"optimizer/flat/{key}", dtypes).clone()
            offset += n
    groups = []
    for g in tree["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def _restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(torch.from_numpy(np.asarray(rng["torch_cpu"], dtype=np.uint8)))
    n = rng["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = rng["python"]
    random.setstate((int(p["version"]), tuple(int(x) for x in p["state"]), p["gauss_next"]))
    if "torch_cuda" in rng and torch.cuda.is_available():
        states = [torch.from_numpy(np.asarray(rng["torch_cuda"][k], dtype=np.uint8))
                  for k in sorted(rng["torch_cuda"], key=int)]
        torch.cuda.set_rng_state_all(states)


def config_differences(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Human-readable differences between two flat-ish config dicts."""
    diffs = []
    for key in sorted(set(stored) | set(given), key=str):
        if key not in given:
            diffs.append(f"{key}: stored {stored[key]!r}, missing now")
        elif key not in stored:
            diffs.append(f"{key}: not stored, now {given[key]!r}")
        elif _norm(stored[key]) != _norm(given[key]):
            diffs.append(f"{key}: stored {stored[key]!r}, now {given[key]!r}")
    return diffs


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value
