"""`Source`, a dataset in memory, and what every loader shares (its root folder, channel statistics)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class Source:
    """A dataset in memory: training pool, balanced validation split and balanced test set.

    Attributes:
        name: "digits", "mnist1d", "cifar10" or "cifar100".
        train_x: (N, C, H, W) uint8 images, or (N, C, L) float32 signals (MNIST-1D), of the
            training pool (the meta set is taken out of it by the split).
        train_y: (N,) int64 labels.
        test_x: test inputs, like ``train_x``.
        test_y: (M,) int64 test labels.
        classes: class names, index = label.
        mean: per-channel mean of the inputs (of ``x / 255`` for uint8 images).
        std: per-channel std, likewise.
        augment: the batch augmentation that suits it ("crop_flip", "shift" or "none").
        val_x: the validation split used for model selection (never the test set); None: the
            dataset has none (CIFAR, whose protocol uses all 50,000 training images).
        val_y: its labels.
    """

    name: str
    train_x: torch.Tensor
    train_y: np.ndarray
    test_x: torch.Tensor
    test_y: np.ndarray
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    val_x: torch.Tensor | None = None
    val_y: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def default_root() -> Path:
    """Where datasets live: ``$METAKIT_DATA`` or ``./data``.

    Example:
        >>> default_root().name != ""
        True
    """
    return Path(os.environ.get("METAKIT_DATA", "data")).expanduser()


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], or of float inputs as they are.

    Example:
        >>> channel_stats(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8))
        ((1.0,), (0.0010000000474974513,))
        >>> channel_stats(torch.tensor([[[1.0, 3.0]]]))                       # (N, C, L) signals
        ((2.0,), (1.4142135381698608,))
    """
    xf = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()      # (N, C, *spatial)
    dims = (0, *range(2, x.dim()))
    mean = xf.mean(dim=dims)
    std = xf.std(dim=dims).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())
