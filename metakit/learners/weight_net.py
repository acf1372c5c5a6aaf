"""Meta-Weight-Net's weight net: an MLP from a sample's (detached) loss to its weight.

L_train(θ; φ) = Σ_i c_i ℓ_i(θ), c = normalise(σ(MLP_φ(ℓ.detach()))) (Shu et al. 2019, Eq. 2-5).
Because it reads detached losses (``enters="loss"``), `metakit.meta.MetaStep` differentiates
through it with the cheap JVP rule.
"""
from __future__ import annotations

import torch
from torch import nn

from metakit.learners.store import register_kind
from metakit.meta import MetaLearner, normalize_weights


class WeightNet(MetaLearner):
    """MW-Net's weight net: per-sample loss → weight in (0, 1), then normalised.

    Args:
        hidden: width of the one hidden layer (100 in the paper).
        normalize: "sum" (weights / their sum, the long-tail code) or "mean" (weights / B,
            the noisy-label code); see `metakit.meta.normalize_weights`.

    Example:
        >>> c = WeightNet(hidden=8).weights(torch.tensor([0.1, 2.0, 5.0]))
        >>> c.shape, round(c.sum().item(), 6)
        (torch.Size([3]), 1.0)
    """

    enters = "loss"

    def __init__(self, hidden: int = 100, normalize: str = "sum"):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.normalize = normalize

    def raw_weights(self, per_sample_loss: torch.Tensor) -> torch.Tensor:
        """σ(MLP(ℓ)) (B,) before normalisation; ℓ is read detached (MW-Net: the weight is a function of
        the loss's value, and θ is reached only through the weighted loss)."""
        return torch.sigmoid(self.mlp(per_sample_loss.detach().unsqueeze(1))).squeeze(1)    # (B,)

    def weights(self, per_sample_loss: torch.Tensor) -> torch.Tensor:
        """Coefficients c (B,) of L_train = Σ c_i ℓ_i from detached losses."""
        return normalize_weights(self.raw_weights(per_sample_loss), self.normalize)


register_kind("weight_net", WeightNet, lambda net: {"hidden": net.mlp[0].out_features, "normalize": net.normalize},
              "a Meta-Weight-Net weight net")
