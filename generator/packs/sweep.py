"""The sweep pack: what a comparison page shows when the compared runs are the variants of
one `epochscope sweep` (their bundles beside its sweep.json manifest, archives/sweep.py):
the main effect of each factor on the sweep's response, as the sweep computed them
(collectors/design.py, at the end of the sweep). No run-report sections."""

from __future__ import annotations

from epochscope.archives.sweep import sweep_of
from epochscope.generator.packs import Pack, Section

PACK = Pack(
    name="sweep",
    title="Sweep design",
    compare_sections=(
        Section("sweep_effects", "Sweep: main effects of the factors", ("sweep_main_effects", "sweep_effects_table"),
                "For a sweep's variants: the mean response at each level of each factor (a Taguchi design's "
                "orthogonal array, or the full grid), the best level and how much each factor matters."),
    ),
    modules=("epochscope.generator.packs.sweep_charts",),
    applies=lambda bundle: False,  # comparison pages only (a single run has no factors)
    # on a page comparing the variants of one sweep (or some of them)
    compare_applies=lambda variants: sweep_of([v.path for v in variants]) is not None,
)


