"""The neuron apoptosis pack (research-notes/apoptosis-experiment-log.md; collector:
collectors/experiments/apoptosis.py): the loss against the no-apoptosis baseline with each
round marked and its spike measured, the notes' success criteria, the neuron population
(age, lineage, fitness), the per-step monitors and the samples. Charts:
generator/packs/apoptosis_charts.py and step_charts.py."""

from __future__ import annotations

from epochscope.archives import Bundle
from epochscope.generator.packs import Pack, Section


def applies(bundle: Bundle) -> bool:
    """A bundle of `epochscope collect --experiment apoptosis` (or one with its neuron arrays)."""
    return bundle.config.get("experiment") == "apoptosis" or {"neuron_age", "neuron_id"} <= set(bundle.array_names)


SECTIONS = (
    Section("rounds", "Loss and apoptosis rounds", ("apo_loss", "apo_event_spikes"),
            "The loss beside the baseline (the same init and batches, no apoptosis); each round is marked on the "
            "curve and the spike it caused measured below."),
    Section("criteria", "Success criteria", ("apo_success",),
            "The experiment log's success criteria, computed at the end of the run."),
    Section("population", "The neuron population", ("apo_age_histogram", "apo_lineage", "apo_fitness", "apo_births"),
            "How old the MLP neurons are, whom they descend from and how fit they are, at each checkpoint; the "
            "lineage and fitness maps follow the selected checkpoint."),
    Section("monitors", "Per-step monitors", ("cusum_monitors", "step_gradients", "step_throughput"),
            "The four CUSUM change-point monitors, the gradient norm with the clipped share and the throughput, "
            "every step."),
    Section("samples", "Sample generations", ("samples_by_checkpoint",),
            "Text the model wrote at each checkpoint."),
)

PACK = Pack(
    name="apoptosis",
    title="Neuron apoptosis",
    sections=SECTIONS,
    compare_sections=(
        Section("apo_strategies", "Apoptosis strategies", ("apo_strategies",),
                "The experiment log's strategy table: one row per compared apoptosis run (a sweep over strategy and "
                "rates gives one per variant), best final loss first, with the log's success criteria."),
    ),
    modules=("epochscope.generator.packs.step_charts", "epochscope.generator.packs.apoptosis_charts",
             "epochscope.generator.packs.apoptosis_compare"),
    applies=applies,
    compare_applies=lambda variants: any(v.config.get("experiment") == "apoptosis" for v in variants),
    lead=True,
)
