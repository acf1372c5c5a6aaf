"""Betty (betty-ml 0.1.1, the release that installs on Python 3.11 here) on the shared works.

Betty states a meta-step as two ``ImplicitProblem`` s, an inner one (the classifier, its
``training_step`` the training loss) and an outer one (φ, its ``training_step`` the meta loss),
and an ``Engine`` that steps them: one iteration takes the inner (real) step with φ_old, then the
outer problem computes its hypergradient at the stepped θ and updates φ — one real step and one
hypergradient, the same count of passes as MW-Net's order (which takes the real step after the
φ update). Betty's ``roll_back=True`` is meant to give MW-Net's order (undo the inner step, retake
it with φ_new), but in 0.1.1 its cache is ``module.state_dict()``, which shares storage with the
parameters, so nothing is undone and every iteration takes two real steps (measured: two inner
optimiser steps, θ two steps away from the start); so the default ``roll_back=False`` is timed.

Its hypergradient is an approximation by design: the default best-response Jacobian, "darts",
treats the inner problem as solved (implicit-function view with the inverse Hessian taken as
the identity) and replaces the mixed second derivative by a central difference,
−[∇φ L_train(θ₁ + εv; φ) − ∇φ L_train(θ₁ − εv; φ)] / 2ε with v = ∇θ L_meta(θ₁) and θ₁ the stepped
θ (the real optimiser's step: Nesterov momentum, not the plain look-ahead). It has no factor α.
So the benchmark reports its error against the exact look-ahead and times it, but it is not the
same hypergradient as the others'. For φ in the step size only (``lr``), L_train does not depend
on φ and Betty's implicit hypergradient cannot be formed; the row says what Betty raised.

We capture the hypergradient in ``custom_optimizer_step`` (Betty's hook, called right before
the outer optimiser's step).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from bench.peers.common import Entry, flat, theta, train_loss
from bench.peers.libraries import require


class Betty(Entry):
    """Betty's ``Engine`` over an inner (classifier) and an outer (φ) ``ImplicitProblem``, darts."""

    exact = False
    note = ("approximate by design: darts best-response Jacobian (finite difference of ∇φ L_train at θ₁±εv, "
            "inverse Hessian ≈ I, no α)")

    def __init__(self, work, setup, data, hypergradient_type: str = "darts", roll_back: bool = False):
        betty = require("betty")
        require("betty.engine")
        super().__init__(work, setup, data)
        from betty.configs import Config, EngineConfig
        from betty.engine import Engine
        from betty.logging.logger_base import get_logger
        from betty.problems import ImplicitProblem

        entry, self.captured = self, None
        device = str(data["train"][0].device)
        params = list(theta(self.net, self.learner).values())

        class Inner(ImplicitProblem):
            def training_step(self, batch):
                x, y = batch
                loss, _ = train_loss(entry.work, entry.learner, self.module(x), y, setup.inner_lr)
                return loss

            def trainable_parameters(self):
                return params                                   # θ only: for "forward", φ lives in the net

            def custom_optimizer_step(self):
                if entry.work == "lr":                          # the step size α(φ), as the others take it
                    with torch.no_grad():
                        lr = float(entry.learner.inner_lr(self.last_loss, setup.inner_lr))
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                self.optimizer.step()
                for group in self.optimizer.param_groups:
                    group["lr"] = setup.inner_lr

            def get_loss(self, batch):
                loss, loss_dict = super().get_loss(batch)
                self.last_loss = loss.detach()
                return loss, loss_dict

        class Outer(ImplicitProblem):
            def training_step(self, batch):
                xm, ym = batch
                return F.cross_entropy(self.inner.module(xm), ym)

            def trainable_parameters(self):
                return list(entry.learner.parameters())

            def custom_optimizer_step(self):
                entry.captured = [None if p.grad is None else p.grad.detach().clone()
                                  for p in self.trainable_parameters()]
                self.optimizer.step()

        inner = Inner(name="inner", module=self.net, optimizer=self.opt, device=device,
                      train_data_loader=[data["train"]], config=Config(type=hypergradient_type, unroll_steps=1))
        outer = Outer(name="outer", module=self.learner, optimizer=self.meta_opt, device=device,
                      train_data_loader=[data["meta"]], config=Config(retain_graph=True))
        get_logger().setLevel(logging.WARNING)                  # Betty prints its graph at INFO
        self.engine = Engine(problems=[outer, inner], config=EngineConfig(train_iters=1, roll_back=roll_back),
                             dependencies={"u2l": {outer: [inner]}, "l2u": {inner: [outer]}})
        self.engine.train()
        self.version = getattr(betty, "__version__", "0.1.1")

    def step(self):
        self.engine.global_step += 1
        self.engine.train_step()
        if self.work == "lr" and self.captured is not None:
            self.learner.after_step(self.engine.inner.last_loss)

    def hypergradient(self):
        self.captured = None
        self.step()
        if self.captured is None:
            raise RuntimeError("Betty's outer problem did not step")
        return self.captured


def alpha_scaled_error(approx: list, exact: list, like: list, alpha: float) -> tuple[float, float]:
    """(relative error of α·approx, cosine) against the exact hypergradient: Betty's darts omits α."""
    a, e = alpha * flat(approx, like), flat(exact, like)
    return float((a - e).norm() / e.norm()), float(torch.dot(a, e) / (a.norm() * e.norm()).clamp_min(1e-30))
