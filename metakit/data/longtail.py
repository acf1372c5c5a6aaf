"""Long-tailed subsampling (the LDAM-DRW convention).

Class i of C keeps ``n_i = int(n_max * (1/imbalance) ** (i / (C - 1)))`` images ("exp"
profile), or ``n_max`` for the first half of the classes and ``int(n_max / imbalance)`` for the
rest ("step" profile). Test sets stay balanced. References: Cao et al. 2019 (LDAM-DRW),
Shu et al. 2019 (Meta-Weight-Net) for the meta set taken out first.
"""
from __future__ import annotations

import numpy as np
from metakit.options import require

LT_PROFILES = ("exp", "step")


def check_imbalance(imbalance: float) -> float:
    """Validate an imbalance factor (ratio of largest to smallest class); returns it as float.

    Example:
        >>> check_imbalance(100)
        100.0
    """
    return require("imbalance", imbalance, float, low=1, example="100 (1 means balanced)")


def longtail_counts(n_max: int, num_classes: int, imbalance: float, profile: str = "exp") -> list[int]:
    """Images kept per class for a long-tailed training set.

    Args:
        n_max: images of the largest class (CIFAR-10: 50000 / 10 = 5000).
        num_classes: number of classes C.
        imbalance: n_max / n_min; 1 keeps every class at n_max.
        profile: "exp" (exponential decay, the usual CIFAR-LT) or "step" (half head, half tail).

    Returns:
        One count per class, class 0 the largest.

    Example:
        >>> longtail_counts(5000, 10, 100)
        [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    """
    imbalance = check_imbalance(imbalance)
    require("lt_profile", profile, object, choices=LT_PROFILES)
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must be at least 2 for a long tail.")
    if profile == "exp":
        return [int(n_max * (1.0 / imbalance) ** (i / (num_classes - 1))) for i in range(num_classes)]
    half = num_classes // 2
    return [n_max] * half + [int(n_max / imbalance)] * (num_classes - half)


def shot_group(count: int) -> str:
    """The many/medium/few-shot group of a class with ``count`` training images (>100, 20-100, <20).

    Example:
        >>> [shot_group(n) for n in (500, 100, 20, 19)]
        ['many', 'medium', 'medium', 'few']
    """
    if count > 100:
        return "many"
    return "medium" if count >= 20 else "few"
