"""Charts of attention heads (the attention analysis): each head's dominant frequency over
training, and its attention pattern over the input grid at one epoch (small multiples with
frequency badges)."""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.generator import sources as src
from epochscope.generator.charts import Unavailable, array_trace, chart, columns
from epochscope.generator.context import BuildContext, pick_epochs


def _head_ids(ctx: BuildContext, n: int) -> list[int]:
    ids = ctx.optional_summary(src.ATTENTION, src.HEAD_IDS)
    if ids is not None and len(ids) == n:
        return [int(i) for i in np.asarray(ids).ravel()]
    return list(range(n))


@chart("head_freq", "Attention head frequencies", "lines", needs=("attention",), epoch_axis=True,
       follows=("epoch", "head"))
def head_freq(ctx: BuildContext) -> dict[str, Any]:
    epochs, values = ctx.per_epoch(src.ATTENTION, src.HEAD_FREQ)
    values = columns(values, "head frequencies")
    share = None
    if ctx.has_per_epoch(src.ATTENTION, src.HEAD_FREQ_FRAC):
        share = columns(ctx.per_epoch(src.ATTENTION, src.HEAD_FREQ_FRAC)[1], "head frequency share")
    heads = _head_ids(ctx, values.shape[1])
    traces = []
    for h in range(values.shape[1]):
        trace = array_trace(ctx, epochs, values[:, h], f"head {heads[h]}", color=h, mode="lines+markers",
                            shape="hv", head=h)
        if share is not None and share.shape == values.shape:
            trace["k"] = ctx.store.add_float(share[:, h])
            trace["kLabel"] = "share of variance"
        traces.append(trace)
    return {"traces": traces, "yTitle": "dominant frequency k", "heads": int(values.shape[1])}


@chart("attention", "Attention patterns per head at the epoch", "maps", needs=("attention",),
       follows=("epoch", "head"), heavy=0.8)
def attention(ctx: BuildContext) -> dict[str, Any]:
    name, all_epochs = ctx.array_epochs(src.ATTENTION, src.ATTENTION_ARRAYS)

    def encode(rows: np.ndarray) -> int:
        if rows.ndim != 4:
            raise Unavailable(f"attention patterns have shape {rows.shape[1:]}, expected (heads, a, b)")
        return ctx.store.estimate(rows, "quantized", lead=2)

    per_epoch = max(ctx.row_cost(src.ATTENTION, name, all_epochs, encode), 1.0)
    keep = pick_epochs(all_epochs, int(ctx.budget_bytes // per_epoch), [])
    epochs, maps = ctx.rows(src.ATTENTION, name, all_epochs[keep])
    if len(epochs) < len(all_epochs):
        ctx.notes["attention"] = f"{len(epochs)} of {len(all_epochs)} analysed epochs embedded (report size budget)"
    spec: dict[str, Any] = {"epochs": ctx.store.add_int(epochs), "maps": ctx.store.add_quantized(maps, lead=2),
                            "ids": list(range(maps.shape[1])), "names": _head_ids(ctx, maps.shape[1]),
                            "mode": "head", "label": "head", "heads": int(maps.shape[1])}
    if ctx.has_per_epoch(src.ATTENTION, src.HEAD_FREQ):
        badge_epochs, freqs = ctx.per_epoch(src.ATTENTION, src.HEAD_FREQ)
        freqs = np.nan_to_num(columns(freqs, "head frequencies")).astype(np.int64)
        spec["badge"] = {"epochs": ctx.store.add_int(badge_epochs), "values": ctx.store.add_int(freqs.ravel()),
                         "n": int(freqs.shape[1]), "prefix": "k = "}
    return spec
