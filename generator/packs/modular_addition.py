"""The modular-addition grokking pack (the workbench group's experiment, Nanda et al. 2023):
training curves, progress measures and the turn, weight structure, the parameter trajectory,
Fourier structure, neurons and attention heads; on comparison pages the overlays, shared
PCA basis and per-variant detail of these analyses.

Its charts are defined in generator/charts/ (run report) and
generator/compare_charts.py (comparison page); their help texts in templates/help/.
"""

from __future__ import annotations

from epochscope.archives import Bundle
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

COMPARE_SECTIONS = (
    Section("curves", "Training curves", ("loss", "accuracy", "grad_norm", "weight_norm", "velocity"),
            "Every time series the variants share, overlaid; switch the x axis between the epoch and the distance "
            "from each run's turn at the top."),
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
    modules=tuple(f"epochscope.generator.charts.{m}" for m in ("training", "weights", "fourier", "neurons",
                                                                "attention", "atlas", "inputs")) + ("epochscope.generator.compare_charts",),
    applies=applies,
    lead=True,
)
