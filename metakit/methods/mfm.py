"""MFM as training methods: ``method="mfm"`` (meta-learned γ/β) and ``"mfm_net"`` (a modulator network).

See `metakit.learners.modulation` for the reading of Wang et al. 2020 implemented here. Both methods
attach modulation in `prepare`, keep φ out of the classifier's optimiser, and run a
`metakit.meta.MetaStep` whose learner (``enters="forward"``) is the attached `Modulation`.
``mfm_net`` can start from a saved modulator (``options={"modulator": path}``) and keep it
frozen (plain steps through the modulated net; the meta set is not used) or fine-tune it.
Options: `MFMOptions`, `MFMNetOptions`; the meta-LR is ``Config.meta_lr`` (Adam, 1e-3 in the recipe).

Every reading choice and default beyond the paper's abstract is ours, and each is a row of the MFM
ablation table (`metakit.studies.mfm_ablation`, ``python -m metakit table mfm-ablation``); the
choices, their rows and where the defaults come from: docs/guide/design_notes.md.
"""
from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from metakit.meta import MetaStep, cadence, freeze, theta
from metakit.meta.step import META_MODES
from metakit.methods.registry import register
from metakit.methods.base import Method, Trainer
from metakit.options import option
from metakit.methods.losses import (NormedLinear, class_balanced_weights, ldam_loss, ldam_margins, log_priors,
                                    logit_adjusted_loss)
from metakit.methods.longtail import DRW_START, LDAMDRWOptions, default_beta
from metakit.learners.modulation import WHERE, attach, load_modulator, read_metadata, save_modulator
from metakit.learners.modulation.attach import check_where

if TYPE_CHECKING:
    from metakit.data.batches import Batch

PARAMS = ("gamma+beta", "gamma", "beta")
SMOKE_META_UPDATES = 20   # meta_updates' default at the smoke profile (200 dwarfs a 3-epoch run's steps)
META_GRADIENTS = ("exact", "first_order", "off")


@dataclass(frozen=True)
class MFMOptions:
    """Options of ``method="mfm"`` (meta-learned per-channel γ/β); the meta-LR is ``Config.meta_lr``."""

    where: str | tuple[str, ...] = option("fc", f"where γ/β act: one of {WHERE} or a list of module names",
                                          kind=object, example="'blocks+fc'")
    logit_adj: bool = option(False, "train on logits + log π (logit adjustment); the meta loss stays plain CE",
                             kind=bool)
    meta_start: float = option(0.9, "fraction of the epochs trained by plain steps before φ is meta-learned (0: "
                                    "from the first step)", low=0, high=1, high_open=True, example="0.9")
    meta_updates: int | None = option(200, "meta-updates of φ per run, spread evenly over the steps from meta_start "
                                           "on (several a step where the window has fewer steps), so digits and "
                                           "MNIST-1D get the same budget (the smoke profile, which checks code "
                                           f"paths in seconds: {SMOKE_META_UPDATES}); None: one every meta_every-th "
                                           "step (meta_steps each)", low=1, high=10**6, nullable=True, example="200")
    meta_steps: int = option(1, "meta-updates of φ per iteration (read where meta_updates is None)", low=1,
                             example="5")
    meta_mode: str = option("eval", "the net's mode in the meta forward (eval: running BatchNorm statistics)",
                            choices=META_MODES)
    params: str = option("gamma+beta", "which of γ, β are learned (the other stays at the identity)",
                         choices=PARAMS)
    meta_gradient: str = option("exact", "φ's gradient: exact (look-ahead hypergradient), first_order (only φ's "
                                         "direct use in the meta forward), off (the training batch's loss: no meta "
                                         "set)", choices=META_GRADIENTS)
    drw: bool = option(False, "combination: deferred re-weighting of the training loss (class-balanced weights "
                              "from 80% of the epochs, reduced by Σw as ldam_drw)", kind=bool)
    ldam: bool = option(False, "combination: LDAM's margin loss on a cosine head (max_m and s of ldam_drw); the head "
                               "outputs s·cos, so the meta loss is cross-entropy of the same logits; with drw: "
                               "MFM + LDAM-DRW", kind=bool)


@dataclass(frozen=True)
class MFMNetOptions(MFMOptions):
    """Options of ``method="mfm_net"`` (a modulator network); those of `MFMOptions` and four more."""

    hidden: int = option(32, "the modulator network's width", low=1, example="32")
    shared: bool = option(False, "one small MLP shared by every channel (reads each channel's mean and std and the "
                                 "layer's averages): the same weights fit any backbone width", kind=bool)
    modulator: str | None = option(None, "a saved modulator file to start from (transfer)", kind=object,
                                   nullable=True)
    freeze: bool = option(False, "keep the loaded modulator frozen (plain steps, no meta set)", kind=bool)


@register
class MFM(Method):
    """Meta Feature Modulator, mode 1: per-channel γ, β meta-learned on the balanced meta set.

    Example:
        >>> m = MFM(10, [100] * 5 + [10] * 5, where="fc", logit_adj=True)
        >>> m.where, m.logit_adj
        ('fc', True)
    """

    name = "mfm"
    Options = MFMOptions
    learns = "per-channel scale γ and shift β of intermediate features"
    enters = "forward"
    uses_meta_set = True
    kind = "film"

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """Meta-Adam at 1e-3, chosen on validation over three settings (docs/guide/design_notes.md).

        Example:
            >>> MFM.recipe("laptop")
            {'meta_lr': 0.001}
        """
        return {"meta_lr": 1e-3}

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        self.where = check_where(o.where)
        self.logit_adj, self.meta_start, self.meta_steps, self.meta_mode = o.logit_adj, o.meta_start, o.meta_steps, \
            o.meta_mode
        self.params, self.meta_gradient, self.drw, self.ldam = o.params, o.meta_gradient, o.drw, o.ldam
        if self.ldam and self.logit_adj:
            raise ValueError(f"method={self.name!r}: ldam=True and logit_adj=True are two losses for the real step; "
                             f"pass one of them.")
        if "meta_updates" not in options and getattr(config, "profile", None) == "smoke":
            self.options = o = replace(o, meta_updates=SMOKE_META_UPDATES)
        if o.meta_updates is not None and o.meta_steps != 1:
            raise ValueError(f"method={self.name!r}: meta_steps={o.meta_steps} is read only where meta_updates is None "
                             f"(the count sets the meta-updates a step); pass meta_updates=None with it.")
        self.window_steps = 0    # steps taken since meta-learning started, and the meta-updates they made
        self.updates = 0
        if self.kind != "film" and self.params != "gamma+beta":
            raise ValueError(f"params={self.params!r} applies to method='mfm' (per-channel γ, β); a modulator network "
                             f"produces both: leave params out for method={self.name!r}.")
        self.uses_meta_set = self.meta_gradient != "off"  # off: φ follows the training loss, no meta batches
        self.meta_on = self.meta_start == 0
        self.log_prior = log_priors(class_counts)                                        # (C,)
        self.margins = ldam_margins(class_counts, LDAMDRWOptions.max_m)                  # (C,)
        self.drw_weights = class_balanced_weights(class_counts, default_beta(config))    # (C,), sum C
        self.drw_on = False
        self.model_name = getattr(config, "model", None)
        self.modulation = None
        self.meta_step: MetaStep | None = None
        self._last_logits: torch.Tensor | None = None

    def prepare(self, net: nn.Module) -> nn.Module:
        """Attach the modulation layers (``net.modulation``); the model's code is untouched. With
        ``ldam`` the head ``net.fc`` becomes a cosine head first (as ldam_drw's, scaled by its s)."""
        if self.ldam:
            net.fc = NormedLinear(net.fc.in_features, net.fc.out_features, scale=LDAMDRWOptions.s)
        self.modulation = attach(net, self.where, kind=self.kind, hidden=getattr(self, "hidden", 32))
        if self.params != "gamma+beta":   # the other one stays at the identity (γ = 1 or β = 0)
            fixed = "beta" if self.params == "gamma" else "gamma"
            freeze(getattr(layer, fixed) for layer in self.modulation.layers.values())
        return net

    def classifier_parameters(self, net: nn.Module) -> list[nn.Parameter]:
        """θ only: every trainable parameter of ``net`` except the modulation's φ."""
        return list(theta(net, self.modulation).values())

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, logit-adjusted (``logit_adj``) or LDAM's (``ldam``), per sample (B,); with DRW on,
        weighted so that their mean is ldam_drw's Σ w·loss / Σ w."""
        if self.ldam:
            loss = ldam_loss(logits / LDAMDRWOptions.s, targets, self.margins, LDAMDRWOptions.s)
        elif self.logit_adj:
            loss = logit_adjusted_loss(logits, targets, self.log_prior)
        else:
            loss = F.cross_entropy(logits, targets, reduction="none")
        if self.drw_on:
            w = self.drw_weights.to(loss.device)[targets]                               # (B,)
            loss = w * loss * (len(w) / w.sum())
        return loss

    def _tracked_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self._last_logits = logits.detach()  # the real step's forward comes last: its logits give accuracy
        return self.per_sample_loss(logits, targets)

    def setup(self, trainer: "Trainer") -> None:
        """Build the meta-optimiser (Adam at ``Config.meta_lr``) and the `MetaStep`."""
        meta_lr = getattr(self.config, "meta_lr", None) or self.recipe("laptop")["meta_lr"]
        meta_every = 1 if self.counted else getattr(self.config, "meta_every", None) or 1
        weight_decay = trainer.optimizer.param_groups[0].get("weight_decay", 0.0)
        meta_optimizer = torch.optim.Adam([p for p in self.modulation.parameters() if p.requires_grad], lr=meta_lr)
        self.meta_step = MetaStep(trainer.net, self.modulation, trainer.optimizer, meta_optimizer,
                                  per_sample_loss=self._tracked_loss, meta_every=meta_every,
                                  weight_decay=weight_decay, meta_mode=self.meta_mode,
                                  first_order=self.meta_gradient == "first_order")

    def due(self, iters: int) -> int:
        """Meta-updates the coming step makes: ``meta_updates`` spread evenly over the window's steps.

        Example:
            >>> from types import SimpleNamespace as C
            >>> m = MFM(10, [10] * 10, C(epochs=10), meta_start=0.5, meta_updates=12)
            >>> [m.due(2) for m.window_steps in range(10)]   # 5 epochs of 2 steps
            [1, 1, 1, 1, 2, 1, 1, 1, 1, 2]
        """
        if not self.counted:   # one every meta_every-th step, meta_steps each
            return self.meta_steps if self.meta_step is None or self.meta_step.calls % self.meta_step.meta_every == 0 \
                else 0
        count, epochs = self.options.meta_updates, int(self.config.epochs)
        total, t = iters * (epochs - self.first_meta_epoch(epochs)), self.window_steps
        return cadence.due(count, total, t)

    @property
    def counted(self) -> bool:
        """Whether ``meta_updates`` sets the cadence (it needs the run's epochs)."""
        return self.options.meta_updates is not None and getattr(self.config, "epochs", None) is not None

    @property
    def meta_updates(self) -> int:
        """Meta-updates of φ made so far (a run's meta-learning budget)."""
        return self.updates

    def first_meta_epoch(self, epochs: int) -> int:
        """The epoch (0-based) meta-learning starts in: ⌊meta_start · epochs⌋, at most the last one.

        Example:
            >>> MFM(10, [10] * 10, meta_start=0.9).first_meta_epoch(60), MFM(10, [10] * 10).first_meta_epoch(3)
            (54, 2)
        """
        return min(int(self.meta_start * epochs), epochs - 1)

    def start_epoch(self, epoch: int, trainer: "Trainer") -> None:
        """Switch meta-learning on at `first_meta_epoch` (before it: plain steps, φ unchanged and
        switched off, so a loaded modulator acts from there on, as a learned one would)."""
        epochs = getattr(self.config, "epochs", None)
        self.meta_on = epochs is None or epoch >= self.first_meta_epoch(epochs)
        self.drw_on = self.drw and epochs is not None and epoch >= int(DRW_START * epochs)
        if self.modulation is not None:   # a fresh φ is the identity until then; a loaded one waits too
            self.modulation.enabled = self.meta_on

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        """Before `first_meta_epoch` a plain step; then the `due` meta-updates of φ on (train_batch,
        meta_batch) and the real step. The LR comes from the schedule."""
        if self.meta_step is None:
            raise RuntimeError(f"method={self.name!r}: call setup(trainer) before train_step.")
        if self.meta_gradient == "off" and self.meta_on:   # φ steps on the training loss, beside θ's real step
            self.meta_step.meta_optimizer.zero_grad(set_to_none=True)
            out = Method.train_step(self, trainer, batch, None)  # its backward fills φ's gradients too
            self.meta_step.meta_optimizer.step()
            return out
        if not self.meta_on or meta_batch is None:   # plain step through the current modulation
            return Method.train_step(self, trainer, batch, None)
        trainer.set_lr()                   # before the virtual step, which reads the LR
        n = self.due(getattr(trainer.schedule, "iters_per_epoch", 1))
        train, meta = (batch.x, batch.y), (meta_batch.x, meta_batch.y)
        for _ in range(n - 1):             # the MetaStep call below makes the last one
            self.meta_step.meta_update(train, meta)
        stats = self.meta_step(train, meta) if n or not self.counted else self.meta_step.real_step(train)
        self.window_steps, self.updates = self.window_steps + 1, self.updates + n
        out = {k: torch.as_tensor(v) for k, v in stats.items()}   # MetaStep returns 0-d tensors
        out["correct"] = (self._last_logits.argmax(1) == batch.y).sum()
        return out

    def save(self, path: str | Path) -> Path:
        """Save the learned modulation (weights, metadata and the run's config) for `load_modulator` / transfer."""
        if self.modulation is None:
            raise RuntimeError(f"method={self.name!r} has no modulation yet; run it first.")
        return save_modulator(self.modulation, path, model=self.model_name or "unknown", config=self.config)

    @property
    def learner(self) -> nn.Module | None:
        """The attached `Modulation` φ (None before `prepare`)."""
        return self.modulation

    def current_meta_step(self) -> MetaStep | None:
        return self.meta_step

    def state_dict(self) -> dict[str, Any]:
        """`Method.state_dict` plus ``meta_on`` (whether meta-learning has started).

        The modulation's weights are also in the net's state dict; both hold the same values.
        """
        return {**super().state_dict(), "meta_on": bool(self.meta_on), "drw_on": bool(self.drw_on),
                "window_steps": self.window_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.meta_on = bool(state["meta_on"])
        if self.modulation is not None:
            self.modulation.enabled = self.meta_on
        self.drw_on = bool(state.get("drw_on", False))  # checkpoints from before the drw option have none
        self.window_steps, self.updates = int(state.get("window_steps", 0)), int(state.get("updates", 0))


@register
class MFMNet(MFM):
    """Meta Feature Modulator, mode 2: a modulator network maps channel statistics to per-sample γ, β.

    Options ``modulator`` (a saved file) and ``freeze`` transfer a learned modulator to a fresh
    classifier. It acts from ``meta_start`` on, where a fresh modulator would start learning, so
    the transferred one takes the learned one's place: frozen, it is then a fixed part of the
    forward pass and training takes plain steps (the meta set is not used, so ``uses_meta_set``
    is False); fine-tuned, meta-steps start from it. ``shared=True`` learns a width-free
    modulator (`metakit.learners.modulation.SharedModulatorNet`) that loads into nets of other widths.

    Example:
        >>> MFMNet(10, [100] * 10, hidden=16).hidden
        16
    """

    name = "mfm_net"
    Options = MFMNetOptions
    learns = "a modulator network: channel statistics → per-sample γ, β"
    kind = "net"

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """Meta-Adam at 1e-3: the network has many more weights than γ/β (digits-LT, deferred start,
        5 seeds: 1e-3 86.6 ± 1.0, 1e-2 85.9 ± 1.3)."""
        return {"meta_lr": 1e-3}

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        where_given = "where" in options
        super().__init__(num_classes, class_counts, config, **options)
        self.hidden, self.modulator, self.freeze = self.options.hidden, self.options.modulator, self.options.freeze
        self.kind = "shared" if self.options.shared else "net"
        modulator = self.modulator
        if modulator is None:
            if self.freeze:
                raise ValueError("freeze=True needs modulator=<path of a saved modulator> to freeze; "
                                 "learn one first with method='mfm_net' and result.method.save(path).")
            return
        if not isinstance(modulator, (str, Path)):
            raise TypeError(f"modulator={modulator!r} must be a file path (str or Path).")
        meta = read_metadata(modulator)  # raises FileNotFoundError with the fix
        if self.model_name is not None and meta["model"] != self.model_name:
            raise ValueError(f"modulator={str(modulator)!r} was learned on model={meta['model']!r} but this run "
                             f"uses model={self.model_name!r}; set Config(model={meta['model']!r}).")
        if where_given and self.where != meta["where"] and list(self.where) != meta["where"]:
            raise ValueError(f"where={self.where!r} differs from the loaded modulator's where={meta['where']}; "
                             f"leave where out when loading a modulator.")
        self.where, self.hidden, self.kind = meta["where"], meta["hidden"], meta["kind"]
        self.uses_meta_set = not self.freeze  # frozen: plain steps, no meta batches drawn

    def prepare(self, net: nn.Module) -> nn.Module:
        """Attach a fresh modulator network, or the saved one (frozen or trainable)."""
        if self.modulator is None:
            return super().prepare(net)
        self.modulation = load_modulator(self.modulator, net, model=self.model_name)
        if self.freeze:
            freeze(self.modulation.parameters())
        return net

    def setup(self, trainer: "Trainer") -> None:
        if not self.freeze:
            super().setup(trainer)

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        if self.freeze:  # the frozen modulator is part of the forward pass: a plain step
            return Method.train_step(self, trainer, batch, None)
        return super().train_step(trainer, batch, meta_batch)
