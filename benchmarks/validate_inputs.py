"""What the per-input, neuron-atlas and neuron-dynamics analyses say about real runs.

    python benchmarks/validate_inputs.py RUN.h5 [RUN.h5 ...]

Analyses a copy of each bundle (all analyzers, probes `wrong:16` and `test:16`) and prints:
the atlas residual over training (median and 90th percentile over the neurons), the graduation
epochs by input class, the neuron commitment epochs, the transient frequencies, and the probe
traces' logit attribution at the first and last checkpoint.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from epochscope.archives import consolidate, open_bundle
from epochscope.collectors.analysis import analyze


def main(paths: list[str]) -> int:
    for src in map(Path, paths):
        work = Path(tempfile.mkdtemp()) / src.name
        if src.exists():
            shutil.copy(src, work)
        journal = src.with_name(src.name + ".journal")
        if journal.is_dir():
            shutil.copytree(journal, work.with_name(work.name + ".journal"))
            consolidate(work)
        res = analyze(work, probes=["wrong:16", "test:16"])
        print(f"== {src} ({len(res.computed.get('inputs', []))} checkpoints) ==")
        for note in res.notes:
            print("  note:", note)
        with open_bundle(work) as b:
            cfg = b.config
            print(f"  p={cfg.get('p')} seeds {cfg.get('data_seed')}/{cfg.get('model_seed')}, "
                  f"turn {(res.turn or {}).get('epoch')}")
            atlas = b.artifact("neuron_atlas")
            eps, resid = atlas.per_epoch("residual")
            resid = resid.astype(np.float64)
            for i in np.linspace(0, len(eps) - 1, min(6, len(eps))).round().astype(int):
                print(f"  atlas residual at epoch {int(eps[i]):6d}: median {np.median(resid[i]):.3f}, "
                      f"p90 {np.quantile(resid[i], 0.9):.3f}")
            g = b.artifact("input_graduation")
            print("  median graduation epoch by class:", g.scalars["median_graduation"],
                  "never:", g.scalars["never_graduated"])
            acc = b.artifact("inputs").per_epoch("class_acc")[1]
            classes = list(b.artifact("inputs").summary("classes"))
            print("  final accuracy by class:", dict(zip(classes, np.round(acc[-1], 3).tolist(), strict=True)))
            nd = b.artifact("neuron_dynamics")
            commit = nd.summary("commitment_epoch")
            ok = commit[commit >= 0]
            print(f"  neurons committed at the end: {len(ok)}/{len(commit)}, commitment epoch "
                  f"median {int(np.median(ok)) if len(ok) else None}, switches {nd.scalars['n_switches']}")
            for i, f in enumerate(nd.summary("transient_freq")):
                print(f"  transient frequency {int(f)}: rise {int(nd.summary('transient_rise')[i])}, "
                      f"peak {int(nd.summary('transient_peak')[i])} at "
                      f"{float(nd.summary('transient_peak_share')[i]):.0%}, disappears "
                      f"{int(nd.summary('transient_disappear')[i])}, final "
                      f"{float(nd.summary('transient_final_share')[i]):.0%}, homeless "
                      f"{int(nd.summary('transient_homeless')[i])}")
            if not len(nd.summary("transient_freq")):
                print("  no transient frequency")
            for name in ("probe_wrong16", "probe_test16"):
                tr = b.artifact(name)
                print(f"  {name}: {tr.scalars['resolved']}")
                for j in (0, len(tr.epochs) - 1):
                    row = {k: float(np.mean(tr.per_epoch(k)[1][j], axis=0).sum())
                           for k in ("dla_embed", "dla_heads", "dla_mlp_mean", "dla_mlp_freq",
                                     "dla_mlp_other")}
                    acc = float(tr.per_epoch("correct")[1][j].mean())
                    print(f"    epoch {int(tr.epochs[j])}: accuracy {acc:.2f}, mean DLA "
                          + ", ".join(f"{k[4:]} {v:+.2f}" for k, v in row.items()))
        shutil.rmtree(work.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
