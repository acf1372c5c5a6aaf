"""The registry of training methods, looked up by ``Config.method``.

A method registered outside the package (in a notebook, or a module of your own) is still a
function of its code: `source_hash` fingerprints that code for the results cache, and
`worker_modules` says which module a worker process must import to find it — or refuses, in one
line, a method that only lives in this process (``__main__``: a notebook or a script).

Example:
    >>> from metakit.methods import METHODS
    >>> "ce" in METHODS and get_method("ce") is METHODS["ce"]
    True
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re

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


def _in_package(obj) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return module == "metakit" or module.startswith("metakit.")


def _code_of(value) -> str:
    """The source of a function-like class attribute (its bytecode when the source is gone)."""
    fn = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr(value) if code is None else code.co_code.hex() + repr(code.co_consts)
        return re.sub(r" at 0x[0-9a-fA-F]+", "", text)                       # no addresses


def _class_text(cls: type, seen: set) -> list[str]:
    """Every attribute of ``cls`` and of its bases and nested classes defined outside metakit, as text."""
    out = []
    for klass in cls.__mro__:
        if klass is object or _in_package(klass) or klass in seen or klass.__module__ == "builtins":
            continue
        seen.add(klass)
        out.append(f"class {klass.__module__}.{klass.__qualname__}")
        for key, value in sorted(vars(klass).items()):
            if key in ("__dict__", "__weakref__", "__module__", "__doc__"):
                continue
            if isinstance(value, type):
                out += [f"{key} = {value.__module__}.{value.__qualname__}", *_class_text(value, seen)]
            elif callable(value) or isinstance(value, (classmethod, staticmethod, property)):
                out.append(f"{key}: {_code_of(value)}")
            else:
                out.append(f"{key} = " + re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value)))   # no addresses
    return out


def source_hash(name: str) -> str | None:
    """A hash of the code of method ``name`` when it is registered from outside metakit; None for a built-in.

    The package's own code is in the cache key already (`metakit.experiments.cache.source_hash`);
    this adds the class, its non-metakit bases and nested classes (its ``Options``), attribute by
    attribute, so that editing a notebook's method trains it again. What the class calls elsewhere
    (a helper function, a learner class of its own) is not followed: pass ``refresh=True`` then.

    Example:
        >>> source_hash("ce") is None
        True
    """
    cls = get_method(name)
    if _in_package(cls):
        return None
    return hashlib.sha256("\n".join(_class_text(cls, set())).encode()).hexdigest()


def worker_modules(names) -> tuple[str, ...]:
    """The modules a worker process must import so that every method in ``names`` is registered there.

    Built-in methods need none. A method defined in ``__main__`` (a notebook, a script) exists only
    in this process: a `ValueError` says so and how to fix it.

    Example:
        >>> worker_modules(["ce", "mwnet"])
        ()
    """
    modules = []
    for name in dict.fromkeys(names):
        cls = get_method(name)
        if _in_package(cls):
            continue
        module = cls.__module__
        try:
            spec = None if module == "__main__" else importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise ValueError(f"method={name!r} is defined in {module!r} (this notebook or script), which worker "
                             f"processes cannot import; move class {cls.__qualname__} into a module next to it "
                             f"(e.g. my_methods.py, with @register) and import it from there, or run without "
                             f"workers (executor=None).")
        modules.append(module)
    return tuple(dict.fromkeys(modules))


register(Method)
