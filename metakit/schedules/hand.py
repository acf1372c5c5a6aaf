"""Hand-designed learning-rate schedules, set once per iteration.

A `Schedule` is an `metakit.schedules.base.LRSchedule` that reads only the progress (epochs as
a float): ``schedule.update()`` before every optimiser step writes the LR for that iteration
into every parameter group, so it drops into an ordinary ``torch.optim`` loop. Each name of
`SCHEDULES` is registered (`build_hand`) for `metakit.schedules.build_schedule`.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import torch

from metakit.schedules.base import LRSchedule
from metakit.schedules.registry import ScheduleArgs, register_schedule

SCHEDULES = ("fixed", "multistep", "exp", "cosine", "sgdr")


class Schedule(LRSchedule):
    """Drive an optimiser's LR with ``lr_fn(epoch_progress)``.

    Args:
        optimizer: the optimiser whose param groups receive the LR.
        lr_fn: epoch progress (float, 0 at the start) → learning rate.
        iters_per_epoch: iterations in one epoch, to turn steps into progress.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> s = Schedule(opt, lambda e: 0.1 * (0.5 ** int(e)), iters_per_epoch=2)
        >>> [s.update() for _ in range(4)]
        [0.1, 0.1, 0.05, 0.05]
    """

    name = "hand"
    needs = ("progress",)

    def __init__(self, optimizer: torch.optim.Optimizer, lr_fn: Callable[[float], float], iters_per_epoch: int):
        super().__init__(optimizer, max(1, int(iters_per_epoch)))
        self.lr_fn = lr_fn

    def next_lr(self, loss: torch.Tensor | float | None = None) -> float:
        """``lr_fn`` at the coming step's progress (``loss`` is unused)."""
        return float(self.lr_fn(self.epoch))


def lr_function(name: str, base_lr: float, epochs: int, *, milestones: Sequence[float] = (0.5, 0.75),
                gamma: float = 0.1, warmup_epochs: float = 0.0, t0: float | None = None,
                t_mult: float = 2.0) -> Callable[[float], float]:
    """The LR as a function of epoch progress for a hand-designed schedule.

    Args:
        name: "fixed", "multistep" (×gamma at each milestone), "exp" (×gamma over the whole run,
            smoothly), "cosine" (to 0 at the end) or "sgdr" (cosine with warm restarts).
        base_lr: the peak LR.
        epochs: length of the run.
        milestones: multistep boundaries; values < 1 are fractions of ``epochs``, others epochs.
        gamma: multistep factor per milestone, or the total decay of "exp".
        warmup_epochs: linear warm-up from base_lr/warmup length to base_lr (LDAM-DRW uses 5).
        t0: SGDR's first cycle in epochs; None: ``epochs / (1 + t_mult + t_mult²)``, so that
            three cycles end with the run.
        t_mult: SGDR's cycle growth factor (Loshchilov & Hutter use 2).

    Example:
        >>> f = lr_function("multistep", 0.1, 100, milestones=(80, 90))
        >>> [round(f(e), 5) for e in (0, 80, 95)]
        [0.1, 0.01, 0.001]
        >>> g = lr_function("sgdr", 0.1, 30, t0=10, t_mult=2)   # cycles [0, 10), [10, 30)
        >>> [round(g(e), 3) for e in (0, 5, 10, 20)]
        [0.1, 0.05, 0.1, 0.05]
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule={name!r} is not a hand-designed schedule; use one of {SCHEDULES}.")
    if not t_mult >= 1:
        raise ValueError(f"t_mult={t_mult!r} must be >= 1 (cycle length growth), e.g. 2.")
    if t0 is None:
        t0 = max(epochs, 1) / (1 + t_mult + t_mult ** 2)
    if not t0 > 0:
        raise ValueError(f"t0={t0!r} must be > 0 epochs (SGDR's first cycle), e.g. 10.")
    bounds = sorted(m * epochs if m < 1 else m for m in milestones)

    def decay(e: float) -> float:
        if name == "multistep":
            return base_lr * gamma ** sum(e >= b for b in bounds)
        if name == "exp":
            return base_lr * gamma ** (e / max(epochs, 1))
        if name == "cosine":
            return 0.5 * base_lr * (1 + math.cos(math.pi * min(e / max(epochs, 1), 1.0)))
        if name == "sgdr":
            t, length = sgdr_position(e, t0, t_mult)
            return 0.5 * base_lr * (1 + math.cos(math.pi * t / length))
        return base_lr

    def lr(e: float) -> float:
        if warmup_epochs and e < warmup_epochs:
            return base_lr * (math.floor(e) + 1) / math.ceil(warmup_epochs)
        return decay(e)

    return lr


def sgdr_position(epoch: float, t0: float, t_mult: float) -> tuple[float, float]:
    """Where ``epoch`` falls in SGDR's cycles: (epochs since the last restart, cycle length).

    Cycle i lasts t0 · t_mult^i (Loshchilov & Hutter 2017, Eq. 5).

    Example:
        >>> sgdr_position(25.0, 10, 2)
        (15.0, 20)
    """
    start, length = 0.0, t0
    while epoch >= start + length:
        start, length = start + length, length * t_mult
    return epoch - start, length


def build_hand(name: str, optimizer: torch.optim.Optimizer, args: ScheduleArgs, **options) -> Schedule:
    """The hand-designed schedule ``name`` (`lr_function`) from the run's arguments; it takes no options.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> s = build_hand("multistep", opt, ScheduleArgs(iters_per_epoch=1, epochs=4))
        >>> [round(s.update(), 4) for _ in range(4)]
        [0.1, 0.1, 0.01, 0.001]
    """
    if options:
        raise ValueError(f"schedule={name!r} takes no options {sorted(options)}; they belong to 'hd' or 'learned'.")
    lr = optimizer.param_groups[0]["lr"] if args.base_lr is None else args.base_lr
    fn = lr_function(name, lr, args.epochs, milestones=args.milestones, gamma=args.gamma,
                     warmup_epochs=args.warmup_epochs)
    return Schedule(optimizer, fn, args.iters_per_epoch)


for _name in SCHEDULES:
    register_schedule(_name)(functools.partial(build_hand, _name))
