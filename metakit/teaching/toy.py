"""A toy problem small enough to check the meta-step by hand (notebook 01).

A two-layer float64 net on flattened digits (or MNIST-1D's CI-sized set), a training batch with
some wrong labels, a clean meta batch, and one tiny meta-learner per entry point of φ:

- `WeightNet`    (``enters="loss"``):    per-sample loss → weight in (0, 1) (Meta-Weight-Net);
- `SampleWeights` (``enters="loss"``):   one free weight per sample of the batch (Ren et al. 2018);
- `FeatureScale` (``enters="forward"``): per-channel scale γ and shift β of hidden features (MFM);
- `LossToLR`     (``enters="lr"``):      training loss → step size (MLR-SNet, without the LSTM).

`meta_loss` is the look-ahead written out plainly: the reference the tests and the notebook
compare `metakit.meta.MetaStep` with.

Example:
    >>> net, train_batch, meta_batch = toy_problem(seed=0)
    >>> learner = WeightNet()
    >>> meta_loss(net, learner, train_batch, meta_batch, inner_lr=0.5).item() > 0
    True
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit import learners
from metakit.data.sources import load_source
from metakit.meta import MetaLearner, theta


class WeightNet(learners.WeightNet):
    """φ in the loss: Meta-Weight-Net's own weight net (`metakit.learners.WeightNet`), small and in
    float64, with weights σ(MLP(ℓ_i))/B so that L_train = mean_i w_i ℓ_i.

    Example:
        >>> WeightNet().weights(torch.tensor([0.1, 5.0], dtype=torch.float64)).shape
        torch.Size([2])
    """

    def __init__(self, hidden: int = 8):
        super().__init__(hidden, normalize="mean")
        self.double()


class SampleWeights(MetaLearner):
    """φ in the loss, one weight per sample of a fixed batch (all 1 at the start).

    ``-∂L_meta/∂φ_i`` is the meta set's "vote" on sample i: positive means up-weight it
    (Ren et al. 2018 reweight with exactly this signal; Meta-Weight-Net learns a map to it).

    Example:
        >>> SampleWeights(3).train_loss(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).item()
        2.0
    """

    enters = "loss"

    def __init__(self, batch_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(batch_size, dtype=torch.float64))

    def train_loss(self, per_sample_loss: torch.Tensor) -> torch.Tensor:
        return (self.weight * per_sample_loss).mean()


class FeatureScale(MetaLearner):
    """φ in the forward pass: h ↦ γ ⊙ h + β on (B, hidden) features; lives inside the net.

    Example:
        >>> FeatureScale(3)(torch.ones(2, 3, dtype=torch.float64)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    enters = "forward"

    def __init__(self, hidden: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(hidden, dtype=torch.float64))
        self.beta = nn.Parameter(torch.zeros(hidden, dtype=torch.float64))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.gamma + self.beta                                      # (B, hidden)


class LossToLR(MetaLearner):
    """φ in the step size: α = 2 · base_lr · sigmoid(a · loss + b); equals base_lr at a = b = 0.

    Example:
        >>> LossToLR().inner_lr(torch.tensor(1.0, dtype=torch.float64), 0.1).item()
        0.1
    """

    enters = "lr"

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.b = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def inner_lr(self, loss: torch.Tensor, base_lr: float) -> torch.Tensor:
        return 2 * base_lr * torch.sigmoid(self.a * loss + self.b)


class ToyNet(nn.Module):
    """in_features → hidden → (modulation) → ReLU → 10, in float64; ``modulation`` holds φ of `FeatureScale`."""

    def __init__(self, hidden: int = 16, modulation: nn.Module | None = None, in_features: int = 64):
        super().__init__()
        self.body = nn.Linear(in_features, hidden).double()
        self.modulation = modulation if modulation is not None else nn.Identity()
        self.fc = nn.Linear(hidden, 10).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.modulation(self.body(x))))                    # (B, 10)


def toy_problem(seed: int = 0, *, hidden: int = 16, batch_size: int = 64, meta_size: int = 30,
                noise_rate: float = 0.25, modulation: nn.Module | None = None, dataset: str = "digits"):
    """A `ToyNet` and two float64 batches: training (with ``noise_rate`` wrong labels) and meta (clean).

    Args:
        dataset: "digits" (8x8 images, 64 features) or "mnist1d" (40-point signals, x of shape
            (B, 40), from its CI-sized set under `metakit.data.source.default_root`, generated
            there on first use: that set is all a toy batch needs, at any profile).

    Returns:
        ``(net, (x, y), (x_meta, y_meta))`` with x of shape (B, features), standardised per feature.

    Example:
        >>> net, (x, y), (xm, ym) = toy_problem()
        >>> tuple(x.shape), tuple(xm.shape), x.dtype
        ((64, 64), (30, 64), torch.float64)
    """
    if not 0 <= noise_rate < 1:
        raise ValueError(f"noise_rate={noise_rate!r} must be in [0, 1), e.g. 0.25.")
    source = load_source(dataset, size="small")
    gen = torch.Generator().manual_seed(seed)
    x_all = source.train_x.flatten(1).double()                                      # (N, features)
    if source.train_x.dtype == torch.uint8:
        x_all = x_all / 255.0
    x_all = (x_all - x_all.mean(0)) / x_all.std(0).clamp_min(1e-3)
    y_all = torch.as_tensor(source.train_y)
    order = torch.randperm(len(y_all), generator=gen)
    train, meta = order[:batch_size], order[batch_size:batch_size + meta_size]
    y = y_all[train].clone()
    wrong = torch.rand(batch_size, generator=gen) < noise_rate
    y[wrong] = (y[wrong] + torch.randint(1, 10, (int(wrong.sum()),), generator=gen)) % 10
    torch.manual_seed(seed)
    net = ToyNet(hidden, modulation, in_features=x_all.shape[1])
    return net, (x_all[train], y), (x_all[meta], y_all[meta])


def meta_loss(net: nn.Module, learner: MetaLearner, train_batch, meta_batch, inner_lr: float) -> torch.Tensor:
    """L_meta(θ'(φ)) written out: virtual step with ``create_graph``, then the meta batch's loss.

    Args:
        net: the classifier (contains ``learner`` when ``learner.enters == "forward"``).
        learner: the meta-learner whose parameters are φ.
        train_batch: ``(x, y)``.
        meta_batch: ``(x_meta, y_meta)``, clean.
        inner_lr: the base step size (the learner may change it).

    Returns:
        The scalar meta loss, differentiable in φ.

    Example:
        >>> net, tb, mb = toy_problem()
        >>> loss = meta_loss(net, LossToLR(), tb, mb, 0.1)
        >>> loss.requires_grad
        True
    """
    (x, y), (x_meta, y_meta) = train_batch, meta_batch
    params = theta(net, learner)                                                   # θ, without φ
    per_sample = F.cross_entropy(net(x), y, reduction="none")                      # (B,)
    train_loss = learner.train_loss(per_sample)
    lr = learner.inner_lr(train_loss.detach(), inner_lr)
    grads = torch.autograd.grad(train_loss, list(params.values()), create_graph=True)
    stepped = {name: p - lr * g for (name, p), g in zip(params.items(), grads)}   # θ' = θ − α ∇θ L_train
    return F.cross_entropy(functional_call(net, stepped, (x_meta,)), y_meta)


def directional_difference(loss_fn, params: list[torch.Tensor], direction: list[torch.Tensor],
                           eps: float = 1e-6) -> float:
    """Central finite difference (f(φ + εd) − f(φ − εd)) / 2ε, moving ``params`` in place and back.

    Example:
        >>> w = nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
        >>> round(directional_difference(lambda: (w ** 2).sum(), [w], [torch.ones(1, dtype=torch.float64)]), 6)
        6.0
    """
    with torch.no_grad():
        for p, d in zip(params, direction):
            p.add_(eps * d)
    plus = float(loss_fn().detach())
    with torch.no_grad():
        for p, d in zip(params, direction):
            p.sub_(2 * eps * d)
    minus = float(loss_fn().detach())
    with torch.no_grad():
        for p, d in zip(params, direction):
            p.add_(eps * d)
    return (plus - minus) / (2 * eps)
