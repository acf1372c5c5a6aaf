"""A notebook's data and net by hand, for whichever dataset its config names (digits or MNIST-1D).

`run` builds these itself; a notebook that pokes at a net or a batch directly (modulation at the
identity, a test batch for the modulator) takes them from here so that one ``DATASET`` switch
changes everything: the source at the config's data size (MNIST-1D's small set at smoke), the
input shape from the source ((1, 8, 8) digit images, (1, 40) MNIST-1D signals) and the model
from `Config.resolve` (``digits_cnn`` for digits, ``resnet1d`` for MNIST-1D).

Example:
    >>> from metakit.experiments import Config
    >>> config = Config(profile="smoke").resolve()
    >>> source = source_of(config)
    >>> net = build_net(config, source)
    >>> config.model, input_shape(source), tuple(net(torch.zeros(2, *input_shape(source))).shape)
    ('digits_cnn', (1, 8, 8), (2, 10))
"""
from __future__ import annotations

import torch

from metakit.data.sources import Source, load_source
from metakit.experiments import Config
from metakit.models import build_model
from metakit.models.nets import NamedStages


def source_of(config: Config) -> Source:
    """The dataset a config trains on, as `run` loads it (root, data size, generator options).

    Example:
        >>> source_of(Config(profile="smoke")).name
        'digits'
    """
    c = config.resolve()
    return load_source(c.dataset, c.data_root, c.data_size, c.data_options)


def input_shape(source: Source) -> tuple[int, ...]:
    """One input without the batch axis: (C, H, W) for images, (C, L) for signals.

    Example:
        >>> input_shape(source_of(Config(profile="smoke")))
        (1, 8, 8)
    """
    return tuple(source.train_x.shape[1:])


def build_net(config: Config, source: Source) -> NamedStages:
    """A fresh classifier of the config's model for ``source``'s classes and input shape (as `run` builds it).

    Example:
        >>> config = Config(profile="smoke", model="mlp")
        >>> type(build_net(config, source_of(config))).__name__
        'MLP'
    """
    resolved = config.resolve()
    return build_model(resolved.model, source.num_classes, input_shape(source), resolved.width)
