"""Cost of `epochscope collect --experiment morphogenesis` and of its counterfactuals.

Per round, in alternation (the machine is shared; compare within a round):

1. the default config as the CLI runs it (a fresh process: imports, data, both models,
   counterfactuals, dense traces, the bundle written and consolidated): wall and CPU time;
2. the same config in-process, with its own timers: training seconds (forward/backward of the
   grown model and the host-only baseline), counterfactual seconds and evaluations;
3. the *lean* variant in-process: counterfactuals only where a gate needs one
   (`cf_every` beyond the run) and dense traces in `standard` mode: the baseline the
   telemetry's cost is measured against.

    python benchmarks/bench_morphogenesis.py [--rounds 2] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from epochscope.collectors.experiments import morphogenesis as mg


def cli_run(out: Path, overrides: list[str]) -> tuple[float, float, str]:
    exe = Path(sys.executable).with_name("epochscope")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), "collect", "--experiment", "morphogenesis", "-o", str(out),
                           "--overwrite", "--quiet", *overrides], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for r in range(args.rounds):
            wall, cpu, line = cli_run(tmp / "cli.h5", args.overrides)
            cfg = mg.config_from(args.overrides)
            t0 = time.perf_counter()
            full = mg.run(cfg, tmp / "full.h5", overwrite=True, progress=False)
            full_wall = time.perf_counter() - t0
            lean_cfg = mg.config_from([*args.overrides, f"cf_every={cfg.epochs + 1}", "dense_mode=standard"])
            t0 = time.perf_counter()
            lean = mg.run(lean_cfg, tmp / "lean.h5", overwrite=True, progress=False)
            lean_wall = time.perf_counter() - t0
            size = (tmp / "full.h5").stat().st_size
            rows.append({"cli_wall": wall, "cli_cpu": cpu, "full_wall": full_wall, "lean_wall": lean_wall,
                         "cf_s": full.counterfactual_seconds, "cf_evals": full.counterfactual_evaluations,
                         "cf_matrices": full.matrices, "lean_cf_s": lean.counterfactual_seconds,
                         "lean_cf_evals": lean.counterfactual_evaluations, "size": size})
            f = full.final
            print(f"round {r + 1}: CLI {wall:.1f} s wall, {cpu:.1f} s CPU | in-process {full_wall:.1f} s "
                  f"(lean {lean_wall:.1f} s, ratio {full_wall / lean_wall:.2f}) | counterfactuals "
                  f"{full.matrices} matrices, {full.counterfactual_evaluations} evaluations, "
                  f"{full.counterfactual_seconds:.2f} s = {1000 * full.counterfactual_seconds / full.counterfactual_evaluations:.1f} ms/eval, "
                  f"{100 * full.counterfactual_seconds / full_wall:.1f}% of the run | bundle {size / 1e6:.2f} MB")
            print(f"  accuracy delta {100 * f['accuracy_delta']:+.2f} points (val), "
                  f"{100 * f['test_accuracy_delta']:+.2f} (test); param ratio {f['param_ratio']:.3f}x; "
                  f"efficiency {f['efficiency_ratio']:.3f}x; {line}")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"median of {len(rows)}: CLI {med['cli_wall']:.1f} s wall ({med['cli_cpu']:.1f} s CPU), "
          f"counterfactuals {med['cf_s']:.2f} s for {med['cf_evals']:.0f} evaluations "
          f"({100 * med['cf_s'] / med['full_wall']:.1f}% of the in-process run), full/lean telemetry "
          f"wall ratio {statistics.median(r['full_wall'] / r['lean_wall'] for r in rows):.2f}")


if __name__ == "__main__":
    main()
