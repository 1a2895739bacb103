"""The data an experiment trains on: a character-level corpus, or modular addition.

The default corpus ships with Python: the standard library's `pydoc_data.topics` (the help
texts behind `help("if")`, ~460 k characters of English and code), so a run needs no download.
`--data FILE` trains on a user's UTF-8 text instead. Batches are drawn from a seeded torch
generator, so the same seeds give the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from epochscope.errors import EpochscopeError

__all__ = ["TASKS", "CharCorpus", "ModularAddition", "Task", "load_corpus_text", "make_task"]

TASKS = ("chars", "modular-addition")
_MIN_CHARS = 256


def load_corpus_text(path: str | Path | None) -> tuple[str, str]:
    """(text, source description): the file's text, or pydoc_data's topics when `path` is None."""
    if path is None:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[k] for k in sorted(topics)), "pydoc_data.topics"
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise EpochscopeError(f"cannot read corpus file {p}: {exc.strerror}") from None
    if not raw.strip():
        raise EpochscopeError(f"corpus file {p} is empty")
    if b"\x00" in raw[:65536]:
        raise EpochscopeError(f"corpus file {p} is not text (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpochscopeError(f"corpus file {p} is not UTF-8 text (byte {exc.start})") from None
    if len(text) < _MIN_CHARS:
        raise EpochscopeError(f"corpus file {p} has {len(text)} characters; need at least {_MIN_CHARS}")
    return text, str(p)


class Task:
    """Batches of (inputs, targets) and how to score them; `last_only` tasks score one position."""

    vocab_size: int
    n_ctx: int
    last_only: bool
    source: str

    def batch(self, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def val_batches(self) -> list[tuple[Tensor, Tensor]]:
        raise NotImplementedError


@dataclass
class CharCorpus(Task):
    """Next-character prediction on `text`: the first 90 % trains, the last 10 % validates."""

    text: str
    source: str
    n_ctx: int = 64
    batch_size: int = 16
    val_batch_count: int = 4
    last_only: bool = False

    def __post_init__(self) -> None:
        self.chars = sorted(set(self.text))
        self.vocab_size = len(self.chars)
        index = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([index[c] for c in self.text], dtype=torch.long)
        split = int(0.9 * len(data))
        self.train, self.val = data[:split], data[split:]
        if len(self.val) <= self.n_ctx + 1 or len(self.train) <= self.n_ctx + 1:
            raise EpochscopeError(f"corpus {self.source}: too short for a context of {self.n_ctx}")
        # Fixed validation windows, evenly spaced: every evaluation sees the same text.
        n = self.val_batch_count * self.batch_size
        starts = torch.linspace(0, len(self.val) - self.n_ctx - 2, n).long()
        x = torch.stack([self.val[s:s + self.n_ctx] for s in starts])
        y = torch.stack([self.val[s + 1:s + 1 + self.n_ctx] for s in starts])
        self._val = list(zip(x.split(self.batch_size), y.split(self.batch_size), strict=True))

    def batch(self, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        starts = torch.randint(0, len(self.train) - self.n_ctx - 1, (self.batch_size,), generator=gen)
        offsets = starts[:, None] + torch.arange(self.n_ctx + 1)
        window = self.train[offsets]
        return window[:, :-1], window[:, 1:]

    def val_batches(self) -> list[tuple[Tensor, Tensor]]:
        return self._val

    def encode(self, text: str) -> Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        return torch.tensor([index.get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


@dataclass
class ModularAddition(Task):
    """(a + b) mod p from the tokens [a, b, =]; a seeded `train_frac` of all pairs trains."""

    p: int = 97
    train_frac: float = 0.3
    data_seed: int = 0
    batch_size: int = 256
    n_ctx: int = 3
    last_only: bool = True
    source: str = "modular addition"

    def __post_init__(self) -> None:
        if self.p < 2:
            raise EpochscopeError(f"p={self.p} must be at least 2")
        if not 0.0 < self.train_frac < 1.0:
            raise EpochscopeError(f"train_frac={self.train_frac} must be strictly between 0 and 1")
        self.vocab_size = self.p + 1
        a, b = torch.meshgrid(torch.arange(self.p), torch.arange(self.p), indexing="ij")
        x = torch.stack([a.ravel(), b.ravel(), torch.full((self.p * self.p,), self.p)], dim=1)
        y = (a.ravel() + b.ravel()) % self.p
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.data_seed))
        n = int(self.train_frac * len(x))
        self.train_x, self.train_y = x[perm[:n]], y[perm[:n]]
        self.test_x, self.test_y = x[perm[n:]], y[perm[n:]]

    def batch(self, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, len(self.train_x), (min(self.batch_size, len(self.train_x)),), generator=gen)
        return self.train_x[idx], self.train_y[idx]

    def val_batches(self) -> list[tuple[Tensor, Tensor]]:
        return [(self.test_x, self.test_y)]

    def decode(self, ids: list[int]) -> str:
        return " ".join(str(i) for i in ids)


def make_task(task: str, *, data: str | None, n_ctx: int, batch_size: int, p: int,
              train_frac: float, data_seed: int) -> Task:
    """The task named `task` ("chars" or "modular-addition") with its options."""
    if task == "chars":
        text, source = load_corpus_text(data)
        return CharCorpus(text, source, n_ctx=n_ctx, batch_size=batch_size)
    if data is not None:
        raise EpochscopeError("--data applies to task=chars only")
    return ModularAddition(p=p, train_frac=train_frac, data_seed=data_seed)
