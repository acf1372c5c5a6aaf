"""Four exact ways to get ∇φ L_meta(θ'(φ); φ), θ' = θ − α(φ)·(∇θ L_train(θ; φ) + wd·θ).

With v = ∇θ' L_meta (one ordinary backward through the meta forward):

- "general" (any entry): autograd through the graph of ∇θ L_train (double backward).
- "rof" (any entry; reverse over forward): reverse mode through u(φ) = ⟨∇θ L_train(θ; φ), v⟩,
  which one forward-mode ``torch.func.jvp`` gives; exact through BatchNorm by `metakit.meta.norms`.
- "lr" (φ only in the step size): ∇φ L_meta = −⟨∇θ L_train + wd·θ, v⟩ ∂α/∂φ, no second derivative.
- "jvp" (φ in coefficients of detached losses, L_train = Σ_i c_i(φ) ℓ_i(θ)): ∇φ L_meta =
  −α Σ_i (J v)_i ∂c_i/∂φ, J v by one JVP (Eq. 5 of Meta-Weight-Net without its double backward).

The fast rules differentiate a scalar surrogate whose gradient is ∇φ L_meta exactly
(`_surrogate_grads`); "lr" and "jvp" hand their training forward to the real step
(`TrainForward`). A rule reads its `metakit.meta.MetaStep` through the `StepState` protocol.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from metakit.meta.core import MetaLearner, cloned_buffers, lookahead, theta
from metakit.meta.norms import primitive_norms

Batch = tuple[torch.Tensor, torch.Tensor]


class StepState(Protocol):
    """What a rule reads of the meta-step that calls it (`metakit.meta.MetaStep` is one), so that
    the rules need not import the step that picks them."""

    net: nn.Module
    learner: MetaLearner
    optimizer: torch.optim.Optimizer
    per_sample_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    weight_decay: float
    first_order: bool
    momentum_lookahead: bool
    meta_mode: str

    @property
    def base_lr(self) -> float: ...

    @property
    def meta_params(self) -> list[nn.Parameter]: ...


@dataclass
class TrainForward:
    """The training forward of a meta-iteration, kept for the real step to reuse.

    Attributes:
        logits: (B, C) training logits.
        per_sample_loss: (B,) losses, graph to θ kept (the "jvp" rule reweights them).
        loss: L_train at the old φ (detached).
        buffers: the cloned buffers after the forward: what the real forward would have
            written into the model's BatchNorm statistics.
        grads: ∇θ L_train without weight decay (the "lr" rule; L_train does not depend on φ).
    """

    logits: torch.Tensor
    per_sample_loss: torch.Tensor
    loss: torch.Tensor
    buffers: dict[str, torch.Tensor]
    grads: list[torch.Tensor] | None = None


@dataclass
class Hypergradient:
    """What a rule returns: the meta loss, ∇φ L_meta (one entry per meta parameter, None where
    φ does not reach the meta loss) and the reusable training forward (None: the real step
    runs its own forward)."""

    meta_loss: torch.Tensor
    grads: list[torch.Tensor | None]
    forward: TrainForward | None = None


def meta_loss_at(step: StepState, virtual: dict[str, torch.Tensor], meta_batch: Batch) -> torch.Tensor:
    """L_meta(θ') on the meta batch, the net in ``step.meta_mode``: "train" normalises BatchNorm
    with the meta batch's own statistics (on fresh cloned buffers), "eval" with the running
    statistics, as at test time."""
    x_meta, y_meta = meta_batch
    net, was_training = step.net, step.net.training
    net.train(step.meta_mode == "train")
    try:
        logits = functional_call(net, {**virtual, **cloned_buffers(net)}, (x_meta,))         # (M, C)
    finally:
        net.train(was_training)
    return F.cross_entropy(logits, y_meta)


def general_rule(step: StepState, train_batch: Batch, meta_batch: Batch) -> Hypergradient:
    """Autograd through the virtual step; ``step.first_order`` detaches ∇θ L_train."""
    x, y = train_batch
    params, buffers = theta(step.net, step.learner), cloned_buffers(step.net)
    # 1. virtual step θ'(φ) = θ − α(φ)·∇θ L_train(θ; φ), graph kept unless first order
    logits = functional_call(step.net, {**params, **buffers}, (x,))                          # (B, C)
    train_loss = step.learner.train_loss(step.per_sample_loss(logits, y))
    lr = step.learner.inner_lr(train_loss.detach(), step.base_lr)
    virtual = lookahead(step.net, train_loss, lr, weight_decay=step.weight_decay, params=params,
                        create_graph=not step.first_order)
    # 2. meta loss, 3. hypergradient by autograd (double backward when create_graph)
    meta_loss = meta_loss_at(step, virtual, meta_batch)
    grads = torch.autograd.grad(meta_loss, step.meta_params, allow_unused=True)
    return Hypergradient(meta_loss.detach(), list(grads))


def _detached_step(params: dict[str, torch.Tensor], direction: list[torch.Tensor],
                   lr: float | torch.Tensor) -> dict[str, torch.Tensor]:
    """θ' = θ − α·direction as fresh leaves, so one backward of L_meta gives v = ∇θ' L_meta."""
    alpha = lr.detach() if torch.is_tensor(lr) else lr
    with torch.no_grad():
        return {n: (p - alpha * d).requires_grad_() for (n, p), d in zip(params.items(), direction)}


def _surrogate_grads(step: StepState, lr: float | torch.Tensor, inner: torch.Tensor) -> list[torch.Tensor | None]:
    """∇φ of S(φ) = −α(φ)·inner(φ), d, v and θ held fixed: the exact hypergradient of the fast rules.

    inner: ⟨v, g⟩ for "lr" (g its step direction, φ-free), Σ_i d_i c_i(φ) + wd⟨v, θ⟩ for "jvp",
    u(φ) + wd⟨v, θ⟩ for "rof".
    """
    surrogate = -lr * inner
    if not torch.is_tensor(surrogate) or not surrogate.requires_grad:
        return [None] * len(step.meta_params)                  # φ does not reach the meta loss
    return list(torch.autograd.grad(surrogate, step.meta_params, allow_unused=True))


def _zero_filled(grads, like) -> list[torch.Tensor]:
    """Gradients with zeros where a tensor was unused (None)."""
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like)]


def _direction(grads, params: dict[str, torch.Tensor], weight_decay: float) -> list[torch.Tensor]:
    """The virtual step's direction ∇θ L_train + wd·θ (zeros for unused θ, as `lookahead`)."""
    grads = _zero_filled(grads, params.values())
    if not weight_decay:
        return grads
    return [g + weight_decay * p.detach() for g, p in zip(grads, params.values())]


def heavy_ball(optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor],
               direction: list[torch.Tensor]) -> list[torch.Tensor]:
    """The step torch's SGD takes per unit LR from ``direction`` = ∇θ L_train + wd·θ and its momentum buffers.

    buf' = μ·buf + (1 − dampening)·direction (buf' = direction on the first step), and the step is
    buf' (Nesterov: direction + μ·buf'), μ, dampening and Nesterov read from the parameter's group.
    A look-ahead θ' = θ − α·(this) is then exactly the optimiser's next step at LR α.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(2)); opt = torch.optim.SGD([w], 0.1, momentum=0.9)
        >>> heavy_ball(opt, {"w": w}, [torch.ones(2)])[0].tolist()        # no buffer yet: the gradient
        [1.0, 1.0]
        >>> w.grad = torch.ones(2); opt.step()
        >>> heavy_ball(opt, {"w": w}, [torch.ones(2)])[0]                 # 0.9 · 1 + 1
        tensor([1.9000, 1.9000])
    """
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = []
    for p, d in zip(params.values(), direction):
        group = group_of[id(p)]
        mu, damp = group.get("momentum", 0.0), group.get("dampening", 0.0)
        buf = optimizer.state.get(p, {}).get("momentum_buffer") if mu else None
        new = d if not mu or buf is None else mu * buf + (1 - damp) * d
        out.append(d + mu * new if group.get("nesterov", False) else new)
    return out


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((u * w).sum() for u, w in zip(a, b))


def lr_rule(step: StepState, train_batch: Batch, meta_batch: Batch) -> Hypergradient:
    """φ only in α: ∇φ L_meta = −⟨∇θ L_train + wd·θ, ∇θ' L_meta⟩ · ∂α/∂φ.

    With ``step.momentum_lookahead`` the direction is the optimiser's heavy-ball step instead
    (`heavy_ball`); the formula holds as it is, since the momentum buffer does not depend on φ.
    """
    x, y = train_batch
    params, buffers = theta(step.net, step.learner), cloned_buffers(step.net)
    # 1. virtual step with a plain gradient, kept for the real step
    logits = functional_call(step.net, {**params, **buffers}, (x,))                          # (B, C)
    per_sample_loss = step.per_sample_loss(logits, y)                                       # (B,)
    train_loss = step.learner.train_loss(per_sample_loss)
    grads = list(torch.autograd.grad(train_loss, list(params.values()), allow_unused=True))
    direction = _direction(grads, params, step.weight_decay)
    if step.momentum_lookahead:      # the optimiser's own step (momentum buffer), not a plain SGD step
        direction = heavy_ball(step.optimizer, params, direction)
    lr = step.learner.inner_lr(train_loss.detach(), step.base_lr)
    virtual = _detached_step(params, direction, lr)
    # 2. meta loss and v = ∇θ' L_meta
    meta_loss = meta_loss_at(step, virtual, meta_batch)
    v = _zero_filled(torch.autograd.grad(meta_loss, list(virtual.values()), allow_unused=True), virtual.values())
    # 3. hypergradient through α only
    hyper = _surrogate_grads(step, lr, _dot(v, direction).detach())
    forward = TrainForward(logits.detach(), per_sample_loss.detach(), train_loss.detach(), buffers, grads)
    return Hypergradient(meta_loss.detach(), hyper, forward)


def directional_derivatives(step: StepState, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                            tangents: dict[str, torch.Tensor]) -> torch.Tensor:
    """d = J v (B,): d_i = ⟨∇θ ℓ_i(θ), v⟩ by one forward-mode JVP, train-mode BatchNorm.

    The buffers are cloned inside the transformed function (``jvp`` refuses in-place updates
    of captured tensors); the linearisation point θ and the batch statistics are those of
    the training forward, since both run on the same θ and batch.
    """
    primals = {n: p.detach() for n, p in params.items()}

    def per_sample(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return step.per_sample_loss(functional_call(step.net, {**p, **cloned_buffers(step.net)}, (x,)), y)

    with warnings.catch_warnings():   # torch's first forward-AD call scripts its decompositions
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=FutureWarning)
        _, d = jvp(per_sample, (primals,), (tangents,))
    return d                                                                                # (B,)


def jvp_rule(step: StepState, train_batch: Batch, meta_batch: Batch) -> Hypergradient:
    """φ in coefficients of detached losses: ∇φ L_meta = −α Σ_i (J v)_i ∂c_i/∂φ."""
    x, y = train_batch
    params, buffers = theta(step.net, step.learner), cloned_buffers(step.net)
    # 1. virtual step; the per-sample graph is retained for the real step
    logits = functional_call(step.net, {**params, **buffers}, (x,))                          # (B, C)
    per_sample_loss = step.per_sample_loss(logits, y)                                       # (B,)
    c = step.learner.weights(per_sample_loss.detach())                                      # (B,) graph in φ
    train_loss = (c.detach() * per_sample_loss).sum()
    grads = torch.autograd.grad(train_loss, list(params.values()), retain_graph=True, allow_unused=True)
    direction = _direction(grads, params, step.weight_decay)
    lr = step.learner.inner_lr(train_loss.detach(), step.base_lr)
    virtual = _detached_step(params, direction, lr)
    # 2. meta loss and v = ∇θ' L_meta
    meta_loss = meta_loss_at(step, virtual, meta_batch)
    v = _zero_filled(torch.autograd.grad(meta_loss, list(virtual.values()), allow_unused=True), virtual.values())
    # 3. d = J v by one JVP, then autograd on the small weight net through c(φ)
    d = directional_derivatives(step, params, x, y, dict(zip(params, v)))                  # (B,)
    decay = step.weight_decay * _dot(v, [p.detach() for p in params.values()]) if step.weight_decay else 0.0
    hyper = _surrogate_grads(step, lr, (d.detach() * c).sum() + decay)
    forward = TrainForward(logits.detach(), per_sample_loss, train_loss.detach(), buffers)
    return Hypergradient(meta_loss.detach(), hyper, forward)


def train_loss_jvp(step: StepState, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   tangents: dict[str, torch.Tensor], exact_norms: bool = True) -> torch.Tensor:
    """u(φ) = ⟨∇θ L_train(θ; φ), v⟩ by one forward-mode JVP in θ, differentiable in φ (0-d).

    φ stays live (it is read from the learner, not passed to ``jvp``), so reverse mode on u
    gives the mixed term ∂²L_train/∂φ∂θ · v. ``exact_norms=False`` runs the fused normalisation
    kernels, whose reverse-over-forward derivative misses the batch-statistics term (kept only
    to show that error; see `metakit.meta.norms`).
    """
    primals = {n: p.detach() for n, p in params.items()}

    def train_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = functional_call(step.net, {**p, **cloned_buffers(step.net)}, (x,))             # (B, C)
        return step.learner.train_loss(step.per_sample_loss(logits, y))

    norms = primitive_norms() if exact_norms else contextlib.nullcontext()
    with norms, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=FutureWarning)
        _, u = jvp(train_loss, (primals,), (tangents,))
    return u


def rof_rule(step: StepState, train_batch: Batch, meta_batch: Batch, exact_norms: bool = True) -> Hypergradient:
    """Reverse over forward, exact for any entry:
    ∇φ L_meta = ∂φ L_meta(θ'; φ) − ∇φ [α(φ)·(⟨∇θ L_train(θ; φ), v⟩ + wd⟨v, θ⟩)], v = ∇θ' L_meta.

    ``exact_norms=False`` uses the fused normalisation kernels (wrong by percents on ResNet-32
    with MFM; kept to show the cause, see `metakit.meta.norms`)."""
    x, y = train_batch
    params, meta_params = theta(step.net, step.learner), step.meta_params
    # 1. virtual step θ' = θ − α·(∇θ L_train + wd·θ) with a plain gradient (no graph kept)
    logits = functional_call(step.net, {**params, **cloned_buffers(step.net)}, (x,))          # (B, C)
    train_loss = step.learner.train_loss(step.per_sample_loss(logits, y))
    grads = torch.autograd.grad(train_loss, list(params.values()), allow_unused=True)
    direction = _direction(grads, params, step.weight_decay)
    lr = step.learner.inner_lr(train_loss.detach(), step.base_lr)
    virtual = _detached_step(params, direction, lr)
    # 2. meta loss; one backward gives v = ∇θ' L_meta and φ's direct term ∂φ L_meta(θ'; φ)
    meta_loss = meta_loss_at(step, virtual, meta_batch)
    out = torch.autograd.grad(meta_loss, [*virtual.values(), *meta_params], allow_unused=True)
    v, direct = _zero_filled(out[:len(virtual)], virtual.values()), out[len(virtual):]
    # 3. mixed term: reverse mode through the JVP u(φ) = ⟨∇θ L_train(θ; φ), v⟩
    u = train_loss_jvp(step, params, x, y, dict(zip(params, v)), exact_norms)
    decay = step.weight_decay * _dot(v, [p.detach() for p in params.values()]) if step.weight_decay else 0.0
    mixed = _surrogate_grads(step, lr, u + decay)
    hyper = [a if b is None else (b if a is None else a + b) for a, b in zip(direct, mixed)]
    return Hypergradient(meta_loss.detach(), hyper)


RULES = {"general": general_rule, "rof": rof_rule, "lr": lr_rule, "jvp": jvp_rule}
