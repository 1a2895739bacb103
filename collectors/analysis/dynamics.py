"""Neuron dynamics over training: committed frequencies, switches, commitment epochs, transients.

Read from the stored `neuron_freq` rows (per checkpoint: each neuron's dominant frequency and
its variance share `max_frac`), with the definitions of the workbench
(roaringsurfdev/training-dynamics-workbench, `neuron_dynamics.py`, `transient_frequency.py`):

- a neuron is *committed* at a checkpoint when its dominant frequency's share is at least
  `commit_factor` / K (3x the uniform share; K = p // 2 frequencies); its committed frequency
  is then the dominant one, else 0;
- a *switch* is a change of committed frequency between two committed checkpoints (checkpoints
  where it is uncommitted in between do not break the comparison);
- its *commitment epoch* is the first checkpoint from which it is committed to its final
  frequency at every later checkpoint (-1: uncommitted at the last checkpoint);
- a neuron is *specialised* when the share is at least `specialised` (0.70); a frequency's
  specialised count per checkpoint gives its rise and fall. A *transient frequency* reaches
  `transient_share` (5%) of the neurons at some checkpoint and ends below `final_share` (10%).
  For each: `rise` (first checkpoint at >= 5%), `peak` (checkpoint of its largest count) and
  peak share, `disappear` (the first checkpoint after the peak from which it stays below 5%;
  -1 if it never does), final share, and how many of its peak members are specialised on no
  frequency at the end (`homeless`, the workbench's word).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import Analyzer, MetricsView, Output, fingerprint

__all__ = ["NeuronDynamics", "neuron_dynamics", "transient_frequencies"]


def neuron_dynamics(dominant: np.ndarray, max_frac: np.ndarray, epochs: np.ndarray,
                    threshold: float) -> dict[str, np.ndarray]:
    """Committed frequency [n, M], switches (table) and commitment epoch [M] (module doc)."""
    committed = np.where(max_frac >= threshold, dominant, 0).astype(np.int16)
    n, m = committed.shape
    last = np.zeros(m, dtype=np.int16)
    sw_epoch, sw_neuron, sw_from, sw_to = [], [], [], []
    for t in range(n):
        now = committed[t]
        changed = (now > 0) & (last > 0) & (now != last)
        for i in np.nonzero(changed)[0]:
            sw_epoch.append(epochs[t]), sw_neuron.append(i)
            sw_from.append(last[i]), sw_to.append(now[i])
        last = np.where(now > 0, now, last)
    final = committed[-1]
    same = (committed == final[None]) & (final[None] > 0)
    # first index from which `same` holds to the end
    broken = ~same
    last_broken = np.where(broken.any(axis=0), n - 1 - np.argmax(broken[::-1], axis=0), -1)
    commit = np.where((final > 0) & (last_broken < n - 1), epochs[np.minimum(last_broken + 1, n - 1)], -1)
    switches = np.bincount(np.asarray(sw_neuron, dtype=np.int64), minlength=m)
    return {
        "committed_freq": committed,
        "switch_count": switches.astype(np.int32),
        "commitment_epoch": commit.astype(np.int64),
        "final_freq": final.astype(np.int16),
        "switch_epoch": np.asarray(sw_epoch, dtype=np.int64),
        "switch_neuron": np.asarray(sw_neuron, dtype=np.int32),
        "switch_from": np.asarray(sw_from, dtype=np.int16),
        "switch_to": np.asarray(sw_to, dtype=np.int16),
    }


def transient_frequencies(dominant: np.ndarray, max_frac: np.ndarray, epochs: np.ndarray,
                          n_freq: int, specialised: float, transient_share: float,
                          final_share: float) -> dict[str, np.ndarray]:
    """Specialised counts [n, K] and the transient-frequency table (module doc)."""
    n, m = dominant.shape
    spec = max_frac >= specialised
    counts = np.zeros((n, n_freq), dtype=np.int32)
    for t in range(n):
        counts[t] = np.bincount(dominant[t][spec[t]] - 1, minlength=n_freq)[:n_freq]
    rise_n, final_n = transient_share * m, final_share * m
    table: dict[str, list] = {k: [] for k in ("freq", "rise", "peak", "peak_share", "peak_count",
                                              "disappear", "final_share", "homeless")}
    members: list[np.ndarray] = []
    for f in np.nonzero(counts.max(axis=0) >= rise_n)[0]:
        c = counts[:, f]
        if c[-1] >= final_n:
            continue  # part of the final solution, not transient
        peak = int(np.argmax(c))
        rise = int(np.argmax(c >= rise_n))
        above = c >= rise_n
        after = above[peak:]
        last_above = peak + (len(after) - 1 - int(np.argmax(after[::-1])))
        disappear = int(epochs[last_above + 1]) if last_above + 1 < n else -1
        who = np.nonzero((dominant[peak] == f + 1) & spec[peak])[0]
        table["freq"].append(f + 1)
        table["rise"].append(int(epochs[rise]))
        table["peak"].append(int(epochs[peak]))
        table["peak_share"].append(c[peak] / m)
        table["peak_count"].append(int(c[peak]))
        table["disappear"].append(disappear)
        table["final_share"].append(c[-1] / m)
        table["homeless"].append(int((~spec[-1][who]).sum()))
        members.append(who.astype(np.int32))
    offsets = np.zeros(len(members) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) for x in members])
    dtypes = {"peak_share": np.float32, "final_share": np.float32, "freq": np.int16}
    out = {f"transient_{k}": np.asarray(v, dtype=dtypes.get(k, np.int64)) for k, v in table.items()}
    out["transient_members"] = np.concatenate(members) if members else np.zeros(0, np.int32)
    out["transient_member_offsets"] = offsets
    out["specialised_counts"] = counts
    return out


class NeuronDynamics(Analyzer):
    """Per neuron: committed frequency over training, switches, commitment; transient frequencies."""

    name = "neuron_dynamics"
    version = "1"
    consumes = "metrics"
    description = (
        "Per MLP neuron: its committed frequency at every checkpoint (0: uncommitted), its "
        "frequency switches and its commitment epoch; per frequency the count of specialised "
        "neurons; transient frequencies (reach 5% of the neurons, then fade) with rise, peak, "
        "peak share and disappearance."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"commit_factor": 3.0, "specialised": 0.70, "transient_share": 0.05,
                "final_share": 0.10}

    def applies_to(self, view: MetricsView) -> str | None:
        art = view.artifact("neuron_freq")
        if art is None or len(art.epochs) < 2:
            return "needs the `neuron_freq` artifact at 2 or more checkpoints"
        return None

    def inputs(self, view: MetricsView) -> str:
        art = view.artifact("neuron_freq")
        if art is None:
            return ""
        return fingerprint(art.version, np.asarray(art.epochs), art.per_epoch("max_frac")[1])

    def compute_metrics(self, view: MetricsView) -> Output:
        art = view.artifact("neuron_freq")
        epochs, dominant = art.per_epoch("dominant_freq")
        _, max_frac = art.per_epoch("max_frac")
        n_freq = int(art.summary("frequencies").shape[0])
        threshold = float(self.params["commit_factor"]) / n_freq
        dyn = neuron_dynamics(dominant.astype(np.int64), max_frac, epochs, threshold)
        tr = transient_frequencies(dominant.astype(np.int64), max_frac, epochs, n_freq,
                                   float(self.params["specialised"]),
                                   float(self.params["transient_share"]),
                                   float(self.params["final_share"]))
        per_epoch = {"committed_freq": dyn.pop("committed_freq"),
                     "specialised_counts": tr.pop("specialised_counts")}
        events = [
            {"epoch": int(peak), "kind": "transient_frequency",
             "message": f"frequency {int(f)} peaked at {share:.0%} of the neurons, then faded",
             "payload": {"freq": int(f), "rise": int(rise), "peak": int(peak),
                         "peak_share": float(share), "disappear": int(gone)}}
            for f, rise, peak, share, gone in zip(
                tr["transient_freq"], tr["transient_rise"], tr["transient_peak"],
                tr["transient_peak_share"], tr["transient_disappear"], strict=True)
        ]
        m = dominant.shape[1]
        commit = dyn["commitment_epoch"]
        return Output(
            epochs=np.asarray(epochs, dtype=np.int64),
            per_epoch=per_epoch,
            summary={**dyn, **tr, "frequencies": np.arange(1, n_freq + 1)},
            scalars={
                "commit_threshold": threshold,
                "n_neurons": m,
                "n_committed_final": int((dyn["final_freq"] > 0).sum()),
                "median_commitment": int(np.median(commit[commit >= 0])) if (commit >= 0).any() else None,
                "n_switches": int(len(dyn["switch_epoch"])),
                "transient_freqs": [int(f) for f in tr["transient_freq"]],
                "source": "roaringsurfdev/training-dynamics-workbench definitions "
                          "(neuron_dynamics.py, transient_frequency.py)",
            },
            events=events,
        )
