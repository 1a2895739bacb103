"""Analysis throughput: the pipeline vs a naive per-analyzer implementation, and artifact sizes.

    python benchmarks/bench_analysis.py                  # 100 checkpoints, pipeline vs naive
    python benchmarks/bench_analysis.py --size 250       # bundle size with 250 checkpoints analysed
    python benchmarks/bench_analysis.py --checkpoints 20 --no-naive   # quick look
    python benchmarks/bench_analysis.py --trained runs/nanda.h5      # real (trained) checkpoints

`--trained BUNDLE` times the analysis of a real training run instead (a copy of it): the
analyzers that existed before the per-input / neuron-atlas round, then all of them with two
probes, back to back in the same process (twice, alternating), per checkpoint and per
analyzer; it also measures the bytes the new artifacts add and the neuron atlas's
reconstruction error against the full maps.

The run is nanda2023-sized (p=113, d_model=128, 4 heads, d_mlp=512, AdamW state in every
checkpoint, 25,000 epochs of per-epoch metrics). Its weights are a random AdamW walk from a
random init (the analyzers' cost does not depend on whether the model has grokked).

Naive = what each analyzer would do on its own: for every analyzer and every checkpoint,
`load_model` (read the whole checkpoint, rebuild, strict load), rerun the forward pass over
the p x p probe for activation analyzers, compute that analyzer alone (nothing shared, no
batching across checkpoints); the trajectory reloads every checkpoint too; the metric analyzers
see the same stored trajectory as in the pipeline. It writes nothing, while the pipeline's time
includes writing its segments and consolidating the bundle, so the ratio is conservative.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from epochscope.archives import open_bundle
from epochscope.collectors.analysis import ANALYZERS, analyze
from epochscope.collectors.analysis.base import EpochData, MetricsView
from epochscope.collectors.analysis.memory import reuse_freed_memory
from epochscope.collectors.analysis.pipeline import run_info
from epochscope.collectors.analysis.probe import make_probe, reference_info, run_probe
from epochscope.collectors.analysis.trajectory import RowStore
from epochscope.collectors.checkpoints import load_model
from epochscope.collectors.model import ModelConfig, Transformer
from epochscope.collectors.recorder import Recorder

NANDA = {"p": 113, "d_model": 128, "n_heads": 4, "d_mlp": 512}
EPOCHS = 25_000


def build_bundle(path: Path, n_checkpoints: int, *, seed: int = 0) -> Path:
    """A nanda2023-sized bundle: random-walk weights, AdamW state, 25k epochs of metrics."""
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(**NANDA), generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    ckpt_epochs = set(np.linspace(0, EPOCHS, n_checkpoints).round().astype(int).tolist())
    rng = np.random.default_rng(seed)
    e = np.arange(1, EPOCHS + 1)
    turn, width = 9000, 600
    s = 1 / (1 + np.exp(-(e - turn - 3 * width) / width))
    test_loss = 10 ** (
        np.log10(8) * (1 - s) + np.log10(1e-6) * s + 0.03 * rng.standard_normal(EPOCHS)
    )
    train_loss = 10 ** (
        np.log10(4.7) - 6 * np.clip(e / 1500, 0, 1) + 0.03 * rng.standard_normal(EPOCHS)
    )
    config = {
        "name": f"bench-nanda-{n_checkpoints}",
        **NANDA,
        "epochs": EPOCHS,
        "train_frac": 0.3,
        "data_seed": 598,
    }
    with Recorder(path, config=config, overwrite=True) as rec:
        perm = rng.permutation(NANDA["p"] ** 2)
        n_train = int(0.3 * len(perm))
        rec.split(len(perm), {"train": perm[:n_train], "test": perm[n_train:]},
                  {"dataset": "modular_addition", "p": NANDA["p"]})
        rec.checkpoint(0, model, opt)
        for i in range(EPOCHS):
            epoch = i + 1
            rec.log(
                epoch,
                train_loss=train_loss[i],
                test_loss=test_loss[i],
                train_acc=min(1.0, epoch / 1500),
                test_acc=0.01 + 0.99 * s[i],
                grad_norm=1.0 + 0.1 * rng.standard_normal(),
                lr=1e-3,
                weight_norm=50.0 - epoch / 1000,
                param_velocity=0.01 * (1 + s[i]),
                examples_per_sec=4e5 * (1 + 0.02 * rng.standard_normal()),
            )
            if epoch in ckpt_epochs:
                for prm in model.parameters():  # one AdamW step on a random gradient
                    prm.grad = torch.randn_like(prm) * 0.1
                opt.step()
                rec.checkpoint(epoch, model, opt)
    return path


def naive(path: Path) -> dict[str, float]:
    """Every analyzer on its own: reload each checkpoint (and rerun the probe) per analyzer.

    `path` is the bundle the pipeline analysed: its checkpoints are the same, and its stored
    trajectory lets the turn detector cross-check with velocity and curvature as it does in the
    pipeline (per-checkpoint analyzers never read stored artifacts). It runs with the same
    allocator setting as the pipeline (`reuse_freed_memory`).
    """
    times: dict[str, float] = {}
    t_all = time.perf_counter()
    with open_bundle(path) as b, reuse_freed_memory():
        info = run_info(b)
        epochs = info.checkpoint_epochs
        probe = make_probe(int(info.p), b.split)
        t = time.perf_counter()
        model = load_model(b, epochs[-1])
        ref_weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        ref = reference_info(
            EpochData(
                epochs[-1], ref_weights, model=model, cache=run_probe(model, probe), probe=probe
            )
        )
        times["reference"] = time.perf_counter() - t
        for name, cls in ANALYZERS.items():
            t = time.perf_counter()
            a = cls()
            if cls.consumes in ("weights", "activations"):
                a.prepare(info, None, lambda: ref)
                for epoch in epochs:
                    model = load_model(b, epoch)
                    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
                    d = EpochData(epoch, weights)
                    if cls.consumes == "activations":
                        d.model, d.cache, d.probe = model, run_probe(model, probe), probe
                    a.compute([d])
            elif cls.consumes == "trajectory":
                layout = list(info.shapes.items())
                rows = RowStore(sum(int(np.prod(s)) for _, s in layout), len(epochs))
                for epoch in epochs:
                    sd = load_model(b, epoch).state_dict()
                    rows.add(epoch, np.concatenate([sd[n].numpy().ravel() for n, _ in layout]))
                a.compute_run(*rows.matrix(), layout, rows.approximate)
            else:
                view = MetricsView(b.metrics(), {n: b.artifact(n) for n in b.artifact_names})
                a.compute_metrics(view)
            times[name] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t_all
    return times


def storage(path: Path) -> dict[str, int]:
    """Bytes stored under each top-level group (checkpoints, artifacts, metrics, ...)."""
    sizes: dict[str, int] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                top = name.split("/", 1)[0]
                sizes[top] = sizes.get(top, 0) + obj.id.get_storage_size()
                if top == "artifacts":
                    art = "artifacts/" + name.split("/")[1]
                    sizes[art] = sizes.get(art, 0) + obj.id.get_storage_size()

        f.visititems(visit)
    return sizes


def _mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", type=int, default=100)
    ap.add_argument(
        "--size",
        type=int,
        default=0,
        help="also build and analyse a bundle with this many checkpoints and report its size",
    )
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "epochscope-bench"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads of the pipeline (default 2; with prefetch each of its two stages "
        "gets half)",
    )
    ap.add_argument(
        "--naive-threads",
        type=int,
        default=None,
        help="torch threads of the naive run (default: as many as the pipeline used, which "
        "`analyze` chooses from the load)",
    )
    ap.add_argument("--prefetch", action="store_true",
                    help="read + forward the next checkpoint in a background thread")
    ap.add_argument("--trained", type=Path, help="time a real run's checkpoints (see above)")
    ap.add_argument("--rounds", type=int, default=2, help="with --trained: alternating rounds")
    ap.add_argument("--last", type=int, help="with --trained: only its last N checkpoints")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.trained:
        trained(args.trained, args.workdir, args.rounds, args.last)
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"pipeline: torch threads {args.threads}, prefetch {args.prefetch}; naive: torch "
        f"threads {args.naive_threads or 'as the pipeline'}; {os.cpu_count()} cpus, load average {load:.1f}"
    )

    src = args.workdir / f"nanda-{args.checkpoints}.h5"
    if not src.exists():
        t = time.perf_counter()
        build_bundle(src, args.checkpoints)
        print(f"built {src} in {time.perf_counter() - t:.1f}s")
    work = args.workdir / f"nanda-{args.checkpoints}-analysed.h5"
    shutil.copy(src, work)

    t_cpu, t = time.process_time(), time.perf_counter()
    result = analyze(work, prefetch=args.prefetch)
    wall, cpu = time.perf_counter() - t, time.process_time() - t_cpu
    stages = result.timings
    io = stages.get("write", 0.0) + stages.get("consolidate", 0.0)
    print(
        f"\npipeline: {len(run_checkpoints(work))} checkpoints, all {len(ANALYZERS)} analyzers: "
        f"{wall:.1f}s wall ({cpu:.1f}s CPU), of which {io:.1f}s writing + consolidating"
    )
    print(f"  {result.checkpoints_read} checkpoint reads, {result.forward_passes} forward passes")
    for key, value in sorted(stages.items(), key=lambda kv: -kv[1]):
        if key != "total":
            print(f"  {key:18s} {value:7.2f}s")
    if result.turn is not None:
        print(f"  turn: {result.turn.get('epoch')} ({result.turn.get('reason') or 'found'})")

    if not args.no_naive:
        torch.set_num_threads(args.naive_threads or result.threads)
        t_cpu = time.process_time()
        times = naive(work)
        ncpu = time.process_time() - t_cpu
        print(
            f"\nnaive (reload + forward per analyzer, no writes): {times['total']:.1f}s wall ({ncpu:.1f}s CPU)"
        )
        for key, value in sorted(times.items(), key=lambda kv: -kv[1]):
            if key != "total":
                print(f"  {key:18s} {value:7.2f}s")
        print(
            f"\nspeed-up: {times['total'] / wall:.1f}x wall, {ncpu / cpu:.1f}x CPU "
            f"(compute only: {times['total'] / max(wall - io, 1e-9):.1f}x)"
        )

    for n in [args.size] if args.size else []:
        big = args.workdir / f"nanda-{n}.h5"
        if not big.exists():
            t = time.perf_counter()
            build_bundle(big, n)
            print(f"\nbuilt {big} in {time.perf_counter() - t:.1f}s")
        sized = args.workdir / f"nanda-{n}-analysed.h5"
        shutil.copy(big, sized)
        before = sized.stat().st_size
        t = time.perf_counter()
        analyze(sized, prefetch=args.prefetch)
        print(
            f"\nsize with {n} checkpoints analysed ({time.perf_counter() - t:.1f}s): file "
            f"{_mb(before)} before, {_mb(sized.stat().st_size)} after"
        )
        sizes = storage(sized)
        ck, art = sizes.get("checkpoints", 0), sizes.get("artifacts", 0)
        print(
            f"  checkpoints {_mb(ck)}   artifacts {_mb(art)} ({100 * art / max(ck, 1):.1f}% of the checkpoints)"
        )
        for key in sorted(
            (k for k in sizes if k.startswith("artifacts/")), key=lambda k: -sizes[k]
        ):
            print(f"    {key[10:]:18s} {_mb(sizes[key])}")
    return 0


NEW = ("neuron_atlas", "inputs", "neuron_dynamics", "input_graduation")
PROBES = ["wrong:32", "test:32"]


def trained(src: Path, workdir: Path, rounds: int = 2, limit: int | None = None) -> None:
    """Existing analyzers vs all of them (with PROBES) on the real checkpoints of `src`."""
    existing = [n for n in ANALYZERS if n not in NEW]
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    with open_bundle(src) as b:
        n_ck = len(b.checkpoint_epochs)
        epochs = b.checkpoint_epochs[-limit:] if limit else None
    n_ck = len(epochs) if epochs else n_ck
    print(f"trained bundle {src}: {n_ck} checkpoints analysed")
    walk = workdir / f"nanda-{n_ck}.h5"
    if not walk.exists():
        build_bundle(walk, n_ck)
    # "before": the existing analyzers with torch's threads forced (what analyze did before it
    # chose its threads from the load, `auto_threads`); the others choose automatically
    runs: dict[str, list[float]] = {"random-walk": [], "before": [], "existing": [], "all": []}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    last: dict[str, Any] = {}
    for r in range(rounds):
        for label in runs:
            work = workdir / f"trained-{label}.h5"
            _copy_bundle(walk if label == "random-walk" else src, work)
            if label != "random-walk":
                _ensure_split(work)  # and consolidated, as a finished run's bundle is
            t, t_cpu = time.perf_counter(), time.process_time()
            res = analyze(work, analyzers=None if label == "all" else existing,
                          probes=PROBES if label == "all" else None,
                          epochs=None if label == "random-walk" else epochs,
                          threads=torch.get_num_threads() if label == "before" else None)
            wall, cpu = time.perf_counter() - t, time.process_time() - t_cpu
            runs[label].append(wall)
            cpus[label].append(cpu)
            last[label] = (res, work)
            print(f"  round {r + 1} {label:11s}: {wall:6.1f}s = {1000 * wall / n_ck:6.0f} ms per "
                  f"checkpoint ({1000 * cpu / n_ck:6.0f} ms CPU), {res.threads} threads (load "
                  f"{os.getloadavg()[0]:.1f})")
    for label in runs:
        res, _ = last[label]
        print(f"\n{label}, last round, seconds per stage:")
        for key, value in sorted(res.timings.items(), key=lambda kv: -kv[1]):
            if key != "total":
                print(f"  {key:28s} {value:7.2f}s  {1000 * value / n_ck:6.1f} ms/ckpt")
    w, e, a = min(runs["random-walk"]), min(runs["existing"]), min(runs["all"])
    bf = min(runs["before"])
    print(f"\nper checkpoint (best of {rounds}): random-walk weights, existing analyzers "
          f"{1000 * w / n_ck:.0f} ms; trained, existing analyzers with torch's threads forced "
          f"(before) {1000 * bf / n_ck:.0f} ms, chosen from the load (after) "
          f"{1000 * e / n_ck:.0f} ms ({bf / e:.1f}x); "
          f"trained, all analyzers + {len(PROBES)} probes {1000 * a / n_ck:.0f} ms: the new "
          f"analyses add {100 * (a - e) / e:.0f}%")
    ce, ca = min(cpus["existing"]), min(cpus["all"])
    print(f"CPU per checkpoint (best of {rounds}): existing {1000 * ce / n_ck:.0f} ms, all "
          f"{1000 * ca / n_ck:.0f} ms: +{100 * (ca - ce) / ce:.0f}%")
    res, work = last["all"]
    new_stage = sum(v for k, v in res.timings.items() if k in NEW or k.startswith("probe_"))
    rest = res.timings["total"] - new_stage
    print(f"same run ('all', last round; the new analyzers interleave with the old ones per "
          f"checkpoint): new analyzers {1000 * new_stage / n_ck:.1f} ms per checkpoint, "
          f"everything else {1000 * rest / n_ck:.1f} ms: +{100 * new_stage / rest:.0f}%")
    sizes = storage(work)
    added = {k[10:]: v for k, v in sizes.items()
             if k.startswith("artifacts/") and (k[10:] in NEW or k[10:].startswith("probe_"))}
    print("bytes the new artifacts add (bundle), and per checkpoint:")
    for k, v in sorted(added.items(), key=lambda kv: -kv[1]):
        print(f"  {k:22s} {_mb(v)}  {v / n_ck / 1e3:7.1f} kB/ckpt  -> 250 ckpts {_mb(250 * v / n_ck)}")
    report_estimate(work, n_ck)
    atlas_error(work)


def report_estimate(path: Path, n_ck: int) -> None:
    """Bytes a report would embed for the new artifacts with compact encodings (raw, gzip -9,
    base64 of the gzip), per checkpoint and extrapolated to 100 and 250 checkpoints."""
    import base64
    import gzip

    with open_bundle(path) as b:
        atlas = b.artifact("neuron_atlas")
        inputs = b.artifact("inputs")
        dyn = b.artifact("neuron_dynamics")
        grad = b.artifact("input_graduation")
        probes = [b.artifact(n) for n in b.artifact_names if n.startswith("probe_")]
        margin = inputs.per_epoch("margin")[1].astype(np.float32)
        coef = atlas.per_epoch("coef")[1].astype(np.float32)  # [n, M, J, 8]
        scale = np.abs(coef).max(axis=(2, 3), keepdims=True) / 127
        q = np.round(coef / np.where(scale > 0, scale, 1)).astype(np.int8)
        # extra error of int8 coefficients, as a share of each map's variance (p^2 var =
        # (1 - residual) ... only the reconstructed part: sum of squared amplitude errors x p^2/2)
        err = ((q * scale - coef) ** 2).sum(axis=(2, 3))
        kept = (coef ** 2).sum(axis=(2, 3))
        resid = atlas.per_epoch("residual")[1].astype(np.float64)
        extra = np.where(kept > 0, err / np.maximum(kept, 1e-30) * (1 - resid), 0.0)
        loss = inputs.per_epoch("loss")[1].astype(np.float64)
        parts = {
            "atlas (mean, freqs, coef, residual as stored)": [
                atlas.per_epoch(k)[1] for k in ("mean", "freqs", "coef", "residual")],
            "atlas, int8 coefficients + f16 scale per neuron": [
                atlas.per_epoch("mean")[1], atlas.per_epoch("freqs")[1], q,
                scale.astype(np.float16), atlas.per_epoch("residual")[1]],
            "inputs correct (bit-packed)": [np.packbits(inputs.per_epoch("correct")[1], axis=1)],
            "inputs margin (int8, 0.25 logit steps)": [
                np.clip(np.round(margin * 4), -127, 127).astype(np.int8)],
            "inputs loss (uint8, log10 from 1e-8 to 1e2)": [
                np.clip(np.round((np.log10(np.maximum(loss, 1e-8)) + 8) * 25.5), 0, 255)
                .astype(np.uint8)],
            "neuron_dynamics committed_freq (uint8)": [
                dyn.per_epoch("committed_freq")[1].astype(np.uint8)],
            "input_graduation (map i32, shares f32)": [
                grad.summary("graduation_epoch").astype(np.int32),
                grad.per_epoch("graduated_share")[1]],
            f"{len(probes)} probes (all per-epoch arrays)": [
                p.per_epoch(n)[1] for p in probes for n in p.names],
        }
    print(f"\nreport estimate for the new artifacts ({n_ck} checkpoints measured; base64 of gzip):")
    total = {"raw": 0.0, "b64": 0.0}
    for name, arrays in parts.items():
        raw = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
        b64 = len(base64.b64encode(gzip.compress(raw, 9)))
        if not name.startswith("atlas, int8"):
            total["raw"] += len(raw)
            total["b64"] += b64
        print(f"  {name:48s} raw {len(raw) / n_ck / 1e3:7.1f} kB/ckpt, embedded {b64 / n_ck / 1e3:7.1f} "
              f"kB/ckpt -> 100 ckpts {b64 / n_ck * 100 / 1e6:5.2f} MB, 250 {b64 / n_ck * 250 / 1e6:5.2f} MB")
    print(f"  (int8 atlas coefficients add at most {extra.max():.1e} of a map's variance to the "
          f"error, median {np.median(extra):.1e}; the total counts the f16 atlas)")
    print(f"  {'total':48s} raw {total['raw'] / n_ck / 1e3:7.1f} kB/ckpt, embedded "
          f"{total['b64'] / n_ck / 1e3:7.1f} kB/ckpt -> 100 ckpts {total['b64'] / n_ck * 100 / 1e6:5.2f} "
          f"MB, 250 {total['b64'] / n_ck * 250 / 1e6:5.2f} MB")


def atlas_error(path: Path, n_epochs: int = 4) -> None:
    """Reconstruct every neuron from `neuron_atlas` at a few checkpoints; compare with the full
    maps from a fresh forward pass (relative squared error of the centred map)."""
    from epochscope.collectors.analysis.atlas import atlas_maps

    with open_bundle(path) as b:
        art = b.artifact("neuron_atlas")
        info = run_info(b)
        p = int(info.p)
        probe = make_probe(p, b.split)
        eps = art.epochs
        pick = sorted({int(eps[i]) for i in np.linspace(0, len(eps) - 1, n_epochs).round().astype(int)})
        print(f"\nneuron atlas reconstruction error (all {info.shapes['W_in'][1]} neurons; relative "
              "squared error of the centred map; stored residual vs measured):")
        for epoch in pick:
            model = load_model(b, epoch)
            cache = run_probe(model, probe)
            maps = cache["mlp_post"].detach().float().numpy().reshape(p, p, -1).transpose(2, 0, 1)
            rec = atlas_maps(art.at("mean", epoch).astype(np.float64), art.at("freqs", epoch),
                             art.at("coef", epoch), p)
            centred = maps - maps.mean(axis=(1, 2), keepdims=True)
            var = (centred ** 2).sum(axis=(1, 2))
            ok = var > 1e-12
            err = ((maps - rec) ** 2).sum(axis=(1, 2))[ok] / var[ok]
            stored = art.at("residual", epoch).astype(np.float64)[ok]
            print(f"  epoch {epoch:6d}: measured median {np.median(err):.4f} mean {err.mean():.4f} "
                  f"p90 {np.quantile(err, 0.9):.4f}; stored residual mean {stored.mean():.4f}; "
                  f"max |measured - stored| {np.abs(err - stored).max():.4f}")


def _ensure_split(path: Path) -> None:
    """A run collected before the split was stored: record it (the trainer's, from the stored
    config) in the benchmark's copy, as `collect` now does."""
    from epochscope.archives import BundleWriter, Segment, consolidate
    from epochscope.collectors.config import TrainConfig
    from epochscope.collectors.train import split_indices

    with open_bundle(path) as b:
        if b.split is not None:
            if b.segments:
                consolidate(path)
            return
        cfg = TrainConfig.from_dict(b.config)
    tr, te = split_indices(cfg)
    with BundleWriter(path, create=False) as w:
        w.write(Segment(split={"n": cfg.p ** 2, "subsets": {"train": tr.numpy(), "test": te.numpy()},
                               "meta": {"dataset": "modular_addition", "p": cfg.p}}))
        w.consolidate()


def _copy_bundle(src: Path, dst: Path) -> None:
    """Copy a bundle (main file and journal, if any) to `dst`, replacing what was there."""
    for old in (dst, dst.with_name(dst.name + ".journal")):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    if src.exists():
        shutil.copy(src, dst)
    journal = src.with_name(src.name + ".journal")
    if journal.is_dir():
        shutil.copytree(journal, dst.with_name(dst.name + ".journal"))


def run_checkpoints(path: Path) -> list[int]:
    with open_bundle(path) as b:
        return b.checkpoint_epochs


if __name__ == "__main__":
    sys.exit(main())
