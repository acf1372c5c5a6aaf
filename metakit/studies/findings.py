"""Findings computed from a study's rows: each claim, its paired Δ [95% CI], n seeds and verdict.

A study declares its claims (`Claim`: "a − b > margin" in one dataset and setting); `judge` pairs
the two rows by seed (`metakit.studies.stats.compare`) and gives the verdict by the interval,
never the mean: ``holds``, ``not separated`` or ``fails``. `write_findings` writes the page beside
the study's table; `headline` is the one generated line the README shows for it.

Example:
    >>> rows = pd.DataFrame({"dataset": "d", "setting": "s", "method": ["ce"] * 3 + ["mfm"] * 3,
    ...                      "variant": "", "seed": [0, 1, 2] * 2, "test_acc": [70, 71, 72, 74, 75, 77.0]})
    >>> judged = judge([Claim("mfm", "ce", "d", "s")], rows)
    >>> judged[["claim", "delta", "verdict"]].values.tolist()
    [['mfm beats ce', '+4.33 [+2.90, +5.77]', 'holds']]
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from metakit.io import atomic_write_text
from metakit.studies.stats import compare

VERDICTS = ("holds", "not separated", "fails")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One sentence a findings page judges: ``a`` − ``b`` > ``margin`` on ``metric`` in one setting."""

    a: str                     # method, or "method:variant"
    b: str                     # the row it is compared with
    dataset: str
    setting: str
    margin: float = 0.0        # points; -1.0 reads "a is within one point of b (or above)"
    metric: str = "test_acc"   # test_acc (final epoch) or test_acc_at_val (the validation-selected epoch)
    headline: bool = False     # counted in the README's line for the study
    where: tuple = ()          # further (column, value) filters, e.g. (("momentum", 0.9),)
    topic: str = ""            # what the README tallies it under; "" : its own words

    @property
    def says(self) -> str:
        """The claim in words, e.g. ``mfm beats ce`` or ``sched_mlrsnet within 1.0 of sched_cosine``."""
        if self.margin == 0:
            words = f"{self.a} beats {self.b}"
        else:
            words = f"{self.a} within {-self.margin:g} of {self.b}" if self.margin < 0 else \
                f"{self.a} beats {self.b} by {self.margin:g}"
        return words + "".join(f", {k} {v:g}" if isinstance(v, float) else f", {k} {v}" for k, v in self.where)


def judge(claims: Sequence[Claim], rows: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: its words, dataset, setting, metric, Δ [95% CI], n seeds, verdict (and the numbers)."""
    out = []
    for c in claims:
        v = compare(rows, c.a, c.b, c.metric, dataset=c.dataset, setting=c.setting, **dict(c.where))
        delta = "–" if v.n == 0 else f"{v.mean:+.2f}" if math.isnan(v.low) else \
            f"{v.mean:+.2f} [{v.low:+.2f}, {v.high:+.2f}]"
        out.append(dict(claim=c.says, topic=c.topic or c.says, dataset=c.dataset, setting=c.setting, metric=c.metric, delta=delta, n=v.n,
                        verdict=v.judge(c.margin), mean=v.mean, low=v.low, high=v.high, a=c.a, b=c.b,
                        margin=c.margin, headline=c.headline))
    return pd.DataFrame(out, columns=["claim", "topic", "dataset", "setting", "metric", "delta", "n", "verdict", "mean", "low",
                                      "high", "a", "b", "margin", "headline"])


def tally(judged: pd.DataFrame) -> str:
    """``holds 3, not separated 1, fails 0 of 4`` for the judged claims.

    Example:
        >>> tally(pd.DataFrame({"verdict": ["holds", "fails", "holds"]}))
        'holds 2, not separated 0, fails 1 of 3'
    """
    counts = judged["verdict"].value_counts()
    return ", ".join(f"{v} {int(counts.get(v, 0))}" for v in VERDICTS) + f" of {len(judged)}"


def headline(judged: pd.DataFrame) -> str:
    """The README's line for a study: its headline claims tallied per comparison.

    Example:
        >>> j = pd.DataFrame({"topic": ["a beats b"] * 2, "headline": True, "verdict": ["holds", "not separated"]})
        >>> headline(j)
        'a beats b: holds 1, not separated 1, fails 0 of 2 settings'
    """
    top = judged[judged["headline"].astype(bool)] if len(judged) else judged
    top = top if len(top) else judged
    parts = [f"{topic}: {tally(group)} settings" for topic, group in top.groupby("topic", sort=False)]
    return "; ".join(parts) or "no claims measured yet"


def render(judged: pd.DataFrame, title: str, made: str) -> str:
    """The findings page: how verdicts are judged, then one table row per claim."""
    lines = [f"## Findings: {title}", "", made, "",
             "Each claim is judged by the 95% CI of the paired difference over seeds (Student t): *holds* when "
             "the interval clears the claim's margin, *fails* when it lies wholly on the wrong side, *not separated* "
             "otherwise. Generated from the CSV by `python -m metakit findings`; do not edit by hand.", "",
             f"Verdicts: {tally(judged)}.", "",
             "| claim | dataset | setting | metric | Δ [95% CI] | seeds | verdict |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.claim} | {r.dataset} | {r.setting} | {r.metric} | {r.delta} | {r.n} | {r.verdict} |"
              for r in judged.itertuples()]
    return "\n".join(lines) + "\n"


def made_line(df: pd.DataFrame, command: str) -> str:
    """Which rows and command a page was computed from."""
    seeds = ", ".join(str(int(s)) for s in sorted(df["seed"].unique())) if len(df) else "none"
    return f"Computed from {len(df)} runs (seeds {seeds}) made by `{command or 'a script'}`."


def write_findings(title: str, claims: Sequence[Claim], df: pd.DataFrame, stem: str | Path, command: str = "") -> str:
    """Judge ``claims`` on ``df`` and write ``<stem>_findings.md`` atomically; return the page."""
    stem = Path(stem)
    text = render(judge(claims, df), title, made_line(df, command))
    atomic_write_text(stem.with_name(stem.name + "_findings.md"), text)
    return text
