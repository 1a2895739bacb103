"""Validate the turn, the loss spikes and the run health on runs trained HERE, fresh.

    python benchmarks/validate_turn.py --dir runs/validate --set all --jobs 3
    python benchmarks/validate_turn.py RUN.h5 [RUN.h5 ...]          # check existing bundles

With `--set`, the runs of that set are trained first (each with `epochscope collect` in its own
process under `nice`, `--jobs` at a time; a complete bundle of the same config is kept), then
every bundle is analysed (only what it lacks) and checked:

- a run whose test accuracy reaches 95% must have a turn, after train accuracy reaches 99%
  (when memorisation comes first) and before test accuracy first reaches 95%;
- a run whose test accuracy never reaches 95% must have "no turn" with a reason;
- the `loss_only` set re-ingests the train/test loss of the demo runs from CSV (no accuracy,
  no checkpoints) and checks that the loss alone still gives a turn before the 95% mark of
  the original run.

Sets: `design` (the runs the rule was designed on), `validation` (4 primes x 3 seeds never
looked at while designing, a cosine learning-rate schedule, a weight decay too small to grok),
`nanda` (the nanda2023 preset, 25,000 epochs, 2 seeds: hours on a shared CPU), `all` (design
+ validation). Prints one row per run (and `--markdown` for docs/analysis.md); exits 1 when a
run fails a check.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from epochscope.archives import open_bundle
from epochscope.collectors.analysis import analyze
from epochscope.errors import EpochscopeError


@dataclass
class Spec:
    """One run to train: preset, overrides, and the file name it goes to."""

    name: str
    preset: str
    overrides: dict[str, object] = field(default_factory=dict)
    expect_grok: bool | None = None  # None: decided by the run's own test accuracy

    def args(self) -> list[str]:
        return [f"{k}={v}" for k, v in {"name": self.name, **self.overrides}.items()]


def _demo(p: int, seed: int, **kw: object) -> Spec:
    tag = "".join(f"-{k}{v}" for k, v in kw.items())
    return Spec(f"demo-p{p}-s{seed}{tag}", "demo", {"p": p, "data_seed": seed, "model_seed": seed, **kw})


SETS: dict[str, list[Spec]] = {
    # the rule was designed on these three (the runs of the issue report)
    "design": [_demo(59, 0), _demo(61, 0), _demo(59, 1)],
    # never looked at while designing: 4 other primes x 3 other seeds, a cosine schedule, and a
    # weight decay small enough that the run does not grok within the demo's 3000 epochs
    "validation": [_demo(p, s) for p in (53, 67, 71, 73) for s in (2, 3, 4)]
    + [_demo(59, 5, lr_schedule="cosine"), Spec("demo-p59-s0-wd0.001", "demo",
                                                 {"p": 59, "weight_decay": 0.001}, expect_grok=False)],
    "nanda": [Spec("nanda2023-s999", "nanda2023", {"data_seed": 598, "model_seed": 999}),
              Spec("nanda2023-s1", "nanda2023", {"data_seed": 1, "model_seed": 1})],
}
SETS["all"] = SETS["design"] + SETS["validation"]


def _complete(path: Path, spec: Spec) -> bool:
    try:
        with open_bundle(path) as b:
            cfg = b.config
            return b.status == "complete" and all(cfg.get(k) == v for k, v in spec.overrides.items())
    except EpochscopeError:
        return False


def train(spec: Spec, directory: Path) -> tuple[Path, float | None]:
    """Train `spec` into directory/NAME.h5 unless a complete bundle of it is there; (path, seconds)."""
    path = directory / f"{spec.name}.h5"
    if path.exists() and _complete(path, spec):
        return path, None
    t = time.perf_counter()
    cmd = ["nice", "-n", "10", sys.executable, "-m", "epochscope", "collect", "--quiet",
           "--preset", spec.preset, *spec.args(), "-o", str(path), "--overwrite"]
    subprocess.run(cmd, check=True)
    return path, time.perf_counter() - t


def ingest_loss_only(source: Path, directory: Path) -> Path:
    """The train/test loss of `source` as a CSV, ingested into a bundle without accuracy."""
    with open_bundle(source) as b:
        (e, tr), (_, te) = b.series("train_loss"), b.series("test_loss")
    csv_path = directory / f"{source.stem}-loss-only.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "train_loss", "test_loss"])
        w.writerows(zip(e.tolist(), tr.tolist(), te.tolist(), strict=True))
    out = directory / f"{source.stem}-loss-only.h5"
    subprocess.run([sys.executable, "-m", "epochscope", "ingest", str(csv_path), "-o", str(out),
                    "--overwrite"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


def _first(series: tuple[np.ndarray, np.ndarray] | None, level: float) -> int | None:
    if series is None:
        return None
    hit = np.nonzero(series[1] >= level)[0]
    return int(series[0][hit[0]]) if hit.size else None


METRIC_ANALYZERS = ["cusum", "turn", "phases"]


def row(path: Path, reference: Path | None = None, seconds: float | None = None,
        full: bool = False) -> dict:  # fmt: skip
    """Analyse `path` and check its turn; `reference`: the run whose accuracy marks apply.
    `full`: every analyzer (the turn's trajectory cross-checks), else the metric ones only."""
    analyze(path, analyzers=None if full else METRIC_ANALYZERS)
    with open_bundle(path) as b:
        turn = b.artifact("turn").scalars
        alarms = b.artifact("cusum").scalars.get("n_alarms")
        cfg = b.config
        spikes = [e for e in b.events("loss_spike")
                  if e.get("payload", {}).get("analyzer_version") == b.artifact("turn").version]  # fmt: skip
    src = reference or path
    with open_bundle(src) as r:
        acc = {n: r.series(n) if n in r.series_names else None for n in ("train_acc", "test_acc")}
    t99, t95 = _first(acc["train_acc"], 0.99), _first(acc["test_acc"], 0.95)
    epoch = turn.get("epoch")
    if t95 is None:
        ok = epoch is None and bool(turn.get("reason"))
    else:
        ok = epoch is not None and epoch <= t95 and (t99 is None or t99 > t95 or epoch >= t99)
    return {
        "run": path.stem, "preset": cfg.get("name", "?") if reference is None else "ingest (loss only)",
        "p": cfg.get("p", "-"),
        "seeds": f"{cfg.get('data_seed')}/{cfg.get('model_seed')}" if "data_seed" in cfg else "-",
        "train99": t99, "turn": epoch, "test95": t95,
        "spikes": len([s for s in spikes if s.get("payload", {}).get("series") in ("test_loss", "val_loss")]),
        "train_spikes": len([s for s in spikes if s.get("payload", {}).get("series") == "train_loss"]),
        "alarms": alarms, "health": turn.get("health"), "health_reason": turn.get("health_reason"),
        "reason": turn.get("reason"), "ok": ok,
        "seconds": seconds,
    }


def _fmt(v: object) -> str:
    return "-" if v is None else str(v)


def print_rows(rows: list[dict], markdown: bool) -> None:
    if markdown:
        print("| run | preset | p | data/model seed | train acc >= 99% | turn | test acc >= 95% | spikes test/train "
              "| CUSUM alarms | health | train s | ok |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            turn = _fmt(r["turn"]) if r["turn"] is not None else f"no turn ({r['reason']})"
            secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"
            print(f"| {r['run']} | {r['preset']} | {r['p']} | {r['seeds']} | {_fmt(r['train99'])} | {turn} | "
                  f"{_fmt(r['test95'])} | {r['spikes']}/{r['train_spikes']} | {_fmt(r['alarms'])} | {r['health']} | "
                  f"{secs} | {'yes' if r['ok'] else 'NO'} |")
        return
    print(f"{'run':30s} {'p':>4s} {'seeds':>7s} {'tr>=99%':>8s} {'turn':>7s} {'te>=95%':>8s} "
          f"{'spikes':>7s} {'alarms':>6s} {'health':14s} {'train s':>8s} ok")
    for r in rows:
        secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"
        print(f"{r['run'][:30]:30s} {r['p']!s:>4s} {r['seeds']:>7s} {_fmt(r['train99']):>8s} "
              f"{_fmt(r['turn']):>7s} {_fmt(r['test95']):>8s} {r['spikes']:>3d}/{r['train_spikes']:<3d} "
              f"{_fmt(r['alarms']):>6s} {_fmt(r['health']):14s} "
              f"{secs:>8s} {'yes' if r['ok'] else 'NO'}" + (f"  ({r['reason']})" if r["reason"] else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*", type=Path, help="existing bundles to check")
    ap.add_argument("--set", choices=sorted(SETS) + ["loss_only"], action="append", default=[],
                    help="train (if missing) and check this set of runs; repeatable")
    ap.add_argument("--dir", type=Path, default=Path("runs/validate"), help="where the runs go")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at a time")
    ap.add_argument("--train-only", action="store_true", help="train, do not analyse or check")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--full", action="store_true", help="run every analyzer, not only the metric ones")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    trained: list[tuple[Path, float | None]] = []
    specs = [s for name in args.set if name != "loss_only" for s in SETS[name]]
    if specs:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            trained = list(pool.map(lambda s: train(s, args.dir), specs))
    if args.train_only:
        return 0
    rows = [row(p, seconds=s, full=args.full) for p, s in trained] + [row(p, full=args.full) for p in args.bundles]
    if "loss_only" in args.set:
        for source in sorted(args.dir.glob("demo-*.h5")):
            if source.stem.endswith("-loss-only"):
                continue
            rows.append(row(ingest_loss_only(source, args.dir), reference=source))
    for r in rows:
        if not r["ok"] or r["health"] != "healthy":
            print(f"{r['run']}: {r['health']}: {r['health_reason']}", file=sys.stderr)
    print_rows(rows, args.markdown)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
