"""`MetaStep`: virtual step → meta loss → meta update → real step, with the cheapest exact rule.

The rule comes from where φ enters (``learner.enters``), see `metakit.meta.rules`:
"lr" → the lr rule (no second order), "loss" with `MetaLearner.weights` → the JVP rule,
anything else (MFM's "forward") → the general double backward. ``rule="general"`` forces the
latter; ``rule="rof"`` runs reverse mode through one JVP instead: the same exact hypergradient,
not the default because it measured slower on CPU (docs/guide/design_notes.md).
The fast rules hand their training forward to the real step, which then needs no second
forward: it commits the forward's BatchNorm statistics and reuses (lr rule) or reweights
(JVP rule) its gradient with the updated φ, so the optimiser sees exactly the gradient a
fresh forward and backward would give.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from metakit.meta.core import ENTRIES, MetaLearner, cross_entropy_per_sample, theta
from metakit.meta.rules import RULES, Hypergradient, TrainForward
from metakit.options import require

Batch = tuple[torch.Tensor, torch.Tensor]


class MetaStep:
    """Run the four phases of the meta-step for any `MetaLearner`.

    Args:
        net: the classifier (for ``enters="forward"`` it contains the learner's modules).
        learner: the meta-learner, whose parameters are φ.
        optimizer: the real step's optimiser over θ (e.g. SGD); its ``lr`` is the base LR
            (a `metakit.schedules.Schedule` may set it before every call).
        meta_optimizer: the optimiser over φ (e.g. Adam 1e-3).
        per_sample_loss: (logits, targets) → (B,) losses; default cross-entropy.
        meta_every: run phases 1–3 every k-th call only (MLR-SNet meta-updates every ~300
            iterations); the real step runs every call.
        weight_decay: weight decay folded into the virtual step (a plain SGD step, no
            momentum); set it to the optimiser's so the look-ahead predicts the real step.
        momentum_lookahead: the virtual step is the optimiser's own next step, momentum buffer
            included (`metakit.meta.rules.heavy_ball`: θ' = θ − α·(μ·buf + ∇θ L_train + wd·θ) for
            torch's SGD), instead of a plain SGD step. The lr rule only (φ in the step size), with
            ``torch.optim.SGD``; identical to the plain step at momentum 0.
        meta_clip: clip the meta-gradient's norm to this value (None: no clipping); use it
            when φ's updates spike early in training.
        rule: "auto" (cheapest exact rule for ``learner.enters``), "general" (always the
            double backward: the reference for checks and comparisons) or "rof" (reverse mode
            through one JVP; exact, slower than "general" on CPU, try it where the double
            backward is the bottleneck, e.g. memory or another device).
        first_order: build θ' from a detached ∇θ L_train, θ' = θ − α(φ)·sg[∇θ L_train + wd·θ],
            and keep only the rest of φ's dependence. Per entry: "lr" — identical to the
            exact hypergradient (it has no second-order term; the lr rule is used either
            way); "forward" — keeps ∂L_meta/∂φ through φ's own use in the meta forward and
            drops the mixed term −α ∂²L_train/∂φ∂θ · v (one backward instead of a double
            backward; a biased, cheaper ablation); "loss" — refused: φ reaches θ' only
            through ∇θ L_train, so the hypergradient would be zero (the exact JVP rule
            already needs no second derivatives).
        amp: bf16 autocast on CUDA for the real step's own forward (non-meta iterations and
            the general and rof rules); every pass the hypergradient differentiates stays fp32.
        meta_mode: the net's mode in the meta forward. "train" (default): BatchNorm normalises
            the meta batch with its own statistics (on copies of the buffers). "eval": with the
            running statistics, as the classifier will be evaluated; a small balanced meta batch
            has different statistics from the long-tailed training batches the running
            statistics come from, and "eval" scores θ' the way the test set will.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 3))
        >>> learner = MetaLearner(); learner.scale = nn.Parameter(torch.ones(()))
        >>> step = MetaStep(net, learner, torch.optim.SGD(net.parameters(), 0.1),
        ...                 torch.optim.Adam(learner.parameters(), 1e-3))
        >>> x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        >>> sorted(step((x, y), (x, y))), step.rule
        (['correct', 'loss', 'lr', 'meta_loss'], 'general')
    """

    def __init__(self, net: nn.Module, learner: MetaLearner, optimizer: torch.optim.Optimizer,
                 meta_optimizer: torch.optim.Optimizer, *, per_sample_loss=cross_entropy_per_sample,
                 meta_every: int = 1, weight_decay: float = 0.0, meta_clip: float | None = None,
                 rule: str = "auto", first_order: bool = False, amp: bool = False, meta_mode: str = "train",
                 momentum_lookahead: bool = False):
        _validate(learner, meta_every, weight_decay, meta_clip, rule, first_order)
        if meta_mode not in META_MODES:
            raise ValueError(f"meta_mode={meta_mode!r} is unknown; use 'train' (BatchNorm on the meta batch's "
                             f"statistics) or 'eval' (running statistics, as at test time).")
        self.net, self.learner = net, learner
        self.optimizer, self.meta_optimizer = optimizer, meta_optimizer
        self.per_sample_loss, self.meta_every = per_sample_loss, meta_every
        self.weight_decay, self.meta_clip = float(weight_decay), meta_clip
        self.first_order, self.amp, self.meta_mode = bool(first_order), bool(amp), meta_mode
        self.rule = pick_rule(learner, rule)
        self.momentum_lookahead = _check_momentum_lookahead(momentum_lookahead, self.rule, optimizer)
        self.calls = 0

    @property
    def base_lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @property
    def meta_params(self) -> list[nn.Parameter]:
        return [p for p in self.learner.parameters() if p.requires_grad]

    def hypergradient(self, train_batch: Batch, meta_batch: Batch) -> Hypergradient:
        """Phases 1–3 without any update: L_meta and ∇φ L_meta; the real model is untouched."""
        return RULES[self.rule](self, train_batch, meta_batch)

    def apply_meta_gradient(self, grads: list[torch.Tensor | None]) -> None:
        """φ ← meta_optimizer step along ``grads`` (clipped to ``meta_clip`` when set)."""
        self.meta_optimizer.zero_grad(set_to_none=True)
        params = self.meta_params
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.detach()
        if self.meta_clip is not None:
            nn.utils.clip_grad_norm_(params, self.meta_clip)
        self.meta_optimizer.step()

    def meta_update(self, train_batch: Batch, meta_batch: Batch) -> torch.Tensor:
        """Phases 1–3: hypergradient and φ update; returns L_meta (detached)."""
        hyper = self.hypergradient(train_batch, meta_batch)
        self.apply_meta_gradient(hyper.grads)
        return hyper.meta_loss

    def _autocast(self, x: torch.Tensor) -> contextlib.AbstractContextManager:
        if self.amp and x.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _gradients(self, train_batch: Batch, forward: TrainForward | None,
                   params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill θ's ``.grad`` with ∇θ L_train(θ; φ_new); returns (loss, logits), detached."""
        x, y = train_batch
        if forward is None:                       # own forward: updates the real BN statistics
            with self._autocast(x):
                logits = self.net(x)                                                     # (B, C)
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()                                                  # loss in fp32
            loss = self.learner.train_loss(self.per_sample_loss(logits, y))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=list(params.values()))
            return loss.detach(), logits.detach()
        with torch.no_grad():                     # commit the training forward's BN statistics
            for name, buf in self.net.named_buffers():
                buf.copy_(forward.buffers[name])
        if forward.grads is not None:             # lr rule: L_train does not depend on φ
            for p, g in zip(params.values(), forward.grads):
                p.grad = g
            return forward.loss, forward.logits
        with torch.no_grad():                     # JVP rule: reweight with φ_new, one backward
            c = self.learner.weights(forward.per_sample_loss.detach())                      # (B,)
        loss = (c * forward.per_sample_loss).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=list(params.values()))
        return loss.detach(), forward.logits

    def real_step(self, train_batch: Batch, forward: TrainForward | None = None) -> dict[str, torch.Tensor]:
        """Phase 4: the optimiser's step on L_train(θ; φ_new) at the step size α(φ_new).

        Returns:
            detached 0-d tensors ``loss``, ``lr`` and ``correct`` (no device sync).
        """
        params = theta(self.net, self.learner)
        loss, logits = self._gradients(train_batch, forward, params)
        base_lr = self.base_lr
        with torch.no_grad():
            lr = float(self.learner.inner_lr(loss, base_lr))
        if self.learner.enters == "lr":
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.optimizer.step()
        if self.learner.enters == "lr":           # give the base LR back (a Schedule may not run)
            for group in self.optimizer.param_groups:
                group["lr"] = base_lr
        self.learner.after_step(loss)
        correct = (logits.argmax(1) == train_batch[1]).sum()
        return {"loss": loss, "lr": torch.tensor(lr, dtype=torch.float64), "correct": correct}

    def __call__(self, train_batch: Batch, meta_batch: Batch | None) -> dict[str, torch.Tensor]:
        """One iteration; meta-updates on every ``meta_every``-th call with a meta batch.

        Returns:
            detached 0-d tensors ``loss``, ``lr``, ``correct`` and, on meta-iterations,
            ``meta_loss``; ``float()`` them to print.
        """
        hyper = None
        if meta_batch is not None and self.calls % self.meta_every == 0:
            hyper = self.hypergradient(train_batch, meta_batch)
            self.apply_meta_gradient(hyper.grads)
        self.calls += 1
        stats = self.real_step(train_batch, None if hyper is None else hyper.forward)
        if hyper is not None:
            stats["meta_loss"] = hyper.meta_loss
        return stats


RULE_CHOICES = ("auto", "general", "rof")
META_MODES = ("train", "eval")


def pick_rule(learner: MetaLearner, rule: str = "auto") -> str:
    """The rule `MetaStep` runs: "lr", "jvp", "general" or "rof".

    "auto" picks the lr rule for ``enters="lr"``, the JVP rule for weights of detached losses,
    else "general"; "general" and "rof" are taken as asked.

    Example:
        >>> pick_rule(MetaLearner()), pick_rule(MetaLearner(), "rof")
        ('general', 'rof')
    """
    if rule in ("general", "rof"):
        return rule
    if learner.enters == "lr":
        return "lr"
    if learner.enters == "loss" and learner.declares_weights():
        return "jvp"
    return "general"


def _validate(learner: MetaLearner, meta_every, weight_decay, meta_clip, rule, first_order) -> None:
    require("learner.enters", learner.enters, object, choices=ENTRIES)
    require("meta_every", meta_every, int, low=1, example="1 (every step)")
    require("weight_decay", weight_decay, float, low=0, example="the optimiser's 5e-4")
    require("meta_clip", meta_clip, float, low=0, low_open=True, nullable=True, example="1.0")
    require("rule", rule, str, choices=RULE_CHOICES)
    require("first_order", first_order, bool)
    if first_order and rule == "rof":
        raise ValueError("rule='rof' with first_order=True: the rof rule computes the exact mixed term that first "
                         "order drops; use rule='auto' (first order runs the detached general rule).")
    if first_order and learner.enters == "loss":
        raise ValueError("first_order=True with learner.enters='loss' would give a zero hypergradient (φ reaches θ' "
                         "only through ∇θ L_train); use first_order=False: the exact JVP rule needs no second "
                         "derivatives.")
    if learner.declares_weights() and type(learner).train_loss is not MetaLearner.train_loss:
        raise ValueError(f"{type(learner).__name__} overrides both weights() and train_loss(); the loss must be "
                         f"Σ weights·per_sample_loss, so drop the train_loss override (or the weights one).")


def _check_momentum_lookahead(momentum_lookahead: bool, rule: str, optimizer: torch.optim.Optimizer) -> bool:
    require("momentum_lookahead", momentum_lookahead, bool)
    if momentum_lookahead and rule != "lr":
        raise ValueError(f"momentum_lookahead=True with rule={rule!r}: only the lr rule (φ in the step size, "
                         f"rule='auto') steps with the optimiser's momentum; pass momentum_lookahead=False.")
    if momentum_lookahead and not isinstance(optimizer, torch.optim.SGD):
        raise ValueError(f"momentum_lookahead=True with optimizer={type(optimizer).__name__}: the look-ahead "
                         f"reproduces torch.optim.SGD's momentum step only; use SGD or momentum_lookahead=False.")
    return momentum_lookahead
