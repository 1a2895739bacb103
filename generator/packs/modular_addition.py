"""The modular-addition grokking pack (the workbench group's experiment, Nanda et al. 2023):
training curves, progress measures and the turn, weight structure, the parameter trajectory,
Fourier structure, neurons and attention heads; on comparison pages the overlays, shared
PCA basis and per-variant detail of these analyses.

Its charts are defined in generator/charts/ (run report) and
generator/compare/charts.py (comparison page); their help texts in templates/help/.
"""

from __future__ import annotations

from epochscope.archives import Bundle
from epochscope.generator.compare.table import Column, fmt_epochs
from epochscope.generator.packs import Pack, Section

# The analyses this pack draws (collectors/analysis/ writes them).
ARTIFACTS = frozenset({"weight_norms", "effective_dim", "trajectory", "cusum", "coarseness", "fourier_weights",
                       "neuron_freq", "neuron_maps", "attention", "restricted_loss", "turn", "neuron_atlas",
                       "neuron_dynamics", "inputs", "input_graduation"})


def applies(bundle: Bundle) -> bool:
    """A bundle of this experiment: one of its analyses ran, or it is a modular-addition run
    (its config names the modulus p and it logged train and test loss)."""
    if ARTIFACTS & set(bundle.artifact_names):
        return True
    config = bundle.config
    series = set(bundle.series_names)
    return "p" in config and {"train_loss", "test_loss"} <= series


SECTIONS = (
    Section("training", "Training curves", ("loss", "accuracy", "optimizer"),
            "Loss, accuracy and the optimizer's signals, every logged epoch. Click a curve to jump to that epoch."),
    Section("progress", "Progress measures and change points",
            ("restricted_loss", "turn_fit", "velocity", "gini", "cusum"),
            "Signals that move before the test loss does: restricted/excluded loss, the turn detection, parameter "
            "velocity, Fourier sparsity and the CUSUM monitors."),
    Section("weights", "Weight structure", ("weight_norms", "effective_dim", "spectral_gap", "singular_values"),
            "Norms and the singular value spectra of the weight matrices; the spectrum at the selected epoch sits "
            "beside its summaries."),
    Section("trajectory", "Parameter trajectory", ("pca_12", "pca_23"),
            "The path of the parameters through their top principal components, coloured by epoch. Click a point "
            "to select its epoch."),
    Section("fourier", "Fourier structure of the embeddings", ("fourier_embed", "fourier_unembed", "fourier_at_epoch"),
            "Which frequencies the embedding and unembedding use over training, and their spectrum at the selected "
            "epoch."),
    Section("neurons", "Neurons", ("neuron_freq_counts", "coarseness", "neuron_clusters", "neuron_maps"),
            "How MLP neurons specialise on frequencies. Click a neuron in the cluster map to show its activation map "
            "and its cluster-mates beside it."),
    Section("atlas", "Every neuron", ("neuron_atlas",),
            "Every MLP neuron's activation map at the selected epoch, rebuilt in the page from a few Fourier terms "
            "per neuron; filter by frequency, cluster or coarseness, page through them, click one to select it."),
    Section("dynamics", "Neuron dynamics",
            ("neuron_commitment", "neuron_commitment_curve", "specialised_counts", "neuron_switches",
             "transient_frequencies"),
            "Which frequency each neuron is committed to over training, when it switched, from when its final "
            "frequency holds, and frequencies that gained neurons and lost them again."),
    Section("inputs", "Per-input analysis",
            ("input_maps", "input_graduation_map", "input_class_accuracy", "input_class_loss", "probe_traces"),
            "Every (a, b) input at the selected epoch, when each input started to stay correct, curves per input "
            "class, and chosen inputs traced through training. Click an input on a map to select it."),
    Section("attention", "Attention heads", ("head_freq", "attention"),
            "Each head's dominant frequency over training and its attention pattern at the selected epoch. Click a "
            "head to select it."),
)

# Summary-table columns of this experiment (after the headline metrics' final/best values).
COMPARE_COLUMNS: tuple[Column, ...] = (
    Column("turn", "Turn", "epoch of the turn (onset of generalisation)", fmt_epochs, rel_floor=0.02),
    Column("health", "Health", "the turn analysis' health class (hover for its reason)", str, None, agg=None),
    Column("grok_speed", "Turn → 95%", "epochs from the turn until test accuracy first reaches 95%", fmt_epochs,
           rel_floor=0.05),
    Column("key_freqs", "Key freqs", "key frequencies (sorted by how many)", None, None, agg=None),
    Column("min_pr", "Min PR", "smallest participation ratio over training of W_E, W_in, W_out or W_U (the matrices whose compression precedes grokking)",
           lambda v: f"{v:.1f}", rel_floor=0.05),
    Column("self_intersects", "PC2/PC3 crossings", "self-crossings of the PC2/PC3 path (own basis)",
           lambda v: f"yes ({int(v)})" if v > 0 else "no", binary=True),
    Column("shared_crossings", "Crossings (shared)", "self-crossings of the PC2/PC3 path in the shared basis",
           lambda v: f"yes ({int(v)})" if v > 0 else "no", binary=True),
    Column("loop_area", "Loop area / L²", "largest loop's area over the squared path length (PC2/PC3)",
           lambda v: f"{v:.3f}", floor=0.002),
    Column("excursion", "Excursion / L", "farthest distance from the start over the path length (PC2/PC3)",
           lambda v: f"{v:.2f}", floor=0.01),
    Column("imbalance", "cos/sin", "largest cos/sin imbalance of W_E's key frequencies (final)",
           lambda v: f"{v:.2f} : 1", "log", floor=0.02),
    Column("gini", "Gini W_E", "Gini coefficient of W_E's Fourier norms (final)", lambda v: f"{v:.3f}", floor=0.01),
    Column("clustered", "Clustered", "share of MLP neurons in a frequency cluster (final)",
           lambda v: f"{100 * v:.0f}%", floor=0.02),
    Column("alarms", "CUSUM alarms", "number of CUSUM alarms, all monitors", fmt_epochs, floor=0.5),
)

COMPARE_SECTIONS = (
    Section("curves", "Training curves", ("loss", "accuracy", "grad_norm", "weight_norm", "velocity"),
            "Every time series the runs share: per group a mean line with a band (grouping and band at the top); "
            "where runs have a turn, the x axis can show the distance from each run's turn."),
    Section("structure", "Structure over training", ("effective_dim", "gini", "restricted", "clustered"),
            "What the analyses measured at each checkpoint, overlaid."),
    Section("trajectory", "Parameter trajectories", ("pca_shared", "pca_runs"),
            "The paths through weight space: in one shared basis where the parameter shapes allow it, and each in "
            "its own basis."),
    Section("detail", "Per-variant detail", ("fourier_spectra", "cluster_sizes"),
            "Small multiples of what does not share an axis across variants."),
)

PACK = Pack(
    name="modular_addition",
    title="Modular addition (grokking)",
    sections=SECTIONS,
    compare_sections=COMPARE_SECTIONS,
    compare_columns=COMPARE_COLUMNS,
    modules=tuple(f"epochscope.generator.charts.{m}" for m in ("training", "weights", "fourier", "neurons",
                                                                "attention", "atlas", "inputs")) + ("epochscope.generator.compare.charts",),
    applies=applies,
    lead=True,
)
