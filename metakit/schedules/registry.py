"""Every LR schedule by name: ``@register_schedule(name)`` on a builder, ``build_schedule(name, optimizer, ...)``.

Each schedule file registers its builders (`hand`, `hd`, `learned`); importing `metakit.schedules`
imports them all. `metakit.experiments.run.build` builds ``Config.schedule`` here (with
``Config.schedule_options``), or the schedule a method declares (`metakit.methods.base.Method.lr_schedule`:
``hd`` declares "hd", a frozen ``mlrsnet`` "staged"); `metakit.experiments.text.run_lm` builds the LM's here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from metakit.schedules.base import LRSchedule

# name → builder(optimizer, args: ScheduleArgs, **options) -> LRSchedule, in registration order
BUILDERS: dict[str, Callable[..., LRSchedule]] = {}


@dataclass(frozen=True)
class ScheduleArgs:
    """What `build_schedule` hands every builder besides the schedule's own options; each reads what it needs.

    Attributes:
        iters_per_epoch: iterations an epoch.
        epochs: length of the run.
        base_lr: peak LR of a hand schedule (None: the optimiser's); "learned": γ := 2 × this.
        milestones, gamma, warmup_epochs: the hand schedules' knobs.
        num_classes: C of the run's task (a frozen MLR-SNet's γ and loss scale).
        full_loss: ``(batch_stats=False) -> L``, the mean loss over the whole training set now
            (`metakit.schedules.learned.full_train_loss` of the run's trainer); read by "staged".
    """

    iters_per_epoch: int
    epochs: int = 1
    base_lr: float | None = None
    milestones: Sequence[float] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    num_classes: int | None = None
    full_loss: Callable[..., float] | None = None


def register_schedule(name: str) -> Callable[[Callable[..., LRSchedule]], Callable[..., LRSchedule]]:
    """Decorator: ``builder(optimizer, args, **options)`` becomes ``build_schedule(name, ...)``.

    ``Config(schedule=name)`` takes every name registered when `metakit.experiments` is imported.

    Example:
        >>> @register_schedule("halving")
        ... def halving(optimizer, args, **options):
        ...     from metakit.schedules.hand import Schedule
        ...     return Schedule(optimizer, lambda e: 0.1 * 0.5 ** int(e), args.iters_per_epoch)
        >>> s = build_schedule("halving", torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0),
        ...                    iters_per_epoch=1)
        >>> [s.update() for _ in range(3)], BUILDERS.pop("halving") is halving
        ([0.1, 0.05, 0.025], True)
    """
    def decorate(builder: Callable[..., LRSchedule]) -> Callable[..., LRSchedule]:
        if name in BUILDERS:
            raise ValueError(f"schedule={name!r} is registered already; pick another name.")
        BUILDERS[name] = builder
        return builder
    return decorate


def schedule_names() -> tuple[str, ...]:
    """Every registered schedule, in registration order (``LR_SCHEDULES``).

    Example:
        >>> schedule_names()[:2], schedule_names()[-1]
        (('fixed', 'multistep'), 'staged')
    """
    return tuple(BUILDERS)


def __getattr__(name: str) -> Any:
    """``LR_SCHEDULES``: every registered name, read when asked (after every schedule file has registered)."""
    if name == "LR_SCHEDULES":
        return schedule_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_schedule(name: str, optimizer: torch.optim.Optimizer, *, iters_per_epoch: int, epochs: int = 1,
                   base_lr: float | None = None, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1,
                   warmup_epochs: float = 0.0, num_classes: int | None = None,
                   full_loss: Callable[..., float] | None = None, **options: Any) -> LRSchedule:
    """The LR schedule ``name`` bound to ``optimizer``.

    Args:
        name: a registered schedule: hand-designed (fixed, multistep, exp, cosine, sgdr; see
            `metakit.schedules.hand.lr_function`), "hd" (hypergradient descent; options ``beta``,
            ``min_lr``), "learned" (a frozen MLR-SNet; options ``net`` (an `MLRSNet`) or
            ``schedule_file``; a snapshots file runs its last net) or "staged" (the official
            meta-test over `LRSnapshots`; options ``snapshots`` or ``schedule_file``, ``gamma_floor``,
            ``last_only``, ``gamma_scale``, ``batch_stats``).
        optimizer: the optimiser whose LR it sets.
        iters_per_epoch, epochs, base_lr, milestones, gamma, warmup_epochs, num_classes, full_loss:
            the run's arguments (`ScheduleArgs`), given to every builder.
        **options: the schedule's own options above.

    Returns:
        An `LRSchedule`.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> s = build_schedule("cosine", opt, iters_per_epoch=2, epochs=2)
        >>> [round(s.update(), 4) for _ in range(4)]
        [0.1, 0.0854, 0.05, 0.0146]
    """
    if name not in BUILDERS:
        raise ValueError(f"schedule={name!r} is unknown; use one of {schedule_names()}.")
    args = ScheduleArgs(iters_per_epoch, epochs, base_lr, milestones, gamma, warmup_epochs, num_classes, full_loss)
    return BUILDERS[name](optimizer, args, **options)
