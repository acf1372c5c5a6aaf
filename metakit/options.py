"""Typed options: a dataclass field that carries its help, its allowed values and one validator.

Every option in metakit (`metakit.experiments.Config` and each method's options dataclass) is
declared with `option`, so its default, one-line help and allowed range live in one place. From
them come the CLI flags and ``--help`` (`metakit.cli`), the checks with one error format
("argument, value, allowed, fix": `check`), and the option lists of ``run --help``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Knobs:
    ...     width: int = option(8, "hidden width", low=1)
    ...     mode: str = option("sum", "how to normalise", choices=("sum", "mean"))
    >>> parse(Knobs, {"width": 4}, owner="method='demo'").width
    4
    >>> parse(Knobs, {"width": 0}, owner="method='demo'")
    Traceback (most recent call last):
    ...
    ValueError: method='demo': width=0 is out of range; use an integer in [1, inf).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any, Sequence

# What a number may be when its option sets no upper bound: beyond these a value cannot be meant and
# overflows somewhere (an int past a C long, a float32 step past 3.4e38) with a message that names nothing.
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e30


def option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, choices: Sequence[Any] | None = None,
           kind: type | None = None, nullable: bool = False, example: str = "", nonempty: bool = False) -> Any:
    """A dataclass field with its help and the values it allows.

    Args:
        default: the default value (a list or dict default is copied per instance).
        help: one line for ``--help``: what it is, and when to change it.
        low, high: the allowed interval for a number (inclusive unless ``low_open``/``high_open``).
        choices: the allowed values, for a name.
        kind: the value's type when the annotation does not say it plainly (int, float, str, bool).
        nullable: None is allowed (e.g. "take it from the profile", "off").
        example: a valid value quoted in the error's fix (default: the default).
        nonempty: a string must not be empty or blank (a path, a device: '' would silently mean
            "here" or "the default").

    Example:
        >>> f = option(0.1, "learning rate", low=0, low_open=True)
        >>> f.metadata["help"], f.default
        ('learning rate', 0.1)
    """
    meta = dict(help=help, low=low, high=high, low_open=low_open, high_open=high_open,
                choices=None if choices is None else tuple(choices), kind=kind, nullable=nullable, example=example,
                nonempty=nonempty)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _kind(field: dataclasses.Field, owner_cls: type) -> type | None:
    """The plain type of a field: its ``kind`` metadata, else its annotation stripped of ``| None``."""
    if field.metadata.get("kind") is not None:
        return field.metadata["kind"]
    hint = typing.get_type_hints(owner_cls).get(field.name)
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0] if len(args) == 1 and args[0] in (int, float, str, bool) else None


def interval(meta: dict, integer: bool, capped: bool = False) -> str:
    """The allowed interval in words, e.g. ``an integer in [1, inf)``; ``capped``: with the implicit
    `INT_LIMIT` / `FLOAT_LIMIT` in place of an open end.

    Example:
        >>> interval({"low": 1}, True), interval({"low": 1}, True, capped=True)
        ('an integer in [1, inf)', 'an integer in [1, 2147483647]')
    """
    cap = INT_LIMIT if integer else FLOAT_LIMIT
    low = (-cap if capped else -math.inf) if meta.get("low") is None else meta["low"]
    high = (cap if capped else math.inf) if meta.get("high") is None else meta["high"]
    left = "(" if meta.get("low_open") or low == -math.inf else "["
    right = ")" if meta.get("high_open") or high == math.inf else "]"
    text = lambda x: str(x) if isinstance(x, int) else f"{x:g}"  # noqa: E731 — 2147483647, not 2.14748e+09
    return f"{'an integer' if integer else 'a number'} in {left}{text(low)}, {text(high)}{right}"


def shown(value: Any) -> str:
    """``repr(value)``, cut short for a huge number (a 300-digit int is named by its length).

    Example:
        >>> shown(0.5), shown(10**300)
        ('0.5', '1000000000...0000 (301 digits)')
    """
    try:
        text = repr(value)
    except ValueError:  # an int past Python's str conversion limit
        return "an integer of over 4300 digits"
    if len(text) <= 24:
        return text
    return f"{text[:10]}...{text[-4:]} ({len(text)} {'digits' if text.lstrip('-').isdigit() else 'characters'})"


def check(name: str, value: Any, meta: dict, kind: type | None = None, owner: str = "") -> Any:
    """Return ``value`` if ``meta`` allows it (an int for a float is widened), else raise.

    Raises:
        TypeError: the value has the wrong type.
        ValueError: it is out of range or not one of the choices.

    The message names the owner, the argument and the value, and says what is allowed. A number with
    no upper bound still stops at `INT_LIMIT` / `FLOAT_LIMIT` ("too large to be meant").

    Example:
        >>> check("lr", 2, {"low": 0, "low_open": True}, float)
        2.0
        >>> check("mode", "max", {"choices": ("sum", "mean")}, str, owner="method='mwnet'")
        Traceback (most recent call last):
        ...
        ValueError: method='mwnet': mode='max' is unknown; use one of ('sum', 'mean').
        >>> check("epochs", 10**300, {"low": 1}, int)
        Traceback (most recent call last):
        ...
        ValueError: epochs=1000000000...0000 (301 digits) is too large to be meant; use an integer in [1, 2147483647].
    """
    where = f"{owner}: " if owner else ""
    if value is None:
        if meta.get("nullable"):
            return None
        raise TypeError(f"{where}{name}=None is not allowed; give a value, e.g. {meta.get('example') or '...'}.")
    choices = meta.get("choices")
    if choices is not None:
        if value not in choices or (isinstance(value, bool) and not any(c is value for c in choices)):
            raise ValueError(f"{where}{name}={shown(value)} is unknown; use one of {choices}.")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where}{name}={value!r} must be True or False.")
        return value
    if kind in (int, float):
        integer = kind is int
        ok_type = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
        if not ok_type:
            raise TypeError(f"{where}{name}={shown(value)} must be {interval(meta, integer)}.")
        low, high = meta.get("low"), meta.get("high")
        finite = isinstance(value, numbers.Integral) or math.isfinite(value)   # an int never overflows here
        bad = not finite or \
            (low is not None and (value < low or (meta.get("low_open") and value == low))) or \
            (high is not None and (value > high or (meta.get("high_open") and value == high)))
        fix = f" (e.g. {meta['example']})" if meta.get("example") else ""
        if bad:
            raise ValueError(f"{where}{name}={shown(value)} is out of range; use {interval(meta, integer)}{fix}.")
        if abs(value) > (INT_LIMIT if integer else FLOAT_LIMIT):
            raise ValueError(f"{where}{name}={shown(value)} is too large to be meant; use "
                             f"{interval(meta, integer, capped=True)}{fix}.")
        return int(value) if integer else float(value)
    if kind is str and not isinstance(value, str):
        raise TypeError(f"{where}{name}={value!r} must be a string, e.g. {meta.get('example') or repr(meta.get('default'))}.")
    if meta.get("nonempty") and isinstance(value, str) and not value.strip():
        fix = f"give one, e.g. {meta['example']}" if meta.get("example") else "give one"
        leave = ", or leave it out (None)" if meta.get("nullable") else ""
        raise ValueError(f"{where}{name}={value!r} is empty; {fix}{leave}.")
    return value


def require(name: str, value: Any, kind: type, owner: str = "", **limits: Any) -> Any:
    """`check` for a plain argument: ``limits`` are `option`'s (low, high, low_open, choices, example, ...).

    Example:
        >>> require("batch_size", 128, int, low=1)
        128
        >>> require("beta", 1.0, float, low=0, high=1, high_open=True, example="0.9999")
        Traceback (most recent call last):
        ...
        ValueError: beta=1.0 is out of range; use a number in [0, 1) (e.g. 0.9999).
    """
    return check(name, value, limits, kind, owner)


def validate(obj: Any, owner: str = "") -> Any:
    """Check every `option` field of the dataclass instance ``obj``; returns it.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class K:
        ...     n: int = option(1, "count", low=1)
        >>> validate(K(n=3)).n
        3
    """
    for field in dataclasses.fields(obj):
        if "help" in field.metadata:
            check(field.name, getattr(obj, field.name), field.metadata, _kind(field, type(obj)), owner)
    return obj


def parse(cls: type, values: dict, owner: str = "") -> Any:
    """An instance of the options dataclass ``cls`` from a dict, unknown keys refused.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class K:
        ...     n: int = option(1, "count", low=1)
        >>> parse(K, {"m": 2}, owner="method='x'")
        Traceback (most recent call last):
        ...
        ValueError: method='x': option 'm' is unknown; its options are ['n'].
    """
    where = f"{owner}: " if owner else ""
    if not isinstance(values, dict):
        raise TypeError(f"{where}options={values!r} must be a dict of option name -> value.")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        listing = known or "none"
        raise ValueError(f"{where}option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(u) for u in unknown)} {'are' if len(unknown) > 1 else 'is'} unknown; "
                         f"its options are {listing}.")
    cleaned = {}
    for field in dataclasses.fields(cls):
        if field.name in values:
            cleaned[field.name] = check(field.name, values[field.name], field.metadata, _kind(field, cls), owner) \
                if "help" in field.metadata else values[field.name]
    return cls(**cleaned)


def describe(cls: type) -> list[tuple[str, str, str]]:
    """``(name, default, help with the allowed values)`` for every option of ``cls`` (for ``--help``).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class K:
        ...     n: int = option(1, "count", low=1)
        >>> describe(K)
        [('n', '1', 'count; an integer in [1, inf)')]
    """
    rows = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "help" not in meta:
            continue
        kind = _kind(field, cls)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        allowed = ""
        if meta.get("choices") is not None:
            allowed = "one of " + ", ".join(str(c) for c in meta["choices"])
        elif kind in (int, float) and (meta.get("low") is not None or meta.get("high") is not None):
            allowed = interval(meta, kind is int)
        rows.append((field.name, repr(default), meta["help"] + (f"; {allowed}" if allowed else "")))
    return rows
