"""A run keeps its colour; runs on one page get colours the eye tells apart."""

from __future__ import annotations

import itertools

from epochscope.generator.palette import MIN_DISTANCE, PALETTE, _distance, assign_colors, run_color


def test_a_runs_colour_is_its_own_unless_the_page_already_has_it():
    names = [f"run-{i}" for i in range(40)]
    assert [run_color(n) for n in names] == [run_color(n) for n in names]  # stable
    first = assign_colors(names[:1])
    assert first == [run_color(names[0])]


def test_runs_on_one_page_are_clearly_apart_while_the_palette_allows():
    for k in (2, 3, 5, 8):
        for start in range(0, 60, 7):
            names = [f"demo/p{start + i}_seed{i}" for i in range(k)]
            colors = assign_colors(names)
            assert len(set(colors)) == k
            for a, b in itertools.combinations(colors, 2):
                assert _distance(a, b) >= MIN_DISTANCE, (names, a, b)
    many = assign_colors([f"r{i}" for i in range(len(PALETTE))])
    assert sorted(many) == sorted(PALETTE)  # every colour used once before any repeats


def test_the_palette_has_no_look_alike_pair_of_a_colour_and_its_twin():
    close = [(a, b) for a, b in itertools.combinations(PALETTE, 2) if _distance(a, b) < 55]
    assert close == []
