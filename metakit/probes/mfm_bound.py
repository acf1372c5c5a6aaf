"""The frozen-θ bound of MFM: how much can γ/β fix when the classifier cannot undo them?

Train the config (cross-entropy), freeze θ, attach per-channel γ/β where MFM puts them, and fit
only γ, β by full-batch Adam on a balanced set, with BatchNorm in eval mode (as at test time):

- ``fit="meta"``: the run's own clean meta set (what MFM sees; 10 a class on MNIST-1D-LT), so the
  bound is what the modulation's capacity plus that meta set can buy without co-training;
- ``fit="val"``: the validation split (500 a class on MNIST-1D), the capacity of the modulation
  alone, with almost no sampling error. Its ``val_acc`` is then a training accuracy and is
  reported as NaN.

This is not MFM (no look-ahead, no co-training). MFM above the ``fit="meta"`` bound gains from
changing θ; MFM below it loses to the real step re-absorbing γ/β, or to its meta set.

Example:
    >>> from metakit.experiments import Config
    >>> out = bound_job(Config(profile="smoke", imbalance=10, epochs=1, progress=False), steps=5)
    >>> sorted(out)[:3], 0 <= out["test_acc"] <= 100
    (['ce_test_acc', 'few_acc', 'many_acc'], True)
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from metakit.data.batches import Batches
from metakit.data.sources import load_source
from metakit.experiments import Config, run
from metakit.experiments.loop import evaluate
from metakit.learners.modulation import attach
from metakit.meta import freeze
from metakit.options import require

FITS = ("meta", "val")
STEPS, LR = 300, 1e-2  # fixed in advance (the digits bound used them); never chosen on test


def fit_modulation(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, where: Any = "fc",
                   steps: int = STEPS, lr: float = LR) -> torch.nn.Module:
    """Attach γ/β at ``where`` to a frozen ``net`` and fit them on (x, y) by full-batch Adam; returns the modulation.

    Example:
        >>> from metakit.models import build_model
        >>> net = build_model("digits_cnn", 2, (1, 8, 8))
        >>> x, y = torch.randn(8, 1, 8, 8), torch.tensor([0, 1] * 4)
        >>> mod = fit_modulation(net, x, y, steps=3)
        >>> [n for n, p in mod.named_parameters()]
        ['layers.fc.gamma', 'layers.fc.beta']
    """
    freeze(net.parameters())
    modulation = attach(net, where)
    optimizer = torch.optim.Adam(modulation.parameters(), lr=lr)
    net.eval()
    for _ in range(steps):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return modulation


def bound_job(config: Config, fit: str = "meta", where: Any = "fc", steps: int = STEPS) -> dict[str, float]:
    """A grid job (`metakit.studies.grid.run_grid`): train ``config``, fit γ/β on ``fit``, test.

    Returns:
        test_acc, val_acc (NaN for ``fit="val"``), many/medium/few_acc of the modulated net,
        ``ce_test_acc`` (the same net before γ/β) and ``seconds`` (training and fit).
    """
    require("fit", fit, object, choices=FITS)
    start = time.perf_counter()
    config = config.resolve()
    result = run(config)
    source = load_source(config.dataset, config.data_root, config.data_size, config.data_options)
    dev = next(result.net.parameters()).device

    def batches(x, y, size=1000) -> Batches:  # normalised as in training, in a fixed order
        return Batches(x, y, size, dev, source.mean, source.std, shuffle=False)

    if fit == "meta":
        x, y = source.train_x[result.split.meta_idx], source.train_y[result.split.meta_idx]
    else:
        if source.val_x is None:
            raise ValueError(f"fit='val' needs a validation split, and dataset={config.dataset!r} has none; "
                             f"use fit='meta'.")
        x, y = source.val_x, source.val_y
    whole = next(iter(batches(x, y, size=len(y))))  # full batch: the fit sees the whole set at every step
    fit_modulation(result.net, whole.x, whole.y, where, steps)
    counts = result.method.class_counts
    out = evaluate(result.net, batches(source.test_x, source.test_y), counts)
    val = float("nan")
    if fit == "meta" and source.val_x is not None:
        val = evaluate(result.net, batches(source.val_x, source.val_y), counts)["test_acc"]
    return {"test_acc": out["test_acc"], "val_acc": val, "many_acc": out["many_acc"],
            "medium_acc": out["medium_acc"], "few_acc": out["few_acc"],
            "ce_test_acc": float(result.metrics["test_acc"]), "seconds": time.perf_counter() - start}
