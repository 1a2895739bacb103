"""Per-input charts: for every (a, b) input, correct / loss / margin at the selected epoch as
p x p maps with the train/test split, each input's graduation epoch, summary curves per input
class, and the traces of probed inputs through training (direct logit attribution and the
logit lens). Click an input on a map to select it: the probe traces follow it."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator.charts import Unavailable, array_trace, chart
from epochscope.generator.charts.neurons import _thinned_note, _turn_epochs
from epochscope.generator.context import BuildContext, pick_epochs

INPUTS = "inputs"
GRADUATION = "input_graduation"
PROBE_PREFIX = "probe_"
CLASS_COLORS = {"all": 0, "train": 1, "test": 2, "a_eq_b": 3, "no_wrap": 4, "wrap": 5}
CLASS_LABELS = {"all": "all inputs", "train": "train", "test": "test", "a_eq_b": "a = b",
                "no_wrap": "a + b < p", "wrap": "a + b ≥ p (wrap-around)"}
LOSS_FLOOR = 1e-9  # log10 of the loss is mapped; smaller losses show as this floor


def _p(ctx: BuildContext, artifact: str, size: int) -> int:
    p = int(ctx.scalar(artifact, ("p",), 0) or ctx.bundle.config.get("p") or 0)
    if p < 2 or p * p != size:
        p = int(round(np.sqrt(size)))
    if p * p != size:
        raise Unavailable(f"'{artifact}' holds {size} inputs, not a p x p grid")
    return p


def _bits(ctx: BuildContext, values: np.ndarray) -> dict[str, str]:
    """Booleans [..., N] packed 8 per byte (big-endian bit order, as np.packbits)."""
    return ctx.store.add_int(np.packbits(np.asarray(values, dtype=bool), axis=-1).ravel())


def _split(ctx: BuildContext) -> np.ndarray | None:
    in_train = ctx.optional_summary(INPUTS, ("in_train",))
    return None if in_train is None else np.asarray(in_train, dtype=bool).ravel()


@chart("input_maps", "Every input at the epoch: correct, loss and margin", "input_grid", needs=(INPUTS,),
       follows=("epoch", "input"), wide=True, heavy=1.5)
def input_maps(ctx: BuildContext) -> dict[str, Any]:
    _, all_epochs = ctx.array_epochs(INPUTS, ("margin",))
    for name in ("correct", "loss"):
        ctx.array_epochs(INPUTS, (name,))
    sample_idx = np.unique(np.linspace(0, len(all_epochs) - 1, 3).astype(int))
    got, margin = ctx.rows(INPUTS, "margin", all_epochs[sample_idx])
    if margin.ndim != 2:
        raise Unavailable(f"inputs margin has shape {margin.shape[1:]}, expected (p*p,)")
    p = _p(ctx, INPUTS, margin.shape[1])
    _, loss = ctx.rows(INPUTS, "loss", got)
    per_epoch = (ctx.store.estimate(margin.astype(np.float32), "quantized", lead=1)
                 + ctx.store.estimate(np.log10(np.maximum(loss, LOSS_FLOOR)), "quantized", lead=1)) / len(got)
    per_epoch += p * p / 8 * 4 / 3 + 40
    keep = pick_epochs(all_epochs, int(ctx.budget_bytes // max(per_epoch, 1)), _turn_epochs(ctx))
    epochs, margin = ctx.rows(INPUTS, "margin", all_epochs[keep])
    _, loss = ctx.rows(INPUTS, "loss", epochs)
    _, correct = ctx.rows(INPUTS, "correct", epochs)
    _thinned_note(ctx, "input_maps", len(epochs), len(all_epochs))
    spec: dict[str, Any] = {
        "epochs": ctx.store.add_int(epochs), "p": p,
        "panels": [
            {"title": "correct", "bits": _bits(ctx, correct), "colors": ["#d62728", "#2ca02c"],
             "labels": ["wrong", "correct"]},
            {"title": "loss (log10)", "z": ctx.store.add_quantized(np.log10(np.maximum(loss, LOSS_FLOOR)), lead=1),
             "unit": "log10 loss", "log10": True},
            {"title": "margin (correct − best other logit)",
             "z": ctx.store.add_quantized(np.asarray(margin, dtype=np.float32), lead=1), "unit": "logits",
             "diverging": True},
        ],
    }
    split = _split(ctx)
    if split is not None and split.size == p * p:
        spec["inTrain"] = _bits(ctx, split)
    return spec


@chart("input_graduation_map", "Graduation epoch of every input", "input_grid", needs=(GRADUATION,),
       follows=("input",))
def input_graduation_map(ctx: BuildContext) -> dict[str, Any]:
    grad = np.asarray(ctx.summary(GRADUATION, ("graduation_epoch",)), dtype=np.int64).ravel()
    p = _p(ctx, GRADUATION, grad.size)
    never = int((grad < 0).sum())
    spec: dict[str, Any] = {"p": p, "panels": [{"title": "graduation epoch" + (f" ({never} never)" if never else ""),
                                                "int": ctx.store.add_int(grad + 1), "offset": -1,
                                                "unit": "epoch", "missing": "never graduated"}]}
    split = _split(ctx) if ctx.has_artifact(INPUTS) else None
    if split is not None and split.size == p * p:
        spec["inTrain"] = _bits(ctx, split)
    return spec


def _class_names(ctx: BuildContext, artifact: str, n: int) -> list[str]:
    names = ctx.labels(artifact, ("classes",), n, "class ")
    unavailable = ctx.scalar(artifact, ("unavailable_classes",), []) or []
    return [c if c not in unavailable else "" for c in names]


def _class_traces(ctx: BuildContext, artifact: str, name: str, **style: Any) -> list[dict[str, Any]]:
    epochs, values = ctx.per_epoch(artifact, (name,))
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise Unavailable(f"'{artifact}' {name} has shape {values.shape}, expected (epochs, classes)")
    traces = []
    for j, cls in enumerate(_class_names(ctx, artifact, values.shape[1])):
        if not cls or not np.isfinite(values[:, j]).any():
            continue
        label = CLASS_LABELS.get(cls, cls)
        traces.append(array_trace(ctx, epochs, values[:, j], label, color=CLASS_COLORS.get(cls, j), **style))
    if not traces:
        raise Unavailable(f"no data: '{artifact}' {name} is empty or NaN for every class")
    return traces


@chart("input_class_accuracy", "Accuracy and graduated share by input class", "lines", needs=(INPUTS,),
       epoch_axis=True, follows=("epoch",))
def input_class_accuracy(ctx: BuildContext) -> dict[str, Any]:
    traces = _class_traces(ctx, INPUTS, "class_acc")
    if ctx.has_per_epoch(GRADUATION, ("graduated_share",)):
        for i, t in enumerate(_class_traces(ctx, GRADUATION, "graduated_share", dash="dot", group="graduated")):
            t["name"] = f"{t['name']}: graduated"
            if i:  # one legend entry toggles every class's graduated share
                t["legend"] = False
            else:
                t["legendName"] = "share graduated (dotted, per class)"
            traces.append(t)
    return {"traces": traces, "yTitle": "accuracy; graduated (dotted)", "yRange": [-0.02, 1.02]}


@chart("input_class_loss", "Loss and margin by input class", "lines", needs=(INPUTS,), epoch_axis=True,
       follows=("epoch",))
def input_class_loss(ctx: BuildContext) -> dict[str, Any]:
    traces = _class_traces(ctx, INPUTS, "class_loss")
    for i, t in enumerate(_class_traces(ctx, INPUTS, "class_margin", dash="dot", group="margin")):
        t["name"] = f"{t['name']}: margin"
        t["yaxis"] = "y2"
        t["visible"] = "legendonly"
        if i:
            t["legend"] = False
        else:
            t["legendName"] = "mean margin (dotted, per class)"
        traces.append(t)
    return {"traces": traces, "yTitle": "mean cross-entropy loss", "logy": True, "logToggle": True,
            "y2Title": "mean margin (logits, dotted)"}


def _probe_names(ctx: BuildContext) -> list[str]:
    return sorted(n for n in ctx.bundle.artifact_names if n.startswith(PROBE_PREFIX))


PROBE_ARRAYS = ("logit_centred", "dla_embed", "dla_mlp", "dla_mlp_mean", "dla_mlp_other", "dla_heads",
                "dla_mlp_freq", "lens_logprob", "lens_rank", "loss", "margin", "correct")


def _probe_spec(ctx: BuildContext, name: str) -> dict[str, Any]:
    art = ctx.artifact(name)
    missing = [a for a in PROBE_ARRAYS if a not in art.names]
    if missing:
        raise Unavailable(f"'{name}' lacks " + ", ".join(missing))
    a = np.asarray(ctx.summary(name, ("a",)), dtype=np.int64)
    b = np.asarray(ctx.summary(name, ("b",)), dtype=np.int64)
    label = np.asarray(ctx.summary(name, ("label",)), dtype=np.int64)
    split = ctx.optional_summary(name, ("in_train",))
    split = np.full(len(a), -1) if split is None else np.asarray(split, dtype=np.int64)
    out: dict[str, Any] = {"name": str(ctx.scalar(name, ("probe",), name[len(PROBE_PREFIX):])),
                           "spec": str(ctx.scalar(name, ("spec",), "")),
                           "a": a.tolist(), "b": b.tolist(), "label": label.tolist(), "inTrain": split.tolist()}
    epochs = None
    for key in PROBE_ARRAYS:
        e, values = ctx.per_epoch(name, (key,))
        epochs = e
        values = np.asarray(values, dtype=np.float64)
        if values.shape[1] != len(a):
            raise Unavailable(f"'{name}' {key} has {values.shape[1]} inputs, its summary {len(a)}")
        out[key] = ctx.store.add_float(values)
    out["epochs"] = ctx.store.add_int(epochs)
    key_freqs = ctx.optional_summary(name, ("key_freqs",))
    out["keyFreqs"] = [] if key_freqs is None else [int(k) for k in key_freqs]
    stages = ctx.optional_summary(name, ("stages",))
    out["stages"] = ["embed", "attn", "mlp"] if stages is None else [str(s) for s in stages]
    return out


@chart("probe_traces", "Probed inputs through training", "probe", needs=(), epoch_axis=True,
       follows=("epoch", "input"), wide=True)
def probe_traces(ctx: BuildContext) -> dict[str, Any]:
    names = _probe_names(ctx)
    if not names:
        raise Unavailable("no probe was run (epochscope analyze RUN --probe '4+29,17+96' or --probe wrong:16)")
    probes, reasons = [], []
    for name in names:
        try:
            probes.append(_probe_spec(ctx, name))
        except Unavailable as why:
            reasons.append(str(why))
    if not probes:
        raise Unavailable("; ".join(reasons))
    p = int(ctx.bundle.config.get("p") or 0) or int(max(max(pr["a"] + pr["b"] + [0]) for pr in probes)) + 1
    heads = ctx.bundle.config.get("n_heads")
    first = probes[0]
    return {"probes": probes, "p": p, "heads": int(heads) if heads else None,
            "defaultInput": int(first["a"][0] * p + first["b"][0]) if first["a"] else -1}
