"""Do the dense-trace anomaly triggers hold on fresh runs? Clean runs vs runs with a fault.

For each seed (none of them looked at while choosing the thresholds; the tests use seed 0),
trains the morphogenesis default config twice: as is, and with the learning rate multiplied
by `--factor` for one epoch (`--spike-epoch`). Prints, per run, the anomaly alerts
(loss_spike, accuracy_drop, gradient_explosion) and whether a dense trace covers the fault.

    python benchmarks/validate_alerts.py [--seeds 2 3 4 5] [--epochs 30] [--spike-epoch 15]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from epochscope.archives import open_bundle
from epochscope.archives import telemetry as tm
from epochscope.collectors.experiments import morphogenesis as mg

ANOMALIES = ("loss_spike", "accuracy_drop", "gradient_explosion")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--spike-epoch", type=int, default=15)
    ap.add_argument("--factor", type=float, default=30.0)
    args = ap.parse_args()
    false_alerts = detected = aftermath = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for fault in (False, True):
                over = {"seed": seed, "data_seed": seed, "epochs": args.epochs, "name": f"s{seed}{fault}"}
                if fault:
                    over.update(lr_spike_epoch=args.spike_epoch, lr_spike_factor=args.factor)
                res = mg.run(mg.config_from(over), Path(tmp) / f"{seed}-{fault}.h5", progress=False)
                with open_bundle(res.bundle_path) as b:
                    t = tm.read_telemetry(b)
                alerts = [(a["epoch"], a["payload"]["reason"]) for a in t.alerts
                          if a["payload"]["reason"] in ANOMALIES]
                near = [a for a in alerts if args.spike_epoch <= a[0] <= args.spike_epoch + 1]
                covered = any(d["epoch_start"] <= args.spike_epoch <= d["epoch_end"]
                              for d in t.dense_traces if set(d["reasons"]) & set(ANOMALIES))
                if fault:
                    detected += bool(near)
                    aftermath += sum(a[0] > args.spike_epoch + 1 for a in alerts)
                    false_alerts += sum(a[0] < args.spike_epoch for a in alerts)
                else:
                    false_alerts += len(alerts)
                print(f"seed {seed} {'fault' if fault else 'clean'}: alerts {alerts or 'none'}; "
                      f"dense trace over the fault epoch: {covered if fault else '-'}")
    n = len(args.seeds)
    print(f"faults detected at epoch {args.spike_epoch}-{args.spike_epoch + 1}: {detected}/{n}; "
          f"false alarms (clean runs, and fault runs before the fault): {false_alerts} in {2 * n} runs; "
          f"alerts while recovering after the fault: {aftermath}")


if __name__ == "__main__":
    main()
