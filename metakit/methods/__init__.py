"""Training methods, registered by name (``Config.method``); add one with a new file that calls `register`.

Importing this package registers every built-in method.
"""
# each module registers its methods, in this order (ce first, from registry)
from metakit.methods import longtail, mlrsnet, hd, mfm, mwnet  # noqa: F401,I001
from metakit.methods.base import Method, Trainer
from metakit.methods.registry import METHODS, get_method, register

__all__ = ["METHODS", "Method", "Trainer", "get_method", "register"]
