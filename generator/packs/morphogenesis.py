"""The morphogenesis pack: growing seed modules in the slots of a host network, proved against
the host-only baseline (the telemetry design of research-notes/telemetry-design.md).

Its sections answer the design's five success questions: is it winning (accuracy and
parameter efficiency against the baseline), why (the counterfactual matrix, Shapley
attribution and interactions), why did it fail (alerts, the stage timeline with gates, dense
traces drilled to their batches), can we reproduce it (the episode context) and what would
have happened without seeds. Charts: generator/packs/morphogenesis_charts.py; help texts:
templates/help/morph_*.toml.
"""

from __future__ import annotations

from epochscope.archives import Bundle
from epochscope.archives import telemetry as tm
from epochscope.generator.packs import Pack, Section


def applies(bundle: Bundle) -> bool:
    """A bundle holding the telemetry profile: what `read_telemetry` finds present (the episode,
    slot snapshots, counterfactuals or dense traces), checked by table name without reading them."""
    return bool({tm.EPISODE_TABLE, tm.SLOTS_TABLE, tm.COUNTERFACTUAL_TABLE, tm.DENSE_TABLE} & set(bundle.table_names))


SECTIONS = (
    Section("morph_winning", "1. Is morphogenesis winning?",
            ("morph_headline", "morph_accuracy", "morph_delta", "morph_efficiency", "morph_params"),
            "Accuracy and accuracy per parameter of the grown model against the host-only baseline trained "
            "alongside on the same data order. Shaded bands on every time chart: dense-trace windows (click one "
            "to open its per-batch charts in section 3)."),
    Section("morph_why", "2. Why is it winning?",
            ("morph_cf_matrix", "morph_attribution", "morph_interactions", "morph_attribution_time"),
            "Causal attribution from the counterfactual matrix: every on/off configuration of the active seeds "
            "evaluated at the selected epoch, each seed's Shapley, marginal and removal contribution, and how "
            "pairs of seeds interact."),
    Section("morph_fail", "3. Why did it fail?",
            ("morph_alerts", "morph_stages", "morph_dense_traces", "morph_dense_batches", "morph_dense_grads",
             "morph_grad_hist", "morph_dense_activations", "morph_dense_dead"),
            "Health alerts with their trigger values, each slot's lifecycle with its gate results, and the dense "
            "traces taken around anomalies: the per-batch charts show the trace the selected epoch lies in."),
    Section("morph_reproduce", "4. Can we reproduce it?", ("morph_episode", "morph_replay", "morph_cf_cost"),
            "The episode context recorded once per run: identity, seeds, architecture, hyperparameters, the "
            "baseline, the starting checkpoint and what the counterfactuals cost."),
    Section("morph_without_seeds", "5. What would have happened without seeds?", ("morph_without",),
            "The grown model, the same model with every seed switched off, and the host that was never grown."),
)

PACK = Pack(
    name="morphogenesis",
    title="Morphogenetic growth with counterfactual attribution",
    sections=SECTIONS,
    modules=("epochscope.generator.packs.morphogenesis_charts",),
    applies=applies,
    lead=True,
)
