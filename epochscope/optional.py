"""Optional packages (pandas, xarray, mlflow, wandb, lightning, transformers): imported on
use, and when missing, one error line that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from epochscope.errors import EpochscopeError

__all__ = ["LazyModule", "MissingExtraError", "require"]


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


class LazyModule:
    """Stands for a module and imports it (once, through `require`) when an attribute is first
    read: modules that need torch only inside their functions name `torch = LazyModule("torch")`,
    so that commands that never reach those functions (analysing metrics, reading bundles) do
    not pay torch's 2-3 s import at start-up."""

    __slots__ = ("_name", "_extra", "_purpose", "_module")

    def __init__(self, name: str, *, extra: str = "torch", purpose: str = "analysing checkpoints"):
        self._name, self._extra, self._purpose = name, extra, purpose
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = require(self._name, extra=self._extra, purpose=self._purpose)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"
