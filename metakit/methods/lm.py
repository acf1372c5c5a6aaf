"""The language model's methods: next-word cross-entropy, plain or with MLR-SNet's meta-learned LR.

`metakit.experiments.text.run_lm` builds them for the word-level LSTM; they are not registered
(``Config.method`` names image methods), since the LM picks its method from its ``schedule``.

Example:
    >>> m = NextWord(num_classes=5, class_counts=[1] * 5)
    >>> m.loss(torch.zeros(3, 5), torch.tensor([0, 1, 4])).item() > 1.6
    True
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from metakit.methods.base import Method, Trainer
from metakit.methods.mlrsnet import MLRSNetMethod

__all__ = ["NextWord", "NextWordMLRSNet"]


class NextWord(Method):
    """Next-word cross-entropy, the batch mean as ``F.cross_entropy`` reduces it (its summation
    order: the numbers of the LM's earlier loop)."""

    name = "next_word"

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)                                        # logits (T·B, V)

    def train_step(self, trainer: Trainer, batch: Any, meta_batch: Any) -> dict[str, torch.Tensor]:
        """The plain step; the LR reported in float64 (not float32), as the LM has always logged it."""
        out = super().train_step(trainer, batch, meta_batch)
        out["lr"] = torch.tensor(trainer.optimizer.param_groups[0]["lr"], dtype=torch.float64)
        return out


class NextWordMLRSNet(MLRSNetMethod):
    """MLR-SNet meta-trained on the language model: cuDNN's LSTM has no double backward, and the
    accuracy probe forward is skipped (it would draw dropout masks)."""

    @torch.no_grad()
    def _correct(self, net: nn.Module, batch: Any) -> torch.Tensor:
        return torch.zeros((), dtype=torch.long, device=batch.y.device)

    def train_step(self, trainer: Trainer, batch: Any, meta_batch: Any) -> dict[str, torch.Tensor]:
        with torch.backends.cudnn.flags(enabled=False):
            return super().train_step(trainer, batch, meta_batch)
