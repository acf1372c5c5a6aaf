"""Method ``hd``: cross-entropy with the LR adapted online by hypergradient descent (SGD-HD).

A baseline for MLR-SNet: it also adapts the LR as training goes, but greedily from the last
two gradients, without a meta set. See `metakit.schedules.hd`.

Example:
    >>> from metakit.experiments import Config, run
    >>> r = run(Config(method="hd", profile="smoke", epochs=1, progress=False))
    >>> bool(r.history["lr"].iloc[0] > 0)
    True
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from metakit.schedules.hd import HypergradientLR
from metakit.methods.registry import register
from metakit.methods.base import Method, Trainer

if TYPE_CHECKING:
    from metakit.data.batches import Batch


@register
class HypergradientMethod(Method):
    """Options: ``hd_beta`` (β, default 1e-3), ``min_lr`` (floor, default 0)."""

    name = "hd"

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, *, hd_beta: float = 1e-3,
                 min_lr: float = 0.0):
        super().__init__(num_classes, class_counts, config)
        if not hd_beta >= 0:
            raise ValueError(f"hd_beta={hd_beta!r} must be >= 0, e.g. 1e-3.")
        self.hd_beta, self.min_lr = hd_beta, min_lr
        self.hd: HypergradientLR | None = None

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """SGD-HD adapts plain SGD: momentum 0, no hand schedule on top."""
        return dict(momentum=0.0, nesterov=False, schedule="fixed", warmup_epochs=0)

    def setup(self, trainer: "Trainer") -> None:
        self.hd = HypergradientLR(trainer.optimizer, beta=self.hd_beta, min_lr=self.min_lr)

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        with trainer.autocast():
            logits = trainer.net(batch.x)                                             # (B, C)
            loss = self.loss(logits.float(), batch.y)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = self.hd.step()                        # α_t from ⟨g_t, g_{t−1}⟩, before the step uses it
        trainer.optimizer.step()
        return {"loss": loss.detach(), "correct": (logits.argmax(1) == batch.y).sum(), "lr": torch.tensor(lr)}

    def state_dict(self) -> dict[str, Any]:
        """`Method.state_dict` plus the hypergradient LR α_t and the last gradient g_{t−1}."""
        previous = None if self.hd is None or self.hd.previous is None else [g.clone() for g in self.hd.previous]
        return {**super().state_dict(), "lr": None if self.hd is None else self.hd.lr, "previous": previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.hd is None:
            raise RuntimeError("HypergradientMethod.setup(trainer) must run before load_state_dict.")
        self.hd.lr = float(state["lr"])
        device = next((p.device for g in self.hd.optimizer.param_groups for p in g["params"]), None)
        self.hd.previous = None if state["previous"] is None else [g.to(device) for g in state["previous"]]
