"""Fractional sweep designs: orthogonal arrays, Taguchi specs, main effects in the manifest."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from epochscope.archives import open_bundle
from epochscope.collectors.design import main_effects, orthogonal_array, taguchi_points
from epochscope.collectors.sweep import load_spec, run_sweep
from epochscope.errors import EpochscopeError


@pytest.mark.parametrize("q,k,runs", [(2, 3, 4), (2, 7, 8), (3, 4, 9), (4, 5, 16), (5, 6, 25), (3, 13, 27), (2, 8, 16)])
def test_arrays_are_orthogonal(q, k, runs):
    a = orthogonal_array(q, k)
    assert a.shape == (runs, k)
    for i, j in itertools.combinations(range(k), 2):
        pairs = np.zeros((q, q), dtype=int)
        np.add.at(pairs, (a[:, i], a[:, j]), 1)
        assert (pairs == runs // q**2).all(), (i, j)


def test_taguchi_is_16_runs_for_four_factors_of_four_levels():
    grid = {"strategy": ["standard", "functional", "hybrid", "crossover"],
            "prune_rate": [0.05, 0.1, 0.15, 0.2], "interval": [25, 50, 100, 200],
            "mutation_strength": [0.1, 0.3, 0.5, 0.7]}
    points, name = taguchi_points(grid)
    assert name == "L16(4^4)" and len(points) == 16  # the full grid has 256
    assert len({tuple(p.values()) for p in points}) == 16
    for key, levels in grid.items():  # balanced: every level 4 times
        assert sorted(p[key] for p in points) == sorted(levels * 4)
    mixed, name = taguchi_points({"a": [1, 2, 3], "b": ["x", "y"]})
    assert name == "L9(3^2)" and {p["b"] for p in mixed} == {"x", "y"}
    assert len(mixed) == 6  # dummy level: b's third level maps back to "x", rows that repeat run once
    with pytest.raises(EpochscopeError, match="up to 7 levels"):
        taguchi_points({"a": list(range(9))})


def test_main_effects_recover_an_additive_response():
    grid = {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3], "c": ["x", "y", "z", "w"]}
    points, _ = taguchi_points(grid)
    effect_a, effect_c = [0.0, 0.5, 1.0, 1.5], {"x": 0.0, "y": 0.1, "z": 0.0, "w": 0.2}
    y = [1.0 + effect_a[p["a"]] + 0.01 * p["b"] + effect_c[p["c"]] for p in points]
    me = main_effects(points, y, "min")
    # orthogonality: each level mean = overall mean + that factor's effect (others average out)
    means_a = [r["mean"] for r in me["factors"]["a"]["levels"]]
    np.testing.assert_allclose(np.diff(means_a), 0.5)
    assert me["factors"]["a"]["rank"] == 1 and me["factors"]["c"]["rank"] == 2 and me["factors"]["b"]["rank"] == 3
    assert me["factors"]["a"]["best_level"] == 0 and me["factors"]["c"]["best_level"] in ("x", "z")
    assert me["factors"]["a"]["effect"] == pytest.approx(1.5)
    assert main_effects(points, [None] + y[1:], "max")["runs_missing"] == 1
    sn = me["factors"]["a"]["levels"][0]["sn_ratio"]
    ys = np.array([v for p, v in zip(points, y, strict=True) if p["a"] == 0])
    assert sn == pytest.approx(-10 * np.log10(np.mean(ys**2)))


def test_spec_validation():
    base = {"name": "s", "experiment": "apoptosis", "grid": {"strategy": ["standard", "hybrid"]}}
    assert len(load_spec({**base, "design": "taguchi"}).points()) == 2  # a lone factor: its levels once
    with pytest.raises(EpochscopeError, match="valid: grid, taguchi"):
        load_spec({**base, "design": "latin"})
    with pytest.raises(EpochscopeError, match="valid: modular-addition, evolution, apoptosis"):
        load_spec({**base, "experiment": "growth"})
    with pytest.raises(EpochscopeError, match="unknown strategy"):
        load_spec({**base, "grid": {"strategy": ["growth"]}})
    with pytest.raises(EpochscopeError, match="preset applies"):
        load_spec({**base, "preset": "demo"})


def test_taguchi_apoptosis_sweep_stores_main_effects(tmp_path):
    spec = load_spec({
        "name": "tag", "experiment": "apoptosis", "design": "taguchi",
        "base": {"steps": 12, "interval": 4, "checkpoint_every": 12, "metrics_interval": 4,
                 "d_model": 16, "n_ctx": 16, "batch_size": 2, "sample_chars": 4, "baseline": False},
        "grid": {"strategy": ["standard", "crossover"], "prune_rate": [0.05, 0.2],
                 "mutation_strength": [0.1, 0.5]},
    })
    assert spec.array == "L4(2^3)" and len(spec.variants()) == 4
    result = run_sweep(spec, tmp_path, workers=2)
    assert not result.failed
    manifest = json.loads(result.manifest.read_text())
    me = manifest["main_effects"]
    assert me["response"] == "final_val_loss" and me["array"] == "L4(2^3)" and me["runs_used"] == 4
    finals = {}
    for v in manifest["variants"]:
        with open_bundle(tmp_path / "tag" / v["bundle"]) as b:
            finals[v["name"]] = (v["params"], b.events("finished")[0]["payload"]["final_val_loss"])
    for factor, info in me["factors"].items():
        for row in info["levels"]:
            want = np.mean([y for p, y in finals.values() if p[factor] == row["level"]])
            assert row["mean"] == pytest.approx(want) and row["n"] == 2
    again = run_sweep(spec, tmp_path, workers=1)  # all skipped: effects read from the bundles
    assert all(v.get("skipped") for v in again.variants)
    assert json.loads(again.manifest.read_text())["main_effects"] == me == again.main_effects
