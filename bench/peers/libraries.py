"""Each library's meta-step on the shared works (`bench.peers.common`), written the way its docs do it.

- ``copy``: Meta-Weight-Net's own code: build a fresh model, load the weights, ``create_graph``
  gradient, a hand-written virtual step, ``functional_call``, double backward. The reference.
- ``higher``: ``innerloop_ctx`` with a differentiable SGD (``override`` carries α(φ) for ``lr``).
- ``torchopt``: its functional API: ``torchopt.sgd(lr, weight_decay)``'s ``update`` on a
  ``create_graph`` gradient, ``apply_updates(inplace=False)``, ``functional_call``.
- ``metakit``: `metakit.meta.MetaStep` (``rule="auto"``: the lr rule, the JVP rule, the double
  backward) and its variants; the real step is MetaStep's own.
- ``plain``: a plain SGD step, the unit of every ratio.

Betty lives in `bench.peers.betty_entry` (its engine drives the whole iteration).
"""
from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch.func import functional_call

from bench.peers.common import Entry, Unavailable, theta, train_loss
from metakit.learners.modulation import attach
from metakit.meta import MetaStep, cloned_buffers
from metakit.models import build_model


def require(module: str):
    """Import an optional peer; a missing one becomes the row's reason."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise Unavailable(f"not installed ({err}); pip install -e '.[bench]'") from None


class Copy(Entry):
    """Meta-Weight-Net's copy-the-model style: a fresh model each step, double backward."""

    def hypergradient(self):
        (x, y), (xm, ym) = self.data["train"], self.data["meta"]
        setup = self.setup
        meta_net = build_model(setup.model, setup.classes, setup.input_shape).to(setup.dtype)
        state = {k: v for k, v in self.net.state_dict().items() if not k.startswith("modulation.")}
        meta_net.load_state_dict(state)
        handles = getattr(self.learner, "handles", [])
        kept = len(handles)
        if self.work == "forward":
            attach(meta_net, modulation=self.learner)                      # the live φ, not a copy
        try:
            params = theta(meta_net, self.learner)
            loss, lr = train_loss(self.work, self.learner, meta_net(x), y, setup.inner_lr)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            virtual = {n: p - lr * (g + setup.weight_decay * p) for (n, p), g in zip(params.items(), grads)}
            meta_loss = F.cross_entropy(functional_call(meta_net, virtual, (xm,)), ym)
            return list(torch.autograd.grad(meta_loss, list(self.learner.parameters()), allow_unused=True))
        finally:                                   # unhook the throwaway model only, not the real net
            for handle in handles[kept:]:
                handle.remove()
            del handles[kept:]


class Higher(Entry):
    """``higher.innerloop_ctx``: a patched copy of the net and a differentiable SGD over θ."""

    def __init__(self, work, setup, data):
        self.higher = require("higher")
        super().__init__(work, setup, data)
        self.inner = torch.optim.SGD(theta(self.net, self.learner).values(), setup.inner_lr,
                                     weight_decay=setup.weight_decay)

    def hypergradient(self):
        (x, y), (xm, ym) = self.data["train"], self.data["meta"]
        with self.higher.innerloop_ctx(self.net, self.inner, copy_initial_weights=False) as (fnet, diffopt):
            copy_hooks(self.net, fnet)
            loss, lr = train_loss(self.work, self.learner, fnet(x), y, self.setup.inner_lr)
            diffopt.step(loss, override={"lr": [lr]} if self.work == "lr" else None)
            meta_loss = F.cross_entropy(fnet(xm), ym)
            return list(torch.autograd.grad(meta_loss, list(self.learner.parameters()), allow_unused=True))


def copy_hooks(net, fnet) -> None:
    """higher's patched copy drops forward hooks (measured: with φ in hooks the hypergradient is 0,
    relative error 1.0); register the net's hooks (MFM's γ/β) on the copy's modules again."""
    for name, module in net.named_modules():
        target = fnet.get_submodule(name) if name else fnet
        for hook in module._forward_hooks.values():
            target.register_forward_hook(hook)
        for hook in module._forward_pre_hooks.values():
            target.register_forward_pre_hook(hook)


class TorchOpt(Entry):
    """TorchOpt's functional optimiser: ``update`` + ``apply_updates`` on a create-graph gradient."""

    def __init__(self, work, setup, data):
        self.torchopt = require("torchopt")
        super().__init__(work, setup, data)

    def hypergradient(self):
        (x, y), (xm, ym) = self.data["train"], self.data["meta"]
        params = theta(self.net, self.learner)
        logits = functional_call(self.net, {**params, **cloned_buffers(self.net)}, (x,))       # (B, C)
        loss, lr = train_loss(self.work, self.learner, logits, y, self.setup.inner_lr)
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()), create_graph=True)))
        inner = self.torchopt.sgd(lr=lr, weight_decay=self.setup.weight_decay)
        updates, _ = inner.update(grads, inner.init(params), params=params, inplace=False)
        virtual = self.torchopt.apply_updates(params, updates, inplace=False)
        meta_logits = functional_call(self.net, {**virtual, **cloned_buffers(self.net)}, (xm,))  # (M, C)
        meta_loss = F.cross_entropy(meta_logits, ym)
        return list(torch.autograd.grad(meta_loss, list(self.learner.parameters()), allow_unused=True))


class Metakit(Entry):
    """`MetaStep` with metakit's own real step; ``meta_every`` > 1 skips phases 1–3 on most calls."""

    def __init__(self, work, setup, data, rule: str = "auto", first_order: bool = False, meta_every: int = 1,
                 meta: bool = True, amp: bool = False):
        super().__init__(work, setup, data)
        self.meta = meta
        self.metastep = MetaStep(self.net, self.learner, self.opt, self.meta_opt, weight_decay=setup.weight_decay,
                                 rule=rule, first_order=first_order, meta_every=meta_every, amp=amp)

    def hypergradient(self):
        return list(self.metastep.hypergradient(self.data["train"], self.data["meta"]).grads)

    def step(self):
        self.metastep(self.data["train"], self.data["meta"] if self.meta else None)


class Plain(Entry):
    """A plain SGD step: forward, backward, step (the learner is built but unused); ``amp``: bf16 autocast."""

    def __init__(self, work, setup, data, amp: bool = False):
        super().__init__(work, setup, data)
        self.amp = amp

    def hypergradient(self):
        raise Unavailable("a plain step has no hypergradient")

    def step(self):
        x, y = self.data["train"]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.net(x)                                                            # (B, C)
        loss = F.cross_entropy(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

