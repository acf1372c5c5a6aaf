"""Pictures of the data protocols: samples, long tails, label noise, the meta set (notebook 00).

Images (digits, CIFAR) and signals (MNIST-1D) alike: `samples_figure` draws signals as lines.

Tables are tidy DataFrames built from the real splits (`metakit.data.make_split`); figures are
seaborn drawings of them, closed in pyplot so that a notebook shows each exactly once.

Example:
    >>> from metakit.data import load_source
    >>> t = class_counts_table(load_source("digits"), imbalances=[1, 10], lt_profiles=["exp"])
    >>> list(t.columns), len(t)
    (['lt_profile', 'imbalance', 'class', 'count'], 20)
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from metakit.data.sources import Source
from metakit.data.splits import Split, SplitSpec, make_split


def _done(fig):
    fig.tight_layout()
    plt.close(fig)
    return fig


def samples_figure(source: Source, per_class: int = 6, seed: int = 0):
    """A grid of ``per_class`` training samples of every class (rows = classes).

    Images (N, C, H, W) are drawn as pictures; signals (N, C, L), MNIST-1D's, as line plots
    (one line per channel) on a shared y axis, so that amplitudes compare across panels.

    Example:
        >>> from metakit.data import load_source
        >>> len(samples_figure(load_source("digits"), per_class=2).axes)
        20
        >>> import tempfile
        >>> from metakit.data.mnist1d import load_mnist1d
        >>> fig = samples_figure(load_mnist1d(tempfile.mkdtemp(), sizes=(3, 1, 2)), per_class=2)
        >>> len(fig.axes), len(fig.axes[0].lines), len(fig.axes[0].images)
        (20, 1, 0)
    """
    rng = np.random.default_rng(seed)
    signals = source.train_x.dim() == 3                                         # (N, C, L) rather than (N, C, H, W)
    width = 1.3 if signals else 0.8
    fig, axes = plt.subplots(source.num_classes, per_class, figsize=(per_class * width, source.num_classes * 0.8),
                             sharey=signals, squeeze=False)
    for c, row in enumerate(axes):
        picks = rng.choice(np.flatnonzero(source.train_y == c), per_class, replace=False)
        for ax, i in zip(row, picks):
            if signals:
                ax.plot(source.train_x[i].T.numpy(), color="black", lw=0.8)      # (L, C)
            else:
                image = source.train_x[i].permute(1, 2, 0).numpy()              # (H, W, C)
                ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray_r")
            ax.set_xticks([]), ax.set_yticks([])
        row[0].set_ylabel(source.classes[c], rotation=0, labelpad=10)
    kind = "signals" if signals else "images"
    fig.suptitle(f"{source.name}: {per_class} training {kind} per class")
    return _done(fig)


def class_counts_table(source: Source, imbalances=(1, 10, 50), lt_profiles=("exp", "step"),
                       meta_per_class: int = 5, seed: int = 0, train_per_class: int | None = None) -> pd.DataFrame:
    """Training samples per class of the real splits, one row per (profile, imbalance, class).

    ``train_per_class`` caps the head class (n_max) as the dataset's protocol does (MNIST-1D:
    5,000 at the laptop profile; pass ``config.train_per_class``); None keeps all the meta set leaves.
    """
    rows = []
    for profile in lt_profiles:
        for imbalance in imbalances:
            spec = SplitSpec(source.name, imbalance, profile, meta_per_class=meta_per_class, seed=seed,
                             train_per_class=train_per_class)
            split = make_split(spec, source.train_y)
            rows += [{"lt_profile": profile, "imbalance": imbalance, "class": c, "count": n}
                     for c, n in enumerate(split.class_counts)]
    return pd.DataFrame(rows)


def class_counts_figure(table: pd.DataFrame):
    """Bars of images per class, one panel per long-tail profile, one colour per imbalance (log scale)."""
    profiles = list(dict.fromkeys(table["lt_profile"]))
    fig, axes = plt.subplots(1, len(profiles), figsize=(5 * len(profiles), 3.5), sharey=True, squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        sns.barplot(table[table["lt_profile"] == profile], x="class", y="count", hue="imbalance", ax=ax,
                    palette="viridis")
        ax.set(yscale="log", title=f"{profile} profile", xlabel="class (0 = head)", ylabel="training images")
    return _done(fig)


def transition_table(source: Source, kinds=("uniform", "flip", "flip2"), noise_rate: float = 0.4,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """The realised clean→noisy transition matrix (C, C) of a balanced split, per noise kind."""
    return {kind: make_split(SplitSpec(source.name, 1.0, "exp", kind, noise_rate, meta_per_class=5, seed=seed),
                             source.train_y).transition for kind in kinds}


def transition_figure(matrices: dict[str, np.ndarray], noise_rate: float):
    """One heatmap per noise kind: row = true class, column = the label training sees."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.8), squeeze=False)
    for ax, (kind, matrix) in zip(axes[0], matrices.items()):
        sns.heatmap(matrix, ax=ax, vmin=0, vmax=1, cmap="mako_r", cbar=ax is axes[0][-1], square=True,
                    annot=matrix.shape[0] <= 10, fmt=".1f", annot_kws={"size": 6})
        ax.set(title=f"{kind}, noise_rate {noise_rate:g}", xlabel="noisy label", ylabel="true class")
    return _done(fig)


def split_table(source: Source, split: Split) -> pd.DataFrame:
    """Images per class and part (train / meta / test) of one split, tidy."""
    num = source.num_classes
    parts = {"train": split.class_counts,
             "meta": np.bincount(source.train_y[split.meta_idx], minlength=num).tolist(),
             "test": np.bincount(source.test_y, minlength=num).tolist()}
    return pd.DataFrame([{"class": c, "part": part, "count": counts[c]}
                         for part, counts in parts.items() for c in range(num)])


def split_figure(table: pd.DataFrame):
    """Bars of images per class for the long-tailed training set, the clean meta set and the test set."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.barplot(table, x="class", y="count", hue="part", ax=ax, palette="Set2")
    ax.set(xlabel="class", ylabel="images", title="one split: training (long tail), meta (clean, balanced), test")
    return _done(fig)
