"""The one validator: every option's error names the owner, the argument, the value and what is allowed."""
from __future__ import annotations

import dataclasses
import math

import pytest

from metakit.experiments import Config
from metakit.methods import METHODS
from metakit.options import check, describe, option, parse


@dataclasses.dataclass(frozen=True)
class Knobs:
    width: int = option(8, "hidden width", low=1)
    rate: float = option(0.1, "a rate", low=0, high=1, high_open=True)
    mode: str = option("sum", "how", choices=("sum", "mean"))
    flag: bool = option(False, "a switch")
    clip: float | None = option(None, "off or a bound", low=0, low_open=True, nullable=True)


@pytest.mark.parametrize("values,error,words", [
    ({"width": 0}, ValueError, ["demo: width=0 is out of range", "[1, inf)"]),
    ({"width": 2.5}, TypeError, ["width=2.5 must be an integer"]),
    ({"width": True}, TypeError, ["width=True"]),
    ({"rate": 1.0}, ValueError, ["rate=1.0", "[0, 1)"]),
    ({"rate": math.nan}, ValueError, ["rate=nan"]),
    ({"rate": "0.1"}, TypeError, ["rate='0.1'"]),
    ({"mode": "max"}, ValueError, ["mode='max' is unknown", "('sum', 'mean')"]),
    ({"flag": 1}, TypeError, ["flag=1 must be True or False"]),
    ({"clip": 0}, ValueError, ["clip=0"]),
    ({"widht": 3}, ValueError, ["'widht' is unknown", "['width', 'rate', 'mode', 'flag', 'clip']"]),
])
def test_bad_values_are_refused_with_the_fix(values, error, words):
    with pytest.raises(error) as err:
        parse(Knobs, values, owner="demo")
    for word in words:
        assert word in str(err.value), str(err.value)


def test_good_values_pass_and_ints_widen_to_floats():
    knobs = parse(Knobs, {"width": 3, "rate": 0, "clip": None, "flag": True})
    assert (knobs.width, knobs.rate, knobs.clip, knobs.flag) == (3, 0.0, None, True)
    assert isinstance(knobs.rate, float)
    assert check("rate", 0.99, dataclasses.fields(Knobs)[1].metadata, float) == 0.99


def test_every_config_field_and_method_option_is_declared_with_help():
    for owner in [Config] + [cls.Options for cls in METHODS.values()]:
        for f in dataclasses.fields(owner):
            assert f.metadata.get("help"), f"{owner.__name__}.{f.name} has no help"
    names = [row[0] for row in describe(Config)]
    assert names == [f.name for f in dataclasses.fields(Config)]


def test_each_method_accepts_its_own_defaults_back():
    for name, cls in METHODS.items():
        defaults = {f.name: getattr(cls.Options(), f.name) for f in dataclasses.fields(cls.Options)}
        assert parse(cls.Options, defaults, owner=name) == cls.Options()
