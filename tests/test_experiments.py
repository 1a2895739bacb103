"""The evolution and apoptosis collectors: what they record, that it is consistent with
itself, bit-for-bit reproducible, and that bad input fails with one line."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import epochscope
from epochscope.cli import main
from epochscope.collectors.experiments import experiment
from epochscope.collectors.experiments.apoptosis import (
    STRATEGIES,
    Apoptosis,
    ApoptosisConfig,
    run_apoptosis,
)
from epochscope.collectors.experiments.evolution import EvolutionConfig, run_evolution
from epochscope.collectors.experiments.monitors import OnlineCusum, measure_spikes
from epochscope.errors import EpochscopeError

TINY_EVO = dict(population_size=3, generations=2, steps_per_candidate=6, metrics_interval=3,
                d_model=32, n_ctx=32, batch_size=4, sample_chars=10, keep_best=2, mutation_rate=0.5)
TINY_APO = dict(steps=24, interval=6, checkpoint_every=12, metrics_interval=4, d_model=32, n_ctx=32,
                batch_size=4, sample_chars=10, preservation_steps=5, spike_window=3)
TIMING = {"tokens_per_sec", "cusum_tps"}  # the machine's speed, not the math


def _batch_page_cusum(x, k, h, n0):
    """Textbook two-sided Page CUSUM over a whole series, re-baselined after each alarm."""
    pos, neg, alarms = np.full(len(x), np.nan), np.full(len(x), np.nan), []
    base, mean, std, sp, sn = [], None, None, 0.0, 0.0
    for t, v in enumerate(x):
        if not np.isfinite(v):
            continue
        if mean is None:
            base.append(v)
            pos[t] = neg[t] = 0.0
            if len(base) == n0:
                mean, std = np.mean(base), max(np.std(base, ddof=1), 1e-8, 1e-3 * abs(np.mean(base)))
                base = []
            continue
        z = (v - mean) / std
        sp, sn = max(0.0, sp + z - k), max(0.0, sn - z - k)
        pos[t], neg[t] = sp, sn
        if sp > h or sn > h:
            alarms.append((t, "up" if sp >= sn else "down"))
            sp = sn = 0.0
            mean = None
    return pos, neg, alarms


def test_online_cusum_equals_the_batch_recursion_and_finds_the_shifts():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 60), rng.normal(3, 1, 40), [np.nan], rng.normal(-2, 1, 50)])
    pos, neg, batch_alarms = _batch_page_cusum(x, 0.5, 4.0, 10)
    mon = OnlineCusum(k=0.5, h=4.0, baseline_n=10)
    out = [mon.update(v) for v in x]
    alarms = [(i, a[0]) for i, (_, _, a) in enumerate(out) if a is not None]
    assert alarms == batch_alarms and len(alarms) >= 2
    np.testing.assert_allclose([o[0] for o in out], pos, equal_nan=True)
    np.testing.assert_allclose([o[1] for o in out], neg, equal_nan=True)
    assert any(d == "up" and 60 <= i < 75 for i, d in alarms)  # the +3 sigma shift at 60
    assert any(d == "down" and 101 <= i < 125 for i, d in alarms)  # the drop at 101


def test_effective_rank_counts_singular_values_above_one_percent():
    from epochscope.collectors.experiments.lm import effective_rank

    g = torch.Generator().manual_seed(0)
    for shape in ((64, 64), (192, 64), (64, 256)):
        r = min(shape)  # a known spectrum: r values from 1 down to 1e-4, log-spaced
        u, _ = torch.linalg.qr(torch.randn(shape[0], r, generator=g, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(shape[1], r, generator=g, dtype=torch.float64))
        spectrum = torch.logspace(0, -4, r, dtype=torch.float64)
        w = (u * spectrum) @ v.T
        assert effective_rank(w.float()) == [int((spectrum > 0.01).sum())]
        assert effective_rank(w.float())[0] == int((torch.linalg.svdvals(w) > 0.01).sum()) < r
    assert effective_rank(torch.zeros(4, 4)) == [0]


def test_spike_measurement_on_a_known_shape():
    steps = np.arange(1, 41)
    loss = np.full(40, 1.0)
    loss[20:25] = [3.0, 2.5, 1.8, 1.2, 0.9]  # event at step 21, back at or below 1.0 by step 25
    (s,) = measure_spikes([21], steps, loss, window=5)
    assert s["pre_loss"] == 1.0 and s["peak_loss"] == 3.0 and s["height"] == 2.0
    # 3-point means: steps 24..26 give (1.2 + 0.9 + 1.0) / 3 > 1.0; steps 25..27 give 0.97, so
    # the loss is back at step 27, 6 steps after the event
    assert s["recovery_steps"] == 6
    flat = measure_spikes([10], steps, np.linspace(2, 1, 40), window=5)[0]
    assert flat["height"] == 0.0 and flat["recovery_steps"] == 2


def _evo(tmp_path, name="e.h5", **kw):
    cfg = EvolutionConfig(**{**TINY_EVO, **kw})
    return cfg, run_evolution(cfg, tmp_path / name)


def test_evolution_records_the_notes_elements(tmp_path):
    cfg, res = _evo(tmp_path)
    with epochscope.open_bundle(res.bundle_path) as b:
        assert b.config["experiment"] == "evolution"
        t = b.table("search_candidates")
        assert list(t)[:8] == ["id", "activation", "generation", "best_loss", "best_val_loss",
                               "fitness", "steps", "alive"]
        n = cfg.population_size * cfg.generations
        assert len(t["id"]) == n and len(set(t["id"])) == n
        for cid, act, gen in zip(t["id"], t["activation"], t["generation"], strict=True):
            assert re.fullmatch(rf"gen{gen}_{act}_\d+", cid)
        assert list(t["activation"][:3]) == ["gelu", "silu", "relu"]  # pool cycling
        assert t["alive"].tolist() == [False] * 3 + [True] * 3
        assert (t["steps"] == cfg.steps_per_candidate).all()
        assert t["elite"][3] and t["parent"][3] == t["id"][np.argmax(t["fitness"][:3])]
        # one switch event per change of activation between consecutive candidates
        acts = list(t["activation"])
        switches = b.events("activation_switch")
        assert len(switches) == sum(a != c for a, c in zip(acts, acts[1:], strict=False))
        fit = dict(zip(t["id"], t["fitness"], strict=True))
        for ev in switches:
            p = ev["payload"]
            assert p["from"] != p["to"] and p["to_fitness"] == fit[p["to_candidate"]]
            assert p["from_fitness"] == fit[p["from_candidate"]]
        total = cfg.population_size * cfg.generations * cfg.steps_per_candidate
        for name in ("train_loss", "grad_norm", "clip_fraction", "tokens_per_sec",
                     "cusum_grad", "cusum_clip", "cusum_tps"):
            e, _ = b.series(name)
            np.testing.assert_array_equal(e, np.arange(1, total + 1))
        np.testing.assert_array_equal(b.series_steps("train_loss")[:7], [1, 2, 3, 4, 5, 6, 1])
        assert len(b.series("val_loss")[0]) == len(b.series("cusum_val")[0]) == total // cfg.metrics_interval
        assert list(b.series("effective_rank")[0]) == list(range(3, total + 1, 3))
        dist = b.table("architecture_distribution")
        counts = np.stack([dist[f"count.{a}"] for a in cfg.activations])
        assert (counts.sum(axis=0) == cfg.population_size).all() and list(dist["generation"]) == [0, 1]
        np.testing.assert_array_equal(b.array("architecture_counts")[1], counts.T)
        # a sample at each candidate's checkpoint; those checkpoints are kept while top-k by fitness
        samples = b.table("samples")
        ends = list(t["start_step"] + cfg.steps_per_candidate - 1)
        assert list(samples["checkpoint"]) == ends and list(samples["candidate"]) == list(t["id"])
        assert set(b.checkpoint_epochs) <= {0, *ends}
        assert b.checkpoint_policy["monitor"] == "fitness" and len(b.best_checkpoints) == 2
        assert set(b.checkpoint_epochs) == {0, total} | {r["epoch"] for r in b.best_checkpoints}
        assert len(b.table("switch_spikes")["step"]) == len(switches)
        model = epochscope.load_model(b, total)
        assert model.config.act == t["activation"][-1]


def test_evolution_on_modular_addition(tmp_path):
    _, res = _evo(tmp_path, task="modular-addition", p=11, generations=1, steps_per_candidate=3)
    with epochscope.open_bundle(res.bundle_path) as b:
        assert "=" in b.table("samples")["text"][0]
        assert b.series("train_loss")[0][-1] == 9


def _comparable(path):
    with epochscope.open_bundle(path) as b:
        series = {n: b.series(n) for n in b.series_names if n not in TIMING}
        tables = {n: b.table(n) for n in b.table_names}
        weights = {e: b.checkpoint(e).state["model"] for e in b.checkpoint_epochs}
        arrays = {n: b.array(n) for n in b.array_names}
        events = [e for e in b.events() if not (e["kind"] == "cusum_alarm" and e["payload"]["monitor"] == "cusum_tps")]
    return series, tables, weights, arrays, events


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes() if a.dtype != object else list(a) == list(b)
    else:
        assert a == b or (a != a and b != b)


@pytest.mark.parametrize("which", ["evolution", "apoptosis"])
def test_same_seeds_same_bits(tmp_path, which):
    if which == "evolution":
        runs = [run_evolution(EvolutionConfig(**TINY_EVO), tmp_path / f"{i}.h5") for i in range(2)]
    else:
        runs = [run_apoptosis(ApoptosisConfig(**TINY_APO, strategy="crossover"), tmp_path / f"{i}.h5")
                for i in range(2)]
    _assert_same(_comparable(runs[0].bundle_path), _comparable(runs[1].bundle_path))
    other = (run_evolution(EvolutionConfig(**TINY_EVO, seed=1), tmp_path / "s.h5") if which == "evolution"
             else run_apoptosis(ApoptosisConfig(**TINY_APO, strategy="crossover", seed=1), tmp_path / "s.h5"))
    with pytest.raises(AssertionError):
        _assert_same(_comparable(runs[0].bundle_path)[0], _comparable(other.bundle_path)[0])


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "none"])
def test_apoptosis_records_rounds_lineage_and_criteria(tmp_path, strategy):
    cfg = ApoptosisConfig(**TINY_APO, strategy=strategy)
    res = run_apoptosis(cfg, tmp_path / "a.h5")
    rounds = cfg.steps // cfg.interval - 1  # none at the last step
    with epochscope.open_bundle(res.bundle_path) as b:
        events = b.events("apoptosis")
        assert [e["epoch"] for e in events] == [6, 12, 18][:rounds]
        k = round(cfg.rate * 128)
        for ev in events:
            p = ev["payload"]
            assert p["pruned"] == p["born"] == 2 * k and p["strategy"] == strategy
            assert all(layer["fitness_threshold"] <= p["fitness_threshold"] for layer in p["layers"])
        epochs, ages = b.array("neuron_age")
        assert list(epochs) == b.checkpoint_epochs == [0, 12, 24]
        _, ids = b.array("neuron_id")
        _, parents = b.array("neuron_parent")
        births = b.table("births")
        assert len(births["step"]) == rounds * 2 * k
        # the lineage: every newborn's recorded parent was alive in its layer before it was born
        for step, layer, slot, nid, parent in zip(births["step"], births["layer"], births["slot"],
                                                  births["neuron_id"], births["parent_id"], strict=True):
            assert ids[-1][layer][slot] == nid or nid < ids[-1][layer][slot]  # maybe replaced later
            before = ids[list(epochs).index(max(e for e in epochs if e < step))][layer]
            assert parent in set(before) | set(births["neuron_id"][births["step"] < step])
        final_ages = ages[-1]
        assert final_ages.max() == cfg.steps and final_ages.min() == cfg.steps - 18
        assert (parents[0] == -1).all() and (parents[-1] >= 0).sum() > 0
        crit = b.table("success_criteria")
        assert list(crit["criterion"]) == ["loss_gap", "beats_baseline", "variance", "events", "age_diversity"]
        values = dict(zip(crit["criterion"], crit["value"], strict=True))
        assert values["events"] == rounds and values["age_diversity"] > 1
        assert b.series("baseline_train_loss")[0][-1] == cfg.steps
        fin = b.events("finished")[0]["payload"]
        assert fin["loss_gap"] == pytest.approx(fin["final_val_loss"] - fin["baseline_val_loss"])
        assert len(b.table("event_spikes")["step"]) == rounds


def test_baseline_is_the_none_strategy_with_the_same_data_and_init(tmp_path):
    a = run_apoptosis(ApoptosisConfig(**TINY_APO, strategy="standard"), tmp_path / "a.h5")
    n = run_apoptosis(ApoptosisConfig(**TINY_APO, strategy="none"), tmp_path / "n.h5")
    with epochscope.open_bundle(a.bundle_path) as ba, epochscope.open_bundle(n.bundle_path) as bn:
        np.testing.assert_array_equal(ba.series("baseline_train_loss")[1], bn.series("train_loss")[1])
        assert bn.events("apoptosis") == [] and "baseline_train_loss" not in bn.series_names
        assert list(bn.table("success_criteria")["criterion"]) == ["variance", "events", "age_diversity"]


def test_functional_preservation_changes_the_output_least():
    """A round of functional apoptosis moves the network's outputs less than a standard one."""
    change = {}
    for strategy in ("standard", "functional"):
        run = Apoptosis(ApoptosisConfig(**{**TINY_APO, "preservation_steps": 40}, strategy=strategy))
        for _ in range(6):
            x, y = run.task.batch(run.batches)
            run.trainer.step(x, y)
            for layer, mlp in enumerate(run.model.mlps):
                run.fitness[layer] += mlp.fitness
                mlp.fitness.zero_()
        with torch.no_grad():
            before = run.model(x)
        run._round(6, x)
        with torch.no_grad():
            change[strategy] = float((run.model(x) - before).pow(2).mean())
    assert change["functional"] < 0.5 * change["standard"]


def test_hybrid_births_split_distinct_parents():
    run = Apoptosis(ApoptosisConfig(**TINY_APO, strategy="hybrid", turnover_rate=0.2))
    x, y = run.task.batch(run.batches)
    run.trainer.step(x, y)
    for layer, mlp in enumerate(run.model.mlps):
        run.fitness[layer] += mlp.fitness
    before = run.model.mlps[0].fc_out.weight.detach().clone()
    run._round(1, x)
    parents = run.parents[0][run.born[0] == 1]
    assert len(parents) == len(set(parents.tolist())) == round(0.2 * 128)
    slots = {int(i): s for s, i in enumerate(run.ids[0].tolist())}
    after = run.model.mlps[0].fc_out.weight.detach()
    for parent in parents.tolist():  # the parent kept half its output weights
        torch.testing.assert_close(after[:, slots[parent]], before[:, slots[parent]] / 2)


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    cases = [
        (["--experiment", "evolution", "activations=gelu,swish"], "unknown activation 'swish'; valid: gelu, silu, relu, tanh"),
        (["--experiment", "apoptosis", "strategy=growth"], "unknown strategy 'growth'; valid: none, standard, functional, hybrid, crossover"),
        (["--experiment", "apoptosis", "prune_rate=0"], "prune_rate=0.0 must be strictly between 0 and 1"),
        (["--experiment", "apoptosis", "prune_rate=1.2"], "prune_rate=1.2 must be strictly between 0 and 1"),
        (["--experiment", "apoptosis", "--data", str(empty)], "is empty"),
        (["--experiment", "evolution", "--data", str(binary)], "is not text"),
        (["--experiment", "evolution", "--data", str(latin)], "is not UTF-8 text"),
        (["--experiment", "evolution", "--data", str(tmp_path / "missing.txt")], "cannot read corpus file"),
        (["--experiment", "apoptosis", "crossover_mode=sexual"], "valid: uniform, fitness_weighted, random"),
        (["--experiment", "apoptosis", "bogus=1"], "unknown config key 'bogus'"),
    ]
    for args, message in cases:
        out = tmp_path / "x.h5"
        result = runner.invoke(main, ["collect", *args, "-o", str(out)])
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("epochscope: error:") and message in lines[0], lines
        assert not out.exists() and not out.with_name("x.h5.journal").exists()


def test_cli_collects_an_experiment_on_a_user_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    out = tmp_path / "run.h5"
    args = ["collect", "--experiment", "apoptosis", "--data", str(corpus), "-o", str(out),
            *[f"{k}={v}" for k, v in TINY_APO.items()], "strategy=hybrid", "baseline=false"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "24 steps" in result.output
    with epochscope.open_bundle(out) as b:
        assert b.config["data"] == str(corpus) and b.config["strategy"] == "hybrid"
        assert set(b.table("samples")["text"][0]) <= set("the quick brown fox jumps over the lazy dog. ")


def test_experiment_registry_names_the_valid_ones():
    with pytest.raises(EpochscopeError, match="valid: modular-addition, evolution, apoptosis"):
        experiment("grokking")
