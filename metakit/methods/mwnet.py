"""Meta-Weight-Net: a small MLP maps each sample's loss to its weight, trained on a clean meta set.

L_train(θ; φ) = Σ_i c_i ℓ_i(θ), c = normalise(σ(MLP_φ(ℓ.detach()))) (Shu et al. 2019, Eq. 2-5).
The weights read *detached* losses, so `MetaStep` differentiates through them with its JVP
rule: one forward-mode pass instead of MW-Net's double backward, the same hypergradient.

The weight net's optimiser follows the official code of the setting (``meta_optimizer="auto"``):
under a long tail, xjtushujun/Meta-weight-net_class-imbalance (``meta-weight-net-class-imbalance.py``:
SGD 1e-5, momentum 0.9, Nesterov, weight decay 5e-4, weights normalised by their sum); under label
noise, the noisy-label code (Adam ``Config.meta_lr`` = 1e-3, weight decay 1e-4).

Reference: Shu et al., "Meta-Weight-Net: Learning an Explicit Mapping For Sample Weighting",
NeurIPS 2019 (weight net 1→100→1 with sigmoid; long-tail recipe: ResNet-32, 100 epochs,
batch 100, SGD 0.1 Nesterov, wd 5e-4, LR ×0.1 at epochs 80 and 90).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from metakit.learners.weight_net import WeightNet
from metakit.meta import MetaStep
from metakit.meta.core import NORMALIZE_CHOICES
from metakit.meta.step import RULE_CHOICES
from metakit.methods.registry import register
from metakit.methods.base import Method, Trainer
from metakit.options import option

if TYPE_CHECKING:
    from metakit.data.batches import Batch

@dataclass(frozen=True)
class MWNetOptions:
    """Options of ``method="mwnet"``; ``Config.meta_lr``, ``meta_every`` and ``weight_decay``
    (folded into the virtual step) come from the config."""

    hidden: int = option(100, "weight-net width (the paper's 100)", low=1)
    normalize: str = option("sum", "weights / their sum (the long-tail code) or / batch size (the noisy-label "
                                   "code)", choices=NORMALIZE_CHOICES)
    meta_optimizer: str = option("auto", "auto: the official code of the setting (a long tail: SGD 1e-5, momentum "
                                         "0.9, Nesterov, wd 5e-4; label noise: Adam(meta_lr), wd meta_weight_decay); "
                                         "adam: Adam(meta_lr); sgd: SGD(meta_lr, momentum 0.9, Nesterov)",
                                 choices=("auto", "adam", "sgd"))
    meta_weight_decay: float = option(1e-4, "the meta-optimiser's weight decay (adam, sgd; auto under noise)", low=0)
    rule: str = option("auto", "auto: the exact JVP rule; general: the double backward, rof: reverse over "
                               "forward, both for comparison",
                       choices=RULE_CHOICES)
    meta_clip: float | None = option(None, "clip the weight net's gradient norm to this (None: off)", low=0,
                                     low_open=True, nullable=True)


@register
class MWNet(Method):
    """Meta-Weight-Net (Shu et al. 2019): a weight net learned on the clean meta set re-weights each sample's loss.

    ``first_order`` is not an option: for sample weights it would make the hypergradient zero.

    Example:
        >>> m = MWNet(num_classes=3, class_counts=[9, 3, 1], hidden=16)
        >>> m.uses_meta_set, sum(p.numel() for p in m.weight_net.parameters())
        (True, 49)
    """

    name = "mwnet"
    Options = MWNetOptions
    learns = "a per-sample weight from the sample's loss (an MLP)"
    enters = "loss"
    uses_meta_set = True

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        if "first_order" in options:
            raise ValueError("first_order is not an option of method='mwnet': sample weights reach θ' only through "
                             "∇θ L_train, so a first-order hypergradient is zero; the exact JVP rule is already cheap.")
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        self.weight_net = WeightNet(o.hidden, o.normalize)
        self.step: MetaStep | None = None

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """MW-Net's long-tail recipe under "paper"; the profile's defaults otherwise."""
        if profile != "paper":
            return {}
        return dict(model="resnet32", epochs=100, batch_size=100, lr=0.1, momentum=0.9, nesterov=True,
                    weight_decay=5e-4, schedule="multistep", milestones=(80, 90), gamma=0.1, warmup_epochs=0,
                    meta_lr=1e-3)

    def _setting(self, name: str, default: Any) -> Any:
        value = getattr(self.config, name, None)
        return default if value is None else value

    def meta_optimizer(self) -> tuple[str, float, float]:
        """(kind, LR, weight decay) of the weight net's optimiser; "auto" follows the setting's official code.

        Example:
            >>> from types import SimpleNamespace as C
            >>> MWNet(3, [9, 3, 1], C(imbalance=100, noise_rate=0.0)).meta_optimizer()
            ('sgd', 1e-05, 0.0005)
            >>> MWNet(3, [9, 3, 1], C(imbalance=1, noise_rate=0.4, meta_lr=1e-3)).meta_optimizer()
            ('adam', 0.001, 0.0001)
        """
        o, meta_lr = self.options, self._setting("meta_lr", 1e-3)
        if o.meta_optimizer != "auto":
            return o.meta_optimizer, meta_lr, o.meta_weight_decay
        if self._setting("noise_rate", 0.0) > 0 or self._setting("imbalance", 1.0) == 1:
            return "adam", meta_lr, o.meta_weight_decay        # the noisy-label code
        return "sgd", 1e-5, 5e-4                               # the class-imbalance code

    @property
    def meta_updates(self) -> int:
        """Meta-updates made so far (a run's meta-learning budget)."""
        return 0 if self.step is None else -(-self.step.calls // self.step.meta_every)

    def setup(self, trainer: "Trainer") -> None:
        """Build the meta-optimiser and the `MetaStep` on the trainer's device."""
        self.weight_net.to(trainer.device)
        kind, meta_lr, weight_decay = self.meta_optimizer()
        if kind == "adam":
            meta_opt = torch.optim.Adam(self.weight_net.parameters(), meta_lr, weight_decay=weight_decay)
        else:
            meta_opt = torch.optim.SGD(self.weight_net.parameters(), meta_lr, momentum=0.9, nesterov=True,
                                       weight_decay=weight_decay)
        o = self.options
        self.step = MetaStep(trainer.net, self.weight_net, trainer.optimizer, meta_opt,
                             per_sample_loss=self.per_sample_loss, meta_every=int(self._setting("meta_every", 1)),
                             weight_decay=float(self._setting("weight_decay", 0.0)), meta_clip=o.meta_clip,
                             rule=o.rule, amp=trainer.amp)

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        """Schedule the LR, then one `MetaStep` (meta-update on meta iterations, real step always)."""
        if self.step is None:
            raise RuntimeError("MWNet.setup(trainer) must run before train_step; metakit.experiments.run does it.")
        trainer.set_lr()                   # before the virtual step, which reads the LR
        meta = None if meta_batch is None else (meta_batch.x, meta_batch.y)
        return self.step((batch.x, batch.y), meta)

    @property
    def learner(self) -> WeightNet:
        """The weight net φ (`Method.state_dict` saves it with the `MetaStep`'s state)."""
        return self.weight_net

    def current_meta_step(self) -> MetaStep | None:
        return self.step
