"""Verdicts computed from a results table: "A beats B" only where paired seeds say so.

A notebook sentence such as "MFM is ahead of cross-entropy at IF 100" is printed by `compare`
from the rows of a committed table, never typed: the two methods are paired by seed within one
(dataset, setting), and the paired mean difference with its 95% Student-t interval decides.

- ``ahead``: the whole interval is above the margin; ``behind``: the whole interval is below it;
  ``not separated``: the interval holds the margin (more seeds, or no difference).
- `Verdict.target` checks a stated target on the paired *mean* (as the issues state them), and
  says beside it whether the interval agrees.

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
from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from metakit.experiments.grid_summary import paired_delta


@dataclass(frozen=True)
class Verdict:
    """The paired difference ``a − b`` over the seeds both ran in one (dataset, setting)."""

    a: str
    b: str
    where: str
    n: int
    mean: float
    low: float
    high: float

    def says(self, margin: float = 0.0) -> str:
        """``ahead``, ``behind`` or ``not separated`` (the interval against ``margin``)."""
        if self.n < 2 or math.isnan(self.low):
            return "too few seeds to tell"
        return "ahead" if self.low > margin else "behind" if self.high < margin else "not separated"

    def line(self, margin: float = 0.0) -> str:
        """One line: the delta, its interval, the seeds and the verdict."""
        if self.n == 0:
            return f"{self.where}: {self.a} vs {self.b}: no seed ran both yet"
        if self.n == 1:
            return f"{self.where}: {self.a} vs {self.b} {self.mean:+.2f} on one seed: {self.says(margin)}"
        against = "" if margin == 0 else f" (margin {margin:+.2f})"
        return (f"{self.where}: {self.a} vs {self.b} {self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}] "
                f"over {self.n} seeds: {self.says(margin)}{against}")

    def target(self, threshold: float) -> str:
        """Whether the paired mean reaches ``threshold`` (e.g. +3.0, or −0.5 for "within half a point")."""
        if self.n == 0:
            return f"{self.where}: {self.a} vs {self.b} ≥ {threshold:+.2f}: not measured yet (no seed ran both)"
        met = self.mean >= threshold
        agrees = self.low >= threshold if met else self.high < threshold
        end = "low" if met else "high"
        value = self.low if met else self.high
        side = ("above" if met else "below") if agrees else ("below" if met else "above")
        return (f"{self.where}: {self.a} vs {self.b} ≥ {threshold:+.2f}: {'met' if met else 'missed'} "
                f"(mean {self.mean:+.2f}; the interval's {end} end {value:+.2f} is {side} it)")


def compare(rows: pd.DataFrame, a: str, b: str, metric: str = "test_acc", **where: object) -> Verdict:
    """The paired verdict of ``a`` against ``b`` in the one (dataset, setting) that ``where`` leaves.

    ``a`` and ``b`` are method names, or ``"method:variant"`` for an ablation row (e.g.
    ``"mfm:meta_off"``). ``where`` filters columns (``dataset="mnist1d", setting="lt_if100"``);
    what is left must be one dataset and setting, or the call says which to pick. ``metric`` is the
    column compared: ``test_acc`` (a run's final epoch), or ``test_acc_at_val`` where a table records
    the test accuracy at the epoch of best validation accuracy (the verdict's label then names it).

    Example:
        >>> rows = pd.DataFrame({"dataset": "d", "setting": "s", "method": ["ce", "ce", "mfm"],
        ...                      "variant": ["", "", "x"], "seed": [0, 1, 0], "test_acc": [1.0, 2.0, 4.0]})
        >>> compare(rows, "mfm:x", "ce").n
        1
    """
    if metric not in rows.columns:
        raise ValueError(f"compare: metric={metric!r} is not a column of the table; use one of "
                         f"{[c for c in rows.columns if c.endswith('_acc') or c.startswith('test_')]}")
    for column, value in where.items():
        if column not in rows.columns:
            raise ValueError(f"compare: no column {column!r} in the table; filter on one of {list(rows.columns)}")
        rows = rows[rows[column] == value]
    cells = rows[["dataset", "setting"]].drop_duplicates()
    if len(cells) != 1:
        found = [f"{d}/{s}" for d, s in cells.itertuples(index=False)] or "none"
        raise ValueError(f"compare: where={where} leaves settings {found}; pass dataset= and setting= for one")
    by_seed = {}
    for label in (a, b):
        method, _, variant = label.partition(":")
        part = rows[(rows["method"] == method) & (rows["variant"].fillna("") == variant)]
        by_seed[label] = part.groupby("seed")[metric].mean().dropna()   # a run without the metric pairs with none
    seeds = sorted(set(by_seed[a].index) & set(by_seed[b].index))
    mean, low, high = paired_delta(by_seed[a][seeds].tolist(), by_seed[b][seeds].tolist())
    dataset, setting = cells.iloc[0]
    label = f"{dataset} {setting}" + ("" if metric == "test_acc" else f" ({metric})")
    return Verdict(a, b, label, len(seeds), mean, low, high)


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
