"""The one mechanism: a one-step look-ahead on a small clean meta set.

With classifier weights θ, meta-parameters φ, a training batch and a meta batch:

1. virtual step   θ'(φ) = θ − α(φ) · ∇θ L_train(θ; φ)         (graph kept)
2. meta loss      L_meta(θ'(φ)) on the meta batch, via ``torch.func.functional_call``
3. meta update    φ ← meta_optimizer step along ∇φ L_meta      (exact second order)
4. real step      θ ← optimizer step on L_train(θ; φ_new)

φ may enter the loss (Meta-Weight-Net: per-sample weights), the forward pass (MFM: feature
modulation living inside ``net``) or the step size (MLR-SNet: the learning rate). A
`MetaLearner` says where; `MetaStep` runs the four phases for any of them. The virtual step
runs on cloned buffers, so the real model's parameters and BatchNorm statistics do not move.

References: Finn et al. 2017 (MAML look-ahead); Shu et al. 2019 (Meta-Weight-Net, Eq. 3-5);
Wang et al. 2020 (MFM); Shu et al. 2022 (MLR-SNet).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

ENTRIES = ("loss", "forward", "lr")


def lookahead(model: nn.Module, loss: torch.Tensor, lr: float | torch.Tensor, *, weight_decay: float = 0.0,
              params: dict[str, torch.Tensor] | None = None, create_graph: bool = True) -> dict[str, torch.Tensor]:
    """One differentiable SGD step: θ' = θ − lr · (∇θ loss + weight_decay · θ).

    Args:
        model: the classifier whose parameters θ are stepped.
        loss: a scalar computed from ``model``'s parameters (and anything else, e.g. φ).
        lr: step size, a float or a tensor that depends on meta-parameters.
        weight_decay: L2 coefficient folded into the virtual step, as SGD's ``weight_decay``.
        params: the θ to step (name → tensor); default every parameter with ``requires_grad``.
            Pass it to leave meta-parameters that live inside ``model`` (MFM) out of θ.
        create_graph: keep the graph so θ' differentiates into φ (second order); False gives
            a detached step, useful only when φ enters through ``lr`` alone.

    Returns:
        θ' by name, ready for ``torch.func.functional_call(model, θ', x)``.

    Example:
        >>> net = nn.Linear(2, 1, bias=False); _ = nn.init.ones_(net.weight)
        >>> loss = net(torch.ones(1, 2)).sum()          # ∂loss/∂w = (1, 1)
        >>> lookahead(net, loss, 0.5)["weight"].tolist()
        [[0.5, 0.5]]
    """
    if params is None:
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph, allow_unused=True)
    stepped = {}
    for (name, p), g in zip(params.items(), grads):
        g = torch.zeros_like(p) if g is None else g
        if weight_decay:
            g = g + weight_decay * p
        stepped[name] = p - lr * g
    return stepped


def cloned_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every buffer (BatchNorm running stats, ``num_batches_tracked``).

    Pass them to ``functional_call`` so that a virtual forward in train mode updates the
    copies, not the real model.

    Example:
        >>> bn = nn.BatchNorm1d(2)
        >>> cloned_buffers(bn)["running_mean"] is bn.running_mean
        False
    """
    return {n: b.clone() for n, b in model.named_buffers()}


class MetaLearner(nn.Module):
    """Base class of a meta-learner: its parameters are φ; ``enters`` says where φ acts.

    Subclasses override the hook of their entry:

    - ``enters = "loss"``: `train_loss` turns per-sample losses into the training loss
      (Meta-Weight-Net weights them).
    - ``enters = "forward"``: φ are modules inside the classifier (MFM modulation); the hooks
      keep their defaults.
    - ``enters = "lr"``: `inner_lr` maps the loss to the step size (MLR-SNet).

    `after_step` is called once per real step (e.g. to advance an LSTM's state).

    Example:
        >>> MetaLearner().train_loss(torch.tensor([1.0, 3.0])).item()
        2.0
    """

    enters: str = "loss"

    def train_loss(self, per_sample_loss: torch.Tensor) -> torch.Tensor:
        """The training loss L_train from per-sample losses (B,); default their mean."""
        return per_sample_loss.mean()

    def inner_lr(self, loss: torch.Tensor, base_lr: float) -> float | torch.Tensor:
        """The step size α; default the optimiser's current (scheduled) learning rate."""
        return base_lr

    def after_step(self, loss: torch.Tensor) -> None:
        """Called after every real step with the (detached) training loss."""


def theta(net: nn.Module, learner: nn.Module | None = None) -> dict[str, nn.Parameter]:
    """The classifier's trainable parameters θ: every parameter of ``net`` that is not φ.

    Example:
        >>> len(theta(nn.Linear(2, 2)))
        2
    """
    meta_ids = set() if learner is None else {id(p) for p in learner.parameters()}
    return {n: p for n, p in net.named_parameters() if p.requires_grad and id(p) not in meta_ids}


def cross_entropy_per_sample(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy (B,), the default ``per_sample_loss``."""
    return F.cross_entropy(logits, targets, reduction="none")


class MetaStep:
    """Run the four phases of the meta-step for any `MetaLearner`.

    Args:
        net: the classifier (for ``enters="forward"`` it contains the learner's modules).
        learner: the meta-learner, whose parameters are φ.
        optimizer: the real step's optimiser over θ (e.g. SGD); its ``lr`` is the base LR.
        meta_optimizer: the optimiser over φ (e.g. Adam 1e-3).
        per_sample_loss: (logits, targets) → (B,) losses; default cross-entropy.
        meta_every: run phases 1–3 every k-th call only (MLR-SNet meta-updates every ~300
            iterations); the real step runs every call.
        weight_decay: weight decay folded into the virtual step; set it to the optimiser's
            so that the look-ahead predicts the real step.
        meta_clip: clip the meta-gradient's norm to this value (None: no clipping).

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 3))
        >>> learner = MetaLearner(); learner.scale = nn.Parameter(torch.ones(()))
        >>> step = MetaStep(net, learner, torch.optim.SGD(net.parameters(), 0.1),
        ...                 torch.optim.Adam(learner.parameters(), 1e-3))
        >>> x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        >>> sorted(step((x, y), (x, y)))
        ['loss', 'lr', 'meta_loss']
    """

    def __init__(self, net: nn.Module, learner: MetaLearner, optimizer: torch.optim.Optimizer,
                 meta_optimizer: torch.optim.Optimizer, *, per_sample_loss=cross_entropy_per_sample,
                 meta_every: int = 1, weight_decay: float = 0.0, meta_clip: float | None = None):
        if learner.enters not in ENTRIES:
            raise ValueError(f"learner.enters={learner.enters!r} is unknown; use one of {ENTRIES}.")
        if isinstance(meta_every, bool) or not isinstance(meta_every, int) or meta_every < 1:
            raise ValueError(f"meta_every={meta_every!r} must be a positive integer (1 = every step).")
        self.net, self.learner = net, learner
        self.optimizer, self.meta_optimizer = optimizer, meta_optimizer
        self.per_sample_loss, self.meta_every = per_sample_loss, meta_every
        self.weight_decay, self.meta_clip = weight_decay, meta_clip
        self.calls = 0

    @property
    def base_lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def meta_update(self, train_batch: tuple[torch.Tensor, torch.Tensor],
                    meta_batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        """Phases 1–3: virtual step, meta loss, hypergradient and φ update; returns L_meta."""
        (x, y), (x_meta, y_meta) = train_batch, meta_batch
        params = theta(self.net, self.learner)
        buffers = cloned_buffers(self.net)
        # 1. virtual step: θ'(φ) = θ − α(φ)·∇θ L_train(θ; φ), on cloned buffers
        logits = functional_call(self.net, {**params, **buffers}, (x,))                  # (B, C)
        train_loss = self.learner.train_loss(self.per_sample_loss(logits, y))
        lr = self.learner.inner_lr(train_loss.detach(), self.base_lr)
        virtual = lookahead(self.net, train_loss, lr, weight_decay=self.weight_decay, params=params)
        # 2. meta loss on the clean, balanced meta batch
        meta_logits = functional_call(self.net, {**virtual, **buffers}, (x_meta,))       # (M, C)
        meta_loss = F.cross_entropy(meta_logits, y_meta)
        # 3. hypergradient ∇φ L_meta (exact second order) and the meta update
        self.meta_optimizer.zero_grad(set_to_none=True)
        meta_params = [p for p in self.learner.parameters() if p.requires_grad]
        grads = torch.autograd.grad(meta_loss, meta_params, allow_unused=True)
        for p, g in zip(meta_params, grads):
            p.grad = None if g is None else g.detach()
        if self.meta_clip is not None:
            nn.utils.clip_grad_norm_(meta_params, self.meta_clip)
        self.meta_optimizer.step()
        return meta_loss.item()

    def real_step(self, train_batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Phase 4: the ordinary optimiser step on L_train(θ; φ_new); returns (loss, lr)."""
        x, y = train_batch
        params = theta(self.net, self.learner)
        train_loss = self.learner.train_loss(self.per_sample_loss(self.net(x), y))
        with torch.no_grad():
            lr = float(self.learner.inner_lr(train_loss.detach(), self.base_lr))
        if self.learner.enters == "lr":
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        train_loss.backward(inputs=list(params.values()))
        self.optimizer.step()
        self.learner.after_step(train_loss.detach())
        return train_loss.detach(), lr

    def __call__(self, train_batch: tuple[torch.Tensor, torch.Tensor],
                 meta_batch: tuple[torch.Tensor, torch.Tensor] | None) -> dict[str, float]:
        """One training iteration; meta-updates on every ``meta_every``-th call."""
        stats: dict[str, float] = {}
        if meta_batch is not None and self.calls % self.meta_every == 0:
            stats["meta_loss"] = self.meta_update(train_batch, meta_batch)
        self.calls += 1
        loss, lr = self.real_step(train_batch)
        stats.update(loss=loss.item(), lr=lr)
        return stats


def freeze(params: Iterable[nn.Parameter]) -> None:
    """Stop gradients into ``params`` (a frozen, transferred meta-learner).

    Example:
        >>> lin = nn.Linear(1, 1); freeze(lin.parameters()); lin.weight.requires_grad
        False
    """
    for p in params:
        p.requires_grad_(False)
