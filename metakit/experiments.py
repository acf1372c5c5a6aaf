"""One entry point for notebooks, tests and the command line: ``run(Config(...))``.

`Config` holds every choice of an experiment; fields left ``None`` are filled from the
profile (smoke / laptop / paper, see `PROFILES`) and then from the method's own recipe.

Example:
    >>> r = run(Config(method="ce", imbalance=10, profile="smoke", progress=False))
    >>> sorted(r.history.columns)[:3], 0 <= r.metrics["test_acc"] <= 100
    (['epoch', 'few_acc', 'lr'], True)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from metakit.checkpoint import capture, load_checkpoint, restore, rng_state, save_checkpoint, set_rng_state
from metakit.data.batches import Batches
from metakit.data.stream import Stream
from metakit.data.sources import DATASETS, load_source
from metakit.data.splits import Split, SplitSpec, load_split, make_split
from metakit.device import device as pick_device
from metakit.distributed import (average_gradients_before_step, init_from_env, is_main, local_device_name,
                                 optimizers_of, shard_batches)
from metakit.methods import get_method
from metakit.methods.base import Method
from metakit.models import MODELS, build_model
from metakit.schedules import Schedule, lr_function
from metakit.train import Trainer, evaluate, fit

# Profile defaults: what a field left None becomes. Smoke runs every code path in seconds.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="digits", epochs=3, batch_size=64, lr=0.1, momentum=0.9, nesterov=False,
                  weight_decay=5e-4, schedule="cosine", milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0,
                  meta_lr=1e-3, meta_every=1, meta_per_class=5, amp=False),
    "laptop": dict(dataset="digits", epochs=60, batch_size=64, lr=0.1, momentum=0.9, nesterov=False,
                   weight_decay=5e-4, schedule="cosine", milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0,
                   meta_lr=1e-3, meta_every=1, meta_per_class=5, amp=False),
    # LDAM-DRW long-tail recipe (DESIGN.md): ResNet-32, 200 epochs, batch 128, SGD 0.1 m 0.9,
    # wd 2e-4, 5-epoch warm-up, LR x0.01 at 160 and again at 180.
    "paper": dict(dataset="cifar10", epochs=200, batch_size=128, lr=0.1, momentum=0.9, nesterov=False,
                  weight_decay=2e-4, schedule="multistep", milestones=(160, 180), gamma=0.01, warmup_epochs=5,
                  meta_lr=1e-3, meta_every=1, meta_per_class=10, amp=True),
}
MAX_LR_FACTOR = 100.0  # an LR above this multiple of Config.lr counts as divergence
DEFAULT_MODEL = {"digits": "digits_cnn", "cifar10": "resnet32", "cifar100": "resnet32"}


@dataclass(frozen=True)
class Config:
    """Every choice of one experiment. ``None`` means "take it from the profile / method recipe"."""

    method: str = "ce"                       # training method, see metakit.methods.METHODS
    profile: str | None = None               # smoke | laptop | paper; None: $METAKIT_PROFILE or "laptop"
    dataset: str | None = None               # digits | cifar10 | cifar100
    imbalance: float = 1.0                   # largest/smallest class of the training set (1 = balanced)
    lt_profile: str = "exp"                  # long-tail shape: exp | step
    noise_kind: str = "none"                 # label noise: none | uniform | flip | flip2
    noise_rate: float = 0.0                  # label-noise probability in [0, 1)
    meta_per_class: int | None = None        # clean meta images per class, removed from training first
    model: str | None = None                 # resnet32 | resnet18 | wrn28_10 | digits_cnn | mlp
    epochs: int | None = None                # passes over the training set
    batch_size: int | None = None            # training images per step
    optimizer: str = "sgd"                   # real-step optimiser: sgd | adam
    lr: float | None = None                  # base (inner) learning rate of the real step
    momentum: float | None = None            # SGD momentum
    nesterov: bool | None = None             # Nesterov momentum
    weight_decay: float | None = None        # L2 weight decay (also folded into the virtual step)
    schedule: str | None = None              # LR schedule, see metakit.schedules
    milestones: tuple[float, ...] | None = None  # multistep boundaries (fractions < 1 or epochs)
    gamma: float | None = None               # multistep factor per milestone / total exp decay
    warmup_epochs: float | None = None       # linear LR warm-up length in epochs
    meta_lr: float | None = None             # meta-optimiser learning rate (Adam)
    meta_every: int | None = None            # meta-update every k steps
    options: dict = field(default_factory=dict)  # method-specific options, e.g. {"focal_gamma": 2}
    seed: int = 0                            # seeds the split, the init and the batch order
    device: str | None = None                # "cpu", "cuda", ...; None: metakit.device()
    amp: bool | None = None                  # bf16 autocast on CUDA for plain steps
    data_root: str | None = None             # where CIFAR lives; None: $METAKIT_DATA or ./data
    split_file: str | None = None            # load this saved split instead of making one
    progress: bool = True                    # show tqdm progress bars

    def resolve(self) -> "Config":
        """Validate, then fill every ``None`` from the profile and the method's recipe.

        Example:
            >>> Config(profile="smoke").resolve().epochs
            3
        """
        profile = self.profile or os.environ.get("METAKIT_PROFILE") or "laptop"
        if profile not in PROFILES:
            raise ValueError(f"profile={profile!r} is unknown; use one of {sorted(PROFILES)} "
                             f"(or set METAKIT_PROFILE to one of them).")
        method = get_method(self.method)
        filled = {**PROFILES[profile], **method.recipe(profile)}
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, default in filled.items():
            if values.get(name) is None:
                values[name] = default
        values["profile"] = profile
        if values["model"] is None:
            values["model"] = DEFAULT_MODEL.get(values["dataset"], "digits_cnn")
        if isinstance(values["milestones"], list):
            values["milestones"] = tuple(values["milestones"])
        return validate(Config(**values))

    def split_spec(self) -> SplitSpec:
        """The `SplitSpec` of this (resolved) config."""
        return SplitSpec(self.dataset, self.imbalance, self.lt_profile, self.noise_kind, self.noise_rate,
                         self.meta_per_class, self.seed)


def _check_number(name: str, value: Any, low: float, high: float = float("inf"), *, integer: bool = False,
                  low_open: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name}={value!r} must be {kind} in {'(' if low_open else '['}{low}, {high}].")
    if not np.isfinite(value) or value < low or (low_open and value == low) or value > high:
        raise ValueError(f"{name}={value!r} is out of range; use a value in {'(' if low_open else '['}{low}, {high}].")


def validate(config: Config) -> Config:
    """Raise a clear error naming the field, the value and the allowed values; returns config.

    Example:
        >>> validate(Config(profile="smoke").resolve()).method
        'ce'
    """
    if config.dataset not in DATASETS:
        raise ValueError(f"dataset={config.dataset!r} is unknown; use one of {DATASETS}.")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={config.optimizer!r} is unknown; use one of {OPTIMIZERS}.")
    if config.model not in MODELS:
        raise ValueError(f"model={config.model!r} is unknown; use one of {MODELS}.")
    config.split_spec().validate()
    _check_number("epochs", config.epochs, 1, integer=True)
    _check_number("batch_size", config.batch_size, 1, integer=True)
    _check_number("lr", config.lr, 0, low_open=True)
    _check_number("momentum", config.momentum, 0, 1)
    _check_number("weight_decay", config.weight_decay, 0)
    _check_number("gamma", config.gamma, 0, low_open=True)
    _check_number("warmup_epochs", config.warmup_epochs, 0)
    _check_number("meta_lr", config.meta_lr, 0, low_open=True)
    _check_number("meta_every", config.meta_every, 1, integer=True)
    if not isinstance(config.options, dict):
        raise TypeError(f"options={config.options!r} must be a dict of method options, e.g. {{'focal_gamma': 2}}.")
    if get_method(config.method).uses_meta_set and config.meta_per_class < 1:
        raise ValueError(f"meta_per_class={config.meta_per_class} but method={config.method!r} needs a meta set; "
                         f"use meta_per_class >= 1.")
    return config


@dataclass
class Result:
    """What `run` returns.

    Attributes:
        config: the resolved config that ran.
        history: one row per epoch (see `metakit.train.fit`).
        metrics: final test metrics: test_acc, per_class_acc, many/medium/few_acc, test_loss.
        net: the trained classifier.
        method: the method object (holds any meta-learner).
        split: the data split used.
    """

    config: Config
    history: pd.DataFrame
    metrics: dict
    net: nn.Module
    method: Method
    split: Split


OPTIMIZERS = ("sgd", "adam")


def build_optimizer(config: Config, params) -> torch.optim.Optimizer:
    """The real step's optimiser: SGD (momentum, Nesterov, weight decay) or Adam (weight decay).

    Example:
        >>> opt = build_optimizer(Config(profile="smoke").resolve(), [torch.zeros(1, requires_grad=True)])
        >>> type(opt).__name__, opt.param_groups[0]["momentum"]
        ('SGD', 0.9)
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    nesterov = bool(config.nesterov) and config.momentum > 0
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=nesterov,
                           weight_decay=config.weight_decay)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy's global generators (splits and batches have their own seeds)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class Parts:
    """Everything one run is made of, built fresh from a resolved config (see `build`)."""

    config: Config
    split: Split
    method: Method
    trainer: Trainer
    train: Batches
    test: Batches
    meta: Stream | None


def build(config: Config) -> Parts:
    """Data, split, method, model, optimiser and schedule of a resolved config, seeded.

    Example:
        >>> parts = build(Config(profile="smoke").resolve())
        >>> type(parts.trainer.optimizer).__name__
        'SGD'
    """
    distributed = init_from_env()
    dev = pick_device(config.device or local_device_name())
    source = load_source(config.dataset, config.data_root)
    split = load_split(config.split_file) if config.split_file else make_split(config.split_spec(), source.train_y)
    seed_everything(config.seed)
    method = get_method(config.method)(num_classes=source.num_classes, class_counts=split.class_counts,
                                       config=config, **config.options)
    net = build_model(config.model, source.num_classes, source.train_x.shape[1], source.train_x.shape[-1])
    net = method.prepare(net).to(dev)
    if dev.type == "cuda" and config.amp:
        net = net.to(memory_format=torch.channels_last)
    train = Batches(source.train_x[split.train_idx], split.train_labels, config.batch_size, dev, source.mean,
                    source.std, augment=source.augment, seed=config.seed,
                    sample_weights=method.sample_weights(split.train_labels))
    test = Batches(source.test_x, source.test_y, 500, dev, source.mean, source.std, shuffle=False)
    meta = None
    if method.uses_meta_set:
        meta_y = source.train_y[split.meta_idx]
        meta = Stream(Batches(source.train_x[split.meta_idx], meta_y, min(config.batch_size, len(meta_y)), dev,
                              source.mean, source.std, augment=source.augment, seed=config.seed + 1))
    optimizer = build_optimizer(config, method.classifier_parameters(net))
    lr_fn = lr_function(config.schedule, config.lr, config.epochs, milestones=config.milestones,
                        gamma=config.gamma, warmup_epochs=config.warmup_epochs)
    trainer = Trainer(net, optimizer, Schedule(optimizer, lr_fn, len(train)), dev, amp=bool(config.amp))
    method.setup(trainer)
    if distributed:  # identical updates on every rank: average every optimiser's gradients first
        for opt in {id(o): o for o in [optimizer, *optimizers_of(method)]}.values():
            average_gradients_before_step(opt)
        train = shard_batches(train)
    return Parts(config, split, method, trainer, train, test, meta)


def config_key(config: Config) -> str:
    """A short hash of everything that changes a run's numbers (not ``progress``).

    Example:
        >>> config_key(Config(profile="smoke").resolve()) == config_key(Config(profile="smoke", progress=False).resolve())
        True
    """
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run(config: Config, *, checkpoint_dir: str | Path | None = None, resume: bool = False) -> Result:
    """Train and evaluate one configuration.

    Args:
        config: the experiment; ``None`` fields come from its profile.
        checkpoint_dir: write a checkpoint there after every epoch (atomically), named by
            `config_key`. Use it for anything longer than a few minutes.
        resume: continue from that checkpoint if it exists (a killed run picks up where it
            stopped and ends with exactly the numbers of an uninterrupted run on CPU).

    Returns:
        A `Result` with ``.history`` (DataFrame) and ``.metrics`` (dict, ``test_acc`` in %).
    """
    config = config.resolve()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir=...: the folder the killed run wrote its checkpoints to.")
    parts = build(config)
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{config.method}-{config_key(config)}.pt"
    start, rows = 0, []
    if resume and path.exists():
        start, rows = restore_run(parts, load_checkpoint(path), path)

    def on_epoch_end(epoch: int, rows: list[dict]) -> None:
        if is_main():  # one writer under torchrun
            save_checkpoint(path, snapshot_run(parts, epoch + 1, rows))

    history = fit(parts.trainer, parts.method, parts.train, parts.test, config.epochs, parts.split.class_counts,
                  meta=parts.meta, progress=config.progress, start_epoch=start, history=rows,
                  on_epoch_end=None if path is None else on_epoch_end, max_lr=MAX_LR_FACTOR * config.lr,
                  last_good=path)
    metrics = evaluate(parts.trainer.net, parts.test, parts.split.class_counts)
    return Result(config, history, metrics, parts.trainer.net, parts.method, parts.split)


def snapshot_run(parts: Parts, epochs_done: int, rows: list[dict]) -> dict:
    """The checkpoint of a run after ``epochs_done`` epochs (loadable with ``weights_only=True``)."""
    seen = {id(parts.trainer.net), id(parts.trainer.optimizer)}
    return {"format": 1, "config": dataclasses.asdict(parts.config), "key": config_key(parts.config),
            "epochs_done": epochs_done, "history": rows, "net": parts.trainer.net.state_dict(),
            "optimizer": parts.trainer.optimizer.state_dict(), "schedule": parts.trainer.schedule.state_dict(),
            "method": capture(parts.method, seen=seen), "train_generator": parts.train.generator.get_state(),
            "meta": None if parts.meta is None else parts.meta.state_dict(), "rng": rng_state()}


def restore_run(parts: Parts, state: dict, path: Path) -> tuple[int, list[dict]]:
    """Load a checkpoint into freshly built parts; returns (epochs done, history rows)."""
    if not isinstance(state, dict) or state.get("format") != 1:
        raise ValueError(f"checkpoint '{path}' is not a metakit run checkpoint; delete it to start fresh.")
    if state["key"] != config_key(parts.config):
        theirs = state.get("config", {})
        diff = {k: (theirs.get(k), v) for k, v in dataclasses.asdict(parts.config).items() if theirs.get(k) != v}
        raise ValueError(f"checkpoint '{path}' belongs to another config (differs in {diff}); "
                         f"resume with the same config or delete the file.")
    try:
        parts.trainer.net.load_state_dict(state["net"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint '{path}' does not fit model={parts.config.model!r}: {err}") from None
    parts.trainer.optimizer.load_state_dict(state["optimizer"])
    parts.trainer.schedule.load_state_dict(state["schedule"])
    restore(parts.method, state["method"])
    parts.train.generator.set_state(state["train_generator"])
    if parts.meta is not None:
        parts.meta.load_state_dict(state["meta"])
    set_rng_state(state["rng"])
    return int(state["epochs_done"]), list(state["history"])
