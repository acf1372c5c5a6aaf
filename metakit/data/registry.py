"""Every dataset by name: a loader file registers its loader with `register_dataset`.

A loader is ``load(name, root, size, options)`` → a `metakit.data.source.Source` (or, streamed
from disk, a `metakit.data.imagenet.FolderSource`); `metakit.data.sources.load_source` looks
the name up, so adding a dataset is one new file (copy `metakit.data.cifar`'s loader at its end)
and its import in `metakit.data.sources`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class DatasetEntry:
    """A registered loader and what it accepts."""

    load: Callable
    options: str | None   # what ``data_options`` change (e.g. "generator arguments"); None: it takes none
    streamed: bool        # read from disk batch by batch (a `FolderSource`), not held in memory


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, options: str | None = None, streamed: bool = False) -> Callable:
    """Function decorator: register ``load(name, root, size, options)`` as ``load_source(name, ...)``.

    Args:
        name: the dataset's name (``Config.dataset``).
        options: what its ``data_options`` change, in a few words; None: it refuses any.
        streamed: whether it returns a `FolderSource` read from disk batch by batch.

    Example:
        >>> @register_dataset("two_points")
        ... def two_points(name, root, size, options):
        ...     return name, size
        >>> get_dataset("two_points").load("two_points", None, "full", None)
        ('two_points', 'full')
        >>> del _REGISTRY["two_points"]
    """
    def add(load: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"dataset={name!r} is registered twice (by {_REGISTRY[name].load.__module__} and "
                             f"{load.__module__}); give the new one another name.")
        _REGISTRY[name] = DatasetEntry(load, options, streamed)
        return load
    return add


def dataset_names(*, streamed: bool | None = None, options: bool | None = None) -> tuple[str, ...]:
    """The registered names in registration order; only the (non-)streamed ones, or those that take options.

    Example:
        >>> import metakit.data
        >>> dataset_names()[:2], dataset_names(streamed=True), dataset_names(options=True)
        (('digits', 'mnist1d'), ('imagenet',), ('mnist1d', 'imagenet'))
    """
    return tuple(n for n, e in _REGISTRY.items() if (streamed is None or e.streamed == streamed)
                 and (options is None or (e.options is not None) == options))


def get_dataset(name: str) -> DatasetEntry:
    """The entry registered as ``name``, or a clear error listing the registered names.

    Example:
        >>> import metakit.data
        >>> get_dataset("mnist1d").options
        'generator arguments'
    """
    if name not in _REGISTRY:
        raise ValueError(f"dataset={name!r} is unknown; use one of {dataset_names()}.")
    return _REGISTRY[name]
