"""Probes of a run's history: the epoch that model selection on the validation split picks.

Example:
    >>> import pandas as pd
    >>> val_selected(pd.DataFrame({"epoch": [1, 2], "val_acc": [50.0, 70.0], "test_acc": [48.0, 66.0]}))
    {'val_epoch': 2, 'test_acc_at_val': 66.0}
"""
from __future__ import annotations

import pandas as pd


def val_selected(history: pd.DataFrame) -> dict:
    """The epoch of the best validation accuracy and the test accuracy there (model selection on val, never test).

    Returns ``{}`` when the run has no validation split (CIFAR).

    Example:
        >>> h = pd.DataFrame({"epoch": [1, 2, 3], "val_acc": [50.0, 70.0, 60.0], "test_acc": [48.0, 66.0, 69.0]})
        >>> val_selected(h)
        {'val_epoch': 2, 'test_acc_at_val': 66.0}
    """
    if "val_acc" not in history or history["val_acc"].isna().all():
        return {}
    best = history["val_acc"].idxmax()  # the first epoch with the best validation accuracy
    return {"val_epoch": int(history.loc[best, "epoch"]), "test_acc_at_val": float(history.loc[best, "test_acc"])}
