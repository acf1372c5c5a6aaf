"""Replay a loss trajectory through a frozen staged MLR-SNet: does the schedule respond to training?

`replay` feeds a `metakit.schedules.learned.StagedSchedule` a given trajectory of batch losses
(one list an epoch) and records, per step, the LR and its two factors: γ (re-derived from the
full training loss at each switch) and the net's output lr/γ in (0, 1). Feeding a higher and a
lower trajectory (`trajectory_response`) measures how much the LR follows the loss.

The full training loss at a switch is read off the trajectory: the mean batch loss of the epoch
before (of the first epoch's first batch at the start), a stand-in for the eval-mode pass the
``mlrsnet`` method makes in a real run.
"""
from __future__ import annotations

from typing import Sequence

import torch

from metakit.learners.lr_net import LRSnapshots
from metakit.schedules.learned import StagedSchedule


def replay(snapshots: LRSnapshots, losses: Sequence[Sequence[float]], *, num_classes: int,
           gamma_floor: float = 0.0, last_only: bool = False) -> "pd.DataFrame":
    """The LR a frozen staged schedule gives along ``losses`` (a list of epochs of batch losses).

    Args:
        snapshots: the meta-trained `LRSnapshots` (copied, never changed).
        losses: ``losses[e][i]``, the loss of batch i of epoch e; every epoch the same length.
        num_classes: C of the task (γ's formula).
        gamma_floor, last_only: as `StagedSchedule`.

    Returns:
        A DataFrame with one row a step: ``step``, ``epoch``, ``loss``, ``lr``, ``gamma``,
        ``net`` (= lr / γ, the net's own output).

    Example:
        >>> from metakit.learners.lr_net import MLRSNet
        >>> snaps = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=1.0, normalise=False)] * 3)
        >>> df = replay(snaps, [[2.3, 2.2], [1.9, 1.8], [1.5, 1.4]], num_classes=10)
        >>> len(df), round(float(df["net"].iloc[0]), 3), bool(df["gamma"].iloc[-1] < df["gamma"].iloc[0])
        (6, 0.5, True)
    """
    import pandas as pd

    iters = len(losses[0])
    if any(len(epoch) != iters for epoch in losses) or iters == 0:
        raise ValueError(f"losses: every epoch needs the same, non-zero number of batch losses; got "
                         f"{[len(epoch) for epoch in losses]}.")
    flat = [float(v) for epoch in losses for v in epoch]
    step = 0

    def full_loss() -> float:            # the epoch before's mean batch loss (the first loss at the start)
        epoch = step // iters
        return flat[0] if epoch == 0 else sum(losses[epoch - 1]) / iters

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
    schedule = StagedSchedule(snapshots, optimizer, iters, epochs=len(losses), num_classes=num_classes,
                              full_loss=full_loss, gamma_floor=gamma_floor, last_only=last_only)
    rows = []
    for step, loss in enumerate(flat):
        lr = schedule.update(loss)
        gamma = float(schedule.net.gamma)
        rows.append({"step": step, "epoch": step // iters, "loss": loss, "lr": lr, "gamma": gamma,
                     "net": lr / gamma if gamma > 0 else float("nan")})
    return pd.DataFrame(rows)


def trajectory_response(snapshots: LRSnapshots, losses: Sequence[Sequence[float]], *, num_classes: int,
                        factor: float = 1.25, **options) -> dict:
    """Replay ``losses`` × ``factor`` and ÷ ``factor``; how far apart are the two LR curves?

    Returns:
        ``{"high": df, "low": df, "lr_diff", "lr_rel", "gamma_rel", "net_rel"}``: the mean LR
        difference high − low, and the relative differences (high − low) / low of the mean LR,
        of the mean γ and of the mean net output (the part the learned net, not γ, contributes).

    Example:
        >>> from metakit.learners.lr_net import MLRSNet
        >>> snaps = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=1.0, normalise=False)] * 3)
        >>> out = trajectory_response(snaps, [[2.0, 1.9], [1.6, 1.5], [1.2, 1.1]], num_classes=10)
        >>> out["net_rel"], bool(out["gamma_rel"] > 0)
        (0.0, True)
    """
    if not factor > 1:
        raise ValueError(f"factor={factor!r} must be > 1 (the high trajectory is the losses × factor).")
    high = replay(snapshots, [[v * factor for v in e] for e in losses], num_classes=num_classes, **options)
    low = replay(snapshots, [[v / factor for v in e] for e in losses], num_classes=num_classes, **options)

    def rel(column: str) -> float:
        return float((high[column].mean() - low[column].mean()) / low[column].mean())

    return {"high": high, "low": low, "lr_diff": float(high["lr"].mean() - low["lr"].mean()),
            "lr_rel": rel("lr"), "gamma_rel": rel("gamma"), "net_rel": rel("net")}
