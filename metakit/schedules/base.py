"""The one learning-rate protocol: every schedule sets the optimiser's LR for the coming step.

Like optax's ``init``/``update`` pair (and TorchOpt's in PyTorch): the constructor is ``init`` (it
binds the optimiser and starts the schedule's state), ``update(loss)`` is called once per
iteration, after ``backward()`` and before ``optimizer.step()``, and writes the LR of that step
into every parameter group. What a schedule reads is declared in ``needs``:

- ``"progress"``: the epoch progress (hand-designed: fixed, multistep, exp, cosine, SGDR);
- ``"loss"``: the batch's training loss (a frozen MLR-SNet LR net);
- ``"grads"``: the gradients in the optimiser's ``.grad`` (hypergradient descent).

The caller is the one plain step, `metakit.methods.base.Trainer.real_step` (meta-steps call
`metakit.methods.base.Trainer.set_lr` before their virtual step, which reads the LR, so they take
progress-only schedules). ``state_dict``/``load_state_dict`` resume a schedule exactly.
"""
from __future__ import annotations

import torch

NEEDS = ("progress", "loss", "grads")


class LRSchedule:
    """Base of every LR schedule: progress bookkeeping, ``update``, ``set_lr`` and state.

    Subclasses declare ``needs`` and implement ``next_lr(loss)`` (the LR of the coming step; it
    may read ``self.optimizer``'s gradients), or override ``update`` when the state advances
    after the LR is read.

    Args:
        optimizer: the optimiser whose param groups receive the LR.
        iters_per_epoch: iterations in one epoch, to turn steps into epoch progress.

    Example:
        >>> class Halving(LRSchedule):
        ...     def next_lr(self, loss):
        ...         return 0.1 * 0.5 ** self.iteration
        >>> s = Halving(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))
        >>> [s.update() for _ in range(3)], s.optimizer.param_groups[0]["lr"]
        ([0.1, 0.05, 0.025], 0.025)
    """

    name = ""
    needs: tuple[str, ...] = ("progress",)

    def __init__(self, optimizer: torch.optim.Optimizer, iters_per_epoch: int = 1):
        if isinstance(iters_per_epoch, bool) or not isinstance(iters_per_epoch, int):
            raise ValueError(f"iters_per_epoch={iters_per_epoch!r} must be an integer (iterations a epoch), e.g. 100.")
        self.optimizer, self.iters_per_epoch = optimizer, max(1, iters_per_epoch)
        self.iteration = 0

    @property
    def epoch(self) -> float:
        """Epoch progress of the coming step (0 at the start, 1.5 half-way through epoch 2)."""
        return self.iteration / self.iters_per_epoch

    def next_lr(self, loss: torch.Tensor | float | None) -> float:
        """The LR of the coming step (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must implement next_lr(loss) or update(loss).")

    def set_lr(self, lr: float) -> float:
        """Write ``lr`` into every parameter group; returns it."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def check(self, loss: torch.Tensor | float | None) -> None:
        """Raise if this schedule needs the loss and got none."""
        if "loss" in self.needs and loss is None:
            raise ValueError(f"loss=None: schedule {self.name or type(self).__name__!r} reads the batch loss; "
                             f"call update(loss) after the forward (Trainer.real_step does).")

    def update(self, loss: torch.Tensor | float | None = None) -> float:
        """Set and return the LR of the coming step, then advance the progress by one step.

        Args:
            loss: the batch's training loss (read only by schedules with "loss" in ``needs``).

        Returns:
            The LR written into the optimiser.
        """
        self.check(loss)
        lr = self.set_lr(float(self.next_lr(loss)))
        self.iteration += 1
        return lr

    def step(self, loss: torch.Tensor | float | None = None) -> float:
        """``update(loss)``, under the name of ``torch.optim.lr_scheduler`` (notebooks use it)."""
        return self.update(loss)

    def state_dict(self) -> dict:
        """What ``load_state_dict`` needs to resume this schedule exactly."""
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()``."""
        self.iteration = int(state["iteration"])
