"""Errors raised when a path is not a readable bundle."""

from __future__ import annotations

from epochscope.errors import EpochscopeError

__all__ = ["BundleError", "BundleLockedError", "DamagedBundleError", "DiskFullError", "NewerFormatError",
           "NotABundleError"]


class BundleError(EpochscopeError):
    """The file exists but cannot be used as a bundle (corrupt, truncated, inconsistent)."""


class NotABundleError(BundleError):
    """The path is not HDF5, or is HDF5 without the epochscope bundle markers."""


class NewerFormatError(BundleError):
    """The bundle was written by a newer format version than this epochscope reads."""


class NewerElementError(NewerFormatError, ValueError):
    """One element of the bundle has an encoding version newer than this epochscope reads."""


class BundleLockedError(BundleError):
    """Another process is writing this bundle."""


class DamagedBundleError(BundleError):
    """Data read from the bundle fails its checksum or structure check.

    Readers refuse such a bundle unless told to go on (`allow_damaged=True`,
    `--allow-damaged`); `findings` lists every damaged element found so far.
    """

    def __init__(self, message: str, findings: list[str] | None = None):
        super().__init__(message)
        self.findings = list(findings or [])


class DiskFullError(BundleError):
    """The file system holding the bundle has no room for what had to be written."""
