"""`analyze` of several bundles and directories (`analyze_many`): in one process and on a real
local Dask cluster, the same artifacts as one by one, damaged bundles reported and skipped,
bad input; and a metrics-only analysis that never imports torch."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from epochscope.archives import open_bundle
from epochscope.collectors.analysis import AnalysisError, analyze
from epochscope.collectors.analysis.batch import analyze_many, find_bundles
from tests.generic_runs import metrics_only_run

EPOCHS = 1200


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Four metrics-only bundles (one that never generalises, seed 3), nested two deep."""
    root = tmp_path_factory.mktemp("sources")
    return [metrics_only_run(root / sub / f"run{i}.h5", seed=i, epochs=EPOCHS)
            for i, sub in enumerate(["a", "a", "b/deep", "b"])]


def _tree(sources, dest):
    """A copy of the sources under `dest`, plus a damaged bundle and a file that is no bundle."""
    shutil.copytree(sources[0].parent.parent, dest)
    data = sources[0].read_bytes()
    (dest / "a" / "truncated.h5").write_bytes(data[: len(data) // 2])
    (dest / "b" / "notes.h5").write_text("not a bundle")
    (dest / "b" / "notes.txt").write_text("ignored: not *.h5")
    return dest


def _artifacts(path):
    """Every artifact's stored content and the events, comparable across bundles."""
    out = {}
    with open_bundle(path) as b:
        for name in b.artifact_names:
            art = b.artifact(name)
            out[name] = {"version": art.version, "scalars": art.scalars,
                         "per_epoch": {n: [a.tolist() for a in art.per_epoch(n)] for n in art.names},
                         "summary": {n: art.summary(n).tolist() for n in art.summary_names}}
        out["events"] = [(e["epoch"], e["kind"], e["message"]) for e in b.events()]
    return out


@pytest.fixture(scope="module")
def one_by_one(sources, tmp_path_factory):
    """The artifacts of each source analysed on its own, by file name."""
    root = tmp_path_factory.mktemp("single")
    out = {}
    for src in sources:
        copy = root / src.name
        shutil.copy(src, copy)
        analyze(copy)
        out[src.name] = _artifacts(copy)
    return out


def test_directory_in_one_process_matches_one_by_one(sources, one_by_one, tmp_path):
    tree = _tree(sources, tmp_path / "runs")
    seen = []
    batch = analyze_many([tree], on_outcome=seen.append)
    names = sorted(o.bundle.name for o in batch.outcomes)
    assert names == sorted(["run0.h5", "run1.h5", "run2.h5", "run3.h5", "truncated.h5", "notes.h5"])
    assert len(seen) == 6 and batch.where == "in this process"
    failed = {o.bundle.name: o.error for o in batch.failed}
    assert set(failed) == {"truncated.h5", "notes.h5"}
    assert "truncated or corrupt" in failed["truncated.h5"] and "not an HDF5 file" in failed["notes.h5"]
    assert all("\n" not in o.line() for o in batch.outcomes)
    assert batch.summary().startswith("6 bundles in ") and batch.summary().endswith("4 analysed, 2 failed")
    for o in batch.outcomes:
        if o.ok:
            assert {"turn", "cusum", "phases"} <= set(o.result.computed)
            assert _artifacts(o.bundle) == one_by_one[o.bundle.name], o.bundle
    grokked = {o.bundle.name: o.result.turn["epoch"] for o in batch.outcomes if o.ok}
    assert grokked["run3.h5"] is None and all(grokked[f"run{i}.h5"] for i in (0, 1, 2))
    again = analyze_many([tree])  # everything stored: a second pass computes nothing
    assert all(not o.result.computed for o in again.outcomes if o.ok)


def test_on_a_real_local_dask_cluster(sources, one_by_one, tmp_path):
    from dask.distributed import LocalCluster

    tree = _tree(sources, tmp_path / "runs")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        batch = analyze_many([tree / "a", tree / "b"], scheduler=cluster.scheduler_address)
    assert batch.where.startswith("on Dask (tcp://127.0.0.1:")
    # outcomes in the order the bundles were found, named as the caller named them
    assert [o.bundle for o in batch.outcomes] == find_bundles([tree / "a", tree / "b"])
    assert {o.bundle.name for o in batch.failed} == {"truncated.h5", "notes.h5"}
    for o in batch.outcomes:
        if o.ok:
            assert o.result.threads == 0  # metrics only: no torch work on the worker
            assert _artifacts(o.bundle) == one_by_one[o.bundle.name]


def test_cli_directory_lines_summary_and_exit_code(cli, sources, tmp_path):
    tree = _tree(sources, tmp_path / "runs")
    proc = cli("analyze", tree, tmp_path / "missing.h5")
    assert proc.returncode == 1
    out, err = proc.stdout.strip().splitlines(), proc.stderr.strip().splitlines()
    assert len(out) == 5 and out[-1].endswith("4 analysed, 3 failed")  # 4 bundle lines + summary
    assert all("computed cusum, turn, phases" in line for line in out[:4])
    assert len(err) == 3 and all(line.startswith("epochscope: error: ") for line in err)
    assert any("missing.h5: failed: no such bundle" in line for line in err)
    assert "Traceback" not in proc.stderr
    ok = cli("analyze", "--quiet", tree / "a" / "run0.h5", tree / "b" / "run3.h5")
    assert ok.returncode == 0 and ok.stdout.strip().endswith("2 analysed, 0 failed")
    assert len(ok.stdout.strip().splitlines()) == 1  # --quiet: the summary only


def test_bad_input(cli, sources, tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    proc = cli("analyze", empty)
    assert proc.returncode == 1 and proc.stderr.strip() == f"epochscope: error: no *.h5 bundles under {empty}"
    with pytest.raises(AnalysisError, match="no \\*.h5 bundles"):
        analyze_many([empty])
    proc = cli("analyze", "--list", sources[0], sources[1])
    assert proc.returncode == 2 and "--list shows one bundle" in proc.stderr
    proc = cli("analyze", "-a", "nope", sources[0].parent)
    assert proc.returncode == 1 and "unknown analyzer(s) 'nope'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("analyze", "--workers", "0", sources[0].parent)
    assert proc.returncode == 2 and "--workers" in proc.stderr
    assert cli("analyze").returncode == 2  # no bundle at all: usage error


def test_same_bundle_twice_is_analysed_once(sources, tmp_path):
    copy = tmp_path / "x.h5"
    shutil.copy(sources[0], copy)
    batch = analyze_many([copy, tmp_path, tmp_path / "." / "x.h5"])
    assert len(batch.outcomes) == 1 and batch.outcomes[0].ok


def test_metrics_only_analysis_never_imports_torch(sources, tmp_path):
    copy = tmp_path / "x.h5"
    shutil.copy(sources[1], copy)
    code = ("import sys\nfrom epochscope.collectors.analysis.batch import analyze_many\n"
            f"b = analyze_many([{str(copy)!r}])\nassert not b.failed, b.outcomes[0].error\n"
            "print(sorted(m for m in ('torch', 'plotly', 'dask', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    with open_bundle(copy) as b:
        assert np.isfinite(b.artifact("turn").scalars["confidence"])


def test_turn_and_phases_locate_the_turn_once(sources, tmp_path, monkeypatch):
    from epochscope.collectors.analysis import turn

    calls = []
    real = turn._locate
    monkeypatch.setattr(turn, "_locate", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(turn, "_LOCATED", type(turn._LOCATED)())
    copy = tmp_path / "x.h5"
    shutil.copy(sources[0], copy)
    result = analyze(copy)
    assert {"turn", "phases"} <= set(result.computed) and len(calls) == 1
    with open_bundle(copy) as b:
        assert b.artifact("phases").scalars["turn_epoch"] == b.artifact("turn").scalars["epoch"]
