"""What every library's entry shares: one model, one batch pair, one learner per work, one real step.

A *work* is where φ enters the inner step, each with metakit's real learner:

- ``lr``: MLR-SNet's LSTM (`metakit.learners.MLRSNet`, γ = 0.2): θ' = θ − α(φ)·(∇θ L + wd·θ);
- ``weight``: Meta-Weight-Net's weight net (`metakit.learners.WeightNet`, weights / their sum):
  θ' = θ − α·(∇θ Σ_i c_i(ℓ.detach(); φ) ℓ_i + wd·θ);
- ``forward``: MFM's per-channel γ/β after every ResNet stage (`metakit.learners.modulation.attach`,
  ``where="stages"``): θ' = θ − α·(∇θ L(θ; φ) + wd·θ), φ also in the meta forward.

The hypergradient every library must return is ∇φ L_meta(θ'(φ); φ) of that one-step, plain-SGD
(no momentum) look-ahead, the meta forward in train mode. The real step is SGD 0.1, Nesterov
momentum 0.9, wd 5e-4 on L_train(θ; φ_new) (``lr``: at the step size α(φ_new)). φ is moved off its
initialisation by a seeded perturbation so that no component of the hypergradient is trivially zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from metakit.learners import MLRSNet, WeightNet
from metakit.learners.modulation import attach
from metakit.models import build_model

WORKS = ("lr", "weight", "forward")
LIBRARIES = ("metakit", "higher", "torchopt", "betty", "copy")
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Setup:
    """The one model, batch and hyperparameters every entry runs on."""

    model: str = "resnet32"                   # a `metakit.models` name with stage_names (forward work)
    input_shape: tuple[int, ...] = (3, 32, 32)  # one input without the batch axis
    classes: int = 10                         # output classes
    batch: int = 100                          # training batch (MW-Net's recipe)
    meta_batch: int = 100                     # meta batch
    inner_lr: float = 0.1                     # α of the virtual step and the real SGD's LR
    momentum: float = 0.9                     # real step only (Nesterov); the virtual step has none
    weight_decay: float = 5e-4                # both steps
    meta_lr: float = 1e-3                     # Adam on φ, wd 1e-4
    where: str = "stages"                     # where MFM's γ/β act (forward work)
    seed: int = 0                             # model, learner, perturbation and batches
    dtype: torch.dtype = torch.float32        # model and data
    device: str = "cpu"                       # where the model and batches live


class Unavailable(Exception):
    """An entry that cannot be built or run here; its message is the row's measured reason."""


def make_data(setup: Setup) -> dict[str, Batch]:
    """One training batch and one meta batch of random inputs (same for every entry)."""
    g = torch.Generator().manual_seed(setup.seed + 1)
    x = torch.randn(setup.batch, *setup.input_shape, generator=g, dtype=setup.dtype)          # (B, C, H, W)
    xm = torch.randn(setup.meta_batch, *setup.input_shape, generator=g, dtype=setup.dtype)    # (M, C, H, W)
    y = torch.randint(0, setup.classes, (setup.batch,), generator=g)
    ym = torch.randint(0, setup.classes, (setup.meta_batch,), generator=g)
    dev = torch.device(setup.device)
    return {"train": (x.to(dev), y.to(dev)), "meta": (xm.to(dev), ym.to(dev))}


def make_net(setup: Setup) -> nn.Module:
    """The classifier at its seeded initialisation, running statistics moved off (0, 1)."""
    torch.manual_seed(setup.seed)
    net = build_model(setup.model, setup.classes, setup.input_shape).to(setup.device, setup.dtype)
    with torch.no_grad():
        net(make_data(setup)["meta"][0])
    return net


def make_pair(work: str, setup: Setup) -> tuple[nn.Module, nn.Module]:
    """A fresh (net, learner) for ``work``, identical for every library; ``forward`` attaches γ/β to the net."""
    if work not in WORKS:
        raise ValueError(f"work={work!r} is unknown; use one of {WORKS}.")
    net = make_net(setup)
    torch.manual_seed(setup.seed + 2)
    if work == "lr":
        learner = MLRSNet(setup.classes, hidden=50, gamma=2 * setup.inner_lr).to(setup.device, setup.dtype)
    elif work == "weight":
        learner = WeightNet().to(setup.device, setup.dtype)
    else:
        learner = attach(net, setup.where)
    g = torch.Generator().manual_seed(setup.seed + 3)
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
    return net, learner


def theta(net: nn.Module, learner: nn.Module) -> dict[str, nn.Parameter]:
    """θ: the net's parameters that are not φ."""
    meta = {id(p) for p in learner.parameters()}
    return {n: p for n, p in net.named_parameters() if id(p) not in meta}


def real_optimizer(net: nn.Module, learner: nn.Module, setup: Setup) -> torch.optim.Optimizer:
    return torch.optim.SGD(theta(net, learner).values(), setup.inner_lr, momentum=setup.momentum, nesterov=True,
                           weight_decay=setup.weight_decay)


def meta_optimizer(learner: nn.Module, setup: Setup) -> torch.optim.Optimizer:
    return torch.optim.Adam(learner.parameters(), setup.meta_lr, weight_decay=1e-4)


def train_loss(work: str, learner: nn.Module, logits: torch.Tensor, y: torch.Tensor,
               base_lr: float) -> tuple[torch.Tensor, float | torch.Tensor]:
    """(L_train, α) of the virtual step from the training logits (B, C); α depends on φ for ``lr``."""
    if work == "weight":
        per_sample = F.cross_entropy(logits, y, reduction="none")                          # (B,)
        loss = (learner.weights(per_sample.detach()) * per_sample).sum()
        return loss, base_lr
    loss = F.cross_entropy(logits, y)
    return loss, (learner.inner_lr(loss.detach(), base_lr) if work == "lr" else base_lr)


def real_step(work: str, net: nn.Module, learner: nn.Module, opt: torch.optim.Optimizer, batch: Batch) -> None:
    """θ ← SGD step on L_train(θ; φ_new), the same for every peer (metakit's `MetaStep` has its own)."""
    x, y = batch
    params = list(theta(net, learner).values())
    base_lr = opt.param_groups[0]["lr"]
    logits = net(x)                                                                         # (B, C)
    if work == "weight":
        per_sample = F.cross_entropy(logits, y, reduction="none")                          # (B,)
        with torch.no_grad():
            c = learner.weights(per_sample)
        loss = (c * per_sample).sum()
    else:
        loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    if work == "lr":
        with torch.no_grad():
            lr = float(learner.inner_lr(loss.detach(), base_lr))
        for group in opt.param_groups:
            group["lr"] = lr
    opt.step()
    if work == "lr":
        for group in opt.param_groups:
            group["lr"] = base_lr
        learner.after_step(loss.detach())


def apply_meta(learner: nn.Module, meta_opt: torch.optim.Optimizer, grads) -> None:
    """φ ← Adam step along ``grads``."""
    meta_opt.zero_grad(set_to_none=True)
    for p, g in zip(learner.parameters(), grads):
        p.grad = None if g is None else g.detach()
    meta_opt.step()


def flat(grads, like) -> torch.Tensor:
    """One vector of a hypergradient (zeros where a tensor was unused)."""
    return torch.cat([(torch.zeros_like(t) if g is None else g).reshape(-1) for g, t in zip(grads, like)])


class Entry:
    """One (work, library, variant): ``hypergradient()`` from the built state, ``step()`` one full iteration.

    Subclasses set ``exact`` False when the library's hypergradient is an approximation by design.
    """

    exact = True
    note = ""

    def __init__(self, work: str, setup: Setup, data: dict[str, Batch]):
        self.work, self.setup, self.data = work, setup, data
        self.net, self.learner = make_pair(work, setup)
        self.opt, self.meta_opt = real_optimizer(self.net, self.learner, setup), meta_optimizer(self.learner, setup)

    def hypergradient(self) -> list[torch.Tensor | None]:
        raise NotImplementedError

    def step(self) -> None:
        apply_meta(self.learner, self.meta_opt, self.hypergradient())
        real_step(self.work, self.net, self.learner, self.opt, self.data["train"])

