"""Figures of training runs and ablations (notebook 06's playground and ``ablate`` tables).

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"imbalance": [1, 1, 10, 10], "seed": [0, 1, 0, 1], "test_acc": [90, 92, 70, 74.0],
    ...                   "many_acc": [90, 92, 95, 96.0], "medium_acc": [None] * 4, "few_acc": [None, None, 40, 50.0]})
    >>> len(ablation_figure(t, x="imbalance").axes)
    2
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

GROUPS = {"test_acc": "all classes", "many_acc": "many-shot", "medium_acc": "medium-shot", "few_acc": "few-shot"}
SHOT_COLOURS = {"many-shot": "tab:blue", "medium-shot": "tab:green", "few-shot": "tab:red"}


def _done(fig):
    fig.tight_layout()
    plt.close(fig)
    return fig


def run_figure(history: pd.DataFrame, title: str = ""):
    """Left: test accuracy per epoch, overall and per shot group. Right: the learning rate per epoch.

    Example:
        >>> h = pd.DataFrame({"epoch": [1, 2], "test_acc": [50, 60.0], "many_acc": [70, 80.0],
        ...                   "medium_acc": [40, 50.0], "few_acc": [None, None], "lr": [0.1, 0.05]})
        >>> [ax.get_ylabel() for ax in run_figure(h).axes]
        ['test accuracy (%)', 'learning rate']
    """
    long = history.melt(id_vars="epoch", value_vars=[c for c in GROUPS if c in history], var_name="group",
                        value_name="accuracy").dropna()
    long["group"] = long["group"].map(GROUPS)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    sns.lineplot(long, x="epoch", y="accuracy", hue="group", marker="o", ax=left)
    left.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100), title=title)
    sns.lineplot(history, x="epoch", y="lr", ax=right, color="gray")
    right.set(xlabel="epoch", ylabel="learning rate")
    return _done(fig)


def _column(table: pd.DataFrame, argument: str, name: str) -> None:
    if name not in table.columns:
        raise ValueError(f"{argument}={name!r} is not a column of the table; use one of {list(table.columns)}.")


def ablation_figure(table: pd.DataFrame, x: str, hue: str | None = None):
    """An ``ablate`` table: overall accuracy (left) and per shot group against ``x``.

    Points are means over seeds; bars show the spread (± one standard deviation). Shot groups that
    no run has (NaN: digits' classes keep at most ~100 training images, so no many-shot group) are
    left out. Without ``hue`` one right panel draws the groups in their colours; with ``hue`` (a
    second swept field) every panel splits the points by it, one panel per shot group, in one colour
    per value, and the legend is titled by the field.

    Example:
        >>> t = pd.DataFrame({"imbalance": [1, 10], "seed": 0, "test_acc": [60, 20.0], "many_acc": None,
        ...                   "medium_acc": [60, 27.0], "few_acc": [None, 0.0]})
        >>> [text.get_text() for text in ablation_figure(t, x="imbalance").axes[1].get_legend().get_texts()]
        ['medium-shot', 'few-shot']
        >>> fig = ablation_figure(t.assign(method="ce"), x="imbalance", hue="method")
        >>> [ax.get_title() for ax in fig.axes], fig.axes[0].get_legend().get_title().get_text()
        (['all classes', 'medium-shot', 'few-shot'], 'method')
    """
    _column(table, "x", x)
    if hue is not None:
        _column(table, "hue", hue)
        if hue == x:
            raise ValueError(f"hue={hue!r} is also x; give hue another swept field (or None).")
    keys = [x] if hue is None else [x, hue]
    groups = table.melt(id_vars=keys, value_vars=["many_acc", "medium_acc", "few_acc"], var_name="group",
                        value_name="accuracy").dropna(subset=["accuracy"])
    groups["group"] = groups["group"].map(GROUPS)
    if hue is None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
        sns.pointplot(table, x=x, y="test_acc", errorbar="sd", ax=left)
        sns.pointplot(groups, x=x, y="accuracy", hue="group", errorbar="sd", ax=right,
                      dodge=0.2 if groups["group"].nunique() > 1 else False, palette=SHOT_COLOURS)
        right.set(xlabel=x, ylabel="test accuracy (%)", title="per shot group")
        left.set(xlabel=x, ylabel="test accuracy (%)", title="all classes")
        return _done(fig)
    present = [g for g in GROUPS.values() if g in set(groups["group"])]
    levels = list(pd.unique(table[hue].sort_values()))
    order = list(pd.unique(table[x].sort_values()))                          # the same x positions in every panel
    palette = dict(zip(levels, sns.color_palette(n_colors=len(levels))))    # one colour per value, every panel
    fig, axes = plt.subplots(1, 1 + len(present), figsize=(4 + 3.2 * len(present), 3.4), sharey=True, squeeze=False)
    panels = [("all classes", table, "test_acc")] + [(g, groups[groups["group"] == g], "accuracy") for g in present]
    for ax, (title, data, y) in zip(axes[0], panels):
        sns.pointplot(data, x=x, y=y, order=order, hue=hue, hue_order=levels, palette=palette, errorbar="sd", ax=ax,
                      dodge=0.2 if len(levels) > 1 else False)
        ax.set(xlabel=x, ylabel="test accuracy (%)", title=title)
        if ax is not axes[0][0] and ax.get_legend() is not None:
            ax.get_legend().remove()                                  # one legend, titled by the field
    axes[0][0].get_legend().set_title(hue)
    return _done(fig)
