"""Charts of the evolutionary activation search (collectors/experiments/evolution.py; element
names in docs/experiments.md): the Search Candidates table with why each duplicate exists,
fitness by generation, the architecture distribution, the loss with a marker per activation
switch and the spike each switch caused, and effective rank."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from epochscope.generator.charts import Unavailable, chart, present_series, series_trace
from epochscope.generator.context import BuildContext
from epochscope.generator.packs.step_charts import (
    event_points,
    fmt,
    nearest_value,
    spikes_by_step,
    table_spec,
)

# The notes' eight fields, in their order; the collector's extra columns follow.
NOTES_COLUMNS = ("id", "activation", "generation", "best_loss", "best_val_loss", "fitness", "steps", "alive")


def _strings(values: Any) -> list[str]:
    return ["" if v is None else str(v) for v in np.asarray(values, dtype=object).tolist()]


def origins(table: dict[str, Any], pool_size: int | None) -> list[str]:
    """Why each candidate exists (the notes' three sources of duplicates), one line per row."""
    ids, acts = _strings(table["id"]), _strings(table["activation"])
    gens = [int(g) for g in np.asarray(table["generation"]).tolist()]
    parents = _strings(table["parent"]) if "parent" in table else [""] * len(ids)
    elite = [bool(e) for e in np.asarray(table["elite"]).tolist()] if "elite" in table else [False] * len(ids)
    act_of = dict(zip(ids, acts, strict=True))
    seen0: Counter[str] = Counter()
    out = []
    for act, gen, parent, is_elite in zip(acts, gens, parents, elite, strict=True):
        if gen == 0 or not parent:
            seen0[act] += 1
            if seen0[act] == 1:
                out.append("initial population")
            else:
                out.append(f"initial, pool cycled: {act} #{seen0[act]}")
        elif is_elite:
            out.append(f"elite clone of {parent}")
        elif act_of.get(parent) == act:
            out.append(f"offspring of {parent}, same activation")
        else:
            out.append(f"offspring of {parent}, mutated {act_of.get(parent, '?')} → {act}")
    return out


@chart("evo_candidates", "Search Candidates", "table", needs=("tables",), wide=True)
def evo_candidates(ctx: BuildContext) -> dict[str, Any]:
    t = ctx.table("search_candidates")
    missing = [c for c in ("id", "activation", "generation") if c not in t]
    if missing:
        raise Unavailable(f"the 'search_candidates' table lacks {', '.join(missing)}")
    pool = ctx.bundle.config.get("activations")
    why = origins(t, len(pool) if isinstance(pool, (list, tuple)) else None)
    spec = table_spec(ctx, t, NOTES_COLUMNS, {"why this row": why})
    acts = Counter(_strings(t["activation"]))
    dup = sum(n - 1 for n in acts.values())
    elite = sum(w.startswith("elite clone") for w in why)
    kept = sum(w.startswith("offspring") and w.endswith("same activation") for w in why)
    cycled = sum("pool cycled" in w for w in why)
    ctx.notes["evo_candidates"] = (
        f"{len(why)} candidates, {len(acts)} activations ({', '.join(f'{a} ×{n}' for a, n in acts.most_common())}); "
        f"{dup} repeat an activation by design: {elite} elite clone{'s' * (elite != 1)} (same activation, fresh "
        f"evaluation), {kept} offspring with their parent's activation (not mutated, or mutation redrew it), "
        f"{cycled} from pool cycling; each has its own id and fitness (the \"?\" explains why)")
    return spec


def _generation_rows(ctx: BuildContext) -> dict[str, Any]:
    t = ctx.table("architecture_distribution")
    if "generation" not in t:
        raise Unavailable("the 'architecture_distribution' table has no 'generation' column")
    order = np.argsort(np.asarray(t["generation"]), kind="stable")
    return {k: np.asarray(v)[order] for k, v in t.items()}


@chart("evo_fitness", "Fitness by generation", "lines", needs=("tables",))
def evo_fitness(ctx: BuildContext) -> dict[str, Any]:
    t = ctx.table("search_candidates")
    if "fitness" not in t or "generation" not in t:
        raise Unavailable("the 'search_candidates' table has no 'fitness' and 'generation' columns")
    ids, acts = _strings(t["id"]), _strings(t["activation"])
    gens = np.asarray(t["generation"], dtype=np.int64)
    fit = np.asarray(t["fitness"], dtype=np.float64)
    if not np.isfinite(fit).any():
        raise Unavailable("no data: no candidate has a finite fitness")
    val_acc = np.asarray(t["val_acc"], dtype=np.float64) if "val_acc" in t else np.full(len(ids), np.nan)
    elite = np.asarray(t["elite"], dtype=bool) if "elite" in t else np.zeros(len(ids), bool)
    pool = list(dict.fromkeys(acts))
    points = []
    for j, act in enumerate(pool):
        rows = [i for i, a in enumerate(acts) if a == act and np.isfinite(fit[i])]
        offset = (j - (len(pool) - 1) / 2) * 0.06  # side by side within a generation
        points.append({"name": act, "symbol": "circle", "size": 10, "color": j,
                       "x": [float(gens[i] + offset) for i in rows], "y": [float(fit[i]) for i in rows],
                       "text": [[f"{ids[i]} ({act}{', elite clone' if elite[i] else ''})",
                                 f"generation {int(gens[i])}: fitness {fmt(fit[i])}, val accuracy {fmt(val_acc[i])}"]
                                for i in rows]})
    traces = []
    if ctx.has_table("architecture_distribution"):
        g = _generation_rows(ctx)
        for j, (col, label) in enumerate((("best_fitness", "generation best"), ("mean_fitness", "generation mean"))):
            if col in g:
                traces.append({"name": label, "x": ctx.store.add_int(g["generation"]),
                               "y": ctx.store.add_float(np.asarray(g[col], dtype=np.float64), rtol=0.0, floor=0.0),
                               "color": "#1d2330", "dash": "solid" if j == 0 else "dot", "width": 1.5,
                               "mode": "lines"})
    gen_values = sorted(set(gens.tolist()))
    best = int(np.nanargmax(fit))
    ctx.notes["evo_fitness"] = (f"best: {ids[best]} ({acts[best]}) with fitness {fmt(fit[best])} in generation "
                                f"{int(gens[best])}; fitness = validation accuracy − complexity penalty")
    return {"traces": traces, "points": points, "xTitle": "generation", "xHover": "generation",
            "yTitle": "fitness", "noTime": True,
            "xRange": [min(gen_values) - 0.4, max(gen_values) + 0.4], "xDtick": 1}


@chart("evo_architecture", "Architecture distribution over generations", "bars",
       needs=("array.architecture_counts", "tables"))
def evo_architecture(ctx: BuildContext) -> dict[str, Any]:
    pool = ctx.bundle.config.get("activations")
    if ctx.has_artifact("array.architecture_counts") and isinstance(pool, (list, tuple)):
        # Counts in the pool's order at each generation's end (colours follow the pool).
        _, arr = ctx.array("architecture_counts")
        counts = np.asarray(arr, dtype=np.int64).T
        names = [str(a) for a in pool]
        if counts.shape[0] != len(names):
            raise Unavailable(f"array 'architecture_counts' has {counts.shape[0]} columns for a pool of {len(names)}")
        gens = [str(i) for i in range(counts.shape[1])]
    else:
        g = _generation_rows(ctx)
        cols = [c for c in g if c.startswith("count.")]
        if not cols:
            raise Unavailable("neither the array 'architecture_counts' nor count.<activation> columns in the "
                              "'architecture_distribution' table")
        counts = np.stack([np.asarray(g[c], dtype=np.int64) for c in cols])
        names = [c.removeprefix("count.") for c in cols]
        gens = [str(int(x)) for x in g["generation"]]
    distinct = (counts > 0).sum(axis=0)
    labels = [("converged: 1 activation" if d == 1 else f"{int(d)} distinct") for d in distinct]
    first, last = int(distinct[0]), int(distinct[-1])
    trend = ("converged on one activation" if last == 1 else
             "narrowing" if last < first else "as spread as at the start" if last == first else "spreading")
    ctx.notes["evo_architecture"] = (f"{len(gens)} generations: {first} → {last} distinct activations ({trend}); "
                                     "every layer of a candidate uses the same activation, so this is the "
                                     "population's make-up")
    return {"x": gens, "stacked": True, "xTitle": "generation", "yTitle": "candidates",
            "traces": [{"name": a, "y": ctx.store.add_int(counts[i]), "color": i, "unit": "candidates"}
                       for i, a in enumerate(names)],
            "labels": labels, "tops": [int(v) for v in counts.sum(axis=0)]}


@chart("evo_loss", "Loss with activation switches", "lines", needs=("metrics",), epoch_axis=True,
       follows=("epoch",), wide=True)
def evo_loss(ctx: BuildContext) -> dict[str, Any]:
    have = present_series(ctx, ("train_loss", "val_loss"))
    traces = []
    if "train_loss" in have:
        traces.append(series_trace(ctx, "train_loss", "train loss (per step)", color=0, width=1.1))
    if "val_loss" in have:
        traces.append(series_trace(ctx, "val_loss", "validation loss", color=1, mode="lines+markers"))
    if ctx.has_series("candidate_val_loss"):
        traces.append(series_trace(ctx, "candidate_val_loss", "candidate's final validation loss", color=2,
                                   mode="markers"))
    spikes = spikes_by_step(ctx, "switch_spikes")
    epochs, loss = ctx.series("train_loss") if "train_loss" in have else (np.zeros(0, np.int64), np.zeros(0))
    xs, ys, texts = [], [], []
    for e in ctx.events("activation_switch"):
        p = e.get("payload") or {}
        step = int(e["epoch"])
        sp = spikes.get(step)
        lines = [f"switch {p.get('from', '?')} → {p.get('to', '?')} at step {step}",
                 f"to {p.get('to_candidate', '?')} (generation {p.get('generation', '?')}), "
                 f"from {p.get('from_candidate', '?')}",
                 f"fitness {fmt(p.get('from_fitness'))} → {fmt(p.get('to_fitness'))}"]
        if sp:
            rec = int(sp.get("recovery_steps", -1))
            lines.append(f"spike +{fmt(sp.get('height'))} (peak {fmt(sp.get('peak_loss'))} after "
                         f"{fmt(sp.get('pre_loss'))}), " + (f"recovered in {rec} steps" if rec >= 0 else
                                                             "not recovered within the candidate's window"))
        xs.append(step)
        ys.append(float(sp["peak_loss"]) if sp and np.isfinite(sp.get("peak_loss", np.nan))
                  else nearest_value(epochs, loss, step))
        texts.append(lines)
    spec: dict[str, Any] = {"traces": traces, "yTitle": "cross-entropy loss", "xTitle": "step", "xHover": "step",
                            "logToggle": True}
    if xs:
        spec["points"] = [event_points(f"activation switches ({len(xs)})", xs, ys, texts, "#d62728")]
    ctx.notes["evo_loss"] = (f"{len(xs)} activation switches (diamonds at each spike's peak: hover for from/to, "
                             "fitness and the spike)" if xs else "no activation switch in this run")
    return spec


@chart("evo_switch_spikes", "Loss spike after each switch", "table", needs=("tables",), wide=True)
def evo_switch_spikes(ctx: BuildContext) -> dict[str, Any]:
    s = ctx.table("switch_spikes")
    spec = table_spec(ctx, s, ("step", "from", "to", "candidate", "height", "recovery_steps", "pre_loss",
                               "peak_loss"))
    h = np.asarray(s.get("height", []), dtype=np.float64)
    rec = np.asarray(s.get("recovery_steps", []), dtype=np.int64)
    if h.size:
        ok = rec[rec >= 0]
        ctx.notes["evo_switch_spikes"] = (
            f"{h.size} switches: median spike +{fmt(float(np.median(h)))}, largest +{fmt(float(h.max()))}; "
            + (f"median recovery {int(np.median(ok))} steps" if ok.size else "none recovered")
            + (f"; {int((rec < 0).sum())} not recovered before the next candidate (recovery_steps = −1)"
               if (rec < 0).any() else ""))
    return spec


@chart("evo_effective_rank", "Effective rank of the weight matrices", "lines", needs=("metrics",),
       epoch_axis=True, follows=("epoch",), wide=True)
def evo_effective_rank(ctx: BuildContext) -> dict[str, Any]:
    parts = sorted(n for n in ctx.bundle.series_names if n.startswith("effective_rank."))
    have = present_series(ctx, ("effective_rank", *parts))
    traces = []
    for j, name in enumerate(n for n in parts if n in have):
        traces.append(series_trace(ctx, name, name.removeprefix("effective_rank."), color=j + 1, width=1,
                                   opacity=0.75, mode="lines+markers"))
    if "effective_rank" in have:
        traces.insert(0, series_trace(ctx, "effective_rank", "mean of the matrices", color="#1d2330", width=2.6,
                                      mode="lines+markers"))
    spec: dict[str, Any] = {"traces": traces, "yTitle": "effective rank (σ > 1% of σmax)", "xTitle": "step",
                            "xHover": "step"}
    d = ctx.bundle.config.get("d_model")
    if isinstance(d, int):
        spec["hlines"] = [{"y": d, "text": f"full rank = d_model = {d}"}]
    if "effective_rank" in have:
        v = ctx.series("effective_rank")[1]
        v = v[np.isfinite(v)]
        ctx.notes["evo_effective_rank"] = (f"{v.size} measurements; mean rank {fmt(v.min())} to {fmt(v.max())}"
                                           + (f" of at most {d}" if isinstance(d, int) else ""))
    return spec
