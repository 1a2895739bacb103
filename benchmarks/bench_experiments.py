"""Run time, steps/s and recording overhead (target <= 5 %) of the experiment collectors.

Three sides of each experiment run in alternating rounds, built from the same config (model,
data and setup count on every side):

- bare (`run_*(config, None)`): the training steps, fitness evaluations, selection or
  apoptosis rounds and the validation the final figures need; nothing else.
- telemetry (the experiment object attached to `NullRecorder`): bare plus the telemetry the
  research notes define as part of their experiment, computed exactly as in a recorded run
  (the four CUSUM monitors, the validation monitor, effective rank every `metrics_interval`
  steps, a text sample at each checkpoint, the spike measurements), handed to a recorder
  that keeps nothing. The groups' own trainers compute these whether or not epochscope is
  there, so this is the "bare loop of the same model without recording" the 5 % target is
  measured against.
- recorded (`run_*(config, path)`): telemetry plus every Recorder call, the bundle's
  segments, checkpoints (top-k) and the consolidation into one file.

Figures: recording overhead = recorded vs telemetry; telemetry + recording = recorded vs
bare (reported too: it is what epochscope's experiment collectors cost against a training
loop that computes nothing but its own figures). The machine may be shared: ratios are
taken within each round (paired, the sides' order rotating) and their median reported; wall time, CPU time of this
process (`time.process_time`, all threads) and an in-run figure are all shown. The in-run
figure is measured inside each recorded run, where load hits both sides alike: the main
thread's CPU time inside the Recorder's methods (recording) and inside the telemetry
methods (CUSUM, validation monitor, effective rank, samples, spike tables), each over the
rest of the run.

    python benchmarks/bench_experiments.py                 # default configs, 3 rounds
    python benchmarks/bench_experiments.py --rounds 5 --only apoptosis
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

# The Recorder's methods (recording) and the methods that compute the notes' telemetry and
# hand it to the recorder (their Recorder calls count as recording: nested calls are charged
# to the innermost bucket once).
RECORDER = [(Recorder, m) for m in ("__init__", "log", "log_step", "array", "event", "checkpoint",
                                    "table", "append_rows", "row", "keep_best", "flush", "close")]
TELEMETRY = [(Telemetry, m) for m in ("step", "val", "val_monitor", "effective_ranks")]
TELEMETRY += [(Search, m) for m in ("_sample", "_record_generation", "_record_end", "attach")]
TELEMETRY += [(Apoptosis, m) for m in ("_checkpoint", "_record_end", "attach")]


class NullRecorder:
    """A recorder that keeps nothing: the telemetry side computes every value and drops it."""

    def checkpoint(self, *args, **kwargs) -> bool:
        return True  # as if stored: a sample is taken, as for a stored checkpoint

    def _drop(self, *args, **kwargs) -> None:
        return None

    log = log_step = array = event = table = append_rows = row = keep_best = describe = flush = close = _drop


class Meter:
    """Main-thread CPU seconds inside the RECORDER and TELEMETRY methods while installed."""

    def __init__(self) -> None:
        self.seconds = {"recording": 0.0, "telemetry": 0.0}
        self.by_method: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open call: [its start, time its nested calls took]
        self._saved = []

    def __enter__(self) -> Meter:
        for bucket, methods in (("recording", RECORDER), ("telemetry", TELEMETRY)):
            for cls, name in methods:
                fn = getattr(cls, name)
                self._saved.append((cls, name, fn))
                setattr(cls, name, self._wrap(fn, f"{cls.__name__}.{name}", bucket))
        return self

    def __exit__(self, *exc) -> None:
        for cls, name, fn in self._saved:
            setattr(cls, name, fn)

    def _wrap(self, fn, label, bucket):
        meter = self

        def wrapped(*args, **kwargs):
            frame = [time.thread_time(), 0.0]
            meter._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - frame[0]
                meter._stack.pop()
                own = spent - frame[1]  # nested metered calls are charged to themselves
                if meter._stack:
                    meter._stack[-1][1] += spent
                meter.seconds[bucket] += own
                meter.by_method[label] = meter.by_method.get(label, 0.0) + own

        return wrapped


def run_telemetry(name: str, config) -> None:
    """The telemetry side: the experiment attached to a NullRecorder, on one torch thread
    (as `run_recorded` runs the other two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = Search(config) if name == "evolution" else Apoptosis(config)
        run.attach(NullRecorder())
        run.run()
    finally:
        torch.set_num_threads(before)


QUICK = {"evolution": {"generations": 2, "steps_per_candidate": 20},
         "apoptosis": {"steps": 200, "interval": 50}}


def _timed(fn, *args):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["evolution", "apoptosis"])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"cpu_count={os.cpu_count()} load average={os.getloadavg()[0]:.1f} (shared machine)")
    names = [args.only] if args.only else ["evolution", "apoptosis"]
    med = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            exp = experiment(name)
            config = exp.load_config(None, QUICK[name] if args.quick else {})
            wall = {"bare": [], "telemetry": [], "recorded": []}
            cpu = {k: [] for k in wall}
            rec_share, all_share = [], []
            for r in range(args.rounds):
                path = Path(tmp) / f"{name}-{r}.h5"
                sides = ["bare", "telemetry", "recorded"]
                # The order rotates each round: on a machine whose load drifts, a fixed order
                # would favour whichever side always runs last.
                for side in sides[r % 3:] + sides[:r % 3]:
                    if side == "bare":
                        res, t, c = _timed(exp.run, config, None)
                    elif side == "telemetry":
                        _, t, c = _timed(run_telemetry, name, config)
                    else:
                        m0 = time.thread_time()
                        with Meter() as meter:
                            _, t, c = _timed(exp.run, config, path)
                        main_cpu = time.thread_time() - m0
                    wall[side].append(t)
                    cpu[side].append(c)
                recording, telemetry = meter.seconds["recording"], meter.seconds["telemetry"]
                rec_share.append(recording / (main_cpu - recording))
                all_share.append((recording + telemetry) / (main_cpu - recording - telemetry))
                top = sorted(meter.by_method.items(), key=lambda kv: -kv[1])[:6]
                print(f"  {name} round {r + 1}: wall bare {wall['bare'][-1]:.1f} s, telemetry "
                      f"{wall['telemetry'][-1]:.1f} s, recorded {wall['recorded'][-1]:.1f} s; cpu "
                      f"{cpu['bare'][-1]:.1f} / {cpu['telemetry'][-1]:.1f} / {cpu['recorded'][-1]:.1f} s; "
                      f"recording vs telemetry: wall {wall['recorded'][-1] / wall['telemetry'][-1] - 1:+.1%}, "
                      f"cpu {cpu['recorded'][-1] / cpu['telemetry'][-1] - 1:+.1%}; in-run: recording "
                      f"{recording:.2f} s, telemetry {telemetry:.2f} s of {main_cpu:.1f} s main-thread cpu ("
                      + ", ".join(f"{k} {v:.2f} s" for k, v in top) + ")", flush=True)

            def paired(a: str, b: str, kind: dict) -> float:
                return med([y / x - 1 for x, y in zip(kind[a], kind[b], strict=True)])

            steps = res.steps
            size = path.stat().st_size / 1e6
            print(f"{name}: {steps} steps; steps/s (best round) bare {steps / min(wall['bare']):.1f}, "
                  f"telemetry {steps / min(wall['telemetry']):.1f}, recorded {steps / min(wall['recorded']):.1f}; "
                  f"bundle {size:.1f} MB\n"
                  f"  recording overhead (recorded vs telemetry), medians of {args.rounds} paired rounds: "
                  f"in-run {med(rec_share):+.1%} (max {max(rec_share):+.1%}), cpu {paired('telemetry', 'recorded', cpu):+.1%}, "
                  f"wall {paired('telemetry', 'recorded', wall):+.1%}\n"
                  f"  telemetry + recording (recorded vs bare): in-run {med(all_share):+.1%} "
                  f"(max {max(all_share):+.1%}), cpu {paired('bare', 'recorded', cpu):+.1%}, "
                  f"wall {paired('bare', 'recorded', wall):+.1%}", flush=True)


if __name__ == "__main__":
    main()
