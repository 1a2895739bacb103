"""MLflow and W&B ingest with the real packages: runs logged here, read back through the
readers' own clients (mlflow's tracking client, wandb-core's log reader), and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from epochscope.archives import open_bundle, verify_bundle
from epochscope.collectors.ingest import KINDS, READERS, ingest, ingest_all
from epochscope.errors import EpochscopeError

pytest.importorskip("mlflow")


def _python(code: str, cwd: Path, **env: str) -> None:
    """Run `code` in a fresh interpreter (the trackers keep global state and services)."""
    full = dict(os.environ, **env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


# -- MLflow ------------------------------------------------------------------------------------

MLFLOW_LOG = """
    import mlflow
    mlflow.set_tracking_uri("file:./mlruns")
    mlflow.set_experiment("grokking")
    for name, lr, fail in (("baseline", 0.001, False), ("fast", 0.01, True)):
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_params({"lr": lr, "layers": 2, "optimizer": "adamw", "wd": 1.0})
            mlflow.set_tag("group", "sweep/1")
            for step in range(0, 50, 5):
                mlflow.log_metric("train/loss", 1.0 / (step + 1 + lr), step=step)
                if step % 10 == 0:
                    mlflow.log_metric("test_acc", step / 100, step=step)
            if fail:
                mlflow.end_run(status="FAILED")
    with mlflow.start_run(run_name="crashed-at-start"):
        mlflow.log_param("lr", 0.5)
"""


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mlflow")
    _python(MLFLOW_LOG, root, MLFLOW_ALLOW_FILE_STORE="true")
    return root / "mlruns"


def test_registry_lists_every_format():
    assert set(KINDS) == {"csv", "jsonl", "tensorboard", "mlflow", "wandb"}
    assert READERS["mlflow"].extra == "mlflow" and READERS["wandb"].extra == "wandb"
    # detection order: specific directory formats before file suffixes
    assert KINDS.index("tensorboard") < KINDS.index("csv")


def test_mlflow_tracking_dir_every_run(mlruns, tmp_path):
    results = ingest_all(mlruns, tmp_path / "out")
    by_name = {r.name: r for r in results}
    assert set(by_name) == {"baseline", "fast"}  # the run without metrics is left out, and said so
    assert all("crashed-at-start" in next(iter(r.skipped_runs)) for r in results)
    base = by_name["baseline"]
    assert base.kind == "mlflow" and base.index == "step" and base.renamed == {"train/loss": "train.loss"}
    assert verify_bundle(base.path).ok
    with open_bundle(base.path) as b:
        steps, values = b.series("train.loss")
        assert steps.tolist() == list(range(0, 50, 5))
        np.testing.assert_allclose(values, [1.0 / (s + 1 + 0.001) for s in range(0, 50, 5)])
        assert b.series("test_acc")[0].tolist() == [0, 10, 20, 30, 40]
        # params come back as the numbers they were logged as
        assert b.config["lr"] == 0.001 and b.config["layers"] == 2 and b.config["optimizer"] == "adamw"
        src = b.context["source"]
        assert src["experiment"] == "grokking" and src["run_id"] == base.run_id
        assert src["params"]["lr"] == "0.001" and src["tags"]["group"] == "sweep/1"
        assert src["files"] and all(len(f["sha256"]) == 64 for f in src["files"])
        assert b.status == "complete"
    with open_bundle(by_name["fast"].path) as b:
        assert b.status == "failed"  # the MLflow run's status carries over


def test_mlflow_one_run_by_id_name_dir_and_uri(mlruns, tmp_path):
    first = ingest_all(mlruns, tmp_path / "all")
    run_id = next(r.run_id for r in first if r.name == "fast")
    by_id = ingest(mlruns, tmp_path / "id.h5", run=run_id)
    by_name = ingest(mlruns, tmp_path / "name.h5", run="fast")
    exp_dir = next(p for p in mlruns.iterdir() if (p / run_id).is_dir())
    by_dir = ingest(exp_dir / run_id, tmp_path / "dir.h5")
    by_uri = ingest(mlruns.resolve().as_uri(), tmp_path / "uri.h5", run=run_id)
    for r in (by_id, by_name, by_dir, by_uri):
        assert r.run_id == run_id and r.name == "fast"
        with open_bundle(r.path) as b:
            assert b.series("train.loss")[0].tolist() == list(range(0, 50, 5))


def test_mlflow_several_runs_need_a_choice(mlruns, tmp_path):
    with pytest.raises(EpochscopeError, match=r"holds 2 runs .*run=ID"):
        ingest(mlruns, tmp_path / "x.h5")
    with pytest.raises(EpochscopeError, match="no MLflow run 'nope'; runs: "):
        ingest(mlruns, tmp_path / "x.h5", run="nope")
    with pytest.raises(EpochscopeError, match="logged any metrics"):
        ingest(mlruns, tmp_path / "x.h5", run="crashed-at-start")
    assert not list(tmp_path.iterdir())


def test_mlflow_dir_without_runs(tmp_path):
    empty = tmp_path / "mlruns"
    _python("""
        import mlflow
        mlflow.set_tracking_uri("file:./mlruns")
        mlflow.set_experiment("nothing-yet")
    """, tmp_path, MLFLOW_ALLOW_FILE_STORE="true")
    with pytest.raises(EpochscopeError, match=r"no MLflow runs \(experiments: .*nothing-yet"):
        ingest_all(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_mlflow_writes_each_run(mlruns, tmp_path):
    from click.testing import CliRunner

    from epochscope.cli import main

    out = tmp_path / "bundles"
    res = CliRunner().invoke(main, ["ingest", str(mlruns), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.h5")) == ["baseline.h5", "fast.h5"]
    assert "skipped" in res.output and "crashed-at-start" in res.output
    res = CliRunner().invoke(main, ["ingest", str(mlruns), "-o", str(tmp_path / "one.h5"), "--run", "baseline"])
    assert res.exit_code == 0, res.output
    help_text = CliRunner().invoke(main, ["ingest", "--help"]).output
    for kind in KINDS:
        assert kind in help_text


# -- W&B ---------------------------------------------------------------------------------------

WANDB_LOG = """
    import os, sys, wandb
    run = wandb.init(project="grok", name=sys.argv[1], config={"lr": 0.003, "model": {"d_model": 32}},
                     dir=".", mode="offline")
    for step in range(6):
        run.log({"train/loss": 1.0 / (step + 1), "acc": step / 10, "nested": {"norm": 2.0 * step},
                 "hist": wandb.Histogram([1, 2, 3]), "note": "text"})
    run.log({"eval/loss": 0.25}, step=9)
    run.summary["best_acc"] = 0.5
    run.finish(exit_code=int(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory) -> Path:
    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("wandb")
    (root / "log.py").write_text(textwrap.dedent(WANDB_LOG))
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true")
    for name, code in (("first", "0"), ("second", "1")):
        done = subprocess.run([sys.executable, "log.py", name, code], cwd=root, env=env,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
    return root / "wandb"


def test_wandb_offline_runs(wandb_dir, tmp_path):
    results = ingest_all(wandb_dir, tmp_path / "out")
    by_name = {r.name: r for r in results}
    assert set(by_name) == {"first", "second"}
    first = by_name["first"]
    assert first.kind == "wandb" and first.index == "step"
    assert set(first.series) == {"train.loss", "acc", "nested.norm", "eval.loss"}
    assert "hist" in first.skipped_columns and "W&B histogram" in first.skipped_columns["hist"]
    assert "note" in first.skipped_columns
    assert verify_bundle(first.path).ok
    with open_bundle(first.path) as b:
        steps, values = b.series("train.loss")
        assert steps.tolist() == [0, 1, 2, 3, 4, 5]
        np.testing.assert_allclose(values, [1.0 / (s + 1) for s in range(6)])
        assert b.series("eval.loss")[0].tolist() == [9]
        assert b.config["lr"] == 0.003 and b.config["model"] == {"d_model": 32}
        src = b.context["source"]
        assert src["project"] == "grok" and src["run_id"] == first.run_id
        assert src["summary"]["best_acc"] == 0.5
        assert b.status == "complete"
    with open_bundle(by_name["second"].path) as b:
        assert b.status == "failed"  # exit code 1


def test_wandb_one_run_dir_file_and_run_option(wandb_dir, tmp_path):
    run_dirs = sorted(p for p in wandb_dir.glob("offline-run-*") if p.is_dir())
    assert len(run_dirs) == 2
    log = next(run_dirs[0].glob("run-*.wandb"))
    a = ingest(run_dirs[0], tmp_path / "a.h5")
    b = ingest(log, tmp_path / "b.h5")
    c = ingest(wandb_dir.parent, tmp_path / "c.h5", run=a.run_id)  # the folder holding wandb/
    assert a.run_id == b.run_id == c.run_id
    with pytest.raises(EpochscopeError, match=r"holds 2 runs"):
        ingest(wandb_dir, tmp_path / "d.h5")
    with pytest.raises(EpochscopeError, match="no W&B run 'zzz'"):
        ingest(wandb_dir, tmp_path / "d.h5", run="zzz")


def test_wandb_directory_without_runs(tmp_path):
    (tmp_path / "wandb" / "offline-run-20260101_000000-abc").mkdir(parents=True)
    with pytest.raises(EpochscopeError, match="is a directory without .*W&B runs"):
        ingest(tmp_path / "wandb", tmp_path / "x.h5")
    with pytest.raises(EpochscopeError, match="no W&B runs"):
        ingest(tmp_path / "wandb", tmp_path / "x.h5", kind="wandb")


# -- missing optional packages -----------------------------------------------------------------

@pytest.mark.parametrize("kind, module, extra", [("mlflow", "mlflow", "mlflow"), ("wandb", "wandb", "wandb")])
def test_missing_package_is_one_line_naming_the_extra(tmp_path, kind, module, extra):
    """With the package hidden from a fresh interpreter, the CLI says which extra to install."""
    src = tmp_path / "src"
    if kind == "mlflow":
        (src / "1").mkdir(parents=True)
        (src / "1" / "meta.yaml").write_text("experiment_id: '1'\nname: x\n")
    else:
        (src / "offline-run-x-abc").mkdir(parents=True)
        (src / "offline-run-x-abc" / "run-abc.wandb").write_bytes(b"\0" * 8)
    code = f"""
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == {module!r} or name.startswith({module!r} + "."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Hide())
        from epochscope.cli import main
        sys.argv = ["epochscope", "ingest", {str(src)!r}, "-o", {str(tmp_path / "out")!r}]
        main()
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f'pip install "epochscope[{extra}]"' in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_mlflow_unreachable_server_is_one_line_without_the_password(tmp_path):
    with pytest.raises(EpochscopeError) as info:
        ingest("http://user:secret@127.0.0.1:9/", tmp_path / "x.h5")
    message = str(info.value)
    assert message.startswith("cannot read MLflow runs from http://127.0.0.1:9/")
    assert "secret" not in message and "\n" not in message
    assert not (tmp_path / "x.h5").exists()
