"""Method ``mlrsnet``: meta-learn the LR schedule with an LSTM on the clean meta set (MLR-SNet).

Meta-training, as the official code (xjtushujun/MLR-SNet): LR = γ · net(loss), γ from the full
training loss (`metakit.schedules.learned.gamma_rule`), one meta-update and one snapshot of the LR
net an epoch; ``Result.learner`` holds the snapshots. The frozen meta-test is a schedule, "staged"
(`metakit.schedules.learned.StagedSchedule`): ``Config(schedule="staged", schedule_options=
{"schedule_file": path})``. The older spelling ``options={"schedule_file": path, "variant": ...}``
resolves to it in one place (`MLRSNetMethod.resolve`: plain training under the variant's schedule).
Ablations are the rows of `VARIANTS`; docs/guide/mlrsnet.md gives each one's reason and every
deviation from the official code.

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
from torch.func import functional_call

from metakit.learners.lr_net import LRSnapshots, MLRSNet, load_schedule
from metakit.meta import MetaStep, cadence, cloned_buffers, theta
from metakit.methods.base import Method, Trainer
from metakit.methods.registry import register
from metakit.options import option
from metakit.schedules.learned import full_train_loss, gamma_rule, stage_epochs

if TYPE_CHECKING:
    from metakit.data.batches import Batch


@dataclass(frozen=True)
class Variant:
    """The knobs one variant turns; every default is the official protocol."""

    final_net: bool = False           # γ = 2·base LR, a meta-update every meta_every steps, one final net
    normalise: bool = False           # the net reads loss / log C instead of the raw loss
    cell: str = "lstm"                # "official": the official training cell (lr_cells.OfficialCell)
    gamma_floor: bool = False         # γ := max(γ, options.gamma_floor)
    momentum_gamma: bool = False      # γ := (1 − μ)·γ, μ the run's SGD momentum
    batch_stats: bool = False         # the full loss behind γ on BatchNorm's batch statistics
    momentum_lookahead: bool = False  # the virtual step is the inner optimiser's momentum step
    last_only: bool = False           # meta-test: the last snapshot in every stage
    constant: str = ""                # meta-test: the LSTM replaced by its mean output on the source task, per
                                      # stage ("stages") or the first snapshot's at every stage ("first")

    def gamma(self, loss: float, num_classes: int, options: "MLRSNetOptions", momentum: float) -> float:
        """γ from the full training loss, with this variant's floor and scale.

        Example:
            >>> round(VARIANTS["momentum_gamma"].gamma(math.log(10), 10, MLRSNetOptions(), 0.9), 4)
            0.0669
        """
        return self._scale(momentum) * gamma_rule(loss, num_classes, self._floor(options))

    def meta_test(self, loaded: MLRSNet | LRSnapshots, options: "MLRSNetOptions",
                  momentum: float) -> tuple[str, dict[str, Any]]:
        """The frozen meta-test of this variant as a schedule declaration: ``(name, options)``.

        Example:
            >>> snaps = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=0.5)] * 3)
            >>> name, o = VARIANTS["last_snapshot"].meta_test(snaps, MLRSNetOptions(), 0.0)
            >>> name, o["last_only"], VARIANTS["final_net"].meta_test(snaps, MLRSNetOptions(), 0.0)[0]
            ('staged', True, 'learned')
        """
        if self.final_net:                                   # one net, its learned γ
            return "learned", {"net": loaded.last if isinstance(loaded, LRSnapshots) else loaded}
        constants = None
        if self.constant:
            if loaded.outputs is None:
                raise ValueError("the snapshots record no mean outputs (a file saved before they were kept); "
                                 "meta-train the source again for the constant_net / gamma_only ablations.")
            by_epoch = dict(zip(loaded.epochs, loaded.outputs))
            stages = stage_epochs(loaded.epochs[-1])
            constants = [by_epoch[stages[0]]] * 3 if self.constant == "first" else [by_epoch[e] for e in stages]
        return "staged", {"snapshots": loaded, "gamma_floor": self._floor(options), "last_only": self.last_only,
                          "gamma_scale": self._scale(momentum), "batch_stats": self.batch_stats,
                          "constants": constants}

    def _floor(self, options: "MLRSNetOptions") -> float:
        return options.gamma_floor if self.gamma_floor else 0.0

    def _scale(self, momentum: float) -> float:
        return 1.0 - momentum if self.momentum_gamma else 1.0


# variant → what it changes from the official protocol (docs/guide/mlrsnet.md: why each)
VARIANTS: dict[str, Variant] = {
    "": Variant(),                                          # the official protocol
    "final_net": Variant(final_net=True, normalise=True),   # metakit's earlier behaviour, exactly
    "gamma_floor": Variant(gamma_floor=True),
    "normalised_loss": Variant(normalise=True),
    "last_snapshot": Variant(last_only=True),
    "official_cell": Variant(cell="official"),
    "batch_stats_loss": Variant(batch_stats=True),
    "momentum_lookahead": Variant(momentum_lookahead=True),
    "momentum_gamma": Variant(momentum_gamma=True),
    "constant_net": Variant(constant="stages"),   # does the LSTM's answer to the loss matter?
    "gamma_only": Variant(constant="first"),      # does anything learned matter beyond γ?
}
FINAL_NET_ONLY = {"meta_every": None, "meta_per_epoch": 3}       # option → default; read by final_net only


@dataclass(frozen=True)
class MLRSNetOptions:
    """Options of ``method="mlrsnet"``; ``Config.meta_lr`` and ``weight_decay`` (folded into the
    virtual step) come from the config."""

    variant: str = option("", "'' the official protocol; else the named ablation (final_net: metakit's earlier "
                              "one final net and γ = 2·base LR; gamma_floor; normalised_loss; last_snapshot; "
                              "official_cell; batch_stats_loss; momentum_lookahead; momentum_gamma; constant_net; "
                              "gamma_only)",
                          choices=tuple(VARIANTS))
    hidden: int = option(50, "LSTM hidden size (the paper's 50)", low=1)
    meta_every_epochs: int = option(1, "meta-update once every this many epochs, at the epoch's last step "
                                       "(read where meta_updates is None)", low=1)
    meta_updates: int | None = option(200, "meta-updates per run, spread evenly over its steps whatever the "
                                           "dataset's size (the official code makes 200); None: once every "
                                           "meta_every_epochs epochs", low=1, nullable=True, example="200")
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


def checked_variant(o: MLRSNetOptions) -> Variant:
    """The variant's knobs; options it does not read are refused with one line (ignoring them misleads).

    Example:
        >>> checked_variant(MLRSNetOptions(variant="gamma_floor", gamma_floor=0.1)).gamma_floor
        True
    """
    owner, knobs = "method='mlrsnet'", VARIANTS[o.variant]
    if not knobs.final_net:
        for name, default in FINAL_NET_ONLY.items():
            if getattr(o, name) != default:
                raise ValueError(f"{owner}: {name}={getattr(o, name)!r} is read only by variant='final_net' (the "
                                 f"official protocol meta-updates once every meta_every_epochs epochs); drop it, or "
                                 f"pass variant='final_net'.")
    elif o.meta_updates not in (None, MLRSNetOptions.__dataclass_fields__["meta_updates"].default):
        raise ValueError(f"{owner}: meta_updates={o.meta_updates!r} is not read by variant='final_net' (it "
                         f"meta-updates every meta_every steps); use meta_every=..., or variant=''.")
    elif o.meta_every_epochs != 1:
        raise ValueError(f"{owner}: meta_every_epochs={o.meta_every_epochs!r} is not read by variant='final_net' "
                         f"(it meta-updates every meta_every steps); use meta_every=..., or variant=''.")
    if not knobs.gamma_floor and o.gamma_floor != 0.01:
        raise ValueError(f"{owner}: gamma_floor={o.gamma_floor!r} is read only by variant='gamma_floor' (the "
                         f"official γ has no guard); pass variant='gamma_floor' too, or drop it.")
    return knobs


def _check_resumable(method: "MLRSNetMethod | MLRSNetMetaTest", state: dict[str, Any]) -> None:
    """Refuse a checkpoint of the other mode or variant, in one line."""
    if bool(state["frozen"]) != method.frozen or state.get("variant", "final_net") != method.variant:
        raise ValueError(f"method='mlrsnet': the saved state has frozen={state['frozen']}, variant="
                         f"{state.get('variant', 'final_net')!r} but this run has frozen={method.frozen}, variant="
                         f"{method.variant!r}; resume with the same config.")


def _momentum(config: Any) -> float:
    return float(getattr(config, "momentum", None) or 0.0)


@register
class MLRSNetMethod(Method):
    """Cross-entropy training whose LR comes from an LSTM meta-learned on the meta set.

    Options: `MLRSNetOptions` (``Config.options``); ``variant`` picks a row of `VARIANTS`. Given a
    ``schedule_file``, the class builds the frozen meta-test instead (`resolve`).

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
    frozen = False

    @classmethod
    def resolve(cls, options: dict[str, Any]) -> type[Method]:
        """The one place the spelling ``options={"schedule_file": ...}`` resolves: `MLRSNetMetaTest`.

        Example:
            >>> MLRSNetMethod.resolve({}).__name__, MLRSNetMethod.resolve({"schedule_file": "s.pt"}).__name__
            ('MLRSNetMethod', 'MLRSNetMetaTest')
        """
        return cls if options.get("schedule_file") is None else MLRSNetMetaTest

    def __new__(cls, *args: Any, **options: Any):
        # as pathlib.Path builds a PosixPath: a schedule_file makes the frozen meta-test (its own __init__ ran)
        kind = cls.resolve(options)
        return super().__new__(cls) if kind is cls else kind(*args, **options)

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        self.variant, self.knobs = self.options.variant, checked_variant(self.options)
        self.lr_net = MLRSNet(num_classes, hidden=self.options.hidden, normalise=self.knobs.normalise,
                              cell=self.knobs.cell)
        self.batch_stats = self.knobs.batch_stats      # how full_train_loss measures (a notebook flips it)
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
        return cls.resolve(options).uses_meta_set

    def lr_schedule(self) -> tuple[str, dict[str, Any]]:
        """"fixed": the LR net sets the real step's LR inside the `MetaStep`."""
        return "fixed", {}

    def full_train_loss(self) -> float:
        """L of γ (`metakit.schedules.learned.full_train_loss`), on batch statistics where ``batch_stats``."""
        return full_train_loss(self.trainer, batch_stats=self.batch_stats)

    def setup(self, trainer: Trainer) -> None:
        """Set γ and build the `MetaStep` (its cadence: once an epoch, or ``final_net``'s every k steps)."""
        self.trainer, o, knobs = trainer, self.options, self.knobs
        self.lr_net.to(trainer.device)
        self.iters = getattr(trainer.schedule, "iters_per_epoch", 1)
        if knobs.final_net:
            self.lr_net.gamma.fill_(2.0 * trainer.optimizer.param_groups[0]["lr"])   # the LR starts at base_lr
            every = o.meta_every or max(1, math.ceil(self.iters / o.meta_per_epoch))
        else:
            self.initial_loss = self.full_train_loss()          # L before any step: γ of meta-training
            self.lr_net.gamma.fill_(knobs.gamma(self.initial_loss, self.num_classes, o, _momentum(self.config)))
            every = 1                                  # train_step passes a meta batch only when one is due
        meta_lr = getattr(self.config, "meta_lr", None) or 1e-3
        weight_decay = getattr(self.config, "weight_decay", None) or 0.0
        meta_optimizer = torch.optim.Adam(self.lr_net.parameters(), lr=meta_lr, weight_decay=o.meta_weight_decay)
        self.step = MetaStep(trainer.net, self.lr_net, trainer.optimizer, meta_optimizer,
                             per_sample_loss=self.per_sample_loss, meta_every=every, weight_decay=weight_decay,
                             meta_clip=o.meta_clip, momentum_lookahead=knobs.momentum_lookahead)

    @torch.no_grad()
    def _correct(self, net: torch.nn.Module, batch: "Batch") -> torch.Tensor:
        """Correct predictions on the batch before the step (cloned buffers: BN untouched)."""
        logits = functional_call(net, {**theta(net, self.lr_net), **cloned_buffers(net)}, (batch.x,))  # (B, C)
        return (logits.argmax(1) == batch.y).sum()

    def meta_due(self) -> bool:
        """Whether the coming step meta-updates: ``meta_updates`` spread evenly over the run's steps (the
        last on its last step), else the last step of every ``meta_every_epochs``-th epoch (``final_net``:
        always; its `MetaStep` counts ``meta_every`` steps itself)."""
        t, count = self.step.calls, self.options.meta_updates
        if count is not None and not self.knobs.final_net:
            total = self.iters * int(getattr(self.config, "epochs", None) or 1)
            return cadence.due(count, total, t) > 0
        return self.knobs.final_net or (t + 1) % (self.iters * self.options.meta_every_epochs) == 0

    @property
    def meta_updates(self) -> int:
        """Meta-updates made so far (a run's meta-learning budget), counted from the steps taken."""
        t, count = self.step.calls, self.options.meta_updates
        if self.knobs.final_net:
            return -(-t // self.step.meta_every)        # its MetaStep updates on calls 0, k, 2k, ...
        if count is not None:   # every step when the run has fewer steps than updates asked
            total = self.iters * int(getattr(self.config, "epochs", None) or 1)
            return cadence.made(count, total, t)
        return t // (self.iters * self.options.meta_every_epochs)

    def train_step(self, trainer: Trainer, batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        trainer.set_lr()                                     # the base LR ("fixed"); final_net's γ is relative to it
        correct = self._correct(trainer.net, batch)
        meta = (meta_batch.x, meta_batch.y) if meta_batch is not None and self.meta_due() else None
        stats = self.step((batch.x, batch.y), meta)          # meta-update (when due) + real step at the learned LR
        self.trace.append({"epoch": trainer.epoch, "loss": float(stats["loss"]), "lr": float(stats["lr"])})
        out = {"loss": torch.as_tensor(stats["loss"]), "correct": correct, "lr": torch.as_tensor(stats["lr"])}
        if "meta_loss" in stats:
            out["meta_loss"] = torch.as_tensor(stats["meta_loss"])
        return out

    def end_epoch(self, epoch: int, trainer: Trainer) -> None:
        """Keep a snapshot of the LR net after every epoch (``final_net`` keeps only the final net)."""
        if not self.knobs.final_net:
            self.snapshots.append({k: v.detach().cpu().clone() for k, v in self.lr_net.state_dict().items()})

    @property
    def learner(self) -> MLRSNet | LRSnapshots:
        """`LRSnapshots` of every epoch so far; the LR net itself before the first snapshot (and for ``final_net``)."""
        if not self.snapshots:
            return self.lr_net
        if self._built is not None and len(self._built) == len(self.snapshots):
            return self._built
        out = LRSnapshots(self.num_classes, self.lr_net.hidden, None, self.lr_net.normalise, len(self.snapshots),
                          self.lr_net.cell_kind, outputs=self.epoch_outputs()[:len(self.snapshots)])
        for net, state in zip(out.nets, self.snapshots):
            net.load_state_dict(state)
            net.reset_state()
        self._built = out
        return out

    def epoch_outputs(self) -> list[float]:
        """Each epoch's mean output LR / γ of the LR net over its steps (the snapshot's mean output)."""
        gamma, by_epoch = float(self.lr_net.gamma), {}
        for row in self.trace:
            by_epoch.setdefault(row["epoch"], []).append(row["lr"] / gamma)
        return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]

    def current_meta_step(self) -> MetaStep | None:
        return self.step

    def state_dict(self) -> dict[str, Any]:
        """The LR net, the `MetaStep`'s counter and meta-optimiser, the snapshots and the trace."""
        step = self.step
        return {"learner": self.lr_net.state_dict(), "frozen": False, "variant": self.variant,
                "meta_step": None if step is None else {"calls": step.calls,
                                                        "meta_optimizer": step.meta_optimizer.state_dict()},
                "snapshots": [dict(s) for s in self.snapshots], "trace": [dict(row) for row in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_resumable(self, state)
        self.lr_net.load_state_dict(state["learner"])
        if self.step is not None:
            self.step.calls = int(state["meta_step"]["calls"])
            self.step.meta_optimizer.load_state_dict(state["meta_step"]["meta_optimizer"])
        self.snapshots, self._built = [dict(s) for s in state["snapshots"]], None
        self.trace = [dict(row) for row in state["trace"]]


class MLRSNetMetaTest(Method):
    """``mlrsnet`` with a ``schedule_file``: plain cross-entropy under the variant's frozen schedule
    ("staged"; ``final_net``: "learned"), as ``Config(schedule="staged", ...)`` runs it, keeping
    the per-step trace. `MLRSNetMethod` builds it; it is not registered.

    Example:
        >>> import pathlib, tempfile
        >>> from metakit.learners.lr_net import save_schedule
        >>> path = save_schedule(LRSnapshots.of([MLRSNet(10, hidden=4, gamma=0.5)] * 3),
        ...                      pathlib.Path(tempfile.mkdtemp()) / "s.pt")
        >>> m = MLRSNetMethod(10, [5] * 10, schedule_file=str(path))
        >>> type(m).__name__, m.uses_meta_set, m.lr_schedule()[0], len(m.learner)
        ('MLRSNetMetaTest', False, 'staged', 3)
    """

    name = "mlrsnet"
    Options = MLRSNetOptions
    frozen = True

    def __init__(self, num_classes: int, class_counts: list[int], config: Any = None, **options: Any):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        self.variant, self.knobs = o.variant, checked_variant(o)
        self.loaded, _ = load_schedule(o.schedule_file)   # raises one line if missing or not an LR net
        if isinstance(self.loaded, MLRSNet) and not self.knobs.final_net:
            raise ValueError(f"method='mlrsnet': schedule_file={o.schedule_file!r} holds one LR net (an older "
                             f"file, or save_schedule(result.method.lr_net)); the staged meta-test needs the "
                             f"per-epoch snapshots: save result.learner, or pass variant='final_net'.")
        self.lr_net = self.loaded.last if isinstance(self.loaded, LRSnapshots) else self.loaded
        self.step = None                                   # nothing is meta-learned here
        self.trainer: Trainer | None = None
        self.trace: list[dict[str, float]] = []   # one row per step: epoch, loss, lr

    def lr_schedule(self) -> tuple[str, dict[str, Any]]:
        """The variant's frozen schedule (`Variant.meta_test`); the run adds γ's full loss and C."""
        return self.knobs.meta_test(self.loaded, self.options, _momentum(self.config))

    def setup(self, trainer: Trainer) -> None:
        """Keep the trainer; the LR net ("learned" runs it in place) moves to the device."""
        self.trainer = trainer
        self.lr_net.to(trainer.device)

    def train_step(self, trainer: Trainer, batch: "Batch", meta_batch: "Batch | None") -> dict[str, torch.Tensor]:
        out = super().train_step(trainer, batch, None)        # the schedule reads this batch's loss
        lr = trainer.optimizer.param_groups[0]["lr"]
        self.trace.append({"epoch": trainer.epoch, "loss": float(out["loss"]), "lr": lr})
        return out

    @property
    def learner(self) -> MLRSNet | LRSnapshots:
        """What ``schedule_file`` held."""
        return self.loaded

    def state_dict(self) -> dict[str, Any]:
        """The trace (and the LR net); the schedule's own state is the run's schedule, saved beside."""
        return {"learner": self.lr_net.state_dict(), "frozen": True, "variant": self.variant, "meta_step": None,
                "snapshots": [], "trace": [dict(row) for row in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_resumable(self, state)
        self.lr_net.load_state_dict(state["learner"])
        self.trace = [dict(row) for row in state["trace"]]
