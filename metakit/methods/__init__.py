"""Registry of training methods, looked up by ``Config.method``.

Add a method by subclassing `Method` and decorating it with `register`.
"""
from __future__ import annotations

from metakit.methods.base import Method

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available as ``Config(method=cls.name)``.

    Example:
        >>> "ce" in METHODS
        True
    """
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``, or a clear error listing the known ones.

    Example:
        >>> get_method("ce").__name__
        'Method'
    """
    if name not in METHODS:
        raise ValueError(f"method={name!r} is unknown; use one of {sorted(METHODS)}.")
    return METHODS[name]


register(Method)

from metakit.methods import longtail  # noqa: E402,F401  (registers cb_loss, cb_resample, focal, ldam_drw, logit_adj)
from metakit.methods import mlrsnet as _mlrsnet  # noqa: E402,F401  (registers "mlrsnet")
from metakit.methods import hd as _hd  # noqa: E402,F401  (registers "hd")
from metakit.methods import mfm  # noqa: E402,F401  (registers mfm, mfm_net)
