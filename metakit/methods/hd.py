"""Method ``hd``: cross-entropy with the LR adapted online by hypergradient descent (SGD-HD).

A baseline for MLR-SNet: it also adapts the LR as training goes, but greedily from the last
two gradients, without a meta set. The method only declares its schedule ("hd", see
`metakit.schedules.hd`); the plain step (`metakit.methods.base.Trainer.real_step`) runs it.

Example:
    >>> from metakit.experiments import Config, run
    >>> r = run(Config(method="hd", profile="smoke", epochs=1, progress=False))
    >>> bool(r.history["lr"].iloc[0] > 0)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metakit.methods.base import Method
from metakit.methods.registry import register
from metakit.options import option


@dataclass(frozen=True)
class HDOptions:
    """Options of ``method="hd"``; the base LR α_0 is ``Config.lr``."""

    hd_beta: float = option(1e-3, "the hypergradient step size β (Baydin et al. use 1e-3 for SGD)", low=0)
    min_lr: float = option(0.0, "floor on the LR (HD can drive it negative; 0 keeps a descent step)", low=0)


@register
class HypergradientMethod(Method):
    """Cross-entropy whose LR follows SGD-HD (``Config(method="hd")``); options: `HDOptions`.

    Example:
        >>> HypergradientMethod(num_classes=3, class_counts=[5, 3, 1], hd_beta=0.01).lr_schedule()
        ('hd', {'beta': 0.01, 'min_lr': 0.0})
    """

    name = "hd"
    Options = HDOptions
    learns = ""
    enters = None

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """SGD-HD adapts plain SGD: momentum 0, no hand schedule on top."""
        return dict(momentum=0.0, nesterov=False, schedule="fixed", warmup_epochs=0)

    def lr_schedule(self) -> tuple[str, dict[str, Any]]:
        """The "hd" schedule with β and the floor of these options."""
        return "hd", {"beta": self.options.hd_beta, "min_lr": self.options.min_lr}
