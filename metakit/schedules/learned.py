"""A frozen MLR-SNet as a schedule: the LR of each step is read off the training loss.

Two schedules, both behind the one protocol (`LRSchedule.update(loss)`):

- `StagedSchedule` (name "staged"): the official meta-test. Of an N-epoch run, epochs
  [0, N//3) use the snapshot after meta-training epoch 1, [N//3, 2·(N//3)) the mid-training one
  (epoch M//2 of M), the rest the last one (`switch_epochs`, `stage_epochs`; the official code
  tests ``epoch == N // 3`` and ``epoch == N // 3 * 2``). At the start and at each switch γ is
  re-derived from the current full training loss L (`gamma_rule`); the LSTM state is kept
  across steps, epochs and switches (only the weights change).
- `LearnedSchedule` (name "learned"): one net, its γ as learned (or 2 × a given base LR): the
  ``final_net`` ablation, metakit's earlier behaviour.

Both are registered by name (`build_staged`, `build_learned`); `full_train_loss` is the L of γ.
See `metakit.learners.lr_net` for the net itself (one LSTM cell, LR = γ · sigmoid(head(h))).
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from metakit.learners.lr_net import LRSnapshots, MLRSNet, load_schedule
from metakit.meta import freeze
from metakit.schedules.base import LRSchedule
from metakit.schedules.registry import ScheduleArgs, register_schedule


def gamma_rule(train_loss: float, num_classes: int, floor: float = 0.0) -> float:
    """The official LR scale γ = |sqrt(L) · ln(L·C) / C^0.25 / 4|, L the mean training loss.

    γ is zero at L = 1/C (ln 1 = 0) and grows again below it (to 0.18 / C^0.75 at L = e⁻²/C);
    the official code has no guard. ``floor`` > 0 is the named guard ablation (``gamma_floor``):
    γ := max(γ, floor).

    Args:
        train_loss: L, the mean cross-entropy over the whole training set (> 0).
        num_classes: C.
        floor: the guard's lower bound (0: none, as the official code).

    Example:
        >>> round(gamma_rule(math.log(10), 10), 4), gamma_rule(0.1, 10), gamma_rule(0.1, 10, floor=0.01)
        (0.6691, 0.0, 0.01)
    """
    if not (isinstance(train_loss, (int, float)) and math.isfinite(train_loss) and train_loss > 0):
        raise ValueError(f"train_loss={train_loss!r} must be a finite mean loss > 0 (ln(L·C) needs L > 0).")
    gamma = abs(math.sqrt(train_loss) * math.log(train_loss * num_classes) / num_classes ** 0.25 / 4)
    return max(gamma, float(floor))


@torch.no_grad()
def full_train_loss(trainer: Any, *, batch_stats: bool = False) -> float:
    """L: the mean cross-entropy over the whole training set, the classifier in eval mode, no grad.

    Args:
        trainer: the run's `metakit.methods.base.Trainer`: its ``net``, ``train_eval`` (the
            training batches in a fixed order, unaugmented) and ``autocast()``.
        batch_stats: BatchNorm layers normalise by each batch's statistics instead (their running
            statistics are restored afterwards; every other layer stays in eval mode): the
            ``batch_stats_loss`` ablation.

    Example:
        >>> from types import SimpleNamespace
        >>> import contextlib
        >>> net = torch.nn.Linear(2, 3)
        >>> _ = torch.nn.init.zeros_(net.weight), torch.nn.init.zeros_(net.bias)     # uniform logits: L = ln 3
        >>> batch = SimpleNamespace(x=torch.randn(4, 2), y=torch.tensor([0, 1, 2, 0]))
        >>> t = SimpleNamespace(net=net, train_eval=[batch], autocast=contextlib.nullcontext)
        >>> round(full_train_loss(t), 4), round(math.log(3), 4)
        (1.0986, 1.0986)
    """
    if trainer is None or trainer.train_eval is None:
        raise ValueError("full_train_loss: the official γ needs the full training loss, but the trainer has no "
                         "train_eval batches (run builds them); method='mlrsnet' with variant='final_net' sets "
                         "γ = 2·base LR instead.")
    net, total, count = trainer.net, 0.0, 0
    modes = {m: m.training for m in net.modules()}
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    norms = norms if batch_stats else []           # the default measures every layer in eval mode
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    net.eval()
    for m in norms:
        m.train()
    for batch in trainer.train_eval:
        with trainer.autocast():
            logits = net(batch.x)                                                      # (B, C)
        total = total + F.cross_entropy(logits.float(), batch.y, reduction="sum")
        count += len(batch.y)
    for m, state in zip(norms, saved):
        m.load_state_dict(state)
    for m, mode in modes.items():
        m.training = mode
    return float(total) / max(count, 1)


def switch_epochs(epochs: int) -> tuple[int, int, int]:
    """The 0-based epochs at which an ``epochs``-long meta-test starts each of its three stages.

    Example:
        >>> switch_epochs(200), switch_epochs(10), switch_epochs(2)
        ((0, 66, 132), (0, 3, 6), (0, 0, 0))
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be a positive integer (the meta-test's length).")
    return 0, epochs // 3, epochs // 3 * 2


def stage_shares(lrs: Sequence[float], switches: Sequence[Mapping]) -> list[dict]:
    """Per stage of a staged run: its epochs, γ, the mean of the per-epoch LRs and LR / γ.

    LR = γ · sigmoid(head(h)), so LR / γ is the LSTM's own output, in (0, 1) (NaN where γ = 0); one
    that stays put from stage to stage means γ alone shapes the schedule.

    Args:
        lrs: the run's LR per epoch (``Result.history["lr"]``).
        switches: `StagedSchedule.switches` (``epoch`` and ``gamma`` of each stage started).

    Example:
        >>> stages = stage_shares([0.5, 0.5, 0.1, 0.04], [{"epoch": 0, "gamma": 1.0}, {"epoch": 2, "gamma": 0.2},
        ...                                               {"epoch": 3, "gamma": 0.1}])
        >>> [(w["first_epoch"], w["last_epoch"], round(w["lr_over_gamma"], 3)) for w in stages]
        [(0, 1, 0.5), (2, 2, 0.5), (3, 3, 0.4)]
    """
    starts = [int(w["epoch"]) for w in switches]
    out = []
    for w, start, end in zip(switches, starts, [*starts[1:], len(lrs)]):
        stage = [float(x) for x in lrs[start:end]]
        lr, gamma = sum(stage) / len(stage), float(w["gamma"])
        out.append({"first_epoch": start, "last_epoch": end - 1, "gamma": gamma, "lr": lr,
                    "lr_over_gamma": lr / gamma if gamma else math.nan})   # γ = 0 where L = 1/C
    return out


def stage_epochs(count: int) -> tuple[int, int, int]:
    """The meta-training epochs (1-based) of the snapshots the three stages use: first, mid, last.

    Example:
        >>> stage_epochs(200), stage_epochs(3), stage_epochs(1)
        ((1, 100, 200), (1, 1, 3), (1, 1, 1))
    """
    return 1, max(1, count // 2), count


class LearnedSchedule(LRSchedule):
    """A frozen `MLRSNet` driving an optimiser's LR (the ``final_net`` ablation): ``lr = schedule.update(loss)``.

    An `metakit.schedules.base.LRSchedule` that needs the loss of the coming step's batch
    (compute the loss, call ``update(loss)`` — before or after ``backward``, it reads only the
    value — then ``optimizer.step()``). ``step(loss)`` is the same call.

    Args:
        net: the LR net; it is frozen here (no gradient flows into it) and its state reset.
        optimizer: the optimiser whose param groups receive the LR.
        iters_per_epoch: iterations per epoch (for ``.epoch``, like `Schedule`).
        num_classes: classes of the NEW task; re-sets log C of a normalising net (``normalise=True``).
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
            net.num_classes = int(num_classes)
            if net.normalise:
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


class StagedSchedule(LRSchedule):
    """The official meta-test: three snapshots in turn, γ re-derived from the full training loss.

    Args:
        snapshots: `LRSnapshots` of a meta-training run (copied; the copy is frozen).
        optimizer: the optimiser whose param groups receive the LR.
        iters_per_epoch: iterations an epoch (the switches fall on epoch boundaries).
        epochs: the run's length N (switches at N//3 and 2·(N//3), `switch_epochs`).
        num_classes: C of the NEW task (γ's formula; log C for a normalising net).
        full_loss: ``() -> L``, the mean loss over the whole training set now; called at the
            first step and at each switch. A run passes `full_train_loss` of its trainer (the net
            in eval mode over the training batches, no grad), as the official code does.
        gamma_floor: the named guard (`gamma_rule`'s floor); 0 = none, as the official code.
        last_only: every stage uses the last snapshot (the ``last_snapshot`` ablation).
        gamma_scale: γ := this × `gamma_rule` at each switch; 1 = the official γ (the
            ``momentum_gamma`` ablation passes 1 − momentum).
        constants: per stage, an output LR / γ used instead of the net's (the ``constant_net`` and
            ``gamma_only`` ablations); None: the net's.

    Attributes:
        switches: one ``{"epoch", "snapshot", "train_loss", "gamma"}`` per stage started.

    Example:
        >>> snaps = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=1.0) for _ in range(4)])
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> s = StagedSchedule(snaps, opt, iters_per_epoch=2, epochs=6, num_classes=10, full_loss=lambda: 2.3)
        >>> lrs = [s.update(2.0) for _ in range(12)]
        >>> [(w["epoch"], w["snapshot"]) for w in s.switches], round(lrs[0], 4)
        ([(0, 1), (2, 2), (4, 4)], 0.3343)
    """

    name = "staged"
    needs = ("loss",)

    def __init__(self, snapshots: LRSnapshots, optimizer: torch.optim.Optimizer, iters_per_epoch: int = 1, *,
                 epochs: int, num_classes: int, full_loss: Callable[[], float] | None = None,
                 gamma_floor: float = 0.0, last_only: bool = False, gamma_scale: float = 1.0,
                 constants: Sequence[float] | None = None):
        if not isinstance(snapshots, LRSnapshots):
            raise TypeError(f"snapshots={type(snapshots).__name__} must be LRSnapshots (a faithful mlrsnet run's "
                            f"result.learner); a single MLRSNet runs as schedule='learned'.")
        super().__init__(optimizer, int(iters_per_epoch))
        self.snapshots = copy.deepcopy(snapshots)
        freeze(self.snapshots.parameters())
        self.snapshots.eval()
        self.starts = switch_epochs(epochs)
        last = self.snapshots.epochs[-1]   # the run's length in meta-training epochs
        self.stage_snapshots = (last,) * 3 if last_only else stage_epochs(last)
        self.num_classes, self.full_loss, self.gamma_floor = int(num_classes), full_loss, float(gamma_floor)
        self.gamma_scale = float(gamma_scale)
        self.constants = None if constants is None else [float(c) for c in constants]
        if self.constants is not None and len(self.constants) != 3:
            raise ValueError(f"constants={constants!r} must give one output a stage (3).")
        self.net = copy.deepcopy(self.snapshots.at_epoch(self.stage_snapshots[0]))   # the live net; weights swap
        self.net.reset_state()
        self.net.num_classes = self.num_classes
        if self.net.normalise:
            self.net.loss_scale.fill_(math.log(self.num_classes))
        self.stage = -1
        self.switches: list[dict] = []

    def stage_at(self, epoch: int) -> int:
        """The stage (0, 1, 2) that runs in 0-based ``epoch``."""
        return max(i for i, start in enumerate(self.starts) if epoch >= start)

    def _switch(self, stage: int, epoch: int) -> None:
        """Load the stage's weights (the state h, c is kept) and re-derive γ from the full loss."""
        if self.full_loss is None:
            raise ValueError("full_loss=None: the staged schedule re-derives γ from the full training loss at "
                             "each switch; pass full_loss=<() -> mean training loss> (run passes one).")
        source = self.snapshots.at_epoch(self.stage_snapshots[stage])
        keep = {"h", "c", "steps", "loss_scale", "gamma"}
        with torch.no_grad():
            for name, tensor in source.state_dict().items():
                if name not in keep:
                    self.net.state_dict()[name].copy_(tensor)
            loss = float(self.full_loss())
            gamma = self.gamma_scale * gamma_rule(loss, self.num_classes, self.gamma_floor)
            self.net.gamma.fill_(gamma)
        self.stage = stage
        self.switches.append({"epoch": epoch, "snapshot": self.stage_snapshots[stage], "train_loss": loss,
                              "gamma": gamma})

    @torch.no_grad()
    def update(self, loss: torch.Tensor | float | None = None) -> float:
        """Switch stage on an epoch boundary when due, then the LR of this step from its loss."""
        self.check(loss)
        epoch = self.iteration // self.iters_per_epoch
        if self.iteration % self.iters_per_epoch == 0 and self.stage_at(epoch) != self.stage:
            self._switch(self.stage_at(epoch), epoch)
        out = self.net.inner_lr(loss) if self.constants is None else self.net.gamma * self.constants[self.stage]
        lr = self.set_lr(float(out))
        self.net.after_step(loss)
        self.iteration += 1
        return lr

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stage": self.stage, "net": self.net.state_dict(),
                "switches": [dict(w) for w in self.switches]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.stage = int(state["stage"])
        self.net.load_state_dict(state["net"])
        self.switches = [dict(w) for w in state["switches"]]


def _given_or_loaded(name: str, options: dict, key: str, what: str) -> Any:
    """The LR net(s) a learned schedule runs: ``options[key]``, or the file ``options["schedule_file"]``."""
    given, path = options.pop(key, None), options.pop("schedule_file", None)
    if (given is None) == (path is None):
        raise ValueError(f"schedule={name!r} needs exactly one of {key}=<{what}> or schedule_file=<a file saved by "
                         f"metakit.learners.lr_net.save_schedule>.")
    return given if given is not None else load_schedule(path)[0]


@register_schedule("learned")
def build_learned(optimizer: torch.optim.Optimizer, args: ScheduleArgs, **options: Any) -> LearnedSchedule:
    """"learned": one frozen net (``net``, or ``schedule_file``: a snapshots file runs its last net).

    γ as learned, or 2 × ``args.base_lr`` when given; ``args.num_classes`` re-sets log C.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> s = build_learned(opt, ScheduleArgs(iters_per_epoch=1), net=MLRSNet(10, hidden=4, gamma=0.2))
        >>> round(s.update(2.3), 4)
        0.1
    """
    net = _given_or_loaded("learned", options, "net", "an MLRSNet")
    net = net.last if isinstance(net, LRSnapshots) else net
    return LearnedSchedule(net, optimizer, args.iters_per_epoch, num_classes=args.num_classes, base_lr=args.base_lr,
                           **options)


@register_schedule("staged")
def build_staged(optimizer: torch.optim.Optimizer, args: ScheduleArgs, *, batch_stats: bool = False,
                 **options: Any) -> StagedSchedule:
    """"staged": the official meta-test over ``snapshots`` (or ``schedule_file``), γ from ``args.full_loss``.

    Options: ``gamma_floor``, ``last_only``, ``gamma_scale`` (`StagedSchedule`) and ``batch_stats``
    (measure the full loss on batch statistics: ``args.full_loss(batch_stats=True)``).
    ``args.num_classes`` defaults to the snapshots' own.

    Example:
        >>> snaps = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=1.0) for _ in range(3)])
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> s = build_staged(opt, ScheduleArgs(iters_per_epoch=1, epochs=3, full_loss=lambda: 2.3), snapshots=snaps)
        >>> round(s.update(2.0), 4), s.num_classes
        (0.3343, 10)
    """
    snapshots = _given_or_loaded("staged", options, "snapshots", "LRSnapshots")
    full_loss = args.full_loss
    if batch_stats and full_loss is not None:
        full_loss = functools.partial(full_loss, batch_stats=True)
    num_classes = args.num_classes if args.num_classes is not None else snapshots.nets[0].num_classes
    return StagedSchedule(snapshots, optimizer, args.iters_per_epoch, epochs=args.epochs, num_classes=num_classes,
                          full_loss=full_loss, **options)
