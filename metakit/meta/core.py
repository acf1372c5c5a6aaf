"""The small public core: the look-ahead step, cloned buffers, θ, and the `MetaLearner` hooks.

With classifier weights θ and meta-parameters φ, a virtual step θ'(φ) = θ − α(φ)·∇θ L_train(θ; φ)
is evaluated on a clean meta batch; ∇φ L_meta(θ'(φ)) trains φ. φ may enter the training loss
(Meta-Weight-Net), the forward pass (MFM) or the step size (MLR-SNet); a `MetaLearner` says
where, and `metakit.meta.MetaStep` picks the cheapest exact way to differentiate through it.

References: Finn et al. 2017 (MAML look-ahead); Shu et al. 2019 (Meta-Weight-Net, Eq. 3-5);
Wang et al. 2020 (MFM); Shu et al. 2022 (MLR-SNet).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

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
        create_graph: keep the graph of ∇θ loss so θ' differentiates into whatever ``loss``
            depends on (second order). False detaches ∇θ loss: θ' then depends on φ only
            through ``lr`` (exact when φ enters only the step size, see `MetaStep`'s
            ``first_order``).

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


def theta(net: nn.Module, learner: nn.Module | None = None) -> dict[str, nn.Parameter]:
    """The classifier's trainable parameters θ: every parameter of ``net`` that is not φ.

    Example:
        >>> len(theta(nn.Linear(2, 2)))
        2
    """
    meta_ids = set() if learner is None else {id(p) for p in learner.parameters()}
    return {n: p for n, p in net.named_parameters() if p.requires_grad and id(p) not in meta_ids}


def cross_entropy_per_sample(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy (B,), the default ``per_sample_loss``.

    Example:
        >>> cross_entropy_per_sample(torch.zeros(2, 4), torch.tensor([0, 3])).shape
        torch.Size([2])
    """
    return F.cross_entropy(logits, targets, reduction="none")


NORMALIZE_CHOICES = ("sum", "mean")  # see normalize_weights


def normalize_weights(raw: torch.Tensor, how: str = "sum", eps: float = 1e-8) -> torch.Tensor:
    """Turn raw per-sample weights (B,) into the coefficients c of L_train = Σ c_i ℓ_i.

    Args:
        raw: non-negative weights, e.g. a weight net's sigmoid outputs.
        how: "sum": c = w / max(Σ w, eps) (Meta-Weight-Net's long-tail code divides by the sum,
            skipping the division when the sum is 0; eps only guards that case);
            "mean": c = w / B (its noisy-label code: a weighted mean).
        eps: the smallest divisor for "sum".

    Example:
        >>> normalize_weights(torch.tensor([1.0, 3.0])).tolist()
        [0.25, 0.75]
    """
    if how == "sum":
        return raw / raw.sum().clamp_min(eps)
    if how == "mean":
        return raw / raw.numel()
    raise ValueError(f"normalize={how!r} is unknown; use 'sum' (weights / their sum) or 'mean' (weights / B).")


class MetaLearner(nn.Module):
    """Base class of a meta-learner: its parameters are φ; ``enters`` says where φ acts.

    Subclasses override the hook of their entry:

    - ``enters = "loss"``: either `weights` (preferred) or `train_loss`. Override `weights`
      when L_train = Σ_i c_i(ℓ.detach(); φ) · ℓ_i, i.e. per-sample coefficients computed from
      *detached* losses (Meta-Weight-Net, normalisation included). That structure lets
      `MetaStep` use its fast exact JVP rule; `train_loss` then follows from `weights` and
      must not be overridden. Override only `train_loss` for any other use of φ in the loss
      (`MetaStep` then uses its general double-backward rule).
    - ``enters = "forward"``: φ are modules inside the classifier (MFM modulation); the hooks
      keep their defaults.
    - ``enters = "lr"``: `inner_lr` maps the loss to the step size (MLR-SNet). It must be a
      pure function of (loss, base_lr, φ, state): the driver calls it once with φ and once
      with the updated φ; advance any state in `after_step`.

    Example:
        >>> MetaLearner().train_loss(torch.tensor([1.0, 3.0])).item()
        2.0
    """

    enters: str = "loss"

    def weights(self, per_sample_loss: torch.Tensor) -> torch.Tensor | None:
        """Coefficients c (B,) of L_train = Σ c_i ℓ_i from detached losses (B,); None: not weighted."""
        return None

    def declares_weights(self) -> bool:
        """True when the subclass overrides `weights` (the JVP rule applies)."""
        return type(self).weights is not MetaLearner.weights

    def train_loss(self, per_sample_loss: torch.Tensor) -> torch.Tensor:
        """L_train from per-sample losses (B,): Σ c_i ℓ_i with c from `weights`, else their mean."""
        c = self.weights(per_sample_loss.detach())
        return per_sample_loss.mean() if c is None else (c * per_sample_loss).sum()

    def inner_lr(self, loss: torch.Tensor, base_lr: float) -> float | torch.Tensor:
        """The step size α; default the optimiser's current (scheduled) learning rate."""
        return base_lr

    def after_step(self, loss: torch.Tensor) -> None:
        """Called after every real step with the (detached) training loss."""


def freeze(params: Iterable[nn.Parameter]) -> None:
    """Stop gradients into ``params`` (a frozen, transferred meta-learner).

    Example:
        >>> lin = nn.Linear(1, 1); freeze(lin.parameters()); lin.weight.requires_grad
        False
    """
    for p in params:
        p.requires_grad_(False)
