"""The "?" text of every chart, read from data files beside the templates: one TOML file per
chart in templates/help/ (comparison charts in templates/help/compare/) with its five parts:
what it shows, how to read it, how it is computed, what typical and anomalous look like.
A chart without a complete file fails the tests (tests/test_report.py).

Written for a researcher opening a report months later without the code at hand; where a
chart depends on an analysis, the analysis' version and parameters are printed beneath the
text by the page.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["COMPARE_HELP", "HELP", "HelpText", "PARTS", "help_for"]

# The five parts, in the order the page shows them, with their headings.
PARTS = (("what", "What it shows"), ("read", "How to read it"), ("computed", "How it is computed"),
         ("typical", "Typical"), ("anomalous", "Anomalous"))


@dataclass(frozen=True)
class HelpText:
    what: str
    read: str
    computed: str
    typical: str
    anomalous: str

    def sections(self) -> list[tuple[str, str]]:
        return [(heading, getattr(self, key)) for key, heading in PARTS]


@cache
def _load(folder: str, name: str) -> HelpText:
    path = resources.files("epochscope.templates").joinpath(*folder.split("/"), f"{name}.toml")
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise KeyError(f"no help file {folder}/{name}.toml") from None
    missing = [k for k, _ in PARTS if not isinstance(data.get(k), str) or not data[k].strip()]
    if missing:
        raise KeyError(f"help file {folder}/{name}.toml lacks {', '.join(missing)}")
    return HelpText(**{k: " ".join(data[k].split()) for k, _ in PARTS})


class HelpFiles(Mapping[str, HelpText]):
    """The help texts of one folder, read on first use (KeyError: missing or incomplete)."""

    def __init__(self, folder: str):
        self.folder = folder

    def __getitem__(self, name: str) -> HelpText:
        return _load(self.folder, name)

    def _names(self) -> list[str]:
        root = resources.files("epochscope.templates").joinpath(*self.folder.split("/"))
        return sorted(p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml"))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        try:
            self[str(name)]
        except KeyError:
            return False
        return True


HELP: Mapping[str, HelpText] = HelpFiles("help")
COMPARE_HELP: Mapping[str, HelpText] = HelpFiles("help/compare")


def help_for(name: str, page: str = "run") -> HelpText:
    """The help text of chart `name` (KeyError when missing: a test guards completeness)."""
    return (HELP if page == "run" else COMPARE_HELP)[name]
