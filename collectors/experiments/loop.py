"""The training step both experiments share, and the per-step telemetry they record.

`Trainer.step` is one AdamW step with gradient clipping; it returns the loss, gradient
norm and clipped share (the fraction of the gradient norm clipping cut away: 0 when the norm
was below `grad_clip`). `Telemetry` logs those every step with the notes' CUSUM monitors
beside them, and is skipped entirely in a bare run (no recorder).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from epochscope.collectors.experiments.lm import TinyLM, effective_rank
from epochscope.collectors.experiments.monitors import CUSUM_MONITORS, OnlineCusum

__all__ = ["Telemetry", "Trainer", "evaluate", "sample_text"]


class Trainer:
    """A model, its AdamW optimizer and clipping; `step` trains on one batch."""

    def __init__(self, model: TinyLM, *, lr: float, weight_decay: float, grad_clip: float,
                 last_only: bool):
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay,
                                           betas=(0.9, 0.99), foreach=True)
        self.grad_clip = grad_clip
        self.last_only = last_only

    def step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        t0 = time.perf_counter()
        loss, _ = self.model.loss(x, y, self.last_only)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip, foreach=True)
        self.optimizer.step()
        dt = time.perf_counter() - t0
        norm_f = float(norm)
        clipped = max(0.0, 1.0 - self.grad_clip / (norm_f + 1e-6))
        return {"train_loss": loss.item(), "grad_norm": norm_f, "clip_fraction": clipped,
                "tokens_per_sec": x.numel() / dt if dt > 0 else float("nan")}

    def reset_optimizer(self) -> None:
        """Forget AdamW's moments (the notes' "warm restart on switch")."""
        self.optimizer.state.clear()


@torch.inference_mode()
def evaluate(model: TinyLM, batches: list[tuple[Tensor, Tensor]], last_only: bool) -> tuple[float, float]:
    """(mean loss, mean accuracy) over fixed validation batches."""
    losses, accs = [], []
    for x, y in batches:
        loss, acc = model.loss(x, y, last_only)
        losses.append(float(loss))
        accs.append(float(acc))
    return sum(losses) / len(losses), sum(accs) / len(accs)


@torch.inference_mode()
def sample_text(model: TinyLM, task: Any, prompt: str, n: int, seed: int,
                temperature: float = 0.8) -> str:
    """`n` characters sampled after `prompt` (seeded, so a checkpoint always gives the same text);
    for modular addition, the model's answers to a few fixed test pairs."""
    if task.last_only:
        x, y = task.test_x[:8], task.test_y[:8]
        pred = model(x)[:, -1].argmax(-1)
        return "; ".join(f"{int(a)}+{int(b)}={int(p)}{'' if int(p) == int(t) else ' (want ' + str(int(t)) + ')'}"
                         for (a, b, _), p, t in zip(x.tolist(), pred, y, strict=True))
    gen = torch.Generator().manual_seed(seed)
    ids = task.encode(prompt).tolist()
    for _ in range(n):
        ctx = torch.tensor([ids[-task.n_ctx:]])
        logits = model(ctx)[0, -1] / temperature
        ids.append(int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)))
    return task.decode(ids[len(prompt):])


class Telemetry:
    """Per-step series (with the step inside the current window beside the global step), the
    four CUSUM monitors with their alarms as events, and effective rank every `interval` steps."""

    def __init__(self, rec: Any, *, metrics_interval: int, cusum_h: float = 4.0, cusum_n: int = 10):
        self.rec = rec
        self.interval = metrics_interval
        self.monitors = {name: OnlineCusum(h=cusum_h, baseline_n=cusum_n) for name in CUSUM_MONITORS}

    def step(self, step: int, local: int, metrics: dict[str, float]) -> None:
        out = dict(metrics)
        for name, source in CUSUM_MONITORS.items():
            if source in metrics:
                out[name] = self._cusum(step, name, source, metrics[source])
        self.rec.log_step(step, local, **out)

    def _cusum(self, step: int, name: str, source: str, value: float) -> float:
        sp, sn, alarm = self.monitors[name].update(value)
        if alarm is not None:
            direction, stat = alarm
            self.rec.event(step, "cusum_alarm", f"{name}: {source} shifted {direction} "
                           f"(statistic {stat:.1f})",
                           payload={"monitor": name, "series": source, "direction": direction,
                                    "statistic": stat})
        return max(sp, sn)

    def val_monitor(self, step: int, local: int, model: TinyLM, batches: list[tuple[Tensor, Tensor]],
                    last_only: bool) -> float:
        """Evaluate `batches` for the validation monitor, log it; returns the loss."""
        val_loss, val_acc = evaluate(model, batches, last_only)
        self.val(step, local, val_loss, val_acc)
        return val_loss

    def val(self, step: int, local: int, val_loss: float, val_acc: float) -> None:
        self.rec.log_step(step, local, val_loss=val_loss, val_acc=val_acc,
                          cusum_val=self._cusum(step, "cusum_val", "val_loss", val_loss))

    def effective_ranks(self, step: int, model: TinyLM) -> None:
        # Matrices of one shape share one batched SVD (fc_out is transposed to fc_in's shape:
        # the same singular values), a third of the cost of one call per matrix.
        groups: dict[tuple[int, ...], list[tuple[str, Tensor]]] = {}
        for i, block in enumerate(model.blocks):
            for part, w in (("qkv", block.qkv.weight), ("proj", block.proj.weight),
                            ("fc_in", block.mlp.fc_in.weight), ("fc_out", block.mlp.fc_out.weight.T)):
                groups.setdefault(tuple(w.shape), []).append((f"effective_rank.{i}.{part}", w))
        ranks = {}
        for items in groups.values():
            for (name, _), r in zip(items, effective_rank(torch.stack([w for _, w in items])), strict=True):
                ranks[name] = r
        ranks = {name: ranks[name] for name in sorted(ranks)}
        ranks["effective_rank"] = sum(ranks.values()) / len(ranks)
        self.rec.log(step, **ranks)
