"""Durability under faults (issue 18): damaged bytes are never laundered or shown silently,
stale temporaries are cleaned, verify survives a concurrent consolidation, long journals
are packed, a full disk gives one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from epochscope.archives import (
    ArtifactUpdate,
    BundleWriter,
    Segment,
    consolidate,
    open_bundle,
    verify_bundle,
)
from epochscope.archives.compaction import FANOUT
from epochscope.archives.errors import DamagedBundleError, DiskFullError
from epochscope.archives.journal import journal_dir, list_journal
from epochscope.cli import main

MARK = "payloadmarker-test_acc"


def _write(path: Path, *, consolidated: bool = True) -> None:
    with BundleWriter(path, create=True, overwrite=True) as w:
        w.write(Segment(context={"config": {"name": "faulty", "p": 7}}, session={"id": "s", "status": "running"}))
        w.write(Segment(
            metrics={"loss": (np.arange(50), np.linspace(3, 0, 50))},
            events=[{"epoch": 3, "kind": "turn", "message": "a message", "payload": {"metric": MARK}}],
            checkpoints={10: ({"model_config": {"d": 4}}, {"model": {"w": np.arange(4096, dtype=np.float32)}})},
            artifacts={"norms": ArtifactUpdate(version="1", epochs=np.array([10]),
                                               per_epoch={"w": np.arange(2048, dtype=np.float64)[None]},
                                               summary={"sel": np.array(3.5)}, scalars={"k": 1})},
            tables={"cands": {"id": np.array(["tablemarker-aaaa", "tablemarker-bbbb"]),
                              "fit": np.array([0.5, 0.25])}}))
        w.write(Segment(session={"id": "s", "status": "complete"}))
        if consolidated:
            w.consolidate()


def _span(dset: h5py.Dataset) -> tuple[int, int]:
    """(file offset, size) of a numeric dataset's bytes."""
    if dset.chunks is None:
        return dset.id.get_offset(), dset.id.get_storage_size()
    info = dset.id.get_chunk_info(0)
    return info.byte_offset, info.size


def _flip_at(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x5A]))


def _flip_dataset(path: Path, name: str) -> None:
    with h5py.File(path, "r") as f:
        offset, size = _span(f[name])
    _flip_at(path, offset + size // 2)


def _flip_text(path: Path, text: str) -> None:
    """Flip one byte inside a string stored in the file (variable-length strings live in the
    global heap; attributes in object headers)."""
    data = path.read_bytes()
    at = data.index(text.encode())
    _flip_at(path, at + len(text) - 3)


# What to damage in each kind of element, and how.
ELEMENTS = {
    "series values": lambda p: _flip_dataset(p, "metrics/loss/value"),
    "series epochs": lambda p: _flip_dataset(p, "metrics/loss/epoch"),
    "event payload": lambda p: _flip_text(p, MARK),
    "checkpoint tensor": lambda p: _flip_dataset(p, "checkpoints/e0000000010/state/model/w"),
    "artifact per-epoch array": lambda p: _flip_dataset(p, "artifacts/norms/per_epoch/w"),
    "artifact summary scalar": lambda p: _flip_dataset(p, "artifacts/norms/summary/sel"),
    "table string column": lambda p: _flip_text(p, "tablemarker-bbbb"),
    "table numeric column": lambda p: _flip_dataset(p, "tables/cands/fit"),
    "context attribute": lambda p: _flip_text(p, '"name":"faulty"'),
}


@pytest.mark.parametrize("where", ["main", "segment"])
@pytest.mark.parametrize("element", sorted(ELEMENTS))
def test_consolidation_never_launders_damage(tmp_path, element, where):
    """Issue 18.0: flip a byte in each kind of element, consolidate: verify must still fail."""
    path = tmp_path / "run.h5"
    _write(path, consolidated=where == "main")
    target = path if where == "main" else sorted(journal_dir(path).glob("seg-*.h5"))[1]
    if element == "context attribute":
        target = path if where == "main" else sorted(journal_dir(path).glob("seg-*.h5"))[0]
    ELEMENTS[element](target)
    assert not verify_bundle(path).ok
    before = path.read_bytes() if path.exists() else None
    # New data arrives (a resumed run, an analysis), then the bundle is consolidated.
    try:
        with BundleWriter(path, create=False) as w:
            w.write(Segment(metrics={"extra": (np.array([0]), np.array([1.0]))}))
            w.consolidate()
        refused = False
    except DamagedBundleError as exc:
        refused = True
        assert "not consolidated" in str(exc) or "damaged" in str(exc)
    report = verify_bundle(path)
    assert not report.ok, f"{element} in {where}: damage was laundered (refused={refused})"
    if refused and before is not None:
        assert path.read_bytes() == before  # nothing changed
    # Whatever the outcome, a strict reader never hands out the damaged element.
    with pytest.raises(DamagedBundleError):
        with open_bundle(path) as b:
            b.check(tensors=True)


def test_event_payload_damage_is_not_laundered_by_analysis_style_rewrite(tmp_path):
    """The issue's trial: a flipped payload byte went through a consolidation and verified OK
    with `test_acc` silently changed; now the consolidation refuses and the key stays."""
    path = tmp_path / "run.h5"
    _write(path)
    _flip_text(path, MARK)
    with BundleWriter(path, create=False) as w:
        w.write(Segment(artifacts={"x": ArtifactUpdate(version="1", epochs=np.array([10]),
                                                       per_epoch={"v": np.ones((1, 2))}, replace=True)}))
        with pytest.raises(DamagedBundleError, match="not consolidated"):
            w.consolidate()
    with open_bundle(path, allow_damaged=True) as b:
        assert b.events() == []  # the damaged event table is left out, not shown altered
        assert any("SHA-256" in d for d in b.damage)


@pytest.mark.parametrize("command", [["info"], ["report", "-o", "{out}/r.html"]])
def test_readers_refuse_damage_unless_allowed(tmp_path, command):
    path = tmp_path / "run.h5"
    _write(path)
    _flip_dataset(path, "artifacts/norms/per_epoch/w")
    args = [a.format(out=tmp_path) for a in command]
    res = CliRunner().invoke(main, [*args, str(path)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "damaged" in lines[0] and "--allow-damaged" in lines[0], res.output
    assert not (tmp_path / "r.html").exists()
    res = CliRunner().invoke(main, [*args, "--allow-damaged", str(path)])
    assert res.exit_code == 0, res.output
    if command[0] == "info":
        assert "DAMAGED" in res.output and "per_epoch/w" in res.output
    else:
        html = (tmp_path / "r.html").read_text()
        assert 'id="damage-banner"' in html and "per_epoch/w" in html


def test_compare_refuses_damage_unless_allowed(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    _write(a)
    _write(b)
    _flip_dataset(b, "metrics/loss/value")
    out = tmp_path / "cmp.html"
    res = CliRunner().invoke(main, ["compare", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 1 and "damaged" in res.output and not out.exists()
    res = CliRunner().invoke(main, ["compare", str(a), str(b), "-o", str(out), "--allow-damaged"])
    assert res.exit_code == 0, res.output
    assert 'id="damage-banner"' in out.read_text()


def test_build_skips_damaged_bundle_with_one_line_unless_allowed(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs / "good.h5")
    _write(runs / "bad.h5")
    _flip_text(runs / "bad.h5", MARK)
    site = tmp_path / "site"
    res = CliRunner().invoke(main, ["build", str(runs), "-o", str(site)])
    assert res.exit_code == 0, res.output
    warning = [ln for ln in res.output.splitlines() if "bad.h5" in ln and "warning" in ln]
    assert len(warning) == 1 and "damaged" in warning[0]
    res = CliRunner().invoke(main, ["build", str(runs), "-o", str(site), "--allow-damaged"])
    assert res.exit_code == 0, res.output
    pages = [p for p in site.rglob("*.html") if "bad" in p.name]
    assert pages and 'id="damage-banner"' in pages[0].read_text()


def test_damaged_or_newer_journal_segment_is_not_dropped_silently(tmp_path):
    path = tmp_path / "run.h5"
    _write(path, consolidated=False)
    seg = sorted(journal_dir(path).glob("seg-*.h5"))[1]
    with h5py.File(seg, "r+") as f:
        f.attrs["encoding-version"] = "7.0"
    res = CliRunner().invoke(main, ["info", str(path)])
    assert res.exit_code == 1 and "newer" in res.output
    seg.write_bytes(seg.read_bytes()[:2000])  # truncated
    for cmd in (["info"], ["report", "-o", str(tmp_path / "x.html")]):
        res = CliRunner().invoke(main, [*cmd, str(path)])
        assert res.exit_code == 1 and "damaged" in res.output, res.output
    res = CliRunner().invoke(main, ["info", "--allow-damaged", str(path)])
    assert res.exit_code == 0 and "DAMAGED" in res.output and seg.name in res.output


def test_analysis_never_reads_damaged_checkpoint_weights(tmp_path):
    from epochscope.collectors.analysis.checkpoint_io import read_weights

    path = tmp_path / "run.h5"
    _write(path)
    _flip_dataset(path, "checkpoints/e0000000010/state/model/w")
    for allow in (False, True):
        with open_bundle(path, allow_damaged=allow) as b:
            with pytest.raises(DamagedBundleError, match="epoch 10 is damaged"):
                read_weights(b, 10)
            with pytest.raises(DamagedBundleError):
                b.checkpoint(10)


def test_stale_consolidation_temporaries_are_reported_and_removed(tmp_path):
    """Issue 18.3: a writer killed during consolidation leaves .run.h5.PID.tmp behind."""
    path = tmp_path / "run.h5"
    _write(path)
    stale = tmp_path / ".run.h5.999999.tmp"
    stale.write_bytes(b"\0" * 100_000)
    jstale = journal_dir(path)
    jstale.mkdir()
    (jstale / ".seg-00000009.h5.999999.tmp").write_bytes(b"x")
    other = tmp_path / ".other.h5.999999.tmp"  # another bundle's: not ours to remove
    other.write_bytes(b"x")
    report = verify_bundle(path)
    assert report.ok
    assert any("temporary file" in w and ".run.h5.999999.tmp" in w for w in report.warnings)
    with BundleWriter(path, create=False):
        pass
    assert not stale.exists() and not (jstale / ".seg-00000009.h5.999999.tmp").exists()
    assert other.exists()
    assert not any("temporary" in w for w in verify_bundle(path).warnings)


def test_verify_during_concurrent_consolidation_never_fails(tmp_path):
    """Issue 18.6: verify saw segments vanish under a consolidation and reported FAILED."""
    path = tmp_path / "run.h5"
    with BundleWriter(path, create=True, compaction=False) as w:
        w.write(Segment(context={"config": {"name": "c"}}, session={"id": "s", "status": "running"}))
        for i in range(120):
            w.write(Segment(metrics={"a": (np.array([i]), np.array([float(i)]))}), wait=False)
        w.sync()
    results = []

    def check():
        while not done.is_set():
            results.append(verify_bundle(path))

    done = threading.Event()
    t = threading.Thread(target=check)
    t.start()
    consolidate(path)
    done.set()
    t.join()
    results.append(verify_bundle(path))
    assert len(results) >= 2
    bad = [r.problems for r in results if not r.ok]
    assert not bad, bad[:2]
    assert all(r.facts["points"] == 120 for r in results)


def _journal_run(path: Path, n: int, *, compaction: bool, truncate_at: int | None = None) -> None:
    with BundleWriter(path, create=True, overwrite=True, compaction=compaction) as w:
        w.write(Segment(context={"config": {"name": "long"}}, session={"id": "s", "status": "running"}))
        for i in range(n):
            ck = {i: ({}, {"model": {"w": np.full(16, i, np.float32)}})} if i % 7 == 0 else {}
            trunc = truncate_at if truncate_at is not None and i == truncate_at + 5 else None
            w.write(Segment(metrics={"a": (np.array([i]), np.array([float(i)]))},
                            events=[{"epoch": i, "kind": "tick", "message": str(i)}] if i % 50 == 0 else [],
                            checkpoints=ck, truncate_after=trunc,
                            session={"id": "s", "last": i} if i % 100 == 0 else None), wait=not ck)
        w.sync()
        if w._compactor is not None:
            w._compactor.wait()
            assert w._compactor.error is None
        w._stop_compactor()


def _content(path: Path) -> tuple:
    with open_bundle(path) as b:
        return (b.series("a")[0].tolist(), b.series("a")[1].tolist(), b.events(), b.checkpoint_epochs,
                [b.checkpoint(e).state["model"]["w"].tolist() for e in b.checkpoint_epochs[-3:]],
                b.sessions, b.context)


def test_packed_journal_reads_exactly_like_the_segments(tmp_path):
    """Issue 18.5: packs change how many files a reader opens, never what it reads."""
    plain, packed = tmp_path / "plain.h5", tmp_path / "packed.h5"
    n = FANOUT * FANOUT + 40
    _journal_run(plain, n, compaction=False, truncate_at=100)
    _journal_run(packed, n, compaction=True, truncate_at=100)
    assert len(list_journal(plain)) == n + 1
    assert len(list_journal(packed)) < 2 * FANOUT
    assert _content(plain) == _content(packed)
    assert verify_bundle(packed).ok
    consolidate(packed)
    consolidate(plain)
    assert _content(plain) == _content(packed)


def test_crash_between_pack_and_segment_deletion_reads_the_same(tmp_path):
    """A writer killed after committing a pack but before deleting what it covers."""
    path = tmp_path / "run.h5"
    _journal_run(path, FANOUT - 1, compaction=False)
    expected = _content(path)
    from epochscope.archives.compaction import write_pack

    kept = tmp_path / "kept"
    shutil.copytree(journal_dir(path), kept)
    write_pack(path, [(e.first, e.last) for e in list_journal(path)])
    for p in kept.iterdir():  # the segments are back: as if the deletion never happened
        shutil.copy(p, journal_dir(path) / p.name)
    assert len(list_journal(path)) == FANOUT + 1
    assert _content(path) == expected
    assert verify_bundle(path).ok
    with BundleWriter(path, create=False):  # the next writer removes the redundant files
        pass
    assert len(list_journal(path)) == 1
    assert _content(path) == expected


def _tmpfs(tmp_path: Path, size: str) -> Path:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {res.stderr.strip()}")
    return mnt


def test_disk_full_on_a_real_tmpfs_gives_one_line_and_no_debris(tmp_path):
    """Issue 18.2 on a real 4 MB tmpfs: a Recorder run fills it."""
    mnt = _tmpfs(tmp_path, "4m")
    try:
        script = (
            "import numpy as np, epochscope\n"
            f"rec = epochscope.Recorder({str(mnt / 'run.h5')!r}, config={{'name': 'full'}})\n"
            "import torch\n"
            "m = torch.nn.Linear(256, 256)\n"
            "with rec:\n"
            "    for e in range(1000):\n"
            "        rec.log(e, loss=float(e))\n"
            "        rec.checkpoint(e, m)\n"
        )
        res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert res.returncode == 1
        assert "DiskFullError: no space left on" in res.stderr and "needed" in res.stderr
        assert "Exception ignored" not in res.stderr and "Segmentation" not in res.stderr
        debris = [p.name for p in mnt.rglob("*.tmp")]
        assert debris == []
        report = verify_bundle(mnt / "run.h5")
        assert report.ok, report.problems
        # The CLI: one line, non-zero, the way on.
        res = subprocess.run([sys.executable, "-m", "epochscope", "collect", "--resume", str(mnt / "run.h5"),
                              "--quiet"], capture_output=True, text=True, timeout=300)
        assert res.returncode != 0
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_consolidation_on_a_full_disk_refuses_before_writing(tmp_path):
    mnt = _tmpfs(tmp_path, "2m")
    try:
        path = mnt / "run.h5"
        with BundleWriter(path, create=True, compaction=False) as w:
            w.write(Segment(context={"config": {"name": "x"}}))
            w.write(Segment(metrics={"a": (np.arange(70_000), np.zeros(70_000))}))
        with pytest.raises(DiskFullError, match=r"no space left on .*needed"):
            consolidate(path)
        assert [p.name for p in mnt.rglob("*.tmp")] == []
        assert verify_bundle(path).ok
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_runs_where_is_time_bounded_and_paths_are_not_uris(tmp_path):
    from epochscope.generator.catalog import Catalog

    odd = tmp_path / "we?ird#dir%41"
    odd.mkdir()
    _write(odd / "run.h5")
    res = CliRunner().invoke(main, ["runs", str(odd), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["name"] == "faulty"
    with Catalog(odd, query_seconds=0.5) as cat:
        cat.scan()
        from epochscope.errors import EpochscopeError

        with pytest.raises(EpochscopeError, match="longer than 0.5 s"):
            cat.runs(where="(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                           "SELECT count(*) FROM c) > 0")
        assert cat.runs(where="p = 7")  # the connection still works afterwards


def test_runs_on_a_read_only_archive(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    _write(ro / "run.h5")
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: use a read-only bind mount
            res = subprocess.run(["mount", "--bind", "-o", "ro", str(ro), str(ro)], capture_output=True)
            if res.returncode != 0:
                pytest.skip("cannot make a read-only directory here")
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=False)
        res = CliRunner().invoke(main, ["runs", str(ro), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)[0]["name"] == "faulty"
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)
        os.chmod(ro, 0o755)


def test_long_names_are_clipped_in_error_lines(tmp_path):
    path = tmp_path / "run.h5"
    name = "n" * 10_000
    with BundleWriter(path, create=True) as w:
        w.write(Segment(context={"config": {"name": name}}))
    res = CliRunner().invoke(main, ["collect", "--preset", "demo", f"name={name}", "-o", str(path)])
    assert res.exit_code != 0
    assert max(len(ln) for ln in res.output.splitlines()) < 500
