"""Traces of chosen inputs through training ("how does the model handle 4 + 29?").

A *probe* is a named set of inputs, given as a spec: `[NAME=]ITEM,ITEM,...` where an ITEM
is an input `A+B` (0 <= A, B < p) or a rule:

- `wrong[:N]`: the inputs the final model (the run's last checkpoint) gets wrong, worst
  margin first (at most N, default 32); when it gets none wrong, the N smallest margins;
- `test[:N]` / `train[:N]`: a random sample (seed 0) of N test / training inputs (needs
  the split stored in the bundle);
- `random[:N]`: a random sample of N inputs.

Each probe is its own artifact `probe_<NAME>` (several per run); the spec, the rule's
resolution and the resolved inputs are stored with it (params and summary), and later
`analyze` calls extend it to new checkpoints with the same inputs. Per checkpoint and input:

- `correct`, `loss`, `margin` (correct logit minus the best other);
- direct logit attribution of the correct answer y: the final residual stream is
  embedding + each head's output + the MLP's output (with b_out); each part's dot product
  with the centred unembedding direction u_y = W_U[:, y] - mean_c W_U[:, c] is its
  contribution to logit_y - mean logit (`dla_embed`, `dla_heads` [H], `dla_mlp`; they sum
  to `logit_centred`). The MLP part is split further by the run's key frequencies (the
  component of the neurons' activations along cos/sin of k (a + b) over the grid, as in the
  restricted loss): `dla_mlp_mean` (mean activation and b_out), `dla_mlp_freq` [F] and
  `dla_mlp_other` (the rest), summing to `dla_mlp`;
- a logit lens over the final position's residual stream at `stages` (after the embedding,
  after attention, after the MLP): the correct answer's log-probability, its rank (0 = top)
  and the top answer;
- the attention of the '=' position to a, b and '=' per head.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from epochscope.collectors.analysis.base import AnalysisError, Analyzer, EpochData, RunInfo
from epochscope.collectors.analysis.inputs import margin_and_loss
from epochscope.collectors.analysis.loss import key_parts, sum_directions
from epochscope.optional import LazyModule

torch = LazyModule("torch")

__all__ = ["ProbeSpec", "Trace", "parse_probe"]

RULES = ("wrong", "test", "train", "random")
DEFAULT_N = 32
MAX_INPUTS = 4096
STAGES = ("embed", "attn", "mlp")
_PAIR = re.compile(r"^\s*(-?\d+)\s*\+\s*(-?\d+)\s*$")
_RULE = re.compile(r"^\s*([a-z]+)\s*(?::\s*(\d+)\s*)?$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class ProbeSpec:
    """A parsed probe spec: its name, explicit (a, b) pairs and rules [(rule, n)]."""

    def __init__(self, text: str, name: str, pairs: list[tuple[int, int]],
                 rules: list[tuple[str, int]]):
        self.text, self.name, self.pairs, self.rules = text, name, pairs, rules

    def check_range(self, p: int) -> None:
        for a, b in self.pairs:
            for which, v in (("a", a), ("b", b)):
                if not 0 <= v < p:
                    raise AnalysisError(
                        f"probe {self.name!r}: input {a}+{b}: {which} = {v} is outside 0..{p - 1} "
                        f"(p = {p})"
                    )


def parse_probe(text: str) -> ProbeSpec:
    """Parse `[NAME=]ITEM,...` (module doc); a malformed spec raises one clear AnalysisError."""
    raw = str(text)
    body, name = raw, None
    if "=" in raw:
        name, body = (x.strip() for x in raw.split("=", 1))
        if not _NAME.match(name):
            raise AnalysisError(
                f"bad probe name {name!r}: use 1-40 letters, digits, '_', '-' or '.'"
            )
    pairs: list[tuple[int, int]] = []
    rules: list[tuple[str, int]] = []
    items = [x for x in body.split(",")]
    if not body.strip() or any(not x.strip() for x in items):
        raise AnalysisError(f"bad probe {raw!r}: expected inputs like '4+29,17+96' or a rule "
                            f"({', '.join(r + '[:N]' for r in RULES)})")
    for item in items:
        m = _PAIR.match(item)
        if m:
            pairs.append((int(m.group(1)), int(m.group(2))))
            continue
        r = _RULE.match(item)
        if r and r.group(1) in RULES:
            n = int(r.group(2)) if r.group(2) else DEFAULT_N
            if not 1 <= n <= MAX_INPUTS:
                raise AnalysisError(f"bad probe item {item.strip()!r}: N must be 1..{MAX_INPUTS}")
            rules.append((r.group(1), n))
            continue
        raise AnalysisError(
            f"bad probe item {item.strip()!r} in {raw!r}: expected A+B with integers A, B or a "
            f"rule ({', '.join(r + '[:N]' for r in RULES)})"
        )
    if len(dict.fromkeys(pairs)) != len(pairs):
        pairs = list(dict.fromkeys(pairs))
    if name is None:
        if not pairs and len(rules) == 1:
            rule, n = rules[0]
            name = rule if n == DEFAULT_N else f"{rule}{n}"
        else:
            import hashlib

            name = "inputs_" + hashlib.sha256(body.replace(" ", "").encode()).hexdigest()[:8]
    return ProbeSpec(raw, name, pairs, rules)


class Trace(Analyzer):
    """Per-input traces of one probe (module doc); one instance and artifact per probe."""

    name = "probe"  # instances are named probe_<NAME>
    version = "1"
    consumes = "activations"
    modular = True
    description = (
        "Traces of a probe's inputs (epochscope analyze RUN --probe '4+29,17+96'): correct, "
        "loss, margin, direct logit attribution of the correct answer to the embedding, each "
        "head, the MLP and its key frequencies, and a logit lens over the residual stream."
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"spec": "", "seed": 0}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.spec = parse_probe(self.params["spec"])
        self.name = f"probe_{self.spec.name}"

    def applies(self, info: RunInfo) -> str | None:
        reason = super().applies(info)
        if reason is None and not {"W_out", "W_U", "W_O", "b_out"} <= set(info.shapes):
            reason = "the model lacks W_O, W_out, b_out or W_U"
        return reason

    def prepare(self, info: RunInfo, stored: Any, reference: Callable[[], Any]) -> None:
        p = self.p = int(info.p)
        self.spec.check_range(p)
        if stored is not None and "a" in stored.summary_names:
            self.a = stored.summary("a").astype(np.int64)
            self.b = stored.summary("b").astype(np.int64)
            self.key_freqs = [int(k) for k in stored.summary("key_freqs")]
            self.scalars = dict(stored.scalars)
            self.scalars.pop("skipped", None)
            self.in_train = (stored.summary("in_train") if "in_train" in stored.summary_names
                             else None)
            self._setup()
            return
        ref = reference()
        from epochscope.collectors.analysis.probe import grid_split

        train, test, why = grid_split(p, info.split)
        idx: list[int] = [a * p + b for a, b in self.spec.pairs]
        resolved: list[str] = []
        rng = np.random.default_rng(int(self.params["seed"]))
        for rule, n in self.spec.rules:
            if rule in ("train", "test"):
                pool = train if rule == "train" else test
                if pool is None:
                    raise AnalysisError(
                        f"probe {self.spec.name!r}: rule '{rule}' needs the train/test split, and "
                        f"{why}; unavailable: train and test inputs (use explicit inputs or "
                        "'wrong' / 'random')"
                    )
                pick = rng.choice(pool, size=min(n, len(pool)), replace=False)
                resolved.append(f"{rule}:{n}: {len(pick)} random {rule} inputs (seed "
                                f"{self.params['seed']})")
            elif rule == "random":
                pick = rng.choice(p * p, size=min(n, p * p), replace=False)
                resolved.append(f"random:{n}: {len(pick)} random inputs")
            else:  # wrong
                margin = ref.margin
                wrong = np.nonzero(margin < 0)[0]
                if len(wrong):
                    pick = wrong[np.argsort(margin[wrong], kind="stable")][:n]
                    resolved.append(f"wrong:{n}: {len(pick)} of the {len(wrong)} inputs wrong at "
                                    f"epoch {ref.epoch}, worst first")
                else:
                    pick = np.argsort(margin, kind="stable")[:n]
                    resolved.append(f"wrong:{n}: none wrong at epoch {ref.epoch}; the {len(pick)} "
                                    "inputs with the smallest margin instead")
            idx.extend(int(i) for i in np.sort(pick))
        idx = list(dict.fromkeys(idx))
        self.a = np.asarray([i // p for i in idx], dtype=np.int64)
        self.b = np.asarray([i % p for i in idx], dtype=np.int64)
        self.key_freqs = list(ref.key_freqs)
        self.scalars = {
            "spec": self.spec.text,
            "probe": self.spec.name,
            "resolved": resolved,
            "resolved_epoch": ref.epoch,
            "n_inputs": len(idx),
            "stages": list(STAGES),
        }
        if train is None:
            self.scalars["unavailable"] = f"train/test membership of the inputs ({why})"
        in_train = np.full(len(idx), -1, dtype=np.int8)
        if train is not None:
            in_train = np.isin(np.asarray(idx, dtype=np.int64), train).astype(np.int8)
        self.in_train = in_train
        self._setup()

    def _setup(self) -> None:
        p = self.p
        self.rows = torch.as_tensor(self.a * p + self.b)
        self.labels = torch.as_tensor((self.a + self.b) % p)
        self.dirs = sum_directions(p, self.key_freqs).to(torch.float32)
        self.freq_cols, start = [], 0
        for k in self.key_freqs:
            width = sum_directions(p, [k]).shape[1]
            self.freq_cols.append(list(range(start, start + width)))
            start += width

    def compute(self, batch: list[EpochData]) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {}
        for d in batch:
            for key, value in self._one(d).items():
                out.setdefault(key, []).append(value)
        return {k: np.stack(v) for k, v in out.items()}

    def _one(self, d: EpochData) -> dict[str, np.ndarray]:
        rows, y = self.rows, self.labels
        w = {k: torch.from_numpy(np.asarray(d.weights[k], dtype=np.float32))
             for k in ("W_O", "W_out", "b_out", "W_U")}
        cache = d.cache
        W_U = w["W_U"]  # [d_model, p]
        u = W_U[:, y] - W_U.mean(dim=1, keepdim=True)  # [d_model, N] centred directions
        resid_pre = cache["resid_pre"][rows].float()
        z = cache["z"][rows].float()  # [N, H, e]
        heads = torch.einsum("nhe,hed->nhd", z, w["W_O"])  # [N, H, d_model]
        acts = cache["mlp_post"].float()
        mlp_out = acts[rows] @ w["W_out"] + w["b_out"]
        dla_embed = (resid_pre * u.T).sum(1)
        dla_heads = torch.einsum("nhd,dn->nh", heads, u)
        dla_mlp = (mlp_out * u.T).sum(1)
        # the MLP's key-frequency parts: activations projected on cos/sin k (a + b) over the grid
        V = self.dirs
        parts = key_parts(d, self.key_freqs, V, acts)  # [1 + 2F, d_mlp], shared
        out_u = w["W_out"] @ u  # [d_mlp, N]
        mean_part = (parts[0] @ out_u) + (w["b_out"] @ u)  # [N]
        coef = parts[1:] @ out_u  # [2F, N]: direction j's activation pattern mapped to each logit
        vr = V[rows]  # [N, 2F]
        per_dir = vr * coef.T  # [N, 2F]
        freq = torch.stack([per_dir[:, c].sum(1) for c in self.freq_cols], dim=1) if self.freq_cols \
            else torch.zeros(len(rows), 0)
        other = dla_mlp - mean_part - freq.sum(1)
        # logit lens
        resid_mid = resid_pre + heads.sum(1)
        resid_post = resid_mid + mlp_out
        lens_lp, lens_rank, lens_top = [], [], []
        for r in (resid_pre, resid_mid, resid_post):
            logits = r @ W_U
            lp = torch.log_softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
            right = logits.gather(1, y[:, None])
            lens_lp.append(lp)
            lens_rank.append((logits > right).sum(1))
            lens_top.append(logits.argmax(1))
        final_logits = cache["logits"][rows].float()
        margin, loss = margin_and_loss(final_logits, y)
        pattern = cache["pattern"][rows].float()  # [N, H, n_ctx]
        return {
            "correct": (margin >= 0).numpy(),
            "loss": loss.numpy().astype(np.float32),
            "margin": margin.numpy().astype(np.float32),
            "logit_centred": (final_logits.gather(1, y[:, None])[:, 0]
                              - final_logits.mean(1)).numpy().astype(np.float32),
            "dla_embed": dla_embed.numpy().astype(np.float32),
            "dla_heads": dla_heads.numpy().astype(np.float32),
            "dla_mlp": dla_mlp.numpy().astype(np.float32),
            "dla_mlp_mean": mean_part.numpy().astype(np.float32),
            "dla_mlp_freq": freq.numpy().astype(np.float32),
            "dla_mlp_other": other.numpy().astype(np.float32),
            "lens_logprob": torch.stack(lens_lp, 1).numpy().astype(np.float32),
            "lens_rank": torch.stack(lens_rank, 1).numpy().astype(np.int16),
            "lens_top": torch.stack(lens_top, 1).numpy().astype(np.int16),
            "attention": pattern.numpy().astype(np.float32),
        }

    def summary(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        summary = {
            "a": self.a,
            "b": self.b,
            "label": (self.a + self.b) % self.p,
            "key_freqs": np.asarray(self.key_freqs, dtype=np.int64),
            "stages": np.asarray(STAGES, dtype=object),
        }
        if self.in_train is not None:
            summary["in_train"] = self.in_train
        return summary, dict(self.scalars)
