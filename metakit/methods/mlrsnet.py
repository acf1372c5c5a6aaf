"""Method ``mlrsnet``: meta-learn the LR schedule with an LSTM on the clean meta set (MLR-SNet).

The default (``variant=""``) follows the official code (xjtushujun/MLR-SNet):

- γ: LR = γ · net(loss), γ = |sqrt(L)·ln(L·C) / C^0.25 / 4| (`metakit.schedules.learned.gamma_rule`),
  L the mean cross-entropy over the whole training set, measured with the classifier in eval
  mode over the training batches in a fixed order, unaugmented, without grad (`full_train_loss`;
  the official code evaluates the full training loss the same way). Meta-training takes γ once
  from the initial L, as the official code does; no guard at L = 1/C (where γ = 0).
- meta-training: one meta-update every ``meta_every_epochs`` epochs (default 1, cadence in epochs,
  not iterations), a one-step plain-SGD look-ahead (`metakit.meta.MetaStep`) on a clean meta
  batch, Adam (``Config.meta_lr``, 1e-3 in the recipe; weight decay 1e-4); inner SGD momentum 0,
  wd 5e-4 (`MLRSNetMethod.recipe`); the LSTM state is kept across iterations and epochs; the net
  reads the raw loss. A snapshot of the LR net is taken after every epoch; ``Result.learner``
  is the `metakit.learners.lr_net.LRSnapshots` holding all of them.
- meta-test (``options={"schedule_file": path}`` of a snapshots file): the "staged" schedule
  (`metakit.schedules.learned.StagedSchedule`): epoch-1 snapshot, the mid one from N//3, the last
  from 2·(N//3) of an N-epoch run, γ re-derived from the current full training loss at the start
  and at each switch, the LSTM state kept throughout.

Deviations from the official code that the default keeps, named (see also
`metakit.learners.lr_net` for the cell, head init and state):
- the meta-update falls on the last step of the epoch (the official ``t_val=300`` of CIFAR-10's
  391 iterations puts it at 77% of the epoch), so the epoch's snapshot includes its update;
- γ takes the absolute value in meta-training too (the official meta-train omits ``abs``: the same
  wherever the initial L > 1/C, always true at initialisation);
- the full loss is the sample-weighted mean over the training set in a fixed order, unaugmented
  (the official ``compute_loss_accuracy`` averages the batch means of the shuffled, augmented
  training loader, also in eval mode without grad);
- at a switch the full loss is measured after the first forward of the epoch (the weights are
  still those at the end of the previous epoch, as in the official code; only BatchNorm's
  running statistics have seen one more batch).

Ablations, ``options={"variant": ...}``, each one named deviation:
- ``final_net``: metakit's earlier behaviour, exactly: γ = 2 · base LR, the loss divided by
  log C, ``meta_every`` / ``meta_per_epoch`` cadence (a few meta-updates an epoch), one final net,
  reused frozen by the "learned" schedule with its learned γ;
- ``gamma_floor``: the default with a guard, γ := max(γ, ``gamma_floor``);
- ``normalised_loss``: the default, but the net reads loss / log C;
- ``last_snapshot``: the staged meta-test (γ re-derived at each switch) on the last snapshot only;
- ``official_cell``: the default with the official code's training cell
  (`metakit.learners.lr_net.OfficialCell`: ReLU-MLP maps, forget bias −1) instead of one LSTMCell;
- ``batch_stats_loss``: the default, but the full training loss behind γ is measured with
  BatchNorm on batch statistics (train mode; running statistics restored, dropout off). At
  initialisation the running statistics have seen no data, so the eval-mode loss of a deep
  residual net is far above ln C (ResNet-32 on digits: 41–88 nats against 2.3), and γ with it.
- ``momentum_lookahead``: meta-training's virtual step is the inner optimiser's own momentum step
  (`metakit.meta.MetaStep`'s ``momentum_lookahead``) instead of the official plain-SGD step. With
  inner momentum μ the real step moves about 1/(1 − μ) times what the plain look-ahead scores;
  this variant lets the meta-gradient see that. The same as the default at momentum 0; the
  frozen meta-test is unchanged.
- ``momentum_gamma``: γ := (1 − μ) × the official γ, in meta-training and at every meta-test
  switch, μ the run's SGD momentum. The frozen LR is about 0.5 γ at every stage
  (``results/schedule_gamma_share.md``), so γ's formula, made for plain SGD, sets the LR scale;
  with momentum μ a step moves about 1/(1 − μ) times the LR, and this keeps that effective step
  at the official γ's. The same as the default at momentum 0.

Example:
    >>> from metakit.experiments import Config, run
    >>> r = run(Config(method="mlrsnet", profile="smoke", epochs=2, progress=False))
    >>> len(r.learner), bool(0 < r.history["lr"].iloc[0] < r.method.lr_net.gamma)
    (2, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from metakit.learners.lr_net import LRSnapshots, MLRSNet, load_schedule
from metakit.meta import MetaStep, cloned_buffers, theta
from metakit.methods.base import Method, Trainer
from metakit.methods.registry import register
from metakit.options import option
from metakit.schedules.learned import gamma_rule

if TYPE_CHECKING:
    from metakit.data.batches import Batch

VARIANTS = ("", "final_net", "gamma_floor", "normalised_loss", "last_snapshot", "official_cell", "batch_stats_loss",
            "momentum_lookahead", "momentum_gamma")
FINAL_NET_ONLY = {"meta_every": None, "meta_per_epoch": 3}       # option → default; read by final_net only


@dataclass(frozen=True)
class MLRSNetOptions:
    """Options of ``method="mlrsnet"``; ``Config.meta_lr`` and ``weight_decay`` (folded into the
    virtual step) come from the config."""

    variant: str = option("", "'' the official protocol; else the named ablation (final_net: metakit's earlier "
                              "one final net and γ = 2·base LR; gamma_floor; normalised_loss; last_snapshot; "
                              "official_cell; batch_stats_loss; momentum_lookahead; momentum_gamma)",
                          choices=VARIANTS)
    hidden: int = option(50, "LSTM hidden size (the paper's 50)", low=1)
    meta_every_epochs: int = option(1, "meta-update once every this many epochs, at the epoch's last step "
                                       "(the official ~once an epoch)", low=1)
    gamma_floor: float = option(0.01, "variant='gamma_floor': the guard γ := max(γ, this)", low=0, low_open=True)
    meta_every: int | None = option(None, "variant='final_net': meta-update every k steps; None: "
                                          "ceil(iters_per_epoch / meta_per_epoch)", low=1, nullable=True, example="1")
    meta_per_epoch: int = option(3, "variant='final_net': meta-updates per epoch when meta_every is None", low=1)
    meta_weight_decay: float = option(1e-4, "Adam's weight decay on the LR net (the paper's 1e-4)", low=0)
    meta_clip: float | None = option(None, "clip the meta-gradient norm to this (None: off)", low=0, low_open=True,
                                     nullable=True)
    schedule_file: str | None = option(None, "a saved LR net or snapshots (metakit.learners.lr_net.save_schedule): "
                                             "use it frozen instead of meta-training", nullable=True,
                                       example="runs/lr_net.pt")


def _check_variant_options(o: MLRSNetOptions) -> None:
    """Options a variant does not read are refused with one line (silently ignoring them misleads)."""
    owner = "method='mlrsnet'"
    if o.variant != "final_net":
        for name, default in FINAL_NET_ONLY.items():
            if getattr(o, name) != default:
                raise ValueError(f"{owner}: {name}={getattr(o, name)!r} is read only by variant='final_net' (the "
                                 f"official protocol meta-updates once every meta_every_epochs epochs); drop it, or "
                                 f"pass variant='final_net'.")
    elif o.meta_every_epochs != 1:
        raise ValueError(f"{owner}: meta_every_epochs={o.meta_every_epochs!r} is not read by variant='final_net' "
                         f"(it meta-updates every meta_every steps); use meta_every=..., or variant=''.")
    if o.variant != "gamma_floor" and o.gamma_floor != 0.01:
        raise ValueError(f"{owner}: gamma_floor={o.gamma_floor!r} is read only by variant='gamma_floor' (the "
                         f"official γ has no guard); pass variant='gamma_floor' too, or drop it.")


@register
class MLRSNetMethod(Method):
    """Cross-entropy training whose LR comes from an LSTM meta-learned on the meta set.

    Options: `MLRSNetOptions` (``Config.options``); the protocol and its ablations are in the
    module docstring.

    Example:
        >>> m = MLRSNetMethod(num_classes=10, class_counts=[5] * 10, hidden=8)
        >>> m.uses_meta_set, m.lr_schedule(), m.lr_net.hidden, m.lr_net.normalise
        (True, ('fixed', {}), 8, False)
    """

    name = "mlrsnet"
    Options = MLRSNetOptions
    learns = "the learning rate from the training loss (an LSTM)"
    enters = "lr"
    uses_meta_set = True

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        _check_variant_options(o)
        self.variant, self.final_net = o.variant, o.variant == "final_net"
        self.frozen = o.schedule_file is not None
        self.loaded: MLRSNet | LRSnapshots | None = None
        if self.frozen:
            self.loaded, _ = load_schedule(o.schedule_file)   # raises one line if missing or not an LR net
            if isinstance(self.loaded, MLRSNet) and not self.final_net:
                raise ValueError(f"method='mlrsnet': schedule_file={o.schedule_file!r} holds one LR net (an older "
                                 f"file, or save_schedule(result.method.lr_net)); the staged meta-test needs the "
                                 f"per-epoch snapshots: save result.learner, or pass variant='final_net'.")
            self.lr_net = self.loaded.last if isinstance(self.loaded, LRSnapshots) else self.loaded
            self.uses_meta_set = False                                       # frozen: no meta set
        else:
            normalise = o.variant in ("final_net", "normalised_loss")
            cell = "official" if o.variant == "official_cell" else "lstm"
            self.lr_net = MLRSNet(num_classes, hidden=o.hidden, normalise=normalise, cell=cell)
        self.meta_every, self.meta_per_epoch = o.meta_every, o.meta_per_epoch
        self.meta_weight_decay, self.meta_clip = o.meta_weight_decay, o.meta_clip
        self.floor = o.gamma_floor if o.variant == "gamma_floor" else 0.0
        momentum = float(getattr(config, "momentum", None) or 0.0)
        self.gamma_scale = 1.0 - momentum if o.variant == "momentum_gamma" else 1.0
        self.batch_stats = o.variant == "batch_stats_loss"
        self.step: MetaStep | None = None
        self.trainer: Trainer | None = None
        self.iters = 1
        self.initial_loss: float | None = None                  # the full training loss γ was derived from
        self.snapshots: list[dict[str, torch.Tensor]] = []   # the LR net's state after every epoch
        self._built: LRSnapshots | None = None                  # `learner`, built once per snapshot count
        self.trace: list[dict[str, float]] = []   # one row per step: epoch, loss, lr

    @classmethod
    def recipe(cls, profile: str) -> dict[str, Any]:
        """MLR-SNet's recipe: inner SGD without momentum (the virtual step is plain SGD too).

        Paper: ResNet-18 on CIFAR-10, 200 epochs, batch 128, SGD momentum 0, wd 5e-4, meta set
        of 1000 images (100 a class); WRN-28-10 on CIFAR-100 by ``model=``/``dataset=``. The
        base LR is not read by the official protocol (γ sets the scale), only by ``final_net``.
        """
        base = dict(momentum=0.0, nesterov=False, schedule="fixed", warmup_epochs=0)
        if profile == "paper":
            base.update(dataset="cifar10", model="resnet18", epochs=200, batch_size=128, lr=0.1,
                        weight_decay=5e-4, meta_lr=1e-3, meta_per_class=100)
        return base

    @classmethod
    def needs_meta_set(cls, options: dict[str, Any]) -> bool:
        """Meta-training draws meta batches; the frozen meta-test (``schedule_file``) none, so it may
        train on the whole training set (``meta_per_class=0``, as the official meta-test does).

        Example:
            >>> MLRSNetMethod.needs_meta_set({}), MLRSNetMethod.needs_meta_set({"schedule_file": "s.pt"})
            (True, False)
        """
        return options.get("schedule_file") is None

    def lr_schedule(self) -> tuple[str, dict[str, Any]]:
        """Frozen: "staged" on the loaded snapshots ("learned" on one net for ``final_net``);
        meta-training: "fixed" (the LR net sets the real step's LR inside the `MetaStep`)."""
        if not self.frozen:
            return "fixed", {}
        if self.final_net:
            return "learned", {"net": self.lr_net, "num_classes": self.num_classes}
        return "staged", {"snapshots": self.loaded, "num_classes": self.num_classes, "full_loss": self.full_train_loss,
                          "gamma_floor": self.floor, "last_only": self.variant == "last_snapshot",
                          "gamma_scale": self.gamma_scale}

    @torch.no_grad()
    def full_train_loss(self) -> float:
        """L: the mean cross-entropy over the whole training set, classifier in eval mode, no grad.

        Variant ``batch_stats_loss``: BatchNorm layers normalise by each batch's statistics instead
        (their running statistics are restored afterwards; every other layer stays in eval mode).
        """
        trainer = self.trainer
        if trainer is None or trainer.train_eval is None:
            raise ValueError("method='mlrsnet': the official γ needs the full training loss, but the trainer has no "
                             "train_eval batches (run builds them); pass variant='final_net' for γ = 2·base LR.")
        net, total, count = trainer.net, 0.0, 0
        modes = {m: m.training for m in net.modules()}
        norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        norms = norms if self.batch_stats else []      # the default measures every layer in eval mode
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
        net.eval()
        for m in norms:
            m.train()
        for batch in trainer.train_eval:
            with trainer.autocast():
                logits = net(batch.x)                                                  # (B, C)
            total = total + F.cross_entropy(logits.float(), batch.y, reduction="sum")
            count += len(batch.y)
        for m, state in zip(norms, saved):
            m.load_state_dict(state)
        for m, mode in modes.items():
            m.training = mode
        return float(total) / max(count, 1)

    def setup(self, trainer: "Trainer") -> None:
        """Build the `MetaStep` (meta-training) and set γ; a frozen net only moves to the device."""
        self.trainer = trainer
        self.lr_net.to(trainer.device)
        self.iters = getattr(trainer.schedule, "iters_per_epoch", 1)
        if self.frozen:
            return
        if self.final_net:
            self.lr_net.gamma.fill_(2.0 * trainer.optimizer.param_groups[0]["lr"])   # the LR starts at base_lr
            every = self.meta_every or max(1, math.ceil(self.iters / self.meta_per_epoch))
        else:
            self.initial_loss = self.full_train_loss()          # L before any step: γ of meta-training
            self.lr_net.gamma.fill_(self.gamma_scale * gamma_rule(self.initial_loss, self.num_classes, self.floor))
            every = 1                                  # train_step passes a meta batch only when one is due
        meta_lr = getattr(self.config, "meta_lr", None) or 1e-3
        weight_decay = getattr(self.config, "weight_decay", None) or 0.0
        meta_optimizer = torch.optim.Adam(self.lr_net.parameters(), lr=meta_lr, weight_decay=self.meta_weight_decay)
        self.step = MetaStep(trainer.net, self.lr_net, trainer.optimizer, meta_optimizer,
                             per_sample_loss=self.per_sample_loss, meta_every=every,
                             weight_decay=weight_decay, meta_clip=self.meta_clip,
                             momentum_lookahead=self.variant == "momentum_lookahead")

    @torch.no_grad()
    def _correct(self, net: torch.nn.Module, batch: "Batch") -> torch.Tensor:
        """Correct predictions on the batch before the step (cloned buffers: BN untouched)."""
        logits = functional_call(net, {**theta(net, self.lr_net), **cloned_buffers(net)}, (batch.x,))  # (B, C)
        return (logits.argmax(1) == batch.y).sum()

    def meta_due(self) -> bool:
        """Faithful cadence: the coming step is the last of every ``meta_every_epochs``-th epoch."""
        return (self.step.calls + 1) % (self.iters * self.options.meta_every_epochs) == 0

    def train_step(self, trainer: "Trainer", batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        if self.frozen:
            return self._frozen_step(trainer, batch)
        trainer.set_lr()                                     # the base LR ("fixed"); final_net's γ is relative to it
        correct = self._correct(trainer.net, batch)
        if not self.final_net and not self.meta_due():
            meta_batch = None
        meta = None if meta_batch is None else (meta_batch.x, meta_batch.y)
        stats = self.step((batch.x, batch.y), meta)          # meta-update (when due) + real step at the learned LR
        self.trace.append({"epoch": trainer.epoch, "loss": float(stats["loss"]), "lr": float(stats["lr"])})
        out = {"loss": torch.as_tensor(stats["loss"]), "correct": correct, "lr": torch.as_tensor(stats["lr"])}
        if "meta_loss" in stats:
            out["meta_loss"] = torch.as_tensor(stats["meta_loss"])
        return out

    def end_epoch(self, epoch: int, trainer: "Trainer") -> None:
        """Meta-training (faithful): keep a snapshot of the LR net after every epoch."""
        if not self.frozen and not self.final_net:
            self.snapshots.append({k: v.detach().cpu().clone() for k, v in self.lr_net.state_dict().items()})

    def _frozen_step(self, trainer: "Trainer", batch: "Batch") -> dict[str, torch.Tensor]:
        out = Method.train_step(self, trainer, batch, None)    # the schedule reads this batch's loss
        lr = trainer.optimizer.param_groups[0]["lr"]
        self.trace.append({"epoch": trainer.epoch, "loss": float(out["loss"]), "lr": lr})
        return out

    @property
    def learner(self) -> MLRSNet | LRSnapshots:
        """Faithful meta-training: `LRSnapshots` of every epoch so far (the LR net before the first
        epoch ends); ``final_net``: the LR net; frozen: what ``schedule_file`` held."""
        if self.frozen:
            return self.loaded
        if self.final_net or not self.snapshots:
            return self.lr_net
        if self._built is not None and len(self._built) == len(self.snapshots):
            return self._built
        out = LRSnapshots(self.num_classes, self.lr_net.hidden, None, self.lr_net.normalise, len(self.snapshots),
                          self.lr_net.cell_kind)
        for net, state in zip(out.nets, self.snapshots):
            net.load_state_dict(state)
            net.reset_state()
        self._built = out
        return out

    def current_meta_step(self) -> MetaStep | None:
        return self.step

    def state_dict(self) -> dict[str, Any]:
        """The LR net, the `MetaStep`'s counter and meta-optimiser, the snapshots and the trace.

        A frozen schedule's own state (its step count, stage and LSTM state) is the run's
        schedule, saved by the run's checkpoint with the optimiser's.
        """
        step = self.step
        return {"learner": self.lr_net.state_dict(), "frozen": self.frozen, "variant": self.variant,
                "meta_step": None if step is None else {"calls": step.calls,
                                                        "meta_optimizer": step.meta_optimizer.state_dict()},
                "snapshots": [dict(s) for s in self.snapshots], "trace": [dict(row) for row in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if bool(state["frozen"]) != self.frozen or state.get("variant", "final_net") != self.variant:
            raise ValueError(f"method='mlrsnet': the saved state has frozen={state['frozen']}, variant="
                             f"{state.get('variant', 'final_net')!r} but this run has frozen={self.frozen}, variant="
                             f"{self.variant!r}; resume with the same config.")
        self.lr_net.load_state_dict(state["learner"])
        if self.step is not None:
            self.step.calls = int(state["meta_step"]["calls"])
            self.step.meta_optimizer.load_state_dict(state["meta_step"]["meta_optimizer"])
        self.snapshots, self._built = [dict(s) for s in state["snapshots"]], None
        self.trace = [dict(row) for row in state["trace"]]
