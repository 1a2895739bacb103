"""The run catalog: an SQLite index of the bundles in a directory.

The filesystem stays the authority (research-notes, 2026-02-11): the database only indexes
what is on disk, and heals itself on every `scan` — new bundles are added, changed ones
(size or mtime differ) re-read, vanished ones dropped. It also caches each bundle's content
hash, so an incremental site build can tell what changed without re-reading gigabytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from epochscope.archives import open_bundle
from epochscope.errors import EpochscopeError

__all__ = ["CATALOG_NAME", "Catalog", "headline"]

CATALOG_NAME = "catalog.sqlite"
_SCHEMA_VERSION = 2  # 2: headline facts from generator/facts.py, key_frequencies filled, health
# Columns every run has; config keys with scalar values become extra columns on demand.
_FIXED = {
    "path": "TEXT PRIMARY KEY", "name": "TEXT", "sweep": "TEXT", "variant": "TEXT",
    "status": "TEXT", "size": "INTEGER", "mtime_ns": "INTEGER", "content_hash": "TEXT",
    "epochs": "INTEGER", "checkpoints": "INTEGER", "analyzed": "TEXT",
    "turn_epoch": "INTEGER", "turn_confidence": "REAL", "grok_epoch": "INTEGER",
    "final_train_loss": "REAL", "final_test_loss": "REAL", "final_train_acc": "REAL",
    "final_test_acc": "REAL", "key_frequencies": "TEXT", "health": "TEXT", "error": "TEXT", "indexed_at": "REAL",
    "damage": "TEXT",
}
# A user's --where condition runs at most this long (a recursive CTE can run for ever).
QUERY_SECONDS = 5.0
_CONFIG_PREFIX = "cfg_"


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def headline(path: Path, *, allow_damaged: bool = False) -> dict[str, Any]:
    """The figures the index page and `runs --where` need, read from one bundle: the run's
    headline facts (generator/facts.py, the same the report and the comparison show).

    A damaged bundle raises DamagedBundleError; with `allow_damaged` the row is made from
    what is intact and its `damage` column lists the rest.
    """
    from epochscope.generator.facts import run_facts

    with open_bundle(path, allow_damaged=allow_damaged) as b:
        damage = b.check()
        facts = run_facts(b)
        turn = facts.turn or {}
        row: dict[str, Any] = {
            "name": b.name, "status": b.status,
            "epochs": int(facts.final_epoch or 0),
            "checkpoints": facts.checkpoints,
            "analyzed": ",".join(facts.analyses),
            "final_train_loss": facts.final("train_loss"),
            "final_test_loss": facts.final("test_loss"),
            "final_train_acc": facts.final("train_acc"),
            "final_test_acc": facts.final("test_acc"),
            "turn_epoch": turn.get("epoch"),
            "turn_confidence": turn.get("confidence"),
            "grok_epoch": facts.grok_epoch,
            "key_frequencies": json.dumps(facts.key_frequencies) if facts.key_frequencies is not None else None,
            "health": facts.health,
        }
        config = {k: v for k, v in b.config.items()
                  if isinstance(v, (int, float, str, bool)) or v is None}
        row["damage"] = "; ".join(damage) if damage else None
    for key, value in config.items():
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key)):
            row[_CONFIG_PREFIX + key] = value
    return row


class Catalog:
    """SQLite index of every bundle under `root` (default file: root/catalog.sqlite)."""

    def __init__(self, root: str | os.PathLike, db_path: str | os.PathLike | None = None, *,
                 allow_damaged: bool = False, query_seconds: float = QUERY_SECONDS):
        self.root = Path(root)
        if not self.root.is_dir():
            raise EpochscopeError(f"no such directory: {self.root}")
        self.allow_damaged = allow_damaged
        self.query_seconds = query_seconds
        self.db_path = Path(db_path) if db_path else self.root / CATALOG_NAME
        # A plain path, never a URI: directory names may hold '?', '#' or '%'.
        try:
            self.db = sqlite3.connect(self.db_path)
            self.db.row_factory = sqlite3.Row
            self._ensure_schema()
            self.persistent = True
        except sqlite3.Error:
            # A read-only archive (or a catalog we may not write): index into memory instead.
            with contextlib.suppress(Exception):
                self.db.close()
            self.db = sqlite3.connect(":memory:")
            self.db.row_factory = sqlite3.Row
            self._ensure_schema()
            self.persistent = False

    def _ensure_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            # An index can always be rebuilt from the files: drop what we do not understand.
            self.db.execute("DROP TABLE IF EXISTS runs")
        cols = ", ".join(f"{k} {t}" for k, t in _FIXED.items())
        self.db.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
        self.db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self.db.commit()

    def _columns(self) -> set[str]:
        return {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}

    def bundle_paths(self) -> list[Path]:
        """Every bundle file under root (journals, temporary files and the catalog skipped)."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.endswith(".journal") and not d.startswith("."))
            for fname in sorted(filenames):
                if fname.endswith((".h5", ".hdf5")) and not fname.startswith("."):
                    found.append(Path(dirpath) / fname)
        return found

    def scan(self) -> dict[str, list[str]]:
        """Bring the index in line with the disk; return what was added/updated/removed/broken."""
        report: dict[str, list[str]] = {"added": [], "updated": [], "removed": [], "unchanged": [],
                                        "broken": []}
        known = {r["path"]: r for r in self.db.execute("SELECT path, size, mtime_ns, error FROM runs")}
        on_disk = set()
        for path in self.bundle_paths():
            rel = path.relative_to(self.root).as_posix()
            on_disk.add(rel)
            st = path.stat()
            old = known.get(rel)
            if (old is not None and old["size"] == st.st_size and old["mtime_ns"] == st.st_mtime_ns
                    and not (self.allow_damaged and old["error"])):
                report["broken" if old["error"] else "unchanged"].append(rel)
                continue
            row: dict[str, Any] = {"path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                   "indexed_at": time.time()}
            parts = Path(rel).parts
            row["sweep"] = parts[-2] if len(parts) > 1 else None
            row["variant"] = Path(rel).stem
            try:
                row.update(headline(path, allow_damaged=self.allow_damaged))
                row["content_hash"] = _file_hash(path)
                row["error"] = None
            except (EpochscopeError, OSError, KeyError, ValueError) as exc:
                row.update(name=Path(rel).stem, status="unreadable", error=" ".join(str(exc).split()))
                report["broken"].append(rel)
            self._upsert(row)
            if not row.get("error"):
                report["updated" if old is not None else "added"].append(rel)
        for rel in sorted(set(known) - on_disk):
            self.db.execute("DELETE FROM runs WHERE path = ?", (rel,))
            report["removed"].append(rel)
        self.db.commit()
        return report

    def _upsert(self, row: dict[str, Any]) -> None:
        cols = self._columns()
        for key, value in row.items():
            if key not in cols:
                kind = "REAL" if isinstance(value, float) else "INTEGER" if isinstance(value, int) else "TEXT"
                self.db.execute(f'ALTER TABLE runs ADD COLUMN "{key}" {kind}')
        self.db.execute("DELETE FROM runs WHERE path = ?", (row["path"],))
        keys = list(row)
        self.db.execute(f"INSERT INTO runs ({', '.join(f'{k!r}'.replace(chr(39), chr(34)) for k in keys)}) "
                        f"VALUES ({', '.join('?' for _ in keys)})", [row[k] for k in keys])

    def runs(self, where: str | None = None, order_by: str = "sweep, name") -> list[dict[str, Any]]:
        """Rows (config columns without their prefix), optionally filtered by an SQL condition.

        Config keys can be named plainly (`p = 113`): they are exposed through a view.
        """
        self._ensure_view()
        sql = f"SELECT * FROM run_view{f' WHERE {where}' if where else ''} ORDER BY {order_by}"
        deadline = time.monotonic() + self.query_seconds
        # User-written conditions can query, not change (query_only), and not run for ever.
        self.db.execute("PRAGMA query_only = ON")
        self.db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        try:
            rows = self.db.execute(sql).fetchall()
        except sqlite3.Error as exc:
            if time.monotonic() > deadline:
                raise EpochscopeError(f"the --where/--order-by query ran longer than {self.query_seconds:g} s "
                                      "and was stopped; simplify the condition") from None
            cols = ", ".join(sorted(c for c in self._view_columns()))
            raise EpochscopeError(f"bad --where condition ({exc}); columns: {cols}") from None
        finally:
            self.db.set_progress_handler(None, 0)
            self.db.execute("PRAGMA query_only = OFF")
        return [dict(r) for r in rows]

    def _view_columns(self) -> list[str]:
        out = []
        for col in self._columns():
            name = col[len(_CONFIG_PREFIX):] if col.startswith(_CONFIG_PREFIX) else col
            if col.startswith(_CONFIG_PREFIX) and name in _FIXED:
                continue
            out.append(name)
        return out

    def _ensure_view(self) -> None:
        select = []
        for col in self._columns():
            if col.startswith(_CONFIG_PREFIX):
                name = col[len(_CONFIG_PREFIX):]
                if name in _FIXED:
                    continue  # a config key named like a fixed column stays cfg_-prefixed
                select.append(f'"{col}" AS "{name}"')
            else:
                select.append(f'"{col}"')
        self.db.execute("DROP VIEW IF EXISTS run_view")
        self.db.execute(f"CREATE VIEW run_view AS SELECT {', '.join(select)} FROM runs")
        self.db.commit()

    def content_hash(self, rel: str) -> str | None:
        row = self.db.execute("SELECT content_hash FROM runs WHERE path = ?", (rel,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
