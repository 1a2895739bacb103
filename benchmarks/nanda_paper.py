"""Nanda et al. 2023 reproduced: the paper's figures next to ours, from analysed nanda2023 bundles.

    python benchmarks/nanda_paper.py RUN.h5 [RUN.h5 ...]

Every figure comes from the bundle (the `neuron_freq`, `restricted_loss`, `turn` and `phases`
artifacts and the metric series); nothing is typed in but the paper's own numbers. A figure
the run has not reached (a run stopped early) is printed as such.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from epochscope.archives import open_bundle

PAPER = {
    "key frequencies": "5: {14, 35, 41, 42, 52} (their seed; other seeds 3-4)",
    "neurons explained >= 85% by one frequency": "433 of 512 (84.6%)",
    "restricted loss falls before the test loss": "yes",
    "excluded loss rises": "yes",
    "memorisation": "0 - 1.4k",
    "circuit formation": "1.4k - 9.4k",
    "cleanup": "9.4k - 14k",
}


def _at_or_before(epochs: np.ndarray, epoch: int) -> int | None:
    i = np.searchsorted(epochs, epoch, side="right") - 1
    return int(i) if i >= 0 else None


def figures(path: Path) -> dict[str, str]:
    with open_bundle(path) as b:
        cfg = b.config
        last = int(b.series("test_loss")[0][-1])
        out = {"run": f"{path.stem} (seeds {cfg.get('data_seed')}/{cfg.get('model_seed')}, {last} of "
                      f"{cfg.get('epochs')} epochs, status {b.status})"}  # fmt: skip
        names = b.artifact_names
        if "neuron_freq" in names:
            nf = b.artifact("neuron_freq")
            e, frac = nf.per_epoch("frac_clustered")
            _, sizes = nf.per_epoch("cluster_sizes")
            freqs = [int(f) for f in np.asarray(nf.summary("frequencies")).ravel()]
            sizes = np.asarray(sizes)
            m = int(np.asarray(nf.per_epoch("clustered")[1]).shape[-1])

            def clusters(i: int) -> str:
                order = np.argsort(-sizes[i])
                big = [(freqs[j], int(sizes[i][j])) for j in order if sizes[i][j] >= max(1, 0.01 * m)]
                return ", ".join(f"{f} ({n})" for f, n in big) or "none"

            i = len(e) - 1
            out["neurons explained >= 85% by one frequency"] = (
                f"{int(round(float(frac[i]) * m))} of {m} ({100 * float(frac[i]):.1f}%) at epoch {int(e[i])}")
            out["clusters (frequency (neurons))"] = f"{clusters(i)} at epoch {int(e[i])}"
            j = _at_or_before(e, 10_000)
            if j is not None and j != i:
                out["clusters (frequency (neurons))"] += f"; {clusters(j)} at epoch {int(e[j])}"
        if "restricted_loss" in names:
            rl = b.artifact("restricted_loss")
            keys = [int(k) for k in np.asarray(rl.summary("key_freqs")).ravel()]
            src = rl.scalars.get("key_source")
            out["key frequencies"] = (f"{len(keys)}: {{{', '.join(map(str, sorted(keys)))}}} "
                                      f"(chosen at epoch {rl.scalars.get('key_epoch')}, {src})")  # fmt: skip
            ee, ex = rl.per_epoch("excluded_loss")
            ex = np.asarray(ex, dtype=np.float64).ravel()
            pts = sorted({k for k in (_at_or_before(ee, ep) for ep in (1000, 5000, 25000)) if k is not None})
            out["excluded loss rises"] = ", ".join(f"{ex[k]:.3g} at {int(ee[k])}" for k in pts) + (
                f" (last {ex[-1]:.3g} at {int(ee[-1])})" if len(ee) - 1 not in pts else "")
        if "phases" in names:
            ph = b.artifact("phases").scalars
            r1, t1 = ph.get("restricted_below_1_epoch"), ph.get("test_below_1_epoch")
            out["restricted loss falls before the test loss"] = (
                f"restricted loss < 1 at {r1 if r1 is not None else 'never'}, test loss < 1 at "
                f"{t1 if t1 is not None else 'never'} (within the {last} epochs run)")
            for p in ph["phases"]:
                end = p["end"] if p["end"] is not None else f"? ({p['reason']})"
                start = p["start"] if p["start"] is not None else "?"
                out[p["phase"]] = f"{start} - {end}"
        if "turn" in names:
            t = b.artifact("turn").scalars
            out["turn / health"] = f"turn {t.get('epoch')}, test acc 95% at {t.get('test_acc_95_epoch')}, {t.get('health')}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    args = ap.parse_args(argv)
    rows = [figures(p) for p in args.bundles]
    keys = ["run", *PAPER, "clusters (frequency (neurons))", "turn / health"]
    print("| figure | paper | " + " | ".join(f"ours {i + 1}" for i in range(len(rows))) + " |")
    print("| --- | --- |" + " --- |" * len(rows))
    for k in keys:
        print(f"| {k} | {PAPER.get(k, '-') if k != 'run' else 'seed 999/598, 25k epochs'} | "
              + " | ".join(r.get(k, "not computed") for r in rows) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
