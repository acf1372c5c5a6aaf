"""MFM as training methods: ``method="mfm"`` (meta-learned γ/β) and ``"mfm_net"`` (a modulator network).

See `metakit.modulation` for the reading of Wang et al. 2020 implemented here. Both methods
attach modulation in `prepare`, keep φ out of the classifier's optimiser, and run a
`metakit.meta.MetaStep` whose learner (``enters="forward"``) is the attached `Modulation`.
``mfm_net`` can start from a saved modulator (``options={"modulator": path}``) and keep it
frozen (plain steps through the modulated net; the meta set is not used) or fine-tune it.

Options (``Config.options``): ``where`` (see `metakit.modulation.attach`), ``logit_adj``
(bool, train on logits + log π), and for ``mfm_net`` also ``hidden``, ``modulator``, ``freeze``.
The meta learning rate is ``Config.meta_lr`` (Adam).

Measured on digits-LT (laptop profile, imbalance 20, 5 seeds): MFM does not clearly beat
cross-entropy in any faithful setting tried (placement, meta-LR and its schedules, look-ahead LR,
BN mode, fc bias, weight decay, 120 epochs); see scripts/mfm_tuning.md for the table.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from metakit.meta import MetaStep, freeze, theta
from metakit.methods import register
from metakit.methods.base import Method
from metakit.methods.losses import log_priors, logit_adjusted_loss
from metakit.modulation import WHERE, attach, load_modulator, read_metadata, save_modulator

if TYPE_CHECKING:
    from metakit.data.batches import Batch
    from metakit.train import Trainer

DEFAULT_WHERE = "blocks+fc"   # digits-LT ablation: blocks / fc / blocks+fc tie within 0.3 points at meta_lr 1e-3
#                               (1e-2 loses 9-19 points); blocks+fc also covers the pooled feature


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be True or False.")
    return value


def _check_where(where: Any) -> Any:
    if isinstance(where, str):
        if where not in WHERE:
            raise ValueError(f"where={where!r} is unknown; use one of {WHERE} or a list of module names.")
    elif not isinstance(where, (list, tuple)) or not where or not all(isinstance(n, str) and n for n in where):
        raise TypeError(f"where={where!r} must be one of {WHERE} or a non-empty list of module names, "
                        f"e.g. ['block2', 'fc'].")
    return where


@register
class MFM(Method):
    """Meta Feature Modulator, mode 1: per-channel γ, β meta-learned on the balanced meta set.

    Example:
        >>> m = MFM(10, [100] * 5 + [10] * 5, where="fc", logit_adj=True)
        >>> m.where, m.logit_adj
        ('fc', True)
    """

    name = "mfm"
    uses_meta_set = True
    kind = "film"
    option_names = ("where", "logit_adj")

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            raise ValueError(f"options {unknown} are not options of method={self.name!r}; it takes "
                             f"{list(self.option_names)}.")
        super().__init__(num_classes, class_counts, config)
        self.where = _check_where(options.get("where", DEFAULT_WHERE))
        self.logit_adj = _check_bool("logit_adj", options.get("logit_adj", False))
        self.log_prior = log_priors(class_counts)                                        # (C,)
        self.model_name = getattr(config, "model", None)
        self.modulation = None
        self.meta_step: MetaStep | None = None
        self._last_logits: torch.Tensor | None = None

    def prepare(self, net: nn.Module) -> nn.Module:
        """Attach the modulation layers (``net.modulation``); the model's code is untouched."""
        self.modulation = attach(net, self.where, kind=self.kind, hidden=getattr(self, "hidden", 32))
        return net

    def classifier_parameters(self, net: nn.Module) -> list[nn.Parameter]:
        """θ only: every trainable parameter of ``net`` except the modulation's φ."""
        return list(theta(net, self.modulation).values())

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, or logit-adjusted cross-entropy with ``logit_adj=True`` (B,)."""
        if self.logit_adj:
            return logit_adjusted_loss(logits, targets, self.log_prior)
        return F.cross_entropy(logits, targets, reduction="none")

    def _tracked_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self._last_logits = logits.detach()  # the real step's forward comes last: its logits give accuracy
        return self.per_sample_loss(logits, targets)

    def setup(self, trainer: "Trainer") -> None:
        """Build the meta-optimiser (Adam at ``Config.meta_lr``) and the `MetaStep`."""
        meta_lr = getattr(self.config, "meta_lr", None) or 1e-3
        meta_every = getattr(self.config, "meta_every", None) or 1
        weight_decay = trainer.optimizer.param_groups[0].get("weight_decay", 0.0)
        meta_optimizer = torch.optim.Adam(self.modulation.parameters(), lr=meta_lr)
        self.meta_step = MetaStep(trainer.net, self.modulation, trainer.optimizer, meta_optimizer,
                                  per_sample_loss=self._tracked_loss, meta_every=meta_every,
                                  weight_decay=weight_decay)

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        """Meta-step on (train_batch, meta_batch), then the real step; the LR comes from the schedule."""
        if self.meta_step is None:
            raise RuntimeError(f"method={self.name!r}: call setup(trainer) before train_step.")
        trainer.schedule.step()
        stats = self.meta_step((batch.x, batch.y), None if meta_batch is None else (meta_batch.x, meta_batch.y))
        out = {k: torch.as_tensor(v) for k, v in stats.items()}   # MetaStep returns 0-d tensors
        out["correct"] = (self._last_logits.argmax(1) == batch.y).sum()
        return out

    def meta_modules(self) -> dict[str, nn.Module]:
        return {} if self.modulation is None else {"modulation": self.modulation}

    def save(self, path: str | Path) -> Path:
        """Save the learned modulation (weights + metadata) for `load_modulator` / transfer."""
        if self.modulation is None:
            raise RuntimeError(f"method={self.name!r} has no modulation yet; run it first.")
        return save_modulator(self.modulation, path, model=self.model_name or "unknown")


@register
class MFMNet(MFM):
    """Meta Feature Modulator, mode 2: a modulator network maps channel statistics to per-sample γ, β.

    Options ``modulator`` (a saved file) and ``freeze`` transfer a learned modulator to a fresh
    classifier: frozen, it is a fixed part of the forward pass and training takes plain steps
    (the meta set is not used, so ``uses_meta_set`` is False); fine-tuned, meta-steps continue.

    Example:
        >>> MFMNet(10, [100] * 10, hidden=16).hidden
        16
    """

    name = "mfm_net"
    kind = "net"
    option_names = ("where", "logit_adj", "hidden", "modulator", "freeze")

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """Meta-Adam at 1e-4: the network has many more weights than γ/β, and at 1e-3 its per-sample
        modulation grows fast enough to stall training on digits-LT (scripts/mfm_ablation.py)."""
        return {"meta_lr": 1e-4}

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        hidden, modulator = options.pop("hidden", 32), options.pop("modulator", None)
        self.freeze = _check_bool("freeze", options.pop("freeze", False))
        where_given = "where" in options
        super().__init__(num_classes, class_counts, config, **options)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden={hidden!r} must be a positive integer (the modulator's width), e.g. 32.")
        self.hidden, self.modulator = hidden, modulator
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
        self.where, self.hidden = meta["where"], meta["hidden"]
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
