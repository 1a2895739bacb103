"""The evolutionary activation search pack (research-notes/symbiogenesis-ui-feedback.md;
collector: collectors/experiments/evolution.py): the search population, the activation
switches and the loss spike each causes, the per-step monitors, effective rank and the
sample generations. Charts: generator/packs/evolution_charts.py and step_charts.py."""

from __future__ import annotations

from epochscope.archives import Bundle
from epochscope.generator.packs import Pack, Section


def applies(bundle: Bundle) -> bool:
    """A bundle of `epochscope collect --experiment evolution` (or one with its candidates table)."""
    return bundle.config.get("experiment") == "evolution" or "search_candidates" in bundle.table_names


SECTIONS = (
    Section("search", "Search population", ("evo_candidates", "evo_fitness", "evo_architecture"),
            "Every candidate the search evaluated, the fitness of each generation and which activations the "
            "population holds as it evolves."),
    Section("switches", "Activation switches and the loss", ("evo_loss", "evo_switch_spikes"),
            "Weights carry over from one candidate to the next, so each switch of activation jolts the loss; "
            "each switch is marked on the curve and its spike measured below."),
    Section("monitors", "Per-step monitors", ("cusum_monitors", "step_gradients", "step_throughput"),
            "The four CUSUM change-point monitors of the notes, the gradient norm with the clipped share and "
            "the throughput, every step."),
    Section("structure", "Weight structure", ("evo_effective_rank",),
            "How many directions each weight matrix uses, every metrics_interval steps."),
    Section("samples", "Sample generations", ("samples_by_checkpoint",),
            "Text the model wrote at each candidate's checkpoint."),
)

PACK = Pack(
    name="evolution",
    title="Evolutionary activation search",
    sections=SECTIONS,
    modules=("epochscope.generator.packs.step_charts", "epochscope.generator.packs.evolution_charts"),
    applies=applies,
    lead=True,
)
