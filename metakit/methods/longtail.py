"""Long-tail baselines in the one training loop: ``Config(method=..., options={...})``.

| method        | changes                         | options (default)                                  |
|---------------|---------------------------------|----------------------------------------------------|
| `cb_loss`     | loss weights 1/E_{n_c}          | beta (dataset default), base "ce"/"focal", focal_gamma (1.0) |
| `cb_resample` | batches: each class equally often | none                                             |
| `focal`       | loss (1 − p_t)^γ · CE           | focal_gamma (1.0)                                  |
| `ldam_drw`    | cosine head, margin loss, DRW   | max_m (0.5), s (30), drw_epoch (80% of epochs), beta |
| `logit_adj`   | loss on z + τ·log π, test on z  | tau (1.0)                                          |

Defaults are the papers' (β 0.9999 on CIFAR, focal γ 1.0 as in LDAM-DRW's comparisons, the
softmax focal loss of LDAM-DRW's code) except β = 0.996 on digits: why, in
docs/guide/design_notes.md. `cb_loss` averages w_y·loss over the batch (Cui et al.'s code);
`ldam_drw` divides by Σ w_y (its code's ``F.cross_entropy(weight=...)``). The formulas and
papers: `metakit.methods.losses`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metakit.methods.registry import register
from metakit.methods.base import Method, Trainer
from metakit.options import option
from metakit.methods.losses import (NormedLinear, check_counts, class_balanced_weights, focal_loss, ldam_loss,
                                    ldam_margins, log_priors, logit_adjusted_loss)

DEFAULT_BETA = {"cifar10": 0.9999, "cifar100": 0.9999, "digits": 0.996}
CB_BASES = ("ce", "focal")

BETA_HELP = "class-balanced β, w_c = (1 − β)/(1 − β^n_c); None: the dataset's (0.9999 CIFAR, 0.996 digits)"


@dataclass(frozen=True)
class CBLossOptions:
    """Options of ``method="cb_loss"``."""

    beta: float | None = option(None, BETA_HELP, low=0, high=1, high_open=True, nullable=True, example="0.9999")
    base: str = option("ce", "the loss that is re-weighted", choices=CB_BASES)
    focal_gamma: float | None = option(None, "focal γ with base='focal' (None: 1.0)", low=0, nullable=True,
                                       example="1")


@dataclass(frozen=True)
class FocalOptions:
    """Options of ``method="focal"``."""

    focal_gamma: float = option(1.0, "focal γ: (1 − p_t)^γ down-weights easy images (0: cross-entropy)", low=0,
                                example="1")


@dataclass(frozen=True)
class LDAMDRWOptions:
    """Options of ``method="ldam_drw"``."""

    max_m: float = option(0.5, "the largest class margin (the rarest class's)", low=0, low_open=True, example="0.5")
    s: float = option(30.0, "the cosine head's scale", low=0, low_open=True, example="30")
    drw_epoch: int | None = option(None, "0-based epoch at which re-weighting starts; None: 80% of the epochs",
                                   low=0, nullable=True, example="160")
    beta: float | None = option(None, BETA_HELP, low=0, high=1, high_open=True, nullable=True, example="0.9999")


@dataclass(frozen=True)
class LogitAdjOptions:
    """Options of ``method="logit_adj"``."""

    tau: float = option(1.0, "τ in z + τ·log π (1: balanced softmax, 0: cross-entropy)", low=0, example="1")


DRW_START = 0.8  # deferred re-weighting starts at 80% of the epochs (Cao et al.: epoch 160 of 200)


def default_beta(config: Any) -> float:
    """The class-balanced β for a config's dataset (0.9999 when unknown; digits: docs/guide/design_notes.md).

    Example:
        >>> default_beta(None), DEFAULT_BETA["digits"]
        (0.9999, 0.996)
    """
    return DEFAULT_BETA.get(getattr(config, "dataset", None), 0.9999)


@register
class ClassBalancedLoss(Method):
    """Class-balanced loss (Cui et al. 2019): w_y · CE or w_y · focal, w_c = (1 − β)/(1 − β^{n_c}).

    Example:
        >>> m = ClassBalancedLoss(2, [2, 1], beta=0.5)  # E = (1.5, 1): w ∝ (2/3, 1), sum 2
        >>> [round(w, 3) for w in m.class_weights.tolist()]
        [0.8, 1.2]
    """

    name = "cb_loss"
    Options = CBLossOptions

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        if o.base == "ce" and o.focal_gamma is not None:
            raise ValueError(f"focal_gamma={o.focal_gamma!r} is used only with base='focal'; add "
                             f"options={{'base': 'focal'}} or drop focal_gamma.")
        self.base = o.base
        self.focal_gamma = 1.0 if o.focal_gamma is None else o.focal_gamma
        self.beta = default_beta(config) if o.beta is None else o.beta
        self.class_weights = class_balanced_weights(self.class_counts, self.beta)  # (C,)

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.base == "focal":
            loss = focal_loss(logits, targets, self.focal_gamma)
        else:
            loss = F.cross_entropy(logits, targets, reduction="none")
        return self.class_weights.to(logits.device)[targets] * loss         # (B,)


@register
class ClassBalancedResampling(Method):
    """Class-balanced re-sampling: draw image i with probability ∝ 1/n_{y_i}, so every class is
    drawn equally often; an epoch still holds N draws (with replacement).

    Example:
        >>> ClassBalancedResampling(2, [3, 1]).sample_weights(np.array([0, 0, 0, 1])).tolist()
        [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0]
    """

    name = "cb_resample"

    def sample_weights(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.int64)
        counts = np.bincount(labels, minlength=self.num_classes)          # (C,) from the labels seen
        return 1.0 / counts[labels]                                          # (N,)


@register
class Focal(Method):
    """Focal loss (Lin et al. 2017): −(1 − p_t)^γ log p_t, down-weighting well-classified images.

    Example:
        >>> round(Focal(2, [5, 1], focal_gamma=0).loss(torch.zeros(1, 2), torch.tensor([0])).item(), 4)  # log 2
        0.6931
    """

    name = "focal"
    Options = FocalOptions

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        self.focal_gamma = self.options.focal_gamma

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, targets, self.focal_gamma)


@register
class LDAMDRW(Method):
    """LDAM loss on a cosine head with deferred re-weighting (Cao et al. 2019).

    Until epoch ``drw_epoch`` every class weighs 1; from then on the class-balanced weights of
    ``beta`` switch on (`start_epoch`), typically together with the LR drop.

    Example:
        >>> m = LDAMDRW(2, [16, 1], drw_epoch=1)
        >>> m.start_epoch(0, None); m.class_weights is None
        True
        >>> m.start_epoch(1, None); m.class_weights.shape
        torch.Size([2])
    """

    name = "ldam_drw"
    Options = LDAMDRWOptions

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        self.s = o.s
        self.margins = ldam_margins(self.class_counts, o.max_m)
        self.beta = default_beta(config) if o.beta is None else o.beta
        epochs, drw_epoch = getattr(config, "epochs", None), o.drw_epoch
        if drw_epoch is None:
            if epochs is None:
                raise ValueError("drw_epoch=None needs config.epochs to default to 80% of it; pass drw_epoch, "
                                 "e.g. options={'drw_epoch': 160}.")
            drw_epoch = int(DRW_START * epochs)
        if epochs is not None and drw_epoch >= epochs:
            warnings.warn(f"drw_epoch={drw_epoch} >= epochs={epochs}: re-weighting never switches on (plain LDAM).")
        self.drw_epoch = int(drw_epoch)
        self.class_weights: torch.Tensor | None = None                       # (C,) once DRW is on

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """LDAM-DRW's CIFAR recipe at the paper profile (200 epochs, ×0.01 at 160 and 180)."""
        if profile != "paper":
            return {}
        return dict(epochs=200, batch_size=128, lr=0.1, momentum=0.9, weight_decay=2e-4, schedule="multistep",
                    milestones=(160, 180), gamma=0.01, warmup_epochs=5)

    def prepare(self, net: nn.Module) -> nn.Module:
        """Replace the linear head ``net.fc`` by a `NormedLinear` of the same size."""
        if not isinstance(getattr(net, "fc", None), nn.Linear):
            raise TypeError(f"method='ldam_drw' needs a net whose head net.fc is an nn.Linear; "
                            f"{type(net).__name__} has fc={getattr(net, 'fc', None)!r}.")
        net.fc = NormedLinear(net.fc.in_features, net.fc.out_features)
        return net

    def start_epoch(self, epoch: int, trainer: "Trainer | None") -> None:
        """Deferred re-weighting: class-balanced weights from ``drw_epoch`` on (0-based)."""
        if epoch >= self.drw_epoch:
            self.class_weights = class_balanced_weights(self.class_counts, self.beta)
        else:
            self.class_weights = None

    def _weights(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.class_weights is None:
            return torch.ones_like(targets, dtype=logits.dtype)
        return self.class_weights.to(logits.device)[targets]                 # (B,)

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._weights(logits, targets) * ldam_loss(logits, targets, self.margins, self.s)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Σ w_y·loss / Σ w_y, the reduction of ``F.cross_entropy(weight=...)`` in LDAM-DRW's code."""
        return self.per_sample_loss(logits, targets).sum() / self._weights(logits, targets).sum()

    def state_dict(self) -> dict[str, Any]:
        """`Method.state_dict` plus the DRW switch: the class weights once re-weighting is on (else None).

        Example:
            >>> m = LDAMDRW(2, [16, 1], drw_epoch=0); m.start_epoch(0, None)
            >>> fresh = LDAMDRW(2, [16, 1], drw_epoch=0); fresh.load_state_dict(m.state_dict())
            >>> torch.equal(fresh.class_weights, m.class_weights)
            True
        """
        weights = None if self.class_weights is None else self.class_weights.clone()
        return {**super().state_dict(), "class_weights": weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.class_weights = None if state["class_weights"] is None else state["class_weights"].clone()


@register
class LogitAdjustment(Method):
    """Logit-adjusted loss (Menon et al. 2021): train on z + τ·log π, predict with z.

    τ = 1 is the balanced softmax of Ren et al. 2020; τ = 0 is plain cross-entropy.

    Example:
        >>> m = LogitAdjustment(2, [3, 1])
        >>> round(m.loss(torch.zeros(1, 2), torch.tensor([1])).item(), 4)  # -log(1/4)
        1.3863
    """

    name = "logit_adj"
    Options = LogitAdjOptions

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        check_counts(self.class_counts)
        self.tau = self.options.tau
        self.log_prior = log_priors(self.class_counts)                       # (C,)

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logit_adjusted_loss(logits, targets, self.log_prior, self.tau)
