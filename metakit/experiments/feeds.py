"""The batches one run reads, from an in-memory `Source` (device-resident `Batches`) or a streamed
`FolderSource` (ImageNet: `FolderBatches` decoded from disk by DataLoader workers).

Example:
    >>> from metakit.data.sources import load_source
    >>> from metakit.data.splits import make_split
    >>> from metakit.experiments.config import Config
    >>> from metakit.methods import get_method
    >>> c = Config(profile="smoke").resolve(); src = load_source("digits"); split = make_split(c.split_spec(), src.train_y)
    >>> f = make_feeds(src, split, c, torch.device("cpu"), get_method("ce")(10, split.class_counts))
    >>> f.input_shape, len(f.train.y) == sum(split.class_counts), f.meta is None
    ((1, 8, 8), True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metakit.data.batches import Batches
from metakit.data.imagenet import FolderSource
from metakit.data.source import Source
from metakit.data.splits import Split
from metakit.data.stream import Stream
from metakit.methods.base import Method


@dataclass
class Feeds:
    """What the loop reads.

    Attributes:
        train: the shuffled, augmented training batches.
        test: the test set in order.
        val: the validation split (model selection); None where the dataset has none.
        meta: endless clean meta batches; None when the method draws none.
        train_eval: the training set in a fixed order, unaugmented (a method's full training loss).
        input_shape: one input without the batch axis (what the model is built for).
    """

    train: Any
    test: Any
    val: Any
    meta: Stream | None
    train_eval: Any
    input_shape: tuple[int, ...]


def make_feeds(source: Source | FolderSource, split: Split, config: Any, device: torch.device,
               method: Method) -> Feeds:
    """The batches of a resolved ``config`` over ``split`` of ``source``."""
    if isinstance(source, FolderSource):
        return streamed_feeds(source, split, config, device, method)
    train = Batches(source.train_x[split.train_idx], split.train_labels, config.batch_size, device, source.mean,
                    source.std, augment=source.augment, seed=config.seed,
                    sample_weights=method.sample_weights(split.train_labels))
    test = Batches(source.test_x, source.test_y, 1000, device, source.mean, source.std, shuffle=False)
    val = None if source.val_x is None else Batches(source.val_x, source.val_y, 1000, device, source.mean, source.std,
                                                    shuffle=False)
    meta = None
    if method.uses_meta_set:
        meta_y = source.train_y[split.meta_idx]
        meta = Stream(Batches(source.train_x[split.meta_idx], meta_y, min(config.batch_size, len(meta_y)), device,
                              source.mean, source.std, augment=source.augment, seed=config.seed + 1))
    # the training set in a fixed order, unaugmented (shares train.x): a method's full training loss
    train_eval = Batches(train.x, split.train_labels, 1000, device, source.mean, source.std, shuffle=False)
    return Feeds(train, test, val, meta, train_eval, tuple(source.train_x.shape[1:]))


def streamed_feeds(source: FolderSource, split: Split, config: Any, device: torch.device, method: Method) -> Feeds:
    """`FolderBatches` of the training images (random resized crops) and the test set (centre crops).

    The meta set is empty here (`metakit.experiments.config.check_streamed`): a method that draws
    meta batches is refused before any file is read.
    """
    if method.uses_meta_set:
        raise ValueError(f"method={method.name!r} draws meta batches, but dataset={source.name!r} is streamed from "
                         f"disk and has no meta set here; use a method without one.")
    train = source.batches("train", split.train_idx, split.train_labels, config.batch_size, device, train=True,
                           seed=config.seed, sample_weights=method.sample_weights(split.train_labels))
    test = source.batches("test", None, source.test_y, None, device, train=False)
    train_eval = source.batches("train", split.train_idx, split.train_labels, None, device, train=False)
    return Feeds(train, test, None, None, train_eval, source.input_shape)
