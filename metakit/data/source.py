"""`Source`, a dataset in memory, and what every loader shares (its root folder, channel statistics)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class Source:
    """A dataset in memory: training pool and balanced test set.

    Attributes:
        name: "digits", "cifar10" or "cifar100".
        train_x: (N, C, H, W) uint8 images of the training pool.
        train_y: (N,) int64 labels.
        test_x: (M, C, H, W) uint8 test images.
        test_y: (M,) int64 test labels.
        classes: class names, index = label.
        mean: per-channel mean of ``train_x / 255``.
        std: per-channel std of ``train_x / 255``.
        augment: the batch augmentation that suits it ("crop_flip", "shift" or "none").
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
    """Per-channel mean and std of uint8 images scaled to [0, 1].

    Example:
        >>> channel_stats(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8))
        ((1.0,), (0.0010000000474974513,))
    """
    xf = x.float().div_(255.0)                                                # (N, C, H, W)
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())
