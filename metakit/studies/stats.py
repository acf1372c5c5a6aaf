"""Paired statistics, the one layer behind every table, verdict and findings page.

`summarise` groups a study's rows by (dataset, setting, method, variant[, momentum]) and pairs each
group with a reference method's headline row over the seeds both ran: the delta's mean and its
Student-t 95% interval (`paired_delta`). `compare` gives one such pair as a `Verdict`, judged by
its interval against a margin, never by its mean: ``holds`` (the interval clears the margin),
``fails`` (it lies wholly on the wrong side) or ``not separated``.

Example:
    >>> df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": ["ce", "ce", "mwnet", "mwnet"],
    ...                    "variant": "", "seed": [0, 1, 0, 1], "test_acc": [80.0, 82.0, 83.0, 86.0]})
    >>> s = summarise(df, ["test_acc"], reference="ce")
    >>> s.loc[1, ["method", "seeds", "test_acc_mean", "test_acc_delta", "paired_seeds"]].astype(str).tolist()
    ['mwnet', '2', '84.5', '3.5', '2']
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def paired_delta(values: Sequence[float], reference: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values - reference`` (paired by position) and its Student-t interval.

    Returns:
        ``(mean, low, high)``; the interval is NaN for fewer than two pairs, all three for none.

    Example:
        >>> [round(v, 3) for v in paired_delta([2.0, 3.0, 7.0], [1.0, 1.0, 1.0])]
        [3.0, -3.572, 9.572]
    """
    d = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def group_keys(df: pd.DataFrame) -> list[str]:
    """The summary's group columns present in ``df`` (momentum only where schedules are compared)."""
    return [k for k in ("dataset", "setting", "method", "variant", "momentum") if k in df.columns]


def summarise(df: pd.DataFrame, metrics: Sequence[str] = ("test_acc",), reference: str | None = None) -> pd.DataFrame:
    """Seeds, mean and (sample) std per group; paired deltas against ``reference`` when given.

    Args:
        df: one row per run (`metakit.studies.grid.run_grid`); rows with an ``error`` are left out.
        metrics: the columns to summarise.
        reference: a method name: each group's ``<metric>_delta`` (``_low``, ``_high``: 95% CI) is
            its mean difference from that method's headline row over the seeds both ran
            (``paired_seeds``); NaN where the reference did not run.

    Returns:
        One row per group, in the order of ``df``: the group columns, ``seeds``, ``<metric>_mean``,
        ``<metric>_std`` (NaN for one seed), and the delta columns when ``reference`` is given.
    """
    if len(df) == 0:
        raise ValueError("df has no rows; run the grid first (run_grid), or check its csv_path.")
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metrics={missing} are not columns of df; use some of {list(df.columns)}.")
    if "error" in df.columns:
        df = df[df["error"].isna()]
    df = df.assign(variant=df["variant"].fillna("") if "variant" in df.columns else "")
    keys = group_keys(df)
    groups = df.groupby(keys, sort=False, dropna=False)
    out = groups.size().rename("seeds").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = groups[metric].mean()
        out[f"{metric}_std"] = groups[metric].std()
    out = out.reset_index()
    if reference is None:
        return out
    if reference not in set(df["method"]):
        raise ValueError(f"reference={reference!r} did not run in this grid; use one of {sorted(set(df['method']))}.")
    context = [k for k in keys if k not in ("method", "variant")]
    base = df[(df["method"] == reference) & (df["variant"] == "")]
    deltas = []
    for _, row in out.iterrows():
        mine = df.loc[(df[keys] == row[keys]).all(axis=1)]
        theirs = base.loc[(base[context] == row[context]).all(axis=1)]
        pairs = mine.merge(theirs, on="seed", suffixes=("", "_ref"))
        own = row["method"] == reference and row["variant"] == ""
        values = {"paired_seeds": 0 if own else len(pairs)}
        for metric in metrics:
            mean, low, high = (math.nan,) * 3 if own else paired_delta(pairs[metric], pairs[f"{metric}_ref"])
            values |= {f"{metric}_delta": mean, f"{metric}_delta_low": low, f"{metric}_delta_high": high}
        deltas.append(values)
    return pd.concat([out, pd.DataFrame(deltas, index=out.index)], axis=1)




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
    std: float = math.nan     # the sample std of the paired differences

    def says(self, margin: float = 0.0) -> str:
        """``ahead``, ``behind`` or ``not separated`` (the interval against ``margin``)."""
        return {"holds": "ahead", "fails": "behind"}.get(self.judge(margin), self.judge(margin))

    def judge(self, margin: float = 0.0) -> str:
        """The claim "a − b > margin", judged by the 95% interval: ``holds``, ``fails`` or ``not separated``.

        Example:
            >>> Verdict("a", "b", "s", 5, 2.0, 0.5, 3.5).judge(), Verdict("a", "b", "s", 5, 2.0, 0.5, 3.5).judge(1.0)
            ('holds', 'not separated')
        """
        if self.n < 2 or math.isnan(self.low):
            return "too few seeds to tell"
        return "holds" if self.low > margin else "fails" if self.high < margin else "not separated"

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
    x, y = by_seed[a][seeds].tolist(), by_seed[b][seeds].tolist()
    mean, low, high = paired_delta(x, y)
    std = float(np.std(np.subtract(x, y), ddof=1)) if len(seeds) > 1 else math.nan
    dataset, setting = cells.iloc[0]
    label = f"{dataset} {setting}" + ("" if metric == "test_acc" else f" ({metric})")
    return Verdict(a, b, label, len(seeds), mean, low, high, std)
