"""Long-tail figures and tables: class histogram, per-class accuracy, γ/β per layer, shot groups."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from metakit.data.longtail import shot_group

SHOTS = ("many", "medium", "few")


def class_histogram(class_counts: Sequence[int], ax=None, log: bool = False):
    """Bar plot of training images per class, coloured by many/medium/few-shot group.

    Example:
        >>> ax = class_histogram([120, 40, 5]); ax.get_ylabel()
        'training images'
    """
    df = pd.DataFrame({"class": range(len(class_counts)), "training images": list(class_counts),
                       "group": [shot_group(n) for n in class_counts]})
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    sns.barplot(df, x="class", y="training images", hue="group", hue_order=SHOTS, dodge=False, ax=ax)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("class (0 = largest)")
    return ax


def per_class_accuracy(accuracies: dict[str, Sequence[float]] | pd.DataFrame, ax=None):
    """Grouped bars of per-class test accuracy, one colour per method.

    Args:
        accuracies: method → per-class accuracies (%), or a tidy DataFrame with columns
            method, class, accuracy (several rows per bar are averaged, with error bars).

    Example:
        >>> ax = per_class_accuracy({"ce": [90.0, 40.0], "mfm": [88.0, 60.0]}); ax.get_ylabel()
        'test accuracy (%)'
    """
    df = accuracies if isinstance(accuracies, pd.DataFrame) else pd.DataFrame(
        [{"method": m, "class": c, "accuracy": a} for m, accs in accuracies.items() for c, a in enumerate(accs)])
    ax = ax or plt.subplots(figsize=(7, 3))[1]
    sns.barplot(df, x="class", y="accuracy", hue="method", errorbar="sd", ax=ax)
    ax.set_xlabel("class (0 = most training images)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    return ax


def scale_shift_lines(table: pd.DataFrame, axes=None):
    """γ and β per channel, one line per modulated layer (a `scale_shift_table`).

    Example:
        >>> t = pd.DataFrame({"layer": ["a", "a"], "channel": [0, 1], "gamma": [1.0, 1.1], "beta": [0.0, -0.1]})
        >>> [ax.get_ylabel() for ax in scale_shift_lines(t)]
        ['γ (scale)', 'β (shift)']
    """
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3))[1]
    for ax, column, label, rest in zip(axes, ("gamma", "beta"), ("γ (scale)", "β (shift)"), (1.0, 0.0)):
        sns.lineplot(table, x="channel", y=column, hue="layer", ax=ax)
        ax.axhline(rest, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("channel")
        ax.set_ylabel(label)
    return axes


def shot_rows(result_or_metrics, method: str, seed: int = 0) -> dict:
    """One tidy row (method, seed, test/many/medium/few accuracy) from a `Result` or its metrics.

    Example:
        >>> shot_rows({"test_acc": 90.0, "many_acc": 95.0, "medium_acc": 90.0, "few_acc": 70.0}, "ce")["few_acc"]
        70.0
    """
    metrics = getattr(result_or_metrics, "metrics", result_or_metrics)
    return {"method": method, "seed": seed, **{k: metrics[k] for k in ("test_acc", "many_acc", "medium_acc",
                                                                       "few_acc")}}


def shot_table(rows: pd.DataFrame | list[dict], by: str = "method") -> pd.DataFrame:
    """Many/medium/few-shot and overall accuracy as "mean ± std" over seeds, one row per ``by``.

    Example:
        >>> rows = [{"method": "ce", "seed": s, "test_acc": a, "many_acc": a, "medium_acc": a, "few_acc": a}
        ...         for s, a in enumerate([90.0, 92.0])]
        >>> shot_table(rows).loc["ce", "overall"]
        '91.0 ± 1.4'
    """
    df = pd.DataFrame(rows)
    columns = {"test_acc": "overall", "many_acc": "many", "medium_acc": "medium", "few_acc": "few"}
    grouped = df.groupby(by, sort=False)
    out = pd.DataFrame(index=grouped.size().index)
    for key, label in columns.items():
        mean, std = grouped[key].mean(), grouped[key].std().fillna(0.0)
        out[label] = [f"{m:.1f} ± {s:.1f}" if np.isfinite(m) else "–" for m, s in zip(mean, std)]
    out["seeds"] = grouped["seed"].nunique()
    return out
