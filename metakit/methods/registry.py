"""The registry of training methods, looked up by ``Config.method``.

Example:
    >>> from metakit.methods import METHODS
    >>> "ce" in METHODS and get_method("ce") is METHODS["ce"]
    True
"""
from __future__ import annotations

from metakit.methods.base import Method
from metakit.options import require

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available as ``Config(method=cls.name)``."""
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``, or a clear error listing the known ones.

    Example:
        >>> from metakit.methods import get_method
        >>> get_method("ce").__name__
        'Method'
    """
    require("method", name, object, choices=sorted(METHODS))
    return METHODS[name]


register(Method)
