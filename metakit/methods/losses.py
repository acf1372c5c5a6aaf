"""Long-tail losses as plain functions: class-balanced weights, focal, LDAM, logit adjustment.

Each returns a per-sample loss (B,) so a method can weight, average or meta-learn on it.

References:
    Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples" (CVPR).
    Lin et al. 2017, "Focal Loss for Dense Object Detection" (ICCV).
    Cao et al. 2019, "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss"
        (NeurIPS; LDAM-DRW).
    Menon et al. 2021, "Long-tail learning via logit adjustment" (ICLR);
    Ren et al. 2020, "Balanced Meta-Softmax for Long-Tailed Visual Recognition" (NeurIPS).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from metakit.options import require


def check_counts(class_counts: Sequence[int]) -> np.ndarray:
    """Training images per class as a float64 array, refusing empty classes.

    Example:
        >>> check_counts([3, 1]).tolist()
        [3.0, 1.0]
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) < 2 or not np.all(counts >= 1):
        raise ValueError(f"class_counts={list(class_counts)!r} must give >= 1 training image for each of "
                         f">= 2 classes; lower the imbalance so every class keeps an image.")
    return counts


def class_balanced_weights(class_counts: Sequence[int], beta: float) -> torch.Tensor:
    """Class weights from the effective number of samples, normalised to sum to C.

    E_c = (1 − β^{n_c}) / (1 − β)  (Eq. 3 of Cui et al.), w_c ∝ 1 / E_c = (1 − β) / (1 − β^{n_c}).
    β = 0 gives equal weights, β → 1 inverse class frequency; the effective number saturates
    at N = 1 / (1 − β) images, so β only matters when n_c is comparable to N.

    Args:
        class_counts: training images per class.
        beta: in [0, 1).

    Returns:
        (C,) float32 weights with sum C.

    Example:
        >>> class_balanced_weights([100, 10], 0.0).tolist()
        [1.0, 1.0]
        >>> [round(w, 3) for w in class_balanced_weights([100, 10], 0.9999).tolist()]
        [0.183, 1.817]
    """
    counts = check_counts(class_counts)
    require("beta", beta, float, low=0, high=1, high_open=True, example="0.9999 (CIFAR) or 0.996 (digits)")
    weights = (1.0 - beta) / (1.0 - np.power(beta, counts))                   # (C,)
    return torch.tensor(weights / weights.sum() * len(counts), dtype=torch.float32)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Softmax focal loss −(1 − p_t)^γ log p_t per sample (Eq. 5 of Lin et al.); γ = 0 is CE.

    Args:
        logits: (B, C).
        targets: (B,) class indices.
        gamma: focusing parameter >= 0.

    Returns:
        (B,) losses.

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
        >>> bool(focal_loss(z, y, 2.0) < F.cross_entropy(z, y))
        True
    """
    log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)  # (B,) log p_t
    # p_t rounds to 1 on a confident sample: (1 − p_t)^γ with γ < 1 has an infinite slope at 0 (NaN gradients)
    return -(1.0 - log_p.exp()).clamp_min(torch.finfo(log_p.dtype).tiny).pow(gamma) * log_p


def ldam_margins(class_counts: Sequence[int], max_m: float = 0.5) -> torch.Tensor:
    """LDAM margins Δ_c ∝ n_c^{-1/4}, scaled so the rarest class gets ``max_m`` (Eq. 12 of Cao et al.).

    Example:
        >>> [round(m, 4) for m in ldam_margins([16, 1], 0.5).tolist()]
        [0.25, 0.5]
    """
    counts = check_counts(class_counts)
    require("max_m", max_m, float, low=0, low_open=True, example="0.5 (LDAM-DRW)")
    margins = counts ** -0.25                                                  # (C,)
    return torch.tensor(margins * (max_m / margins.max()), dtype=torch.float32)


def ldam_loss(logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor, s: float) -> torch.Tensor:
    """Per-sample LDAM loss: cross-entropy of s·(z − Δ_y·onehot(y)) (Eq. 10 of Cao et al.).

    Args:
        logits: (B, C), cosine logits of a `NormedLinear` head in LDAM-DRW.
        targets: (B,) class indices.
        margins: (C,) from `ldam_margins`.
        s: logit scale (30 in LDAM-DRW).

    Example:
        >>> z, y = torch.zeros(1, 2), torch.tensor([0])
        >>> round(ldam_loss(z, y, torch.tensor([1.0, 0.0]), 1.0).item(), 4)  # -log(e^-1 / (e^-1 + 1))
        1.3133
    """
    shift = F.one_hot(targets, logits.shape[1]).to(logits.dtype) * margins.to(logits)[targets][:, None]
    return F.cross_entropy(s * (logits - shift), targets, reduction="none")  # (B,)


def log_priors(class_counts: Sequence[int]) -> torch.Tensor:
    """log π_c, the log class priors of the training set.

    Example:
        >>> log_priors([3, 1]).exp().tolist()
        [0.75, 0.25]
    """
    counts = check_counts(class_counts)
    return torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)


def logit_adjusted_loss(logits: torch.Tensor, targets: torch.Tensor, log_prior: torch.Tensor,
                        tau: float = 1.0) -> torch.Tensor:
    """Per-sample cross-entropy of z + τ·log π (Eq. 10 of Menon et al.; τ = 1 is balanced softmax).

    Example:
        >>> z, y = torch.zeros(1, 2), torch.tensor([1])
        >>> round(logit_adjusted_loss(z, y, log_priors([3, 1])).item(), 4)  # -log 0.25
        1.3863
    """
    return F.cross_entropy(logits + tau * log_prior.to(logits), targets, reduction="none")


class NormedLinear(nn.Module):
    """Cosine classifier head: logits_c = scale·<x/|x|, w_c/|w_c|>, in [−scale, scale] (LDAM-DRW's head).

    Args:
        in_features: feature size.
        out_features: number of classes.
        scale: a factor on the cosines (1 in LDAM-DRW, whose loss applies its s itself).

    Example:
        >>> head = NormedLinear(4, 3)
        >>> bool(head(torch.randn(5, 4)).abs().max() <= 1 + 1e-6)
        True
    """

    def __init__(self, in_features: int, out_features: int, scale: float = 1.0):
        super().__init__()
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        # (in, out) columns of norm 1, as in the LDAM-DRW code's uniform_().renorm_() init
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cosines = F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)          # (B, C)
        return cosines if self.scale == 1 else self.scale * cosines

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale:g}"
