"""Hypergradient descent (HD): the LR follows the gradient of the loss with respect to itself.

For plain SGD, θ_t = θ_{t−1} − α_t g_t with g_t = ∇f(θ_{t−1}), the derivative of f(θ_{t−1})
with respect to the previous step size is −g_t · g_{t−1}, so HD updates (Baydin et al. 2018,
"Online Learning Rate Adaptation with Hypergradient Descent", SGD-HD, Alg. 1):

    α_t = α_{t−1} + β · ⟨g_t, g_{t−1}⟩

The LR grows while successive gradients agree and shrinks when they point against each
other. g includes the optimiser's L2 weight decay (the direction SGD actually steps). With
momentum the update direction is no longer −g; we keep the SGD-HD rule on the gradients
(Baydin's SGDN-HD uses the momentum buffer), so compare schedules with momentum 0.
"""
from __future__ import annotations

import torch

from metakit.schedules.base import LRSchedule
from metakit.schedules.registry import ScheduleArgs, register_schedule


class HypergradientLR(LRSchedule):
    """SGD-HD on an optimiser: ``update()`` after ``backward()`` and before ``optimizer.step()``.

    An `metakit.schedules.base.LRSchedule` that needs the gradients: the one plain step
    (`metakit.methods.base.Trainer.real_step`) calls it where they exist.

    Args:
        optimizer: the optimiser; its current LR is α_0.
        iters_per_epoch: iterations a epoch (for ``.epoch`` only).
        beta: the hypergradient step size β (Baydin et al. use 1e-3 for SGD).
        min_lr: floor on α (HD itself can drive α negative; 0 keeps it a descent step).

    Example:
        >>> w = torch.zeros(1, requires_grad=True)
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> hd = HypergradientLR(opt, beta=0.01)
        >>> for _ in range(2):
        ...     opt.zero_grad(); ((w - 1) ** 2).sum().backward(); lr = hd.update(); opt.step()
        >>> round(lr, 4)         # 0.1 + 0.01 · (−1.6)(−2)
        0.132
    """

    name = "hd"
    needs = ("grads",)

    def __init__(self, optimizer: torch.optim.Optimizer, iters_per_epoch: int = 1, *, beta: float = 1e-3,
                 min_lr: float = 0.0):
        if not beta >= 0:
            raise ValueError(f"beta={beta!r} must be >= 0 (the hypergradient step), e.g. 1e-3.")
        if not min_lr >= 0:
            raise ValueError(f"min_lr={min_lr!r} must be >= 0.")
        super().__init__(optimizer, iters_per_epoch)
        self.beta, self.min_lr = float(beta), float(min_lr)
        self.lr = float(optimizer.param_groups[0]["lr"])
        self.previous: list[torch.Tensor] | None = None

    def _gradients(self) -> list[torch.Tensor]:
        grads = []
        for group in self.optimizer.param_groups:
            decay = group.get("weight_decay", 0.0)
            for p in group["params"]:
                if p.grad is not None:
                    grads.append((p.grad + decay * p).detach().clone() if decay else p.grad.detach().clone())
        return grads

    @torch.no_grad()
    def next_lr(self, loss: torch.Tensor | float | None = None) -> float:
        """α_t from ⟨g_t, g_{t−1}⟩ (g_t read from ``.grad``); keeps g_t for the next step."""
        grads = self._gradients()
        if self.previous is not None and len(self.previous) == len(grads):
            dot = sum(torch.sum(g * h) for g, h in zip(grads, self.previous))
            self.lr = max(self.min_lr, self.lr + self.beta * float(dot))
        self.previous = grads
        return self.lr

    def state_dict(self) -> dict:
        return {**super().state_dict(), "lr": self.lr, "previous": self.previous}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.lr, self.previous = float(state["lr"]), state["previous"]


@register_schedule("hd")
def build_hd(optimizer: torch.optim.Optimizer, args: ScheduleArgs, **options) -> HypergradientLR:
    """"hd": `HypergradientLR` from the optimiser's LR; options ``beta``, ``min_lr``.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> build_hd(opt, ScheduleArgs(iters_per_epoch=3), beta=0.01).beta
        0.01
    """
    return HypergradientLR(optimizer, args.iters_per_epoch, **options)
