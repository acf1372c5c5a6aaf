"""Paired verdicts as a rendered table and a forest plot: each comparison's mean Δ with its 95% interval.

A verdict (`metakit.studies.stats.Verdict`, from `metakit.teaching.verdicts.compare`) is the paired
difference a − b over the seeds both ran, with its Student-t interval (`metakit.studies.stats.paired_delta`).
`verdict_frame` lays verdicts out one a row; `verdict_table` renders that frame for a notebook (a pandas
Styler, the verdict column coloured); `forest` draws each interval as a horizontal bar around its mean (`forest_panels`: one
forest per group), with the line of no difference, so "ahead" reads as a bar wholly right of zero.

Example:
    >>> rows = pd.DataFrame({"dataset": "d", "setting": "s", "method": ["ce"] * 3 + ["mfm"] * 3,
    ...                      "variant": "", "seed": [0, 1, 2] * 2, "test_acc": [70, 71, 72, 74, 75, 77.0]})
    >>> from metakit.studies.stats import compare
    >>> print(verdict_frame([compare(rows, "mfm", "ce")]).round(2).to_string(index=False))
    where comparison  seeds    Δ  low  high verdict
      d s  mfm vs ce      3 4.33  2.9  5.77   ahead
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from metakit.studies.stats import Verdict

COLOURS = {"ahead": "tab:green", "behind": "tab:red"}   # any other verdict: grey
LABELS = {"where": lambda v: f"{v.where}: {v.a} vs {v.b}", "comparison": lambda v: f"{v.a} vs {v.b}",
          "setting": lambda v: v.where, "rival": lambda v: f"{v.where}: vs {v.b}"}   # forest's row labels


def verdict_frame(verdicts: Sequence[Verdict], margin: float = 0.0,
                  targets: Sequence[float] | None = None) -> pd.DataFrame:
    """One row per verdict: where, comparison, seeds, Δ (the paired mean), its 95% interval and the verdict.

    Args:
        verdicts: from `metakit.teaching.verdicts.compare`.
        margin: the verdict is judged against it (`Verdict.says`); 0: "a beats b".
        targets: one threshold per verdict (a project's target, e.g. +3.0 or −0.5): adds ``target`` and
            ``reached`` (``met`` where the paired mean is at or above it, as `Verdict.target` reads it).

    Returns:
        Columns ``where``, ``comparison``, ``seeds``, ``Δ``, ``low``, ``high``, ``verdict`` (and ``target``,
        ``reached``).

    Example:
        >>> list(verdict_frame([Verdict("a", "b", "d s", 3, 1.0, 0.5, 1.5)]).columns)
        ['where', 'comparison', 'seeds', 'Δ', 'low', 'high', 'verdict']
        >>> verdict_frame([Verdict("a", "b", "d s", 3, 1.0, 0.5, 1.5)], targets=[3.0]).reached.tolist()
        ['missed']
    """
    frame = pd.DataFrame([{"where": v.where, "comparison": f"{v.a} vs {v.b}", "seeds": v.n, "Δ": v.mean,
                           "low": v.low, "high": v.high, "verdict": v.says(margin) if v.n else "no seed ran both"}
                          for v in verdicts], columns=["where", "comparison", "seeds", "Δ", "low", "high", "verdict"])
    if targets is not None:
        if len(targets) != len(frame):
            raise ValueError(f"targets has {len(targets)} thresholds for {len(frame)} verdicts; give one each.")
        frame["target"] = list(targets)
        frame["reached"] = ["not measured" if v.n == 0 else "met" if v.mean >= t else "missed"
                            for v, t in zip(verdicts, targets)]
    return frame


def verdict_table(verdicts: Sequence[Verdict] | pd.DataFrame, margin: float = 0.0):
    """The verdicts rendered for a notebook: signed numbers to two decimals, ``ahead`` green, ``behind`` red.

    Use it where a notebook shows verdicts: the output is an HTML table in Jupyter (and the course site), and
    the frame's plain text elsewhere.

    Args:
        verdicts: verdicts, or a `verdict_frame`.
        margin: as in `verdict_frame`.

    Example:
        >>> html = verdict_table([Verdict("a", "b", "d s", 3, 1.0, 0.5, 1.5)]).to_html()
        >>> "+1.00" in html and "ahead" in html
        True
    """
    frame = verdicts if isinstance(verdicts, pd.DataFrame) else verdict_frame(verdicts, margin)
    signed = [c for c in ("Δ", "low", "high", "target") if c in frame.columns]
    return (frame.style.hide(axis="index").format("{:+.2f}", subset=signed, na_rep="–")
            .map(lambda says: f"color: {COLOURS[says]}" if says in COLOURS else "", subset=["verdict"]))


def forest(verdicts: Sequence[Verdict], ax: plt.Axes | None = None, margin: float = 0.0,
           label: str = "where") -> plt.Axes:
    """A forest plot: one row per verdict, its 95% interval as a bar, its paired mean Δ as a dot.

    Args:
        verdicts: from `metakit.teaching.verdicts.compare`, drawn top to bottom in the given order.
        ax: axes to draw into (default: a new figure sized to the rows).
        margin: a dashed line where it is not 0 (the line at 0 is always drawn).
        label: the row label: ``"where"`` (setting and comparison), ``"comparison"``, ``"setting"`` (where only) or
            ``"rival"`` (where and b: for panels whose a is always the same).

    Returns:
        The axes; its first collection holds the intervals, one segment ``[(low, y), (high, y)]`` per verdict
        with two or more seeds (fewer have no interval: a dot only).

    Example:
        >>> ax = forest([Verdict("a", "b", "d s", 3, 1.0, 0.5, 1.5), Verdict("c", "b", "d s", 1, -2.0, math.nan, math.nan)])
        >>> [t.get_text() for t in ax.get_yticklabels()], ax.collections[0].get_segments()[0].tolist()
        (['d s: a vs b', 'd s: c vs b'], [[0.5, 0.0], [1.5, 0.0]])
    """
    if not verdicts:
        raise ValueError("forest: verdicts is empty; compare at least one pair (metakit.teaching.verdicts.compare).")
    if label not in LABELS:
        raise ValueError(f"label={label!r} must be one of {sorted(LABELS)}.")
    ax = ax or plt.subplots(figsize=(7, 0.9 + 0.32 * len(verdicts)))[1]
    names = LABELS[label]
    rows = [(y, v) for y, v in enumerate(verdicts)]
    spans = [(y, v) for y, v in rows if v.n >= 2 and not math.isnan(v.low)]
    colour = [COLOURS.get(v.says(margin), "grey") for _, v in spans]
    ax.hlines([y for y, _ in spans], [v.low for _, v in spans], [v.high for _, v in spans], colors=colour, lw=2)
    ax.scatter([v.mean for _, v in rows], [y for y, _ in rows], zorder=3, s=18,
               c=[COLOURS.get(v.says(margin), "grey") for _, v in rows])
    ax.axvline(0.0, color="black", lw=0.8)
    if margin:
        ax.axvline(margin, color="black", lw=0.8, ls="--")
    ax.set_yticks(range(len(verdicts)), [names(v) for v in verdicts])
    ax.set_ylim(len(verdicts) - 0.5, -0.5)            # the first verdict on top
    ax.set(xlabel="paired Δ (a − b) with its 95% interval", title="paired differences over seeds")
    return ax


def forest_panels(groups: Mapping[str, Sequence[Verdict]], margin: float = 0.0, label: str = "comparison",
                  columns: int = 2) -> plt.Figure:
    """One `forest` per group (e.g. per setting or per momentum), side by side, titled by the group's name.

    Use it when the verdicts of several settings would make one forest too tall to read; an empty group is
    left out.

    Example:
        >>> fig = forest_panels({"IF 10": [Verdict("a", "b", "d s", 3, 1.0, 0.5, 1.5)], "IF 50": []})
        >>> [ax.get_title() for ax in fig.axes]
        ['IF 10']
    """
    groups = {name: list(vs) for name, vs in groups.items() if len(vs)}
    if not groups:
        raise ValueError("forest_panels: every group is empty; compare at least one pair.")
    rows = math.ceil(len(groups) / columns)
    tallest = max(map(len, groups.values()))
    fig, axes = plt.subplots(rows, min(columns, len(groups)), squeeze=False,
                             figsize=(6.5 * min(columns, len(groups)), rows * (1.2 + 0.3 * tallest)))
    for ax, (name, verdicts) in zip(axes.flat, groups.items()):
        forest(verdicts, ax=ax, margin=margin, label=label).set_title(name)
    for ax in list(axes.flat)[len(groups):]:
        ax.remove()
    fig.tight_layout()
    return fig
