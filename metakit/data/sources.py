"""Where images come from: the bundled digits set (offline default) and CIFAR-10/100.

Every source returns a `Source`: uint8 images (N, C, H, W), integer labels, a balanced test
set, and the per-channel mean/std used to normalise. Nothing is read at import time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metakit.data.cifar import load_cifar
from metakit.data.source import Source, channel_stats, default_root

DATASETS = ("digits", "cifar10", "cifar100")
DIGITS_TEST_PER_CLASS = 50  # balanced digits test set; the rest is the training pool


def load_digits_source() -> Source:
    """scikit-learn's bundled 8x8 digits (1,797 images), 50 per class held out as the test set.

    The test split is fixed (it does not move with the experiment seed), so every run of a
    class is scored on the same images.

    Example:
        >>> src = load_digits_source()
        >>> src.train_x.shape[1:], len(src.test_y)
        (torch.Size([1, 8, 8]), 500)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images / 16.0 * 255.0).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(20200807)  # fixed: the test set is part of the dataset
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:DIGITS_TEST_PER_CLASS]
                           for c in range(10)])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test] = True
    train_x = torch.from_numpy(images[~is_test])
    mean, std = channel_stats(train_x)
    return Source("digits", train_x, labels[~is_test], torch.from_numpy(images[is_test]),
                  labels[is_test], [str(c) for c in range(10)], mean, std, "shift")


def load_source(name: str, root: str | Path | None = None) -> Source:
    """Load a dataset by name.

    Args:
        name: one of ``DATASETS``.
        root: folder holding CIFAR in torchvision's layout; defaults to `default_root()`.
            Unused for digits.

    Example:
        >>> load_source("digits").num_classes
        10
    """
    if name == "digits":
        return load_digits_source()
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, default_root() if root is None else Path(root))
    raise ValueError(f"dataset={name!r} is unknown; use one of {DATASETS}.")
