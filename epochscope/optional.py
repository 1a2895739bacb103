"""Optional packages (pandas, xarray, mlflow, wandb, lightning, transformers): imported on
use, and when missing, one error line that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from epochscope.errors import EpochscopeError

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(EpochscopeError, ImportError):
    """An optional package is not installed; the message says `pip install "epochscope[X]"`."""


def require(module: str, *, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import `module` or raise MissingExtraError naming `extra` (e.g. purpose "reading
    MLflow runs", extra "mlflow")."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name != module and not module.startswith(exc.name + "."):
            # The package is there but one of its own imports fails.
            raise EpochscopeError(f"{purpose}: importing {module} failed ({exc})") from None
        raise MissingExtraError(
            f"{purpose} needs the {package or module.split('.')[0]} package, which is not installed: "
            f"pip install \"epochscope[{extra}]\"") from None
