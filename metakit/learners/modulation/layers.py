"""The two modulation layers: fixed per-channel (γ, β), and a small network that produces them.

Both map a feature ``h`` of shape (B, C, ...) to ``γ ⊙ h + β`` with γ, β broadcast over the
spatial positions, and both start at the identity (γ = 1, β = 0) so that attaching them does
not change what the classifier computes, bit for bit.
"""
from __future__ import annotations

import torch
from torch import nn

STATS_EPS = 1e-5  # keeps the std's gradient finite on constant maps (and on pooled features)


def _check_channels(h: torch.Tensor, channels: int, owner: str) -> None:
    if h.dim() < 2 or h.shape[1] != channels:
        raise ValueError(f"{owner} expects features of shape (B, {channels}, ...) but got {tuple(h.shape)}; "
                         f"attach it to a layer with {channels} channels (or re-attach to this net).")


def _broadcast(v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Reshape (C,) or (B, C) to broadcast against h (B, C, *spatial)."""
    lead = (1, -1) if v.dim() == 1 else (v.shape[0], -1)
    return v.view(*lead, *([1] * (h.dim() - 2)))


class FeatureModulation(nn.Module):
    """Per-channel scale and shift, ``γ ⊙ h + β``: mode 1 of MFM (``method="mfm"``).

    Args:
        channels: C, the number of channels of the modulated feature.

    Example:
        >>> mod = FeatureModulation(3)
        >>> h = torch.randn(2, 3, 4, 4)
        >>> torch.equal(mod(h), h)                       # γ = 1, β = 0 at init
        True
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = int(channels)
        self.gamma = nn.Parameter(torch.ones(self.channels))                   # (C,)
        self.beta = nn.Parameter(torch.zeros(self.channels))                   # (C,)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        _check_channels(h, self.channels, "FeatureModulation")
        return h * _broadcast(self.gamma, h) + _broadcast(self.beta, h)        # (B, C, ...)

    def scale_shift(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """γ and β applied to ``h``, each (B, C) (the same row for every sample)."""
        b = h.shape[0]
        return self.gamma.expand(b, -1), self.beta.expand(b, -1)


def feature_stats(h: torch.Tensor) -> torch.Tensor:
    """Per-sample channel means and stds over the spatial positions, (B, 2C).

    A pooled feature (B, C) has one position: its mean is itself and its std is sqrt(eps).

    Example:
        >>> feature_stats(torch.ones(2, 3, 4, 4)).shape
        torch.Size([2, 6])
    """
    flat = h.flatten(2) if h.dim() > 2 else h.unsqueeze(2)                      # (B, C, L)
    mean = flat.mean(2)                                                          # (B, C)
    std = (flat.var(2, unbiased=False) + STATS_EPS).sqrt()                       # (B, C)
    return torch.cat([mean, std], dim=1)                                         # (B, 2C)


class ModulatorNet(nn.Module):
    """A per-sample modulator: channel statistics (B, 2C) → MLP → (γ, β), each (B, C): mode 2.

    The last linear layer starts at zero, so γ = 1 + 0 and β = 0 exactly at init.

    Args:
        channels: C of the modulated feature.
        hidden: width of the MLP's hidden layer. Small (16-64) is enough: it sees 2C numbers.

    Example:
        >>> mod = ModulatorNet(3, hidden=8)
        >>> h = torch.randn(2, 3, 4, 4)
        >>> torch.equal(mod(h), h)
        True
    """

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.channels, self.hidden = int(channels), int(hidden)
        self.mlp = nn.Sequential(nn.Linear(2 * self.channels, self.hidden), nn.ReLU(),
                                 nn.Linear(self.hidden, 2 * self.channels))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def scale_shift(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """γ and β for each sample of ``h``, each (B, C)."""
        _check_channels(h, self.channels, "ModulatorNet")
        delta_gamma, beta = self.mlp(feature_stats(h)).chunk(2, dim=1)          # (B, C), (B, C)
        return 1 + delta_gamma, beta

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.scale_shift(h)
        return h * _broadcast(gamma, h) + _broadcast(beta, h)                   # (B, C, ...)


class SharedModulatorNet(nn.Module):
    """A per-sample modulator whose one small MLP is shared by every channel: it does not depend on C.

    Channel c of a sample reads (mean_c, std_c, the layer's mean of the means, its mean of the
    stds) and the MLP maps those 4 numbers to (γ_c − 1, β_c). The weights have no channel axis,
    so a modulator learned on one width modulates a net of another width (transfer across
    backbones); `ModulatorNet` sees all 2C statistics at once and cannot. Its last linear layer
    starts at zero: γ = 1, β = 0 exactly at init.

    Args:
        channels: C of the modulated feature (checked on each call; the weights do not use it).
        hidden: width of the shared MLP's hidden layer.

    Example:
        >>> mod = SharedModulatorNet(3, hidden=8)
        >>> h = torch.randn(2, 3, 4)
        >>> torch.equal(mod(h), h), sum(p.numel() for p in mod.parameters()) == (4 * 8 + 8) + (8 * 2 + 2)
        (True, True)
    """

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.channels, self.hidden = int(channels), int(hidden)
        self.mlp = nn.Sequential(nn.Linear(4, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 2))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def scale_shift(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """γ and β for each sample of ``h``, each (B, C)."""
        _check_channels(h, self.channels, "SharedModulatorNet")
        mean, std = feature_stats(h).chunk(2, dim=1)                            # (B, C) each
        context = torch.stack([mean.mean(1), std.mean(1)], dim=1)               # (B, 2)
        per_channel = torch.cat([torch.stack([mean, std], dim=2),
                                 context.unsqueeze(1).expand(-1, mean.shape[1], -1)], dim=2)   # (B, C, 4)
        delta_gamma, beta = self.mlp(per_channel).unbind(2)                     # (B, C), (B, C)
        return 1 + delta_gamma, beta

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.scale_shift(h)
        return h * _broadcast(gamma, h) + _broadcast(beta, h)                   # (B, C, ...)


KINDS = {"film": FeatureModulation, "net": ModulatorNet, "shared": SharedModulatorNet}
NETWORK_KINDS = ("net", "shared")  # the kinds that take a hidden width (modulator networks)
WIDTH_FREE_KINDS = ("shared",)     # the kinds whose weights fit any channel count
