"""A run's meta-learning budget: ``count`` meta-updates spread evenly over ``total`` steps.

The same count on a small dataset and a large one gives comparable meta-learning (MFM's and
MLR-SNet's ``meta_updates``); the last update falls on the last step.

Example:
    >>> [due(5, 10, t) for t in range(10)], made(5, 10, 10)
    ([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 5)
    >>> [due(3, 2, t) for t in range(2)]           # more updates than steps: several a step
    [1, 2]
"""


def due(count: int, total: int, t: int) -> int:
    """Meta-updates step ``t`` (from 0) makes."""
    return (t + 1) * count // total - t * count // total


def made(count: int, total: int, t: int) -> int:
    """Meta-updates made before step ``t``, at most one a step (a learner that updates once per step)."""
    return min(t, t * count // total)
