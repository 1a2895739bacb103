"""Grouping metric series by the conventions users bring from TensorBoard, W&B and Keras.

`train_X` / `val_X` / `test_X` (also `valid_`, `validation_`, `eval_`, `dev_`, and the
suffix forms `X_train`, `X/train`, `train/X`, `X.train`, `train.X`; TensorBoard's `/`
arrives as `.`) are one chart titled X with a line per split; `X.part` children
(`grad_norm.W_E`, `grad_norm.W_U`) are one chart with a legend; every other series is a
chart of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["SPLITS", "SeriesGroup", "group_series"]

# Split words, in the order their lines are drawn.
SPLITS = ("train", "training", "val", "valid", "validation", "eval", "dev", "test")
_SPLIT_LABEL = {"training": "train", "valid": "val", "validation": "val"}
_SEP = r"[_./]"
_PREFIX = re.compile(rf"^({'|'.join(SPLITS)}){_SEP}(.+)$", re.I)
_SUFFIX = re.compile(rf"^(.+?){_SEP}({'|'.join(SPLITS)})$", re.I)


@dataclass
class SeriesGroup:
    """One chart's worth of series: its title and (series name, legend label) pairs."""

    title: str
    members: list[tuple[str, str]] = field(default_factory=list)
    how: str = "single"  # "splits", "parts" or "single"

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.members]


def natural(text: str) -> list:
    """Sort key that puts layer2 before layer10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _split_of(name: str) -> tuple[str, str] | None:
    """(base, split) when `name` carries a split word as prefix or suffix."""
    m = _PREFIX.match(name)
    if m and m.group(2):
        return m.group(2), m.group(1).lower()
    m = _SUFFIX.match(name)
    if m and m.group(1):
        return m.group(1), m.group(2).lower()
    return None


def group_series(names: list[str]) -> list[SeriesGroup]:
    """Group `names` (see the module docstring); groups in first-appearance order of the
    sorted names, splits in `SPLITS` order, parts alphabetically."""
    names = sorted(dict.fromkeys(names))
    splits: dict[str, list[tuple[str, str]]] = {}
    for n in names:
        got = _split_of(n)
        if got:
            splits.setdefault(got[0], []).append((n, got[1]))
    taken: set[str] = set()
    groups: dict[str, SeriesGroup] = {}
    order: list[str] = []
    for base, members in splits.items():
        if len(members) < 2:  # one split alone is a chart of its own
            continue
        members.sort(key=lambda m: SPLITS.index(m[1]))
        labelled = [(n, _SPLIT_LABEL.get(s, s)) for n, s in members]
        if len({lab for _, lab in labelled}) < len(labelled):  # two spellings of one split
            labelled = [(n, n) for n, _ in members]
        groups[base] = SeriesGroup(base, labelled, "splits")
        taken.update(n for n, _ in members)
    parents: dict[str, list[str]] = {}
    for n in names:
        if n in taken or "." not in n:
            continue
        parent, _, part = n.rpartition(".")
        if parent and part:
            parents.setdefault(parent, []).append(n)
    for parent, children in parents.items():
        if len(children) < 2:
            continue
        key = parent if parent not in groups else f"{parent} (parts)"
        members = [(c, c[len(parent) + 1:]) for c in sorted(children, key=natural)]
        if parent in names and parent not in taken:  # the whole beside its parts
            members.insert(0, (parent, "all"))
            taken.add(parent)
        groups[key] = SeriesGroup(parent, members, "parts")
        taken.update(children)
    for n in names:
        if n not in taken:
            key = n if n not in groups else f"{n} (series)"
            groups[key] = SeriesGroup(n, [(n, n)], "single")
    # Order: by the first member's position in the sorted names.
    first = {k: min(names.index(m) for m in g.names) for k, g in groups.items()}
    order = sorted(groups, key=lambda k: first[k])
    return [groups[k] for k in order]
