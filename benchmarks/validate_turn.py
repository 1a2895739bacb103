"""Turn detection on real runs: the detected turn must come after train accuracy passes 99%
and before test accuracy passes 95%, in every run.

    python benchmarks/validate_turn.py RUN.h5 [RUN.h5 ...]

Each bundle is analysed first (only what it lacks; the `turn` analyzer uses the test loss and
cross-checks with the `trajectory` analyzer's velocity and PCA curvature), then one row per
run is printed. Exits 1 if any run breaks the rule or has no turn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from epochscope.archives import open_bundle
from epochscope.collectors.analysis import analyze


def row(path: Path) -> dict:
    analyze(path)
    with open_bundle(path) as b:
        turn = b.artifact("turn").scalars
        cfg = b.config
        checks = turn.get("cross_checks") or {}
        return {
            "run": b.name, "p": cfg.get("p"), "seeds": f"{cfg.get('data_seed')}/{cfg.get('model_seed')}",
            "epochs": int(b.series("test_loss")[0][-1]),
            "train99": turn.get("train_acc_99_epoch"), "turn": turn.get("epoch"),
            "test95": turn.get("test_acc_95_epoch"), "confidence": turn.get("confidence"),
            "agree": ", ".join(k for k, v in checks.items() if v.get("agrees")) or "-",
            "ok": bool(turn.get("epoch") is not None and turn.get("between_acc_marks")),
            "reason": turn.get("reason"),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    args = ap.parse_args(argv)
    rows = [row(p) for p in args.bundles]
    head = f"{'run':34s} {'p':>4s} {'seeds d/m':>10s} {'epochs':>7s} {'train>=99%':>10s} {'turn':>7s} " \
           f"{'test>=95%':>10s} {'conf':>5s}  cross-checks agreeing   ok"
    print(head)
    for r in rows:
        conf = f"{r['confidence']:.2f}" if r["confidence"] is not None else "-"
        print(f"{r['run'][:34]:34s} {r['p']!s:>4s} {r['seeds']:>10s} {r['epochs']:>7d} {r['train99']!s:>10s} "
              f"{r['turn']!s:>7s} {r['test95']!s:>10s} {conf:>5s}  {r['agree']:22s} {'yes' if r['ok'] else 'NO'}"
              + (f"  ({r['reason']})" if r["reason"] else ""))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
