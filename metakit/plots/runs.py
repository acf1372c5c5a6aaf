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


def ablation_figure(table: pd.DataFrame, x: str, hue: str | None = None):
    """An ``ablate`` table: overall accuracy (left) and per shot group (right) against ``x``.

    Points are means over seeds; bars show the spread (± one standard deviation). The right panel
    draws the shot groups that some run has (a group no class falls in is NaN and left out:
    digits' classes keep at most ~100 training images, so they have no many-shot group).

    Example:
        >>> t = pd.DataFrame({"imbalance": [1, 10], "seed": 0, "test_acc": [60, 20.0], "many_acc": None,
        ...                   "medium_acc": [60, 27.0], "few_acc": [None, 0.0]})
        >>> [text.get_text() for text in ablation_figure(t, x="imbalance").axes[1].get_legend().get_texts()]
        ['medium-shot', 'few-shot']
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    sns.pointplot(table, x=x, y="test_acc", hue=hue, errorbar="sd", ax=left, dodge=0.2 if hue else False)
    left.set(xlabel=x, ylabel="test accuracy (%)", title="all classes")
    groups = table.melt(id_vars=[x], value_vars=["many_acc", "medium_acc", "few_acc"], var_name="group",
                        value_name="accuracy").dropna()
    groups["group"] = groups["group"].map(GROUPS)
    sns.pointplot(groups, x=x, y="accuracy", hue="group", errorbar="sd", ax=right,
                  dodge=0.2 if groups["group"].nunique() > 1 else False, palette=SHOT_COLOURS)
    right.set(xlabel=x, ylabel="test accuracy (%)", title="per shot group")
    return _done(fig)
