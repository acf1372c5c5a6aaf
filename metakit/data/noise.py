"""Synthetic label noise on the training part (the Meta-Weight-Net protocols).

- ``uniform``: with probability p a label is replaced by a class drawn uniformly from all C
  classes (it may draw the true class, so the realised flip rate is about p·(C-1)/C).
- ``flip``: with probability p the label of class c moves to class (c+1) mod C.
- ``flip2``: with probability p/2 each, to (c+1) mod C or (c+2) mod C.

The realised transition matrix ``T[i, j]`` (fraction of true class i labelled j) is returned
with the labels, so a notebook can show what the noise actually did.
"""
from __future__ import annotations

import numpy as np
from metakit.options import require

NOISE_KINDS = ("none", "uniform", "flip", "flip2")


def check_noise(kind: str, rate: float) -> None:
    """Raise a clear error for an unknown noise kind or a rate outside [0, 1).

    Example:
        >>> check_noise("uniform", 0.4)
    """
    require("noise_kind", kind, object, choices=NOISE_KINDS)
    require("noise_rate", rate, float, low=0, high=1, high_open=True, example="0.4")
    if kind == "none" and rate != 0:
        raise ValueError(f"noise_rate={rate!r} needs a noise_kind; set noise_kind='uniform', 'flip' or 'flip2'.")


def corrupt_labels(labels: np.ndarray, num_classes: int, kind: str, rate: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of ``labels`` and the realised transition matrix.

    Args:
        labels: clean integer labels, shape (N,).
        num_classes: C.
        kind: one of "none", "uniform", "flip", "flip2".
        rate: corruption probability p in [0, 1).
        rng: the generator that decides which labels change (pass a seeded one).

    Returns:
        ``(noisy, T)`` with ``noisy`` shape (N,) and ``T`` shape (C, C), rows summing to 1
        for classes that occur.

    Example:
        >>> import numpy as np
        >>> y = np.repeat(np.arange(3), 100)
        >>> noisy, T = corrupt_labels(y, 3, "flip", 0.2, np.random.default_rng(0))
        >>> bool(T[0, 1] > 0.1 and T[0, 2] == 0)
        True
    """
    check_noise(kind, rate)
    labels = np.asarray(labels, dtype=np.int64)
    noisy = labels.copy()
    if kind != "none" and rate > 0:
        hit = rng.random(len(labels)) < rate                                   # (N,)
        if kind == "uniform":
            noisy[hit] = rng.integers(0, num_classes, size=int(hit.sum()))
        elif kind == "flip":
            noisy[hit] = (labels[hit] + 1) % num_classes
        else:  # flip2
            offset = rng.integers(1, 3, size=int(hit.sum()))                  # 1 or 2
            noisy[hit] = (labels[hit] + offset) % num_classes
    return noisy, transition_matrix(labels, noisy, num_classes)


def transition_matrix(clean: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalised confusion of clean → noisy labels, shape (C, C).

    Example:
        >>> import numpy as np
        >>> transition_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
        [[0.5, 0.5], [0.0, 1.0]]
    """
    counts = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(counts, (clean, noisy), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
