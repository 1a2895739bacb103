"""A plain (non-editable) install works from any directory and ships only `epochscope`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_installs_one_top_level_package_and_runs_anywhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("epochscope-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"epochscope"}, top
    for sub in ("archives", "collectors", "generator", "templates"):
        assert any(n.startswith(f"epochscope/{sub}/") for n in names), sub
    for sub in ("collectors/ingest", "integrations", "generator/compare"):
        assert any(n.startswith(f"epochscope/{sub}/") for n in names), sub
    assert any(n.startswith("epochscope/templates/vendor/plotly-partial-") for n in names)
    assert "epochscope/templates/vendor/plotly-LICENSE.txt" in names

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import epochscope, epochscope.archives, epochscope.cli; print(epochscope.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().startswith(str(target))
    cli = subprocess.run([sys.executable, "-m", "epochscope", "--help"], cwd=workdir, env=env,
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "verify" in cli.stdout
    # the ingest formats come from the installed registry, the partial plotly.js from package data
    code = ("from epochscope.collectors.ingest import KINDS; from epochscope.generator.html import plotly_js; "
            "print(','.join(KINDS), len(plotly_js()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    kinds, size = out.stdout.split()
    assert set(kinds.split(",")) == {"csv", "jsonl", "tensorboard", "mlflow", "wandb"} and int(size) > 1_000_000
