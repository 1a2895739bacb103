"""The one-layer modular-addition transformer of Nanda et al. 2023 ("Progress measures for grokking").

Input ``[a, b, =]`` (token ``p`` is ``=``), learned positional embeddings, one causal attention
layer, one ReLU MLP, no LayerNorm, an untied unembedding onto the ``p`` residues. Loss and
accuracy read the final position only, so the fast path computes queries, the MLP and the
unembedding there alone; ``forward(..., all_positions=True)`` is the plain reference.
Parameter names follow TransformerLens (``W_E``, ``W_Q``, ``W_in``, ``W_U`` ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ModelConfig", "Transformer", "make_dataset", "PARAM_NAMES"]

# Parameter order of `Transformer.named_parameters()`; metric series use these names.
PARAM_NAMES = (
    "W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U",
)  # fmt: skip

_ACTS = {"relu": F.relu, "gelu": F.gelu}


@dataclass
class ModelConfig:
    """Shape of the model; `d_mlp=None` means 4 * d_model, `d_head` is d_model / n_heads."""

    p: int
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int | None = None
    n_ctx: int = 3
    act: str = "relu"

    def __post_init__(self) -> None:
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.act not in _ACTS:
            raise ValueError(f"act={self.act!r}: expected one of {sorted(_ACTS)}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab(self) -> int:
        """Residues 0..p-1 plus the '=' token (index p)."""
        return self.p + 1

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a dict, ignoring keys that are not model fields (e.g. a whole TrainConfig)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Transformer(nn.Module):
    """One attention layer (causal, no biases) + one MLP, residual stream, untied unembedding."""

    def __init__(self, config: ModelConfig | dict, *, generator: torch.Generator | None = None):
        super().__init__()
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config
        c = config
        h, d, e, m = c.n_heads, c.d_model, c.d_head, c.d_mlp
        self.W_E = nn.Parameter(torch.empty(c.d_vocab, d))
        self.W_pos = nn.Parameter(torch.empty(c.n_ctx, d))
        self.W_Q = nn.Parameter(torch.empty(h, d, e))
        self.W_K = nn.Parameter(torch.empty(h, d, e))
        self.W_V = nn.Parameter(torch.empty(h, d, e))
        self.W_O = nn.Parameter(torch.empty(h, e, d))
        self.W_in = nn.Parameter(torch.empty(d, m))
        self.b_in = nn.Parameter(torch.empty(m))
        self.W_out = nn.Parameter(torch.empty(m, d))
        self.b_out = nn.Parameter(torch.empty(d))
        self.W_U = nn.Parameter(torch.empty(d, c.p))
        self._act = _ACTS[c.act]
        self.reset_parameters(generator)

    @classmethod
    def from_config(cls, d: dict[str, Any] | ModelConfig) -> Transformer:
        """Rebuild from a stored config dict (extra keys such as training knobs are ignored)."""
        return cls(d if isinstance(d, ModelConfig) else ModelConfig.from_dict(d))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Gaussian init scaled as in Nanda et al.'s code: 1/sqrt(d_model), W_U by 1/sqrt(d_vocab)."""
        d = self.config.d_model
        for name, param in self.named_parameters():
            if name.startswith("b_"):
                param.zero_()
                continue
            scale = 1 / math.sqrt(self.config.d_vocab if name == "W_U" else d)
            param.copy_(torch.randn(param.shape, generator=generator) * scale)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    # ---------------------------------------------------------------- forward passes

    def forward(self, tokens: Tensor, *, all_positions: bool = False) -> Tensor:
        """Logits over the p residues: [batch, p] at the final position, or [batch, n_ctx, p]."""
        if all_positions:
            return self.forward_all_positions(tokens)
        return self._final(tokens)["logits"]

    def run_with_cache(self, tokens: Tensor, names: Sequence[str] | None = None
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """Final-position logits and every intermediate the analysis needs (see `_final`), plus
        `embed` [B, n_ctx, d] (residual stream entering the layer at every position), the final
        query `q` [B, h, e] and the keys `k` [B, n_ctx, h, e]. With `names`, the per-position
        extras (`embed`, `q`, `k`: a third of the pass's time) only when named."""
        cache = self._final(tokens)
        if names is not None and not {"embed", "q", "k"} & set(names):
            return cache["logits"], cache
        embed = self.W_E[tokens] + self.W_pos[: tokens.shape[1]]
        cache["embed"] = embed
        cache["q"] = torch.einsum("bd,hde->bhe", embed[:, -1], self.W_Q)
        cache["k"] = torch.einsum("bnd,hde->bnhe", embed, self.W_K)
        return cache["logits"], cache

    def _final(self, tokens: Tensor) -> dict[str, Tensor]:
        """Fast path: all positions give keys/values, only the last one queries and runs the MLP.

        With one layer, a position's residual input is W_E[token] + W_pos[pos], so attention
        scores depend only on (key position, query token, key token) and values on (position,
        token): both are computed once per vocabulary entry as tables and gathered per example,
        instead of projecting every example (and doing many tiny batched matmuls).

        Returns `resid_pre` [B, d] (final position), `v` [B, n_ctx, h, e], `attn_scores` and
        `pattern` [B, h, n_ctx] (final query), `z` [B, h, e], `attn_out`, `resid_mid` [B, d],
        `mlp_pre`/`mlp_post` [B, d_mlp], `mlp_out`, `resid_post` [B, d], `logits` [B, p].
        """
        c = self.config
        B, n, h, e, V = tokens.shape[0], tokens.shape[1], c.n_heads, c.d_head, c.d_vocab
        pos_embed = self.W_E.unsqueeze(0) + self.W_pos[:n].unsqueeze(1)  # [n, V, d]
        q_table = (pos_embed[-1] @ _flat(self.W_Q)).view(V, h, e)  # query of each final token
        k_table = (pos_embed @ _flat(self.W_K)).view(n, V, h, e)
        qk_table = torch.einsum("whe,nvhe->nwvh", q_table, k_table) / math.sqrt(e)
        pos = torch.arange(n, device=tokens.device)
        # row (pos, query token, key token) of the [n * V * V, h] score table
        scores = F.embedding((pos * V + tokens[:, -1:]) * V + tokens, qk_table.reshape(-1, h))
        pattern = scores.softmax(dim=1)  # [B, n, h]
        v_table = (pos_embed @ _flat(self.W_V)).reshape(n * V, h * e)
        v = F.embedding(tokens + pos * V, v_table).view(B, n, h, e)
        z = (pattern.unsqueeze(-1) * v).sum(1)  # [B, h, e]
        resid_pre = F.embedding(tokens[:, -1], pos_embed[-1])  # [B, d]
        attn_out = z.reshape(B, h * e) @ self.W_O.reshape(h * e, c.d_model)
        resid_mid = resid_pre + attn_out
        mlp_pre = torch.addmm(self.b_in, resid_mid, self.W_in)
        mlp_post = self._act(mlp_pre)
        mlp_out = torch.addmm(self.b_out, mlp_post, self.W_out)
        resid_post = resid_mid + mlp_out
        logits = resid_post @ self.W_U
        return {
            "resid_pre": resid_pre, "v": v, "attn_scores": scores.transpose(1, 2),
            "pattern": pattern.transpose(1, 2), "z": z, "attn_out": attn_out,
            "resid_mid": resid_mid, "mlp_pre": mlp_pre, "mlp_post": mlp_post,
            "mlp_out": mlp_out, "resid_post": resid_post, "logits": logits,
        }  # fmt: skip

    def forward_all_positions(self, tokens: Tensor) -> Tensor:
        """Reference implementation: causal attention and MLP at every position, [B, n_ctx, p]."""
        c = self.config
        n = tokens.shape[1]
        x = self.W_E[tokens] + self.W_pos[:n]
        q = torch.einsum("bnd,hde->bhne", x, self.W_Q)
        k = torch.einsum("bnd,hde->bhne", x, self.W_K)
        v = torch.einsum("bnd,hde->bhne", x, self.W_V)
        scores = torch.einsum("bhqe,bhke->bhqk", q, k) / math.sqrt(c.d_head)
        causal = torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril()
        pattern = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        z = torch.einsum("bhqk,bhke->bhqe", pattern, v)
        x = x + torch.einsum("bhqe,hed->bqd", z, self.W_O)
        x = x + self._act(x @ self.W_in + self.b_in) @ self.W_out + self.b_out
        return x @ self.W_U


def _flat(W: Tensor) -> Tensor:
    """[h, d, e] per-head projection -> [d, h * e] single matrix."""
    return W.permute(1, 0, 2).reshape(W.shape[1], -1)


def make_dataset(p: int, *, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """All p*p inputs `[a, b, p]` in row-major (a, b) order and their labels (a + b) mod p."""
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    return tokens, (a + b) % p


def _register() -> None:
    """Let `load_model` rebuild this class from a bundle's stored config (when available)."""
    try:
        from epochscope.collectors.checkpoints import register_model
    except ImportError:  # checkpoints module not there yet: loading is just unavailable
        return
    register_model(Transformer)


_register()
