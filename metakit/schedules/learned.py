"""A frozen MLR-SNet LR net as a schedule: the LR of each step is read off the training loss.

See `metakit.learners.lr_net` for the net itself (one LSTM cell, LR = γ · sigmoid(head(h))).
"""
from __future__ import annotations

import math

import torch

from metakit.learners.lr_net import MLRSNet
from metakit.meta import freeze
from metakit.schedules.base import LRSchedule


class LearnedSchedule(LRSchedule):
    """A frozen `MLRSNet` driving an optimiser's LR: ``lr = schedule.update(loss)`` each iteration.

    An `metakit.schedules.base.LRSchedule` that needs the loss of the coming step's batch
    (compute the loss, call ``update(loss)`` — before or after ``backward``, it reads only the
    value — then ``optimizer.step()``). ``step(loss)`` is the same call.

    Args:
        net: the LR net; it is frozen here (no gradient flows into it) and its state reset.
        optimizer: the optimiser whose param groups receive the LR.
        iters_per_epoch: iterations per epoch (for ``.epoch``, like `Schedule`).
        num_classes: classes of the NEW task; re-sets the loss normalisation log C.
        base_lr: rescale the LR ceiling to 2 × this (e.g. to drive Adam at 1e-3 with a schedule
            learned for SGD at 0.1); None keeps the learned γ.

    Example:
        >>> w = torch.zeros(3, requires_grad=True)
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> s = LearnedSchedule(MLRSNet(10, hidden=4, gamma=0.2), opt, iters_per_epoch=10)
        >>> loss = ((w - 1) ** 2).sum(); lr = s.step(loss)
        >>> loss.backward(); opt.step(); round(lr, 3), s.iteration
        (0.1, 1)
    """

    name = "learned"
    needs = ("loss",)

    def __init__(self, net: MLRSNet, optimizer: torch.optim.Optimizer, iters_per_epoch: int = 1, *,
                 num_classes: int | None = None, base_lr: float | None = None):
        if torch.isnan(net.gamma) and base_lr is None:
            raise ValueError("net.gamma is unset (the net was never run); pass base_lr=..., e.g. 0.1.")
        super().__init__(optimizer, int(iters_per_epoch))  # progress and set_lr from LRSchedule
        self.net = net
        freeze(net.parameters())
        net.eval()
        net.reset_state()
        if num_classes is not None:
            if num_classes < 2:
                raise ValueError(f"num_classes={num_classes!r} must be >= 2.")
            net.loss_scale.fill_(math.log(num_classes))
        if base_lr is not None:
            if not base_lr > 0:
                raise ValueError(f"base_lr={base_lr!r} must be > 0.")
            net.gamma.fill_(2.0 * float(base_lr))

    @torch.no_grad()
    def update(self, loss: torch.Tensor | float | None = None) -> float:
        """Set and return the LR of the coming step from its loss, then advance the LSTM state."""
        self.check(loss)
        lr = self.set_lr(float(self.net.inner_lr(loss)))
        self.net.after_step(loss)
        self.iteration += 1
        return lr

    def state_dict(self) -> dict:
        return {**super().state_dict(), "net": self.net.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.net.load_state_dict(state["net"])
