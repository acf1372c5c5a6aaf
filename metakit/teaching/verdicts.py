"""Verdicts a notebook prints from a committed table: "A beats B" only where paired seeds say so.

`compare` and `Verdict` are the studies' paired statistics (`metakit.studies.stats`); `headlines`
turns verdicts into the JSON numbers `metakit.teaching.report.publish` shows.

Example:
    >>> rows = pd.DataFrame({"dataset": "d", "setting": "s", "method": ["ce"] * 3 + ["mfm"] * 3,
    ...                      "variant": "", "seed": [0, 1, 2] * 2, "test_acc": [70, 71, 72, 74, 75, 77.0]})
    >>> print(compare(rows, "mfm", "ce").line())
    d s: mfm vs ce +4.33 [+2.90, +5.77] over 3 seeds: ahead
    >>> print(compare(rows, "mfm", "ce").target(3.0))
    d s: mfm vs ce ≥ +3.00: met (mean +4.33; the interval's low end +2.90 is below it)
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from metakit.studies.stats import Verdict, compare

__all__ = ["Verdict", "compare", "headlines"]


def headlines(verdicts: Iterable[Verdict], margin: float = 0.0) -> dict[str, dict]:
    """Verdicts as JSON-ready headline numbers for `metakit.teaching.report.publish` (NaN becomes None).

    Example:
        >>> rows = pd.DataFrame({"dataset": "d", "setting": "s", "method": ["ce"] * 2 + ["mfm"] * 2,
        ...                      "variant": "", "seed": [0, 1] * 2, "test_acc": [70, 71, 74, 76.0]})
        >>> headlines([compare(rows, "mfm", "ce")])
        {'d s: mfm vs ce': {'seeds': 2, 'mean': 4.5, 'low': -1.8531, 'high': 10.8531, 'says': 'not separated'}}
    """
    def number(x: float) -> float | None:
        return None if math.isnan(x) else round(float(x), 4)

    return {f"{v.where}: {v.a} vs {v.b}": {"seeds": v.n, "mean": number(v.mean), "low": number(v.low),
                                          "high": number(v.high), "says": v.says(margin)} for v in verdicts}
