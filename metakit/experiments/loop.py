"""The one training loop every method and task runs, and evaluation with many/medium/few-shot accuracy.

What the loop scores after each epoch is pluggable (``fit(..., score=...)``): accuracy per class
and shot group by default, perplexity for the language model (`metakit.experiments.text`).
The LR schedule is the trainer's; its one caller is the shared plain step
(`metakit.methods.base.Trainer.set_lr`), so the loop imports no method or schedule.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from metakit.data.batches import Batch, Batches
from metakit.data.longtail import shot_group
from metakit.distributed import sync_buffers, world_size
from metakit.methods.base import Method, Trainer


@torch.no_grad()
def evaluate(net: nn.Module, batches: Batches, class_counts: list[int]) -> dict:
    """Top-1 accuracy overall, per class, and per many/medium/few-shot group (in %).

    Args:
        net: the classifier; put in eval mode for the call and restored after.
        batches: the test batches (unshuffled, unaugmented).
        class_counts: training images per class, which decide each class's shot group.

    Returns:
        ``{"test_acc", "per_class_acc" (list), "many_acc", "medium_acc", "few_acc", "test_loss"}``;
        a group with no class gives NaN.

    Example:
        >>> import torch, numpy as np
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> b = Batches(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), np.array([0, 1, 0, 1]), 2,
        ...             torch.device("cpu"), (0.,), (1.,), shuffle=False)
        >>> evaluate(net, b, [150, 10])["test_acc"]
        50.0
    """
    was_training = net.training
    net.eval()
    num_classes = len(class_counts)
    correct = torch.zeros(num_classes, dtype=torch.float64)
    total = torch.zeros(num_classes, dtype=torch.float64)
    loss_sum = 0.0
    for batch in batches:
        logits = net(batch.x).float()
        loss_sum += torch.nn.functional.cross_entropy(logits, batch.y, reduction="sum").item()
        hit = (logits.argmax(1) == batch.y).double().cpu()
        y = batch.y.cpu()
        correct.index_add_(0, y, hit)
        total.index_add_(0, y, torch.ones_like(hit))
    net.train(was_training)
    per_class = (100.0 * correct / total.clamp_min(1)).tolist()
    out = {"test_acc": 100.0 * correct.sum().item() / max(total.sum().item(), 1),
           "test_loss": loss_sum / max(total.sum().item(), 1), "per_class_acc": per_class}
    groups = np.array([shot_group(n) for n in class_counts])
    for group in ("many", "medium", "few"):
        mask = groups == group
        out[f"{group}_acc"] = float(np.mean(np.array(per_class)[mask])) if mask.any() else float("nan")
    return out


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or a runaway learning rate."""


Score = Callable[[nn.Module, Any], dict]


def fit(trainer: Trainer, method: Method, train: Iterable[Batch], test: Any, epochs: int,
        class_counts: list[int] | None = None, meta: Iterator[Batch] | None = None, progress: bool = True,
        start_epoch: int = 0, history: list[dict] | None = None, on_epoch_end=None, max_lr: float = float("inf"),
        last_good: Path | None = None, score: Score | None = None) -> pd.DataFrame:
    """Train for ``epochs`` epochs; one history row per epoch.

    Args:
        trainer: net, optimiser, schedule, device.
        method: decides the loss and the step.
        train: training batches (`Batches`, or any sized iterable of `Batch`, e.g. text chunks).
        test: what ``score`` evaluates after every epoch (test batches by default).
        epochs: total epochs of the run.
        class_counts: training images per class (for the shot groups of the default ``score``).
        meta: endless clean meta batches, for methods with ``uses_meta_set``.
        progress: show a ``tqdm`` bar over epochs.
        start_epoch: first epoch to run (resuming).
        history: rows of earlier epochs (resuming).
        on_epoch_end: called as ``on_epoch_end(epoch, rows)`` after each epoch (checkpoints).
        max_lr: a learning rate above this (or a non-finite loss) stops the run with a
            `DivergenceError` naming the step and value; checked on the device, synced once an epoch.
        last_good: the checkpoint file written after each epoch, named in that error message.
        score: ``score(net, test) -> {name: value}``, the numbers of each epoch's row (lists are
            left out of the row); default `evaluate` with ``class_counts``. Pass your own for
            another metric (the language model passes perplexity).

    Returns:
        A DataFrame with columns epoch, train_loss, train_acc, lr, the ``score`` keys (default:
        test_acc, test_loss, many_acc, medium_acc, few_acc) and seconds (and meta_loss when a
        meta-step ran).
    """
    if score is None:
        if class_counts is None:
            raise ValueError("class_counts=None: the default score (accuracy by shot group) needs the training "
                             "images per class; pass class_counts=... or score=<your metric>.")
        counts = list(class_counts)

        def score(net: nn.Module, batches: Any) -> dict:
            return evaluate(net, batches, counts)
    rows = list(history or [])
    bar = tqdm(range(start_epoch, epochs), desc=method.name, disable=not progress, leave=False)
    for epoch in bar:
        trainer.epoch = epoch
        trainer.net.train()
        method.start_epoch(epoch, trainer)
        start, sums, weights, seen = time.perf_counter(), {}, {}, 0
        dev = trainer.device
        first_bad = torch.tensor([-1.0, 0.0, 0.0], device=dev)  # (step, loss, lr) of the first diverged step
        acc_dtype = torch.float32 if dev.type == "mps" else torch.float64  # MPS has no float64
        for step, batch in enumerate(train):
            stats = method.train_step(trainer, batch, next(meta) if (meta is not None and method.uses_meta_set) else None)
            now = torch.stack([torch.tensor(float(step), device=dev),  # no host sync: checked once an epoch
                               torch.as_tensor(stats["loss"], dtype=torch.float32).to(dev).reshape(()),
                               torch.as_tensor(stats["lr"], dtype=torch.float32).to(dev).reshape(())])
            bad = ~torch.isfinite(now[1:]).all() | (now[2] > max_lr)
            first_bad = torch.where((first_bad[0] < 0) & bad, now, first_bad)
            size = len(batch.y)
            seen += size
            for key, value in stats.items():  # size-weighted means; a key may be missing on some steps
                weight = 1 if key == "correct" else size
                value = torch.as_tensor(value).detach().to(dev, acc_dtype)  # stays on the device: no sync per step
                sums[key] = sums.get(key, 0.0) + value * weight
                weights[key] = weights.get(key, 0) + size
        method.end_epoch(epoch, trainer)
        if first_bad[0] >= 0:
            step, bad_loss, bad_lr = first_bad.tolist()
            raise DivergenceError(
                f"training diverged at epoch {epoch + 1}, step {int(step) + 1} of {len(train)}: loss={bad_loss:.4g}, "
                f"lr={bad_lr:.4g} (limit {max_lr:.4g}). Last good checkpoint: "
                f"{last_good if last_good is not None and last_good.exists() else 'none'}. "
                f"Lower the learning rate or check the data.")
        loss = float(sums.pop("loss")) / max(seen, 1)
        if world_size() > 1:
            sync_buffers(trainer.net)  # one set of BatchNorm statistics for evaluation and checkpoints
        row = {"epoch": epoch + 1, "train_loss": loss, "train_acc": 100.0 * float(sums.pop("correct", 0.0)) / seen}
        row.update({k: float(v) / weights[k] for k, v in sums.items()})
        scores = score(trainer.net, test)
        row.update({k: v for k, v in scores.items() if not isinstance(v, (list, tuple))})
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        first = next(iter(scores), None)
        bar.set_postfix(loss=f"{loss:.3f}", **({} if first is None else {first: f"{row.get(first, float('nan')):.4g}"}))
        if on_epoch_end is not None:
            on_epoch_end(epoch, rows)
    return pd.DataFrame(rows)
