"""Method ``mlrsnet``: meta-learn the LR schedule with an LSTM on the clean meta set (MLR-SNet).

Meta-training: every ``meta_every``-th step a `MetaStep` takes a virtual SGD step whose size is
the LR net's output, scores it on a clean meta batch and updates the LR net with Adam
(meta_lr 1e-3, weight decay 1e-4); every step the real step uses the LR net's current LR. The
method declares the "fixed" schedule (the base LR that γ = 2 · base_lr is read from), so a hand
schedule in the config cannot override the learned LR.

Frozen use: ``options={"schedule_file": path}`` loads a saved LR net and declares the "learned"
schedule (`metakit.schedules.LearnedSchedule`) on it: the plain step runs it — no meta set, no
meta-update.

``meta_every`` rule (the paper meta-updates every ~300 of CIFAR-10's 391 iterations a epoch):
``meta_every = ceil(iters_per_epoch / meta_per_epoch)``, a few meta-updates per epoch;
pass ``meta_every=1`` to meta-update every step.

Example:
    >>> from metakit.experiments import Config, run
    >>> r = run(Config(method="mlrsnet", profile="smoke", epochs=1, progress=False))
    >>> bool(0 < r.history["lr"].iloc[0] <= 0.2)
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.func import functional_call

from metakit.meta import MetaStep, cloned_buffers, theta
from metakit.methods.registry import register
from metakit.methods.base import Method, Trainer
from metakit.learners.lr_net import MLRSNet, load_schedule
from metakit.options import option

if TYPE_CHECKING:
    from metakit.data.batches import Batch


@dataclass(frozen=True)
class MLRSNetOptions:
    """Options of ``method="mlrsnet"``; ``Config.meta_lr`` and ``weight_decay`` (folded into the
    virtual step) come from the config."""

    hidden: int = option(50, "LSTM hidden size (the paper's 50)", low=1)
    meta_every: int | None = option(None, "meta-update every k steps; None: ceil(iters_per_epoch / meta_per_epoch)",
                                    low=1, nullable=True, example="1")
    meta_per_epoch: int = option(3, "meta-updates per epoch when meta_every is None", low=1)
    meta_weight_decay: float = option(1e-4, "Adam's weight decay on the LR net (the paper's 1e-4)", low=0)
    meta_clip: float | None = option(None, "clip the meta-gradient norm to this (None: off)", low=0, low_open=True,
                                     nullable=True)
    schedule_file: str | None = option(None, "a saved LR net (metakit.learners.lr_net.save_schedule): use it frozen "
                                             "instead of meta-training", nullable=True, example="runs/lr_net.pt")


@register
class MLRSNetMethod(Method):
    """Cross-entropy training whose LR comes from an LSTM meta-learned on the meta set.

    Options: `MLRSNetOptions` (``Config.options``).

    Example:
        >>> m = MLRSNetMethod(num_classes=10, class_counts=[5] * 10, hidden=8)
        >>> m.uses_meta_set, m.lr_schedule(), m.lr_net.hidden
        (True, ('fixed', {}), 8)
    """

    name = "mlrsnet"
    Options = MLRSNetOptions
    learns = "the learning rate from the training loss (an LSTM)"
    enters = "lr"
    uses_meta_set = True

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        if o.schedule_file is not None:
            self.lr_net, _ = load_schedule(o.schedule_file)   # raises one line if missing or not an LR net
            self.uses_meta_set = False                                       # frozen: no meta set
        else:
            self.lr_net = MLRSNet(num_classes, hidden=o.hidden)
        self.meta_every, self.meta_per_epoch = o.meta_every, o.meta_per_epoch
        self.meta_weight_decay, self.meta_clip = o.meta_weight_decay, o.meta_clip
        self.frozen = o.schedule_file is not None
        self.step: MetaStep | None = None
        self.trace: list[dict[str, float]] = []   # one row per step: epoch, loss, lr

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """MLR-SNet's recipe: inner SGD without momentum (the virtual step is plain SGD too).

        Paper: ResNet-18 on CIFAR-10, 200 epochs, batch 128, SGD 0.1 momentum 0, wd 5e-4,
        meta set of 1000 images (100 a class); WRN-28-10 on CIFAR-100 by ``model=``/``dataset=``.
        """
        base = dict(momentum=0.0, nesterov=False, schedule="fixed", warmup_epochs=0)
        if profile == "paper":
            base.update(dataset="cifar10", model="resnet18", epochs=200, batch_size=128, lr=0.1,
                        weight_decay=5e-4, meta_lr=1e-3, meta_per_class=100)
        return base

    def lr_schedule(self) -> tuple[str, dict[str, Any]]:
        """Frozen: "learned" on the loaded LR net; meta-training: "fixed" (the LR net sets the real
        step's LR inside the `MetaStep`, relative to this base LR)."""
        if self.frozen:
            return "learned", {"net": self.lr_net, "num_classes": self.num_classes}
        return "fixed", {}

    def setup(self, trainer: "Trainer") -> None:
        """Build the `MetaStep` (meta-training); a frozen net only moves to the device."""
        self.lr_net.to(trainer.device)
        iters = getattr(trainer.schedule, "iters_per_epoch", 1)
        base_lr = trainer.optimizer.param_groups[0]["lr"]
        if self.frozen:
            return
        self.lr_net.gamma.fill_(2.0 * base_lr)                 # γ rule: the LR starts at base_lr
        every = self.meta_every or max(1, math.ceil(iters / self.meta_per_epoch))
        meta_lr = getattr(self.config, "meta_lr", None) or 1e-3
        weight_decay = getattr(self.config, "weight_decay", None) or 0.0
        meta_optimizer = torch.optim.Adam(self.lr_net.parameters(), lr=meta_lr, weight_decay=self.meta_weight_decay)
        self.step = MetaStep(trainer.net, self.lr_net, trainer.optimizer, meta_optimizer,
                             per_sample_loss=self.per_sample_loss, meta_every=every,
                             weight_decay=weight_decay, meta_clip=self.meta_clip)

    @torch.no_grad()
    def _correct(self, net: torch.nn.Module, batch: "Batch") -> torch.Tensor:
        """Correct predictions on the batch before the step (cloned buffers: BN untouched)."""
        logits = functional_call(net, {**theta(net, self.lr_net), **cloned_buffers(net)}, (batch.x,))  # (B, C)
        return (logits.argmax(1) == batch.y).sum()

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        if self.frozen:
            return self._frozen_step(trainer, batch)
        trainer.set_lr()                                     # the base LR ("fixed"); γ is relative to it
        correct = self._correct(trainer.net, batch)
        meta = None if meta_batch is None else (meta_batch.x, meta_batch.y)
        stats = self.step((batch.x, batch.y), meta)          # meta-update (every k) + real step at the learned LR
        self.trace.append({"epoch": trainer.epoch, "loss": float(stats["loss"]), "lr": float(stats["lr"])})
        out = {"loss": torch.as_tensor(stats["loss"]), "correct": correct, "lr": torch.as_tensor(stats["lr"])}
        if "meta_loss" in stats:
            out["meta_loss"] = torch.as_tensor(stats["meta_loss"])
        return out

    def _frozen_step(self, trainer: "Trainer", batch: "Batch") -> dict[str, torch.Tensor]:
        out = Method.train_step(self, trainer, batch, None)    # the "learned" schedule reads this batch's loss
        lr = trainer.optimizer.param_groups[0]["lr"]
        self.trace.append({"epoch": trainer.epoch, "loss": float(out["loss"]), "lr": lr})
        return out

    @property
    def learner(self) -> MLRSNet:
        """The LR net (meta-trained here, or the frozen one loaded from ``schedule_file``)."""
        return self.lr_net

    def current_meta_step(self) -> MetaStep | None:
        return self.step

    def state_dict(self) -> dict[str, Any]:
        """`Method.state_dict` plus the per-step trace and whether the schedule is frozen.

        The frozen `LearnedSchedule` itself (its step count and the LSTM state) is the run's
        schedule, saved by the run's checkpoint with the optimiser's.
        """
        return {**super().state_dict(), "frozen": self.frozen, "trace": [dict(row) for row in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if bool(state["frozen"]) != self.frozen:
            raise ValueError(f"method='mlrsnet': the saved state has frozen={state['frozen']} but this run has "
                             f"frozen={self.frozen} (schedule_file given or not); resume with the same config.")
        super().load_state_dict(state)
        self.trace = [dict(row) for row in state["trace"]]
