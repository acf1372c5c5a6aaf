"""Where the data comes from: the bundled digits set (offline default), MNIST-1D (generated
offline, `metakit.data.mnist1d`), CIFAR-10/100 (`metakit.data.cifar`) and ImageNet
(`metakit.data.imagenet`), each registered by name (`metakit.data.registry.register_dataset`).

Every in-memory source returns a `Source`: inputs (uint8 images (N, C, H, W) or float signals
(N, C, L)), integer labels, a balanced validation split (digits, MNIST-1D), a balanced test set,
and the per-channel mean/std used to normalise. ImageNet does not fit in memory: it returns a
`metakit.data.imagenet.FolderSource` (file lists and labels) whose batches are decoded from disk.
Nothing is read at import time.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from metakit.data.registry import dataset_names, get_dataset, register_dataset
from metakit.data.source import Source, channel_stats, default_root
from metakit.options import require

if TYPE_CHECKING:
    from metakit.data.imagenet import FolderSource

DATA_SIZES = ("full", "small")  # small: a CI-sized generated set (MNIST-1D); the others are unchanged
DIGITS_TEST_PER_CLASS = 50  # balanced digits test set
DIGITS_VAL_PER_CLASS = 20   # balanced digits validation split; the rest is the training pool


def load_digits_source() -> Source:
    """scikit-learn's bundled 8x8 digits (1,797 images): 50 per class held out as the test set, 20
    per class as the validation split.

    Both are fixed (they do not move with the experiment seed), so every run of a class is
    scored on the same images.

    Example:
        >>> src = load_digits_source()
        >>> src.train_x.shape[1:], len(src.val_y), len(src.test_y), len(src.train_y)
        (torch.Size([1, 8, 8]), 200, 500, 1097)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images / 16.0 * 255.0).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(20200807)  # fixed: the test set is part of the dataset
    order = [rng.permutation(np.flatnonzero(labels == c)) for c in range(10)]
    part = np.zeros(len(labels), dtype=np.int64)                                  # 0 train, 1 val, 2 test
    for ix in order:  # the test images are the ones drawn before the validation split existed
        part[ix[:DIGITS_TEST_PER_CLASS]] = 2
        part[ix[DIGITS_TEST_PER_CLASS:DIGITS_TEST_PER_CLASS + DIGITS_VAL_PER_CLASS]] = 1
    images_t = torch.from_numpy(images)
    train_x = images_t[part == 0]
    mean, std = channel_stats(train_x)
    return Source("digits", train_x, labels[part == 0], images_t[part == 2], labels[part == 2],
                  [str(c) for c in range(10)], mean, std, "shift", val_x=images_t[part == 1], val_y=labels[part == 1])


@register_dataset("digits")
def digits_loader(name: str, root: Path, size: str, options: dict | None) -> Source:
    """The registered loader of ``digits``: `load_digits_source` (no root, one size, no options).

    Example:
        >>> digits_loader("digits", default_root(), "full", None).num_classes
        10
    """
    return load_digits_source()


# every other loader registers itself when its file is imported: one import line per dataset file,
# after digits so that the offline default comes first in DATASETS
from metakit.data import mnist1d, cifar, imagenet  # noqa: E402,F401,I001

DATASETS = dataset_names()                 # the registry once the built-in loaders are in
STREAMED = dataset_names(streamed=True)    # read from disk batch by batch (a `FolderSource`), at the paper profile only


def load_source(name: str, root: str | Path | None = None, size: str = "full",
                options: dict | None = None) -> Source | FolderSource:
    """Load a dataset by name.

    Args:
        name: one of ``DATASETS`` (or a dataset registered later, `register_dataset`).
        root: folder holding CIFAR and ImageNet in torchvision's layouts, and the MNIST-1D cache;
            defaults to `default_root()`. Unused for digits.
        size: "full", or "small" for MNIST-1D's CI-sized set (`metakit.data.mnist1d.SMALL`).
        options: generator arguments changed from the calibrated ones (MNIST-1D), or how ImageNet
            is read (`metakit.data.imagenet.ImageNetOptions`: image sizes, workers).

    Example:
        >>> load_source("digits").num_classes
        10
    """
    require("size", size, object, choices=DATA_SIZES)
    takes = dataset_names(options=True)
    if options and name not in takes:
        which = " or ".join(f"{n!r} ({get_dataset(n).options})" for n in takes)
        raise ValueError(f"data_options={options!r} but dataset={name!r} is not generated and has no "
                         f"loader options; use data_options only with dataset={which}.")
    return get_dataset(name).load(name, default_root() if root is None else Path(root), size, options)
