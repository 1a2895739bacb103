"""A small pre-LayerNorm transformer language model whose FFN activation can be switched.

The notes' test config: `d_model=64, n_heads=2, n_layers=2`, FFN width 4 * d_model. The
activation is a name in `ACTIVATIONS`, read at each forward, so an evolutionary search can
switch it between steps while the weights carry over. Each MLP can report its hidden
activations' gradient x activation per neuron (the apoptosis fitness) through `track`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from epochscope.collectors.checkpoints import register_model
from epochscope.errors import EpochscopeError

__all__ = ["ACTIVATIONS", "ACTIVATION_COST", "LMConfig", "TinyLM", "check_activation", "effective_rank"]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu, "silu": F.silu, "relu": F.relu, "tanh": torch.tanh,
    "leaky_relu": F.leaky_relu, "elu": F.elu, "softplus": F.softplus, "mish": F.mish,
}
# Relative cost of evaluating each activation (elementwise ops of its usual formula), the
# "complexity" a search's fitness penalises: relu-like 1, one transcendental 2, more 3.
ACTIVATION_COST = {"relu": 1.0, "leaky_relu": 1.0, "tanh": 2.0, "elu": 2.0, "silu": 2.0,
                   "softplus": 2.0, "gelu": 3.0, "mish": 3.0}


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise EpochscopeError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return name


@dataclass
class LMConfig:
    """Shape of the model; `d_mlp=None` means 4 * d_model."""

    vocab_size: int
    n_ctx: int = 64
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    d_mlp: int | None = None
    act: str = "gelu"

    def __post_init__(self) -> None:
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        if self.d_model % self.n_heads:
            raise EpochscopeError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        for key in ("vocab_size", "n_ctx", "d_model", "n_heads", "n_layers", "d_mlp"):
            if getattr(self, key) < 1:
                raise EpochscopeError(f"{key}={getattr(self, key)} must be at least 1")
        check_activation(self.act)


class MLP(nn.Module):
    """fc_in -> activation -> fc_out; with `track`, sums |activation x its gradient| per neuron."""

    def __init__(self, d_model: int, d_mlp: int, owner: TinyLM):
        super().__init__()
        self.fc_in = nn.Linear(d_model, d_mlp)
        self.fc_out = nn.Linear(d_mlp, d_model)
        self._owner = [owner]  # a list: not registered as a submodule
        self.track = False
        self.fitness = torch.zeros(d_mlp)
        self.last_input: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        h = ACTIVATIONS[self._owner[0].config.act](self.fc_in(x))
        if self.track and h.requires_grad:
            self.last_input = x.detach()
            h.register_hook(self._fitness_hook(h.detach()))
        return self.fc_out(h)

    def _fitness_hook(self, h: Tensor) -> Callable[[Tensor], None]:
        def hook(grad: Tensor) -> None:
            self.fitness.add_((grad * h).abs().sum(dim=(0, 1)))

        return hook


class Block(nn.Module):
    def __init__(self, c: LMConfig, owner: TinyLM):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = MLP(c.d_model, c.d_mlp, owner)  # type: ignore[arg-type]
        self.n_heads = c.n_heads

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


@register_model
class TinyLM(nn.Module):
    """Token and position embeddings, `n_layers` blocks, final LayerNorm, untied head."""

    def __init__(self, config: LMConfig | dict, *, generator: torch.Generator | None = None):
        super().__init__()
        if isinstance(config, dict):
            config = LMConfig(**config)
        self.config = config
        c = config
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = nn.Embedding(c.n_ctx, c.d_model)
        self.blocks = nn.ModuleList(Block(c, self) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)
        self._init(generator)

    @classmethod
    def from_config(cls, config: dict) -> TinyLM:
        return cls(LMConfig(**config))

    def _init(self, gen: torch.Generator | None) -> None:
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.ndim == 1:
                    if "ln" in name:
                        p.fill_(1.0 if name.endswith("weight") else 0.0)
                    else:
                        p.zero_()
                else:
                    std = 0.02 / math.sqrt(2 * self.config.n_layers) if name.endswith(("proj.weight", "fc_out.weight")) else 0.02
                    p.normal_(0.0, std, generator=gen)

    def set_activation(self, name: str) -> None:
        """Switch every FFN to activation `name`; the weights stay as they are."""
        self.config.act = check_activation(name)

    @property
    def mlps(self) -> list[MLP]:
        return [b.mlp for b in self.blocks]  # type: ignore[union-attr]

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(t))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))

    def loss(self, x: Tensor, y: Tensor, last_only: bool) -> tuple[Tensor, Tensor]:
        """(mean cross-entropy, accuracy) on a batch; `last_only` scores the final position."""
        logits = self(x)
        logits = logits[:, -1] if last_only else logits.reshape(-1, logits.shape[-1])
        y = y if last_only else y.reshape(-1)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        return loss, acc

    def config_dict(self) -> dict:
        return asdict(self.config)


def effective_rank(weight: Tensor, threshold: float = 0.01) -> list[int]:
    """How many singular values exceed `threshold` x the largest (the notes' definition), for
    each matrix of a stack (..., m, n)."""
    w = weight.detach().double()
    # Singular values are the square roots of the eigenvalues of the smaller Gram matrix: a
    # symmetric eigensolve, several times faster than an SVD on CPU (float64 keeps the 1e-4
    # ratio of squared values well above rounding).
    gram = w @ w.transpose(-1, -2) if w.shape[-2] <= w.shape[-1] else w.transpose(-1, -2) @ w
    s = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(-1).reshape(-1, gram.shape[-1])
    return [int((row > threshold * row[0]).sum()) if row[0] > 0 else 0 for row in s]
