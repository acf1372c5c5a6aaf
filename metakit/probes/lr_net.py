"""Probes of a meta-trained LR net: what each snapshot outputs, and how its output answers the loss.

`snapshot_output` runs one snapshot from a fresh state on a constant loss and reads its output
LR / γ once the state has settled: the measure behind "the net learned to anneal" (the authors'
snapshots, on their source's loss: 0.73 → 0.036 → 0.018). `output_by_loss` is its answer to
each loss of a sweep, from the same settled state (does the net read the loss at all?).
`learning_job` meta-trains one source schedule and returns both with the run's accuracy and
meta-update count (the job of the ``lr_net_learning`` study).

Example:
    >>> from metakit.learners.lr_net import MLRSNet
    >>> net = MLRSNet(10, hidden=4, gamma=0.3)
    >>> round(snapshot_output(net, 2.3), 3), [round(v, 3) for v in output_by_loss(net, [0.5, 2.3])]
    (0.5, [0.5, 0.5])
"""
from __future__ import annotations

import copy
import time
from typing import Sequence

import torch

from metakit.experiments import run
from metakit.learners.lr_net import LRSnapshots, MLRSNet
from metakit.probes.history import val_selected
from metakit.schedules.learned import stage_epochs

SETTLE = 100   # steps on the constant loss before the output is read (the state settles within tens)


@torch.no_grad()
def _settled(net: MLRSNet, loss: float, steps: int) -> MLRSNet:
    net = copy.deepcopy(net).cpu()
    net.reset_state()
    net.gamma.fill_(1.0)
    for _ in range(steps):
        net.after_step(torch.tensor(float(loss)))
    return net


@torch.no_grad()
def snapshot_output(net: MLRSNet, loss: float, steps: int = SETTLE) -> float:
    """The net's output LR / γ on a constant ``loss`` after ``steps`` steps from a fresh state."""
    return float(_settled(net, loss, steps).inner_lr(torch.tensor(float(loss))))


@torch.no_grad()
def output_by_loss(net: MLRSNet, losses: Sequence[float], settle_loss: float | None = None,
                   steps: int = SETTLE) -> list[float]:
    """LR / γ for each of ``losses`` from the state settled on ``settle_loss`` (default: the sweep's middle)."""
    settle = float(losses[len(losses) // 2]) if settle_loss is None else float(settle_loss)
    return [float(v) for v in _settled(net, settle, steps).response(torch.tensor([float(x) for x in losses]))]


def stage_outputs(snapshots: LRSnapshots, loss: float, steps: int = SETTLE) -> dict[int, float]:
    """`snapshot_output` of the three snapshots the staged meta-test uses, by meta-training epoch.

    Example:
        >>> s = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=0.5) for _ in range(4)])
        >>> stage_outputs(s, 2.3)
        {1: 0.5, 2: 0.5, 4: 0.5}
    """
    return {e: snapshot_output(snapshots.at_epoch(e), loss, steps) for e in stage_epochs(snapshots.epochs[-1])}


def learning_job(config) -> dict[str, float]:
    """A study job: meta-train an ``mlrsnet`` source; its accuracy, meta-updates and the snapshots' outputs.

    The outputs are read on the run's initial full training loss (γ's L), so a source's first and
    last snapshots are compared on one input; ``out_ratio`` is last / first (the authors': 0.025).
    """
    start = time.perf_counter()
    result = run(config)
    method, h = result.method, result.history
    first, mid, last = stage_outputs(result.learner, method.initial_loss).values()
    gamma = float(method.lr_net.gamma)
    return {"test_acc": float(result.metrics["test_acc"]), "val_acc": float(result.metrics.get("val_acc", "nan")),
            **val_selected(h), "meta_updates": method.meta_updates, "gamma": gamma, "out_first": first,
            "out_mid": mid, "out_last": last, "out_ratio": last / first, "lr_first": float(h["lr"].iloc[0]) / gamma,
            "lr_last": float(h["lr"].iloc[-1]) / gamma, "seconds": time.perf_counter() - start}
