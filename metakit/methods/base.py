"""The method interface: what a training method changes in the one training loop.

A method may change the per-sample loss (focal, LDAM), how batches are drawn (re-sampling),
the model (MFM attaches modulation), or the whole step (meta-learners run a `MetaStep`).
Everything else (data, optimiser, schedule, evaluation, history) is the loop's.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metakit.options import parse

if TYPE_CHECKING:
    from metakit.data.batches import Batch
    from metakit.meta import MetaStep
    from metakit.schedules.base import LRSchedule


@dataclass
class Trainer:
    """What a method's step needs: the net, its optimiser and schedule, and where it runs.

    Attributes:
        net: the classifier (already on ``device``).
        optimizer: the real step's optimiser over θ.
        schedule: the `metakit.schedules.base.LRSchedule` that sets the LR of each step; only
            ``set_lr`` calls it.
        device: where tensors live.
        amp: use bf16 autocast for the plain forward (CUDA only; the meta-step's double
            backward stays in fp32).
        epoch: the current epoch (0-based), kept by `fit`.
        train_eval: the training set in a fixed order, unaugmented (batches of ``.x``, ``.y``), for
            a method that measures the full training loss (MLR-SNet's γ); None where the caller
            has none (the language model).
    """

    net: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    device: torch.device
    amp: bool = False
    epoch: int = 0
    train_eval: Any = None

    def set_lr(self, loss: torch.Tensor | None = None) -> float:
        """The one call of the LR schedule each iteration: set and return the coming step's LR.

        `real_step` calls it after ``backward`` (so it may read the loss and the gradients); a
        meta-step, whose virtual step reads the LR, calls it first (progress-only schedules).
        """
        return self.schedule.update(None if loss is None else loss.detach())

    def real_step(self, loss: torch.Tensor) -> float:
        """The plain step every method shares: backward, the schedule sets the LR, optimiser step.

        Returns:
            The LR the step used.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = self.set_lr(loss)
        self.optimizer.step()
        return lr

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when ``amp`` is on, otherwise a no-op."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@dataclass(frozen=True)
class NoOptions:
    """The options of a method that takes none."""


class Method:
    """Plain empirical risk minimisation with cross-entropy; subclasses change one part.

    A method is a declaration: its registry ``name``, its ``Options`` dataclass (each field an
    `metakit.options.option` with default, help and allowed values), what it meta-learns
    (``learns``) and where φ enters the inner step (``enters``: "loss", "lr", "forward" or None),
    and the hooks below. The loop (`metakit.experiments.loop.fit`) calls the hooks; no method
    subclasses or patches the loop.

    Attributes:
        name: the registry name (``Config.method``).
        Options: the options dataclass; ``self.options`` is the parsed, validated instance.
        learns: what is meta-learned, in words ("" for none).
        enters: where the meta-parameters φ enter the inner step (None for none).
        uses_meta_set: True if the method needs the clean meta batches.

    Example:
        >>> m = Method(num_classes=3, class_counts=[5, 3, 1])
        >>> m.loss(torch.zeros(2, 3), torch.tensor([0, 1])).item() > 1.09
        True
    """

    name = "ce"
    Options: type = NoOptions
    learns = ""
    enters: str | None = None
    uses_meta_set = False

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        self.options = parse(self.Options, options, owner=f"method={self.name!r}")
        self.num_classes, self.class_counts, self.config = num_classes, list(class_counts), config

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """Config defaults of this method under ``profile`` (e.g. MW-Net's 100-epoch recipe)."""
        return {}

    @classmethod
    def needs_meta_set(cls, options: dict[str, Any]) -> bool:
        """Whether a run with these (unparsed) ``Config.options`` draws meta batches; decides if
        ``meta_per_class=0`` is allowed. Default: ``uses_meta_set``.

        Example:
            >>> Method.needs_meta_set({})
            False
        """
        return cls.uses_meta_set

    def prepare(self, net: nn.Module) -> nn.Module:
        """Adapt the classifier before training (default: unchanged)."""
        return net

    def setup(self, trainer: Trainer) -> None:
        """Called once the optimiser exists (meta-learners build their `MetaStep` here)."""

    def classifier_parameters(self, net: nn.Module) -> list[nn.Parameter]:
        """θ, the parameters the real step's optimiser updates (meta-learners exclude φ)."""
        return [p for p in net.parameters() if p.requires_grad]

    def sample_weights(self, labels: np.ndarray) -> np.ndarray | None:
        """Per-image sampling weights for the training batches (None: plain shuffling)."""
        return None

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample training loss (B,); cross-entropy here."""
        return F.cross_entropy(logits, targets, reduction="none")

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar training loss of a batch."""
        return self.per_sample_loss(logits, targets).mean()

    def lr_schedule(self) -> tuple[str, dict[str, Any]] | None:
        """The LR schedule this method declares, ``(name, options)`` for
        `metakit.schedules.build_schedule`, or None for ``Config.schedule`` (the default)."""
        return None

    def start_epoch(self, epoch: int, trainer: Trainer) -> None:
        """Hook at the start of every epoch (e.g. LDAM-DRW switches on re-weighting)."""

    def end_epoch(self, epoch: int, trainer: Trainer) -> None:
        """Hook after the last step of every epoch, before it is scored (MLR-SNet takes a snapshot)."""

    def train_step(self, trainer: Trainer, batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        """One iteration: returns the batch's mean loss and number correct (tensors, not synced)."""
        with trainer.autocast():
            logits = trainer.net(batch.x)                                           # (B, C)
            loss = self.loss(logits.float(), batch.y)
        lr = trainer.real_step(loss)
        return {"loss": loss.detach(), "correct": (logits.argmax(1) == batch.y).sum(), "lr": torch.tensor(lr)}

    @property
    def learner(self) -> nn.Module | None:
        """The meta-learned network (weight net, LR net, modulation); None for plain methods.

        Save it with `metakit.learners.store.save_learner` (``run`` also returns it as
        ``Result.learner``).
        """
        return None

    def current_meta_step(self) -> "MetaStep | None":
        """The `metakit.meta.MetaStep` this method runs (None for plain methods or before `setup`)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs beyond net, optimiser and schedule (loadable ``weights_only``).

        The default keeps the learner's weights and the `MetaStep`'s call counter and
        meta-optimiser; a method with more state (a switch, a trace) extends the dict.

        Returns:
            ``{"learner": state dict | None, "meta_step": {"calls", "meta_optimizer"} | None}``.

        Example:
            >>> Method(num_classes=2, class_counts=[3, 1]).state_dict()
            {'learner': None, 'meta_step': None}
        """
        learner, step = self.learner, self.current_meta_step()
        return {"learner": None if learner is None else learner.state_dict(),
                "meta_step": None if step is None else {"calls": step.calls,
                                                        "meta_optimizer": step.meta_optimizer.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of `state_dict`, into a method built (and set up) from the same config.

        Example:
            >>> m = Method(num_classes=2, class_counts=[3, 1])
            >>> m.load_state_dict(m.state_dict())
        """
        learner, step = self.learner, self.current_meta_step()
        if (state.get("learner") is None) != (learner is None) or (state.get("meta_step") is None) != (step is None):
            raise ValueError(f"method={self.name!r}: the saved state (learner: {state.get('learner') is not None}, "
                             f"meta step: {state.get('meta_step') is not None}) does not fit this method (learner: "
                             f"{learner is not None}, meta step: {step is not None}); resume with the same config.")
        if learner is not None:
            learner.load_state_dict(state["learner"])
        if step is not None:
            step.calls = int(state["meta_step"]["calls"])
            step.meta_optimizer.load_state_dict(state["meta_step"]["meta_optimizer"])
