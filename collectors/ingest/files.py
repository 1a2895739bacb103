"""Reading source files: bytes, text, and the checksums a bundle records of what it read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from epochscope.errors import EpochscopeError

__all__ = ["decode", "file_entry", "read_bytes", "single_file"]


def read_bytes(src: Path) -> bytes:
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise EpochscopeError(f"cannot read {src}: {exc.strerror or exc}") from None
    if not data.strip():
        raise EpochscopeError(f"{src} is empty")
    return data


def decode(src: Path, data: bytes, kind: str) -> str:
    if b"\x00" in data:
        raise EpochscopeError(f"{src} is a binary file, not {kind} text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EpochscopeError(
            f"{src} is not UTF-8 text (undecodable byte at offset {exc.start}); "
            f"is it really a {kind} file?") from None


def single_file(source: str, kind: str) -> tuple[Path, bytes, str]:
    """(path, bytes, text) of a one-file text source, refusing directories and binaries."""
    src = Path(source)
    if not src.exists():
        raise EpochscopeError(f"no such file or directory: {src}")
    if src.is_dir():
        raise EpochscopeError(f"{src} is a directory, not a {kind} file")
    data = read_bytes(src)
    return src, data, decode(src, data, kind)


def file_entry(path: Path, label: str, data: bytes | None = None) -> dict[str, Any]:
    """{"path", "bytes", "sha256"} of a file read (hashing `data` when already in memory)."""
    h = hashlib.sha256()
    size = 0
    if data is not None:
        h.update(data)
        size = len(data)
    else:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
                size += len(block)
    return {"path": label, "bytes": size, "sha256": h.hexdigest()}
