"""Run a student's answer with the library's own implementation of the exercise switched off.

Where an exercise is to write something the package already has (``longtail_counts``,
``lookahead``, the MW-Net loop), an answer that calls the library's version — directly, through
an alias bound before the check, or from inside another library function — must not pass. While
`refusing` is open, each given function's code is swapped for one that raises `LibraryCalled`;
every reference to the function object shares that code, so no alias escapes. `first_derivatives`
records gradients taken with ``create_graph=True`` (a double backward) for exercises that ask for
first derivatives only.

Example:
    >>> from metakit.data.longtail import longtail_counts
    >>> with refusing(longtail_counts):
    ...     longtail_counts(10, 2, 10)
    Traceback (most recent call last):
    metakit.teaching.guard.LibraryCalled: metakit.data.longtail.longtail_counts
    >>> longtail_counts(10, 2, 10)
    [10, 1]
"""
from __future__ import annotations

import contextlib
import inspect
from types import CodeType
from typing import Callable, Iterator

import torch
from torch.overrides import TorchFunctionMode


class LibraryCalled(Exception):
    """An answer called a library function the exercise asks the student to write; the message is its name."""


def _name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _refusal(fn: Callable) -> CodeType:
    """A code object for ``fn`` that raises `LibraryCalled` with its name (no globals needed)."""
    if fn.__code__.co_freevars:
        raise ValueError(f"{_name(fn)} is a closure; refusing only swaps the code of module-level functions.")
    space: dict = {}
    exec(f"def _refused(*args, **kwargs):\n"
         f"    raise __import__('metakit.teaching.guard', fromlist=['_']).LibraryCalled({_name(fn)!r})", space)
    return space["_refused"].__code__.replace(co_name=fn.__code__.co_name)


@contextlib.contextmanager
def refusing(*functions: Callable) -> Iterator[None]:
    """Inside the block, calling any of ``functions`` (plain functions or methods, by any alias) raises `LibraryCalled`.

    Example:
        >>> from metakit.meta import lookahead
        >>> alias = lookahead
        >>> with refusing(lookahead):
        ...     alias(None, None, 0.1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        metakit.teaching.guard.LibraryCalled: metakit.meta.core.lookahead
    """
    saved = [(fn, fn.__code__) for fn in functions]
    swapped = [_refusal(fn) for fn in functions]
    try:
        for fn, code in zip(functions, swapped):
            fn.__code__ = code
        yield
    finally:
        for fn, code in saved:
            fn.__code__ = code


class first_derivatives(TorchFunctionMode):
    """Counts gradients taken with ``create_graph=True`` (``torch.autograd.grad``, ``.backward``) in ``self.double``.

    Example:
        >>> w = torch.ones(2, requires_grad=True)
        >>> with first_derivatives() as seen:
        ...     _ = torch.autograd.grad((w ** 2).sum(), w, create_graph=True)
        >>> seen.double
        1
    """

    GRADIENTS = (torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward)

    def __init__(self):
        super().__init__()
        self.double = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.GRADIENTS:
            bound = inspect.signature(func).bind(*args, **kwargs)
            self.double += bool(bound.arguments.get("create_graph"))
        return func(*args, **kwargs)
