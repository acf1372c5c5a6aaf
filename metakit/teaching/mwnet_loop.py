"""Notebook 01's last exercise: a whole Meta-Weight-Net training loop by hand, beside `run`'s.

`loop_parts` hands out what ``run(Config(method="mwnet", ...))`` builds before it trains — the
same split, batch order, initial weights, optimiser (SGD with the config's momentum and weight
decay), LR schedule and meta-optimiser (Adam) — so a loop written by hand can match the library's
run exactly. `reference_loop` is such a loop with one deliberate ``mistake`` (or none): the
check (`metakit.teaching.run_checks.check_mwnet_loop`) names a student's mistake by finding the
variant their loop agrees with.

Example:
    >>> from metakit.experiments import Config
    >>> parts = loop_parts(loop_config("digits"))
    >>> type(parts.optimizer).__name__, type(parts.meta_optimizer).__name__, parts.weight_decay
    ('SGD', 'Adam', 0.0005)
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.experiments import Config
from metakit.meta import cloned_buffers, lookahead, normalize_weights


@dataclass
class LoopParts:
    """What a hand-written MW-Net loop trains, as ``run`` builds it for one config.

    Attributes:
        net: the classifier θ (train mode; BatchNorm inside).
        weight_net: the weight net φ (`metakit.learners.weight_net.WeightNet`): ``weights(ℓ)`` is
            σ(MLP(ℓ)) divided by its sum, ``raw_weights(ℓ)`` the sigmoid alone.
        optimizer: the real step's SGD over θ (momentum, weight decay of the config).
        meta_optimizer: Adam over φ.
        schedule: ``schedule.update(None)`` sets and returns the LR of the coming step (call it once
            a step, before the virtual step reads the LR).
        train: the training batches; ``for batch in train`` runs one epoch (``batch.x``, ``batch.y``).
        meta: endless clean meta batches; ``next(meta)`` draws one (``.x``, ``.y``).
        weight_decay: the weight decay folded into the virtual step (the optimiser's).
    """

    net: nn.Module
    weight_net: nn.Module
    optimizer: torch.optim.Optimizer
    meta_optimizer: torch.optim.Optimizer
    schedule: Any
    train: Iterable
    meta: Any
    weight_decay: float


def loop_config(dataset: str | None = None, seed: int = 0, epochs: int = 3) -> Config:
    """The exercise's run: ``mwnet`` at imbalance 10 on the smoke-size data of ``dataset``, whatever the profile,
    its weight net stepped by Adam (the exercise's loop; the long-tail default is the official code's SGD).

    Example:
        >>> loop_config("digits", epochs=2).resolve().epochs
        2
    """
    return Config(method="mwnet", profile="smoke", dataset=dataset, imbalance=10, seed=seed, epochs=epochs,
                  progress=False, options={"meta_optimizer": "adam"})


def loop_parts(config: Config, steps: int | None = None) -> LoopParts:
    """The parts of ``config``'s run before training; ``steps`` keeps only the first epoch's first batches."""
    from metakit.experiments.run import build

    if config.method != "mwnet":
        raise ValueError(f"config.method={config.method!r}: the loop exercise trains Meta-Weight-Net; use "
                         "Config(method='mwnet', ...).")
    parts = build(config.resolve())
    train = parts.train if steps is None else list(itertools.islice(parts.train, steps))
    return LoopParts(parts.trainer.net, parts.method.weight_net, parts.trainer.optimizer,
                     parts.method.step.meta_optimizer, parts.trainer.schedule, train, parts.meta,
                     float(parts.config.weight_decay))


def library_steps(config: Config, steps: int) -> LoopParts:
    """The parts after the library's own first ``steps`` iterations (`MWNet.train_step`, as `run` does)."""
    from metakit.experiments.run import build

    parts = build(config.resolve())
    parts.trainer.net.train()
    for batch in itertools.islice(parts.train, steps):
        parts.method.train_step(parts.trainer, batch, next(parts.meta))
    return LoopParts(parts.trainer.net, parts.method.weight_net, parts.trainer.optimizer,
                     parts.method.step.meta_optimizer, parts.trainer.schedule, [], parts.meta,
                     float(parts.config.weight_decay))


# mistake → what the check says about it (a hint, never the answer)
MISTAKES = {
    "detached": "your meta update does not reach the weight net: θ' must keep the graph of ∇θ L_train "
                "(create_graph=True), and the weights in the virtual step must not be detached.",
    "old_weights": "your real step weights the losses with the weight net from *before* its update: recompute the "
                   "weights after the meta-optimiser's step.",
    "raw_weights": "your sample weights are not normalised as the library's: the weight net's sigmoid outputs are "
                   "divided by their sum over the batch.",
    "mean_weights": "your sample weights are divided by the batch size; the library divides them by their sum "
                    "over the batch.",
    "no_virtual_decay": "your virtual step leaves out the weight decay: θ' = θ − lr·(∇θ L_train + weight_decay·θ), "
                        "as the real SGD step decays θ too.",
    "eval_meta": "your meta loss runs the net in eval mode; the library's runs it in train mode (BatchNorm on the "
                 "meta batch's own statistics, on cloned buffers).",
    "no_schedule": "your loop never lets the schedule set the LR: call parts.schedule.update(None) once a step.",
    "late_schedule": "your virtual step reads the LR before the schedule has set this step's: update the schedule "
                     "at the start of the step.",
    "real_first": "your loop takes the real step before the meta update; the meta update comes first, then the "
                  "real step with the updated weight net.",
    "touched_buffers": "your virtual step or meta loss changed the real model's BatchNorm statistics: pass cloned "
                       "buffers to functional_call, so only the real step's forward updates them.",
}


def _weights(weight_net: nn.Module, per_sample: torch.Tensor, mistake: str | None) -> torch.Tensor:
    if mistake == "raw_weights":
        return weight_net.raw_weights(per_sample)
    if mistake == "mean_weights":
        return normalize_weights(weight_net.raw_weights(per_sample), "mean")
    return weight_net.weights(per_sample)


def _meta_update(p: LoopParts, x, y, meta_batch, lr: float, mistake: str | None) -> None:
    """Virtual step, meta loss at θ', φ update."""
    net = p.net
    params = dict(net.named_parameters())
    buffers = {} if mistake == "touched_buffers" else cloned_buffers(net)
    per_sample = F.cross_entropy(functional_call(net, {**params, **buffers}, (x,)), y, reduction="none")   # (B,)
    decay = 0.0 if mistake == "no_virtual_decay" else p.weight_decay
    virtual = lookahead(net, (_weights(p.weight_net, per_sample, mistake) * per_sample).sum(), lr, weight_decay=decay,
                        create_graph=mistake != "detached")
    net.train(mistake != "eval_meta")
    buffers = {} if mistake == "touched_buffers" else cloned_buffers(net)
    meta_loss = F.cross_entropy(functional_call(net, {**virtual, **buffers}, (meta_batch.x,)), meta_batch.y)
    net.train()
    p.meta_optimizer.zero_grad()
    meta_loss.backward(**({} if mistake == "detached" else {"inputs": list(p.weight_net.parameters())}))
    p.meta_optimizer.step()


def reference_loop(p: LoopParts, epochs: int, mistake: str | None = None) -> None:
    """Train ``p`` for ``epochs`` epochs the MW-Net way, with one of `MISTAKES` made on purpose (None: none).

    Example:
        >>> p = loop_parts(loop_config("digits"), steps=1)
        >>> before = p.net.fc.weight.detach().clone()
        >>> reference_loop(p, 1); bool((p.net.fc.weight != before).any())
        True
    """
    if mistake is not None and mistake not in MISTAKES:
        raise ValueError(f"mistake={mistake!r} is unknown; use None or one of {sorted(MISTAKES)}.")
    p.net.train()
    for _ in range(epochs):
        for batch in p.train:
            meta_batch = next(p.meta)
            lr = p.optimizer.param_groups[0]["lr"]
            if mistake not in ("no_schedule", "late_schedule"):
                lr = p.schedule.update(None)                       # this step's LR, before the virtual step
            if mistake == "old_weights":                          # the weights before the meta update
                with torch.no_grad():
                    logits = functional_call(p.net, {**dict(p.net.named_parameters()), **cloned_buffers(p.net)},
                                             (batch.x,))
                    old_c = p.weight_net.weights(F.cross_entropy(logits, batch.y, reduction="none"))
            if mistake != "real_first":
                _meta_update(p, batch.x, batch.y, meta_batch, lr, mistake)
            per_sample = F.cross_entropy(p.net(batch.x), batch.y, reduction="none")                 # (B,)
            with torch.no_grad():
                c = _weights(p.weight_net, per_sample, mistake)
            if mistake == "old_weights":
                c = old_c
            p.optimizer.zero_grad()
            (c * per_sample).sum().backward(inputs=list(p.net.parameters()))
            if mistake == "late_schedule":
                p.schedule.update(None)
            p.optimizer.step()
            if mistake == "real_first":
                _meta_update(p, batch.x, batch.y, meta_batch, lr, mistake)


GROUPS = ("θ", "BatchNorm statistics", "weight net")
LOSS_GRID = torch.linspace(0.0, 4.0, 81)   # per-sample losses at which the weight nets are compared


def snapshot(p: LoopParts) -> dict[str, torch.Tensor]:
    """θ, the float buffers and the weight net's σ(MLP(ℓ)) on `LOSS_GRID`, each one float64 vector (copies).

    The weight net is compared by what it computes, not by its parameters: Adam moves a parameter
    whose meta-gradient is near zero by up to its full step either way, so float32 rounding can
    move such a parameter far without changing the weights the net gives.

    Example:
        >>> sorted(snapshot(loop_parts(loop_config("digits"), steps=1)))
        ['BatchNorm statistics', 'weight net', 'θ']
    """
    def flat(tensors) -> torch.Tensor:
        return torch.cat([t.detach().double().flatten() for t in tensors if t.is_floating_point()])
    with torch.no_grad():
        grid = p.weight_net.raw_weights(LOSS_GRID.to(next(p.weight_net.parameters()).device))     # (81,)
    return dict(zip(GROUPS, (flat(p.net.parameters()), flat(p.net.buffers()), grid.double().cpu())))


def distance(a: dict, b: dict, start: dict) -> dict[str, float]:
    """Per group, |a − b| / |b − start|: how far ``a`` is from ``b`` relative to how far training moved ``b``.

    Example:
        >>> s = {"θ": torch.zeros(2)}
        >>> distance({"θ": torch.tensor([1.0, 1.1])}, {"θ": torch.tensor([1.0, 1.0])}, s)["θ"] < 0.1
        True
    """
    return {k: float((a[k] - b[k]).norm() / (b[k] - start[k]).norm().clamp_min(1e-30)) for k in b}
