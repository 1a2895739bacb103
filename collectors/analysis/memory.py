"""Keep freed memory in the process while an analysis runs (glibc only).

Every checkpoint's forward pass and spectra allocate tens of MB of temporaries (a [p*p, d_mlp]
map is 26 MB for nanda2023). glibc hands blocks that large back to the kernel on free and
maps fresh, zeroed pages for the next one, so each checkpoint paid ~16,000 page faults (10 s
of system time over 100 checkpoints, a quarter of the analysis). Raising glibc's mmap and trim
thresholds for the duration lets the freed blocks be reused; afterwards the defaults come back
and the unused memory is returned with `malloc_trim`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
from collections.abc import Iterator

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT = 128 * 1024  # both thresholds' documented defaults
_KEEP = 1 << 30  # keep up to 1 GiB of freed memory, serve blocks up to 1 GiB from the heap


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, freed large blocks stay in the process for reuse (no-op off glibc).

    On exit both thresholds return to glibc's defaults (a process that had set its own through
    MALLOC_*_THRESHOLD_ gets the defaults too) and free memory is given back to the kernel.
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    ok = libc.mallopt(_M_MMAP_THRESHOLD, _KEEP) and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP)
    try:
        yield
    finally:
        if ok:
            libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
            libc.malloc_trim(0)
