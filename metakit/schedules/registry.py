"""Every LR schedule by name, built in one place: ``build_schedule(name, optimizer, ...)``.

`metakit.experiments.run.build` builds ``Config.schedule`` here, or the schedule a method
declares (`metakit.methods.base.Method.lr_schedule`: ``hd`` declares "hd", a frozen
``mlrsnet`` declares "learned"); `metakit.experiments.text.run_lm` builds the LM's here too.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from metakit.schedules.base import LRSchedule
from metakit.schedules.hand import SCHEDULES, Schedule, lr_function
from metakit.schedules.hd import HypergradientLR
from metakit.schedules.learned import LearnedSchedule, StagedSchedule

LR_SCHEDULES = (*SCHEDULES, "hd", "learned", "staged")


def _given_or_loaded(name: str, options: dict, key: str, what: str):
    """The LR net(s) a learned schedule runs: ``options[key]``, or the file ``options["schedule_file"]``."""
    given, path = options.pop(key, None), options.pop("schedule_file", None)
    if (given is None) == (path is None):
        raise ValueError(f"schedule={name!r} needs exactly one of {key}=<{what}> or schedule_file=<a file saved by "
                         f"metakit.learners.lr_net.save_schedule>.")
    if given is not None:
        return given
    from metakit.learners.lr_net import load_schedule
    return load_schedule(path)[0]


def build_schedule(name: str, optimizer: torch.optim.Optimizer, *, iters_per_epoch: int, epochs: int = 1,
                   base_lr: float | None = None, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1,
                   warmup_epochs: float = 0.0, **options: Any) -> LRSchedule:
    """The LR schedule ``name`` bound to ``optimizer``.

    Args:
        name: a hand-designed schedule (fixed, multistep, exp, cosine, sgdr; see
            `metakit.schedules.hand.lr_function`), "hd" (hypergradient descent; options ``beta``,
            ``min_lr``) or "learned" (a frozen MLR-SNet; options ``net`` (an `MLRSNet`) or
            ``schedule_file``, and ``num_classes``, ``base_lr``; a snapshots file runs its last net) or
            "staged" (the official meta-test over `LRSnapshots`; options ``snapshots`` or
            ``schedule_file``, ``num_classes``, ``full_loss``, ``gamma_floor``, ``last_only``).
        optimizer: the optimiser whose LR it sets.
        iters_per_epoch: iterations a epoch.
        epochs: length of the run (hand schedules).
        base_lr: peak LR of a hand schedule (default: the optimiser's LR); for "learned", the
            ceiling's rescale (None keeps the learned γ).
        milestones, gamma, warmup_epochs: hand schedules' knobs.
        **options: the options of "hd" and "learned" above.

    Returns:
        An `LRSchedule`.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> s = build_schedule("cosine", opt, iters_per_epoch=2, epochs=2)
        >>> [round(s.update(), 4) for _ in range(4)]
        [0.1, 0.0854, 0.05, 0.0146]
    """
    if name in SCHEDULES:
        if options:
            raise ValueError(f"schedule={name!r} takes no options {sorted(options)}; they belong to 'hd' or 'learned'.")
        lr = optimizer.param_groups[0]["lr"] if base_lr is None else base_lr
        fn = lr_function(name, lr, epochs, milestones=milestones, gamma=gamma, warmup_epochs=warmup_epochs)
        return Schedule(optimizer, fn, iters_per_epoch)
    if name == "hd":
        return HypergradientLR(optimizer, iters_per_epoch, **options)
    if name == "learned":
        from metakit.learners.lr_net import LRSnapshots

        net = _given_or_loaded(name, options, "net", "an MLRSNet")
        net = net.last if isinstance(net, LRSnapshots) else net
        return LearnedSchedule(net, optimizer, iters_per_epoch, base_lr=base_lr, **options)
    if name == "staged":
        snapshots = _given_or_loaded(name, options, "snapshots", "LRSnapshots")
        options.setdefault("num_classes", snapshots.nets[0].num_classes)
        return StagedSchedule(snapshots, optimizer, iters_per_epoch, epochs=epochs, **options)
    raise ValueError(f"schedule={name!r} is unknown; use one of {LR_SCHEDULES}.")
