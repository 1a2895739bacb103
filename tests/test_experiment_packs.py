"""The evolution and apoptosis report packs, on tiny bundles made by the real collectors here
(seconds each) and on a Recorder-made bundle with hostile strings: every pack chart is built,
what they read is left out of the generic pack, and the derived views (why a candidate
exists, spike markers, architecture counts, lineage depth, age histogram) say what the
bundle holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from epochscope.archives import open_bundle
from epochscope.collectors.experiments.apoptosis import ApoptosisConfig, run_apoptosis
from epochscope.collectors.experiments.evolution import EvolutionConfig, run_evolution
from epochscope.collectors.recorder import Recorder
from epochscope.generator import render_report
from epochscope.generator.packs import applicable_packs, load_packs
from epochscope.generator.packs.apoptosis_charts import lineage
from epochscope.generator.packs.evolution_charts import origins

# Five candidates over a pool of four: generation 0 cycles the pool (gelu twice).
TINY_EVO = dict(population_size=5, generations=3, steps_per_candidate=6, metrics_interval=3, d_model=32,
                n_ctx=32, batch_size=4, sample_chars=10, keep_best=2, mutation_rate=0.5, seed=3)
TINY_APO = dict(steps=24, interval=6, checkpoint_every=12, metrics_interval=4, d_model=32, n_ctx=32,
                batch_size=4, sample_chars=10, preservation_steps=5, spike_window=3, seed=5)

HOSTILE = "<img src=x onerror=alert(1)>"


def page_data(html: Path) -> dict:
    """The page's JSON, with the page itself as "_html"."""
    text = html.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="es-data">(.*?)</script>', text, re.S).group(1))
    return {**data, "_html": text}


def pack_charts(name: str) -> set[str]:
    pack = next(p for p in load_packs() if p.name == name)
    return {c for s in pack.sections for c in s.charts}


def evolution_bundle(path: Path) -> Path:
    run_evolution(EvolutionConfig(**TINY_EVO), path)
    return path


def apoptosis_bundle(path: Path, strategy: str = "crossover") -> Path:
    run_apoptosis(ApoptosisConfig(**TINY_APO, strategy=strategy), path)
    return path


def hostile_bundle(path: Path) -> Path:
    """An evolution-like bundle whose ids, activations, texts and payloads are markup."""
    with Recorder(path, {"experiment": "evolution", "activations": [HOSTILE, "relu"], "d_model": 8}) as rec:
        for step in range(1, 21):
            rec.log_step(step, step, train_loss=2.0 - step / 40, grad_norm=1.0, clip_fraction=0.0,
                         tokens_per_sec=100.0, cusum_grad=0.1 * step)
        rec.event(11, "activation_switch", f"relu -> {HOSTILE}",
                  payload={"from": "relu", "to": HOSTILE, "from_candidate": "a", "to_candidate": HOSTILE,
                           "from_fitness": 0.1, "to_fitness": 0.2, "generation": 1})
        rec.event(12, "cusum_alarm", HOSTILE, payload={"monitor": "cusum_grad", "series": HOSTILE,
                                                       "direction": "up", "statistic": 4.5})
        rec.table("search_candidates", {"id": [HOSTILE, "b"], "activation": [HOSTILE, "relu"],
                                        "generation": np.array([0, 1]), "best_loss": np.array([1.0, 0.9]),
                                        "best_val_loss": np.array([1.1, 1.0]), "fitness": np.array([0.1, 0.2]),
                                        "steps": np.array([10, 10]), "alive": np.array([False, True]),
                                        "parent": ["", HOSTILE], "elite": np.array([False, True])})
        rec.row("architecture_distribution", generation=0, step=10, **{f"count.{HOSTILE}": 1, "count.relu": 0},
                distinct=1, best_fitness=0.1, mean_fitness=0.1)
        rec.row("samples", checkpoint=10, candidate=HOSTILE, activation=HOSTILE, generation=0, prompt=HOSTILE,
                text="<script>alert(2)</script>")
    return path


@pytest.fixture(scope="module")
def evo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evo")
    bundle = evolution_bundle(tmp / "evo.h5")
    return bundle, page_data(render_report(bundle, tmp / "evo.html"))


@pytest.fixture(scope="module")
def apo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apo")
    bundle = apoptosis_bundle(tmp / "apo.h5")
    return bundle, page_data(render_report(bundle, tmp / "apo.html"))


def test_each_pack_applies_only_to_its_experiment(evo, apo, tmp_path):
    with open_bundle(evo[0]) as b:
        assert [p.name for p in applicable_packs(b)] == ["evolution", "generic"]
    with open_bundle(apo[0]) as b:
        assert [p.name for p in applicable_packs(b)] == ["apoptosis", "generic"]
    with Recorder(tmp_path / "plain.h5", {"lr": 0.1}) as rec:  # any other loop: neither pack
        rec.log(1, train_loss=1.0)
        rec.array(1, "weights", np.zeros(3))
    with open_bundle(tmp_path / "plain.h5") as b:
        assert [p.name for p in applicable_packs(b)] == ["generic"]


def test_every_evolution_chart_is_built_and_nothing_is_drawn_twice(evo):
    bundle, data = evo
    assert pack_charts("evolution") <= set(data["charts"]), pack_charts("evolution") - set(data["charts"])
    assert data["absent"] == []
    with open_bundle(bundle) as b:
        tables = set(b.table_names)
    # The pack's tables are its charts; the generic pack shows only the top-k table it does not read.
    generic_tables = [c for n, c in data["charts"].items() if n.startswith("tables-")]
    assert len(generic_tables) == len(tables - {"search_candidates", "switch_spikes", "samples",
                                                "architecture_distribution"}) == 1
    assert not [n for n in data["charts"] if n.startswith("artifacts-")]  # architecture_counts is drawn
    shown = set(data["seriesShown"])
    assert {"train_loss", "val_loss", "grad_norm", "clip_fraction", "tokens_per_sec", "cusum_grad", "cusum_clip",
            "cusum_tps", "cusum_val", "effective_rank", "effective_rank.0.qkv", "effective_rank.1.fc_out"} <= shown
    generic_series = {t["name"] for n, c in data["charts"].items() if n.startswith("metrics-")
                      for t in c["spec"]["traces"]}
    assert not generic_series & {"train_loss", "cusum_grad", "effective_rank"}


def test_candidates_table_explains_every_duplicate(evo):
    bundle, data = evo
    with open_bundle(bundle) as b:
        t = b.table("search_candidates")
    cols = {c["name"]: c for c in data["charts"]["evo_candidates"]["spec"]["columns"]}
    names = [c["name"] for c in data["charts"]["evo_candidates"]["spec"]["columns"]]
    assert names[:8] == ["id", "activation", "generation", "best_loss", "best_val_loss", "fitness", "steps", "alive"]
    why = cols["why this row"]["data"]
    assert why == origins(t, 4)
    ids, acts, parents = list(t["id"]), list(t["activation"]), list(t["parent"])
    act_of = dict(zip(ids, acts, strict=True))
    for i, w in enumerate(why):
        if t["generation"][i] == 0:
            # gen0: gelu, silu, relu, tanh, gelu -> the fifth is a pool-cycling copy
            assert ("pool cycled" in w) == (i == 4), (i, w)
        elif t["elite"][i]:
            assert w.startswith(f"elite clone of {parents[i]}") and act_of[parents[i]] == acts[i]
        elif act_of[parents[i]] == acts[i]:
            assert w.endswith("same activation")
        else:
            assert f"mutated {act_of[parents[i]]} → {acts[i]}" in w
    assert sum(w.startswith("elite clone") for w in why) == 2  # one elite per later generation


def test_switch_markers_carry_the_event_and_its_spike(evo):
    bundle, data = evo
    with open_bundle(bundle) as b:
        switches = b.events("activation_switch")
        spikes = b.table("switch_spikes")
    (points,) = data["charts"]["evo_loss"]["spec"]["points"]
    assert points["x"] == [e["epoch"] for e in switches] and switches
    peak = dict(zip(spikes["step"].tolist(), spikes["peak_loss"].tolist(), strict=True))
    assert points["y"] == pytest.approx([peak[e["epoch"]] for e in switches])
    for e, text in zip(switches, points["text"], strict=True):
        p = e["payload"]
        assert text[0] == f"switch {p['from']} → {p['to']} at step {e['epoch']}"
        assert p["to_candidate"] in text[1] and "spike +" in text[3]


def test_architecture_counts_and_fitness_by_generation(evo):
    bundle, data = evo
    with open_bundle(bundle) as b:
        dist = b.table("architecture_distribution")
        cand = b.table("search_candidates")
    spec = data["charts"]["evo_architecture"]["spec"]
    assert spec["x"] == ["0", "1", "2"] and [t["name"] for t in spec["traces"]] == ["gelu", "silu", "relu", "tanh"]
    assert spec["tops"] == [5, 5, 5]
    assert spec["labels"] == [("converged: 1 activation" if d == 1 else f"{d} distinct") for d in dist["distinct"]]
    fit = data["charts"]["evo_fitness"]["spec"]
    dots = sorted(y for p in fit["points"] for y in p["y"])
    assert dots == pytest.approx(sorted(cand["fitness"].tolist()))
    assert [t["name"] for t in fit["traces"]] == ["generation best", "generation mean"]


def test_cusum_chart_has_the_threshold_and_every_alarm(evo):
    bundle, data = evo
    with open_bundle(bundle) as b:
        alarms = b.events("cusum_alarm")
    spec = data["charts"]["cusum_monitors"]["spec"]
    assert spec["hlines"][0]["y"] == 4.0
    assert sum(len(p["x"]) for p in spec["points"]) == len(alarms) > 0
    assert [t["name"].split()[0] for t in spec["traces"]] == ["cusum_grad", "cusum_clip", "cusum_tps", "cusum_val"]


def test_samples_mark_the_checkpoints_top_k_kept(evo):
    bundle, data = evo
    with open_bundle(bundle) as b:
        kept, samples = set(b.checkpoint_epochs), b.table("samples")
    cols = {c["name"]: c for c in data["charts"]["samples_by_checkpoint"]["spec"]["columns"]}
    marks = cols["checkpoint kept"]["data"]
    assert marks == ["yes" if int(s) in kept else "no (top-k dropped it)" for s in samples["checkpoint"]]
    assert "yes" in marks and any(m.startswith("no") for m in marks)  # keep_best=2 of 15 candidates
    assert cols["text"]["data"] == [t.replace("\n", "↵") for t in samples["text"]]


def test_every_apoptosis_chart_is_built_and_nothing_is_drawn_twice(apo):
    bundle, data = apo
    assert pack_charts("apoptosis") <= set(data["charts"]), pack_charts("apoptosis") - set(data["charts"])
    assert data["absent"] == []
    assert not [n for n in data["charts"] if n.startswith(("tables-", "artifacts-"))]
    assert {"train_loss", "baseline_train_loss", "val_loss", "baseline_val_loss"} <= set(data["seriesShown"])
    with open_bundle(bundle) as b:
        rounds = b.events("apoptosis")
    (points,) = data["charts"]["apo_loss"]["spec"]["points"]
    assert points["x"] == [e["epoch"] for e in rounds] and len(rounds) == 3
    assert all(f"{e['payload']['pruned']} neurons pruned" in t[1] for e, t in zip(rounds, points["text"], strict=True))


def test_lineage_depth_and_family_follow_first_parents():
    births = {"neuron_id": np.array([4, 5, 6, 7]), "parent_id": np.array([1, 4, 5, 2])}
    depth, root = lineage(births, 4)
    assert [depth[i] for i in range(8)] == [0, 0, 0, 0, 1, 2, 3, 1]
    assert [root[i] for i in range(8)] == [0, 1, 2, 3, 1, 1, 1, 2]


def test_age_histogram_counts_every_neuron_at_every_checkpoint(apo):
    bundle, data = apo
    with open_bundle(bundle) as b:
        _, ages = b.array("neuron_age")
        final = b.events("finished")[-1]["payload"]
    spec = data["charts"]["apo_age_histogram"]["spec"]
    assert spec["yLabels"][-1].startswith("0") and len(spec["yLabels"]) <= 12
    distinct = [len(np.unique(a)) for a in ages]
    assert distinct[0] == 1 and distinct[-1] == final["distinct_ages"] > 1
    # The card's note: the diversity per checkpoint and the run's final figures.
    assert f"distinct ages per checkpoint: {', '.join(map(str, distinct))}" in data["_html"]
    assert f"at the end: {final['distinct_ages']:g} distinct ages" in data["_html"]
    with open_bundle(bundle) as b:
        assert b.table("success_criteria")["criterion"].tolist()[-1] == "age_diversity"


def test_hostile_strings_stay_text(tmp_path):
    html = render_report(hostile_bundle(tmp_path / "h.h5"), tmp_path / "h.html")
    text = html.read_text()
    assert HOSTILE not in text and "<script>alert(2)" not in text  # the page JSON escapes markup
    data = page_data(html)
    assert {"evo_candidates", "evo_loss", "evo_architecture", "samples_by_checkpoint"} <= set(data["charts"])
    # The strings travel as data (the page sets them as text or escapes them before Plotly).
    assert HOSTILE in data["charts"]["evo_candidates"]["spec"]["columns"][0]["data"]
    assert HOSTILE in data["charts"]["evo_loss"]["spec"]["points"][0]["text"][0][0]
