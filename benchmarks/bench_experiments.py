"""Run time, steps/s and recording overhead (target <= 5 %) of the experiment collectors.

For each experiment, rounds alternate the recorded run (`run_*(config, path)`: every
per-step series, CUSUM monitors, effective rank, tables, arrays, events, checkpoints, the
bundle written and consolidated) with a bare run of the same model and algorithm
(`run_*(config, None)`: the same training steps, fitness evaluations, selection or
apoptosis rounds, and nothing recorded or monitored). Both build model and data from the
same config, so setup counts on both sides. The machine may be shared: compare the
ratio of the two in one run, not absolute figures across runs. Wall time is reported for
the best round of each side (the least disturbed by other processes) with the median
ratio; CPU time of this process (`time.process_time`, all its threads) is reported too,
since on a loaded machine it is less noisy than wall time. Both still swing by 10-20 %
between identical runs when other processes compete for the cores, so a third figure
is measured inside each recorded run, where load hits both sides alike: the main thread's
CPU time spent in recording code (every Recorder call, the telemetry and CUSUM monitors,
the validation monitor, effective rank, samples, spike tables, bundle creation and
consolidation) against the rest of the run.

    python benchmarks/bench_experiments.py                 # default configs, 2 rounds
    python benchmarks/bench_experiments.py --rounds 3 --only apoptosis
    python benchmarks/bench_experiments.py --quick         # smaller configs, for a smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from epochscope.collectors.experiments import experiment
from epochscope.collectors.experiments.apoptosis import Apoptosis
from epochscope.collectors.experiments.evolution import Search
from epochscope.collectors.experiments.loop import Telemetry
from epochscope.collectors.recorder import Recorder

# Every method that exists only to record (nested calls are counted once).
RECORDING = [(Recorder, m) for m in ("__init__", "log", "log_step", "array", "event", "checkpoint",
                                     "table", "append_rows", "row", "keep_best", "flush", "close")]
RECORDING += [(Telemetry, m) for m in ("step", "val", "val_monitor", "effective_ranks")]
RECORDING += [(Search, m) for m in ("_sample", "_record_generation", "_record_end", "attach")]
RECORDING += [(Apoptosis, m) for m in ("_checkpoint", "_record_end", "attach")]


class Meter:
    """Main-thread CPU seconds spent inside the RECORDING methods while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.by_method: dict[str, float] = {}
        self._depth = 0
        self._saved = []

    def __enter__(self) -> Meter:
        for cls, name in RECORDING:
            fn = getattr(cls, name)
            self._saved.append((cls, name, fn))
            setattr(cls, name, self._wrap(fn, f"{cls.__name__}.{name}"))
        return self

    def __exit__(self, *exc) -> None:
        for cls, name, fn in self._saved:
            setattr(cls, name, fn)

    def _wrap(self, fn, label):
        meter = self

        def wrapped(*args, **kwargs):
            if meter._depth:
                return fn(*args, **kwargs)
            meter._depth += 1
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                meter.seconds += spent
                meter.by_method[label] = meter.by_method.get(label, 0.0) + spent
                meter._depth -= 1

        return wrapped

QUICK = {"evolution": {"generations": 2, "steps_per_candidate": 20},
         "apoptosis": {"steps": 200, "interval": 50}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=["evolution", "apoptosis"])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"cpu_count={os.cpu_count()} load average={os.getloadavg()[0]:.1f} (shared machine)")
    names = [args.only] if args.only else ["evolution", "apoptosis"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            exp = experiment(name)
            config = exp.load_config(None, QUICK[name] if args.quick else {})
            bare_t, rec_t, bare_c, rec_c, shares = [], [], [], [], []
            for r in range(args.rounds):
                c0, t0 = time.process_time(), time.perf_counter()
                res = exp.run(config, None)
                bare_t.append(time.perf_counter() - t0)
                bare_c.append(time.process_time() - c0)
                path = Path(tmp) / f"{name}-{r}.h5"
                c0, t0, m0 = time.process_time(), time.perf_counter(), time.thread_time()
                with Meter() as meter:
                    exp.run(config, path)
                rec_t.append(time.perf_counter() - t0)
                rec_c.append(time.process_time() - c0)
                main = time.thread_time() - m0
                shares.append(meter.seconds / (main - meter.seconds))
                top = sorted(meter.by_method.items(), key=lambda kv: -kv[1])[:5]
                print(f"  {name} round {r + 1}: bare {bare_t[-1]:.1f} s (cpu {bare_c[-1]:.1f} s), "
                      f"recorded {rec_t[-1]:.1f} s (cpu {rec_c[-1]:.1f} s): wall {rec_t[-1] / bare_t[-1] - 1:+.1%}, "
                      f"cpu {rec_c[-1] / bare_c[-1] - 1:+.1%}; in-run: recording {meter.seconds:.2f} s "
                      f"of {main:.1f} s main-thread cpu = {shares[-1]:+.1%} over the rest ("
                      + ", ".join(f"{k} {v:.2f} s" for k, v in top) + ")", flush=True)
            steps = res.steps
            ratios = [b / a - 1 for a, b in zip(bare_t, rec_t, strict=True)]
            size = path.stat().st_size / 1e6
            print(f"{name}: {steps} steps; bare {steps / min(bare_t):.1f} steps/s ({min(bare_t):.1f} s), "
                  f"recorded {steps / min(rec_t):.1f} steps/s ({min(rec_t):.1f} s); overhead best-vs-best "
                  f"{min(rec_t) / min(bare_t) - 1:+.1%}, median of rounds {statistics.median(ratios):+.1%}; "
                  f"cpu time bare {min(bare_c):.1f} s, recorded {min(rec_c):.1f} s: overhead "
                  f"{min(rec_c) / min(bare_c) - 1:+.1%}; in-run recording overhead median "
                  f"{statistics.median(shares):+.1%} (max {max(shares):+.1%}); bundle {size:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
