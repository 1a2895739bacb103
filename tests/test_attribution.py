"""Counterfactual attribution: Shapley axioms, planted null slot, sampling, failing callbacks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from epochscope.collectors.attribution import counterfactual_matrix


def _random_game(n: int, seed: int):
    """v(S) for every configuration: arbitrary (non-additive) values."""
    rng = np.random.default_rng(seed)
    table = {mask: float(rng.uniform(0.3, 0.9)) for mask in itertools.product((False, True), repeat=n)}
    names = [f"s{i}" for i in range(n)]

    def evaluate(alphas):
        return {"val_acc": table[tuple(alphas[nm] > 0 for nm in names)]}

    return names, table, evaluate


def _brute_shapley(table, n):
    """Shapley values by walking all n! orderings (independent of the library's formula)."""
    phi = [0.0] * n
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        mask = [False] * n
        for i in order:
            before = table[tuple(mask)]
            mask[i] = True
            phi[i] += table[tuple(mask)] - before
    return [p / len(orders) for p in phi]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_exact_shapley_matches_all_orderings_and_is_efficient(n):
    names, table, evaluate = _random_game(n, seed=10 + n)
    m = counterfactual_matrix(5, evaluate, names)
    assert m.method == "factorial" and len(m.configs) == 2 ** n
    assert [m.shapley[nm] for nm in names] == pytest.approx(_brute_shapley(table, n), abs=1e-12)
    full, empty = table[(True,) * n], table[(False,) * n]
    assert sum(m.shapley.values()) == pytest.approx(full - empty, abs=1e-12)
    assert abs(m.efficiency_gap) < 1e-12


def test_marginal_removal_and_interaction_of_the_design_table():
    """The design's 3-slot table: marginal = mean of acc(1xx) - acc(0xx), and so on."""
    acc = {"000": 62.3, "001": 64.1, "010": 63.8, "011": 65.2,
           "100": 63.5, "101": 65.8, "110": 64.9, "111": 66.4}
    slots = ["early", "mid", "late"]

    def evaluate(alphas):
        return acc["".join("1" if alphas[s] > 0 else "0" for s in slots)] / 100

    m = counterfactual_matrix(47, evaluate, {"early": 1.0, "mid": 0.5, "late": 1.0})
    assert [c.code for c in m.configs] == sorted(acc)
    assert m.configs[-1].alphas == {"early": 1.0, "mid": 0.5, "late": 1.0}  # "on" = current alpha
    assert m.configs[2].alphas == {"early": 0.0, "mid": 0.5, "late": 0.0}
    early_on = [acc[k] for k in acc if k[0] == "1"]
    early_off = [acc[k] for k in acc if k[0] == "0"]
    assert 100 * m.marginal["early"] == pytest.approx(np.mean(early_on) - np.mean(early_off))
    assert 100 * m.removal["mid"] == pytest.approx(66.4 - 65.8)
    inter = np.mean([acc["11" + z] - acc["10" + z] - acc["01" + z] + acc["00" + z] for z in "01"])
    assert 100 * m.interactions[("early", "mid")] == pytest.approx(inter)
    assert 100 * sum(m.shapley.values()) == pytest.approx(66.4 - 62.3)


def test_planted_null_slot_gets_zero_within_noise():
    """A slot that does nothing, under a noisy evaluation: Shapley within noise of zero, while
    the slots that help are far from it."""
    sigma, names = 0.004, ["early", "mid", "late", "dead"]
    effect = {"early": 0.03, "mid": 0.05, "late": 0.01, "dead": 0.0}
    dead, real = [], []
    for rep in range(20):
        rng = np.random.default_rng(1000 + rep)

        def evaluate(alphas, rng=rng):
            return 0.6 + sum(effect[s] for s, a in alphas.items() if a > 0) + rng.normal(0, sigma)

        m = counterfactual_matrix(1, evaluate, names)
        assert abs(m.efficiency_gap) < 1e-12
        dead.append(m.shapley["dead"])
        real.append(m.shapley["late"])
    dead = np.asarray(dead)
    # each Shapley value is a weighted sum of 2^3 noisy differences: its sd is below sigma
    assert np.all(np.abs(dead) < 4 * sigma)
    assert abs(dead.mean()) < 3 * dead.std(ddof=1) / math.sqrt(len(dead))
    assert np.mean(real) == pytest.approx(0.01, abs=2 * sigma / math.sqrt(len(real)) + 1e-3)
    assert np.mean(real) > 5 * dead.std(ddof=1) / math.sqrt(len(dead))


def test_more_slots_than_the_factorial_allows_switch_to_sampling():
    names = [f"s{i}" for i in range(7)]
    weights = {nm: 0.01 * (i + 1) for i, nm in enumerate(names)}

    def evaluate(alphas):
        on = [nm for nm, a in alphas.items() if a > 0]
        return 0.5 + sum(weights[nm] for nm in on) + (0.02 if {"s0", "s1"} <= set(on) else 0.0)

    m = counterfactual_matrix(9, evaluate, names, permutations=20, seed=3)
    assert m.method == "sampled" and m.permutations == 20
    assert "more than the 4 a full factorial allows" in m.notes[0]
    assert len(m.configs) < 2 ** 7  # cached: at most 2 + 20*7 + 7 distinct configurations
    assert abs(m.efficiency_gap) < 1e-12  # every ordering telescopes: efficiency holds exactly
    for i, nm in enumerate(names[2:], start=2):  # additive slots: exact in every ordering
        assert m.shapley[nm] == pytest.approx(0.01 * (i + 1))
        assert m.shapley_stderr[nm] == pytest.approx(0.0, abs=1e-12)
    assert m.shapley["s0"] + m.shapley["s1"] == pytest.approx(0.01 + 0.02 + 0.02)
    assert m.interactions == {}
    again = counterfactual_matrix(9, evaluate, names, permutations=20, seed=3)
    assert again.shapley == m.shapley  # same seed, same orderings
    # a wider factorial limit evaluates every configuration instead
    assert counterfactual_matrix(9, evaluate, names[:5], max_factorial=5).method == "factorial"


def test_callback_that_raises_is_recorded_and_the_rest_goes_on():
    calls = []

    def evaluate(alphas):
        calls.append(dict(alphas))
        if alphas["a"] > 0 and alphas["b"] == 0:
            raise RuntimeError("out of memory in eval")
        return {"val_acc": 0.5 + 0.1 * (alphas["a"] > 0) + 0.2 * (alphas["b"] > 0), "val_loss": 1.0}

    m = counterfactual_matrix(2, evaluate, ["a", "b"])
    assert len(calls) == 4
    bad = [c for c in m.configs if c.error]
    assert [c.code for c in bad] == ["10"] and "RuntimeError: out of memory in eval" in bad[0].error
    assert math.isnan(bad[0].value)
    # removal of b needs only v(11) and v(10): NaN; of a: v(11) - v(01) is still known
    assert m.removal["a"] == pytest.approx(0.1) and math.isnan(m.removal["b"])
    assert all(math.isnan(v) for v in m.shapley.values())  # every Shapley value needs v(10)
    assert any("failed in the callback" in n for n in m.notes)


def test_nan_contributions_are_kept_as_nan():
    def evaluate(alphas):
        return math.nan if alphas["x"] > 0 and alphas["y"] > 0 else 0.7

    m = counterfactual_matrix(4, evaluate, ["x", "y"])
    assert math.isnan(m.full) and all(math.isnan(v) for v in m.removal.values())
    assert math.isnan(m.efficiency_gap)
    assert not m.errors and any("without a finite" in n for n in m.notes)
    assert m.empty == 0.7
